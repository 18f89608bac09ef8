"""Typed operations settings of one tower: inference mode, scaling, rollouts, capture, monitoring.

Each concern is one frozen sub-model, hooked into ``Tower`` with one field each. Rules that
involve several concerns (serverless + autoscaling, GPU + serverless, async without output...)
live in ``check_operations``, called by ``Tower``'s validator, so every message names the key
and the fix.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from hf_towers.config.base import BUCKET_PATTERN, KMS_KEY_ARN_PATTERN, S3_URI_PATTERN, Strict

if TYPE_CHECKING:  # pragma: no cover - typing only
    from hf_towers.config.models import Tower

# An S3 key prefix without leading or trailing slash: "async/vision/output".
S3_PREFIX_PATTERN = r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"
CONTENT_TYPE_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*/[a-zA-Z0-9](-*[a-zA-Z0-9.])*$"

S3Prefix = Annotated[str, StringConstraints(pattern=S3_PREFIX_PATTERN, max_length=200)]
S3Uri = Annotated[str, StringConstraints(pattern=S3_URI_PATTERN)]

# Instance families with accelerators (GPU, Inferentia, Trainium): never serverless.
_ACCELERATED = re.compile(r"^ml\.(g\d|p\d|inf\d|trn\d)")


def is_accelerated(instance_type: str) -> bool:
    """True for GPU/Inferentia/Trainium instance types (``ml.g5.xlarge``, ``ml.inf2.xlarge``...)."""
    return bool(_ACCELERATED.match(instance_type))


class InferenceMode(StrEnum):
    """How the endpoint serves: instances answering at once, serverless, or queued (async)."""

    REALTIME = "realtime"
    SERVERLESS = "serverless"
    ASYNC = "async"


class Serverless(Strict):
    """``ServerlessConfig`` of the variant (``inference_mode: serverless``)."""

    memory_size_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 2048
    max_concurrency: int = Field(default=5, ge=1, le=200)
    provisioned_concurrency: int | None = Field(default=None, ge=1, le=200)

    @model_validator(mode="after")
    def _provisioned_within_max(self) -> Self:
        if (
            self.provisioned_concurrency is not None
            and self.provisioned_concurrency > self.max_concurrency
        ):
            raise ValueError(
                f"serverless.provisioned_concurrency ({self.provisioned_concurrency}) exceeds "
                f"serverless.max_concurrency ({self.max_concurrency}): lower it or raise max_concurrency"
            )
        return self


class AsyncInference(Strict):
    """``AsyncInferenceConfig`` (``inference_mode: async``): results and failures go to S3.

    ``output_prefix`` has no default on purpose: an async endpoint without an output location
    cannot deliver results. Prefixes are in the artifact bucket unless ``bucket`` names an
    existing, dedicated one (then ``kms_key_arn`` is its key; default the environment key).
    """

    output_prefix: S3Prefix | None = Field(
        default=None, description="Required: key prefix of results, e.g. async/vision/output."
    )
    failure_prefix: S3Prefix | None = Field(
        default=None, description="Default: <output_prefix>-failures."
    )
    input_prefix: S3Prefix | None = Field(
        default=None,
        description="Where clients upload requests (the role may read it). Default: <output_prefix>-requests.",
    )
    bucket: Annotated[str, StringConstraints(pattern=BUCKET_PATTERN)] | None = Field(
        default=None, description="An existing dedicated bucket; default: the artifact bucket."
    )
    kms_key_arn: Annotated[str, StringConstraints(pattern=KMS_KEY_ARN_PATTERN)] | None = Field(
        default=None, description="Key of results; default: the environment key."
    )
    notifications: bool = Field(
        default=True, description="Create KMS-encrypted SNS success and error topics."
    )
    max_concurrent_invocations_per_instance: int | None = Field(default=None, ge=1, le=1000)

    @property
    def effective_failure_prefix(self) -> str:
        return self.failure_prefix or f"{self.output_prefix}-failures"

    @property
    def effective_input_prefix(self) -> str:
        return self.input_prefix or f"{self.output_prefix}-requests"


class Autoscaling(Strict):
    """Application Auto Scaling of the variant's instance count (real-time and async).

    Real-time: target tracking on ``SageMakerVariantInvocationsPerInstance``. Async: target
    tracking on ``ApproximateBacklogSizePerInstance``; with ``min_capacity: 0`` it scales in to
    zero and a step policy on ``HasBacklogWithoutCapacity`` scales out from zero.
    """

    enabled: bool = True
    min_capacity: int | None = Field(
        default=None, ge=0, le=100, description="Default: initial_instance_count."
    )
    max_capacity: int | None = Field(
        default=None, ge=1, le=100, description="Default: 2 x min_capacity (at least 2)."
    )
    target_invocations_per_instance: int = Field(default=100, ge=1, le=100_000)
    target_backlog_per_instance: float = Field(default=5.0, gt=0, le=10_000)
    scale_in_cooldown_seconds: int = Field(default=300, ge=0, le=3600)
    scale_out_cooldown_seconds: int = Field(default=60, ge=0, le=3600)


class RolloutStrategy(StrEnum):
    BLUE_GREEN = "blue_green"
    ROLLING = "rolling"


class TrafficShift(StrEnum):
    ALL_AT_ONCE = "all_at_once"
    CANARY = "canary"
    LINEAR = "linear"


class Rollout(Strict):
    """The Endpoint's ``DeploymentConfig``: how an update shifts traffic, and when it rolls back."""

    strategy: RolloutStrategy = RolloutStrategy.BLUE_GREEN
    traffic: TrafficShift = TrafficShift.ALL_AT_ONCE
    # SageMaker's TrafficRoutingConfig: a canary is at most 50 % of the fleet, a linear step
    # 10 to 50 % (a smaller step fails the endpoint update, not the synth).
    canary_percent: int = Field(default=10, ge=1, le=50)
    linear_step_percent: int = Field(default=20, ge=10, le=50)
    wait_interval_seconds: int = Field(default=300, ge=0, le=3600)
    termination_wait_seconds: int = Field(default=300, ge=0, le=3600)
    max_execution_timeout_seconds: int = Field(default=3600, ge=600, le=28800)
    rolling_batch_percent: int = Field(default=25, ge=5, le=50)
    rollback_batch_percent: int | None = Field(default=None, ge=5, le=100)
    auto_rollback: bool = Field(
        default=True, description="Roll back when the 5XX or p99-latency alarm fires."
    )

    @model_validator(mode="after")
    def _strategy_keys(self) -> Self:
        if (
            self.strategy is RolloutStrategy.ROLLING
            and self.traffic is not TrafficShift.ALL_AT_ONCE
        ):
            raise ValueError(
                f"rollout.traffic {self.traffic.value!r} is a blue/green traffic shift: "
                "use strategy blue_green, or remove traffic for a rolling update"
            )
        return self


class DataCapture(Strict):
    """Capture of requests and responses to ``s3://<artifact bucket>/<prefix>`` (KMS)."""

    enabled: bool = False
    sampling_percentage: int = Field(default=20, ge=1, le=100)
    capture_input: bool = True
    capture_output: bool = True
    prefix: S3Prefix | None = Field(default=None, description="Default: data-capture/<tower>.")
    json_content_types: list[Annotated[str, StringConstraints(pattern=CONTENT_TYPE_PATTERN)]] = (
        Field(default_factory=lambda: ["application/json"], max_length=10)
    )

    @model_validator(mode="after")
    def _captures_something(self) -> Self:
        if self.enabled and not (self.capture_input or self.capture_output):
            raise ValueError(
                "data_capture captures nothing: set capture_input or capture_output to true, or enabled: false"
            )
        return self


class ModelMonitor(Strict):
    """Model Monitor data-quality schedule, active when both baseline URIs are set."""

    baseline_constraints_uri: S3Uri | None = None
    baseline_statistics_uri: S3Uri | None = None
    schedule: str = Field(default="cron(0 * ? * * *)", description="Hourly by default.")
    instance_type: Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] = (
        "ml.m5.xlarge"
    )
    volume_size_gb: int = Field(default=20, ge=1, le=16384)
    max_runtime_seconds: int = Field(default=3600, ge=1, le=86400)

    @property
    def enabled(self) -> bool:
        return self.baseline_constraints_uri is not None

    @model_validator(mode="after")
    def _both_baselines(self) -> Self:
        if (self.baseline_constraints_uri is None) != (self.baseline_statistics_uri is None):
            raise ValueError(
                "model_monitor needs both baseline_constraints_uri and baseline_statistics_uri "
                "(the outputs of a baselining job): set both, or neither to turn drift monitoring off"
            )
        if not re.match(r"^(cron\(.+\)|rate\(.+\))$", self.schedule):
            raise ValueError(
                f"model_monitor.schedule {self.schedule!r} is not a schedule expression: "
                "use cron(0 * ? * * *) (hourly) or cron(0 0 ? * * *) (daily)"
            )
        return self


class Monitoring(Strict):
    """Per-tower dashboard, and alarms (5XX errors, ModelLatency p99) to a KMS-encrypted topic."""

    dashboard: bool = True
    alarms: bool = True
    error_5xx_threshold: int = Field(
        default=5, ge=1, description="Invocation5XXErrors per period that trip the alarm."
    )
    latency_p99_ms: int = Field(
        default=2000, ge=1, description="ModelLatency p99 in ms that trips the alarm."
    )
    period_seconds: Literal[60, 300, 900, 3600] = 60
    evaluation_periods: int = Field(default=3, ge=1, le=60)


class Network(Strict):
    """The Model's ``VpcConfig`` (existing subnets and security groups) and network isolation."""

    subnet_ids: list[Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(
        default_factory=list, max_length=16
    )
    security_group_ids: list[Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8,17}$")]] = (
        Field(default_factory=list, max_length=5)
    )
    enable_network_isolation: bool | None = Field(
        default=None,
        description="Default (null): on where the container needs no network (README, 'Network isolation').",
    )

    @property
    def in_vpc(self) -> bool:
        return bool(self.subnet_ids)

    @model_validator(mode="after")
    def _subnets_and_groups(self) -> Self:
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            raise ValueError(
                "network needs both subnet_ids and security_group_ids (existing ones; no VPC is created): "
                "set both, or neither to run outside a VPC"
            )
        return self


def check_operations(tower: Tower) -> None:
    """Cross-concern rules of one tower; raises ValueError naming the key and the fix."""
    mode = tower.inference_mode
    explicit = tower.model_fields_set
    if "serverless" in explicit and mode is not InferenceMode.SERVERLESS:
        raise ValueError(
            "serverless settings without inference_mode: serverless: set inference_mode: serverless or remove serverless"
        )
    if "async_inference" in explicit and mode is not InferenceMode.ASYNC:
        raise ValueError(
            "async_inference settings without inference_mode: async: set inference_mode: async or remove async_inference"
        )
    if mode is InferenceMode.ASYNC and tower.async_inference.output_prefix is None:
        raise ValueError(
            "inference_mode async needs an output: set async_inference.output_prefix "
            "(e.g. async/<tower>/output) where SageMaker writes results"
        )
    if tower.compute is not None:  # an inference component of a shared endpoint
        from hf_towers.config.shared_endpoints import check_component

        check_component(tower)
    elif mode is InferenceMode.SERVERLESS:
        _check_serverless(tower, explicit)
    elif tower.autoscaling.enabled:
        _check_capacity(tower)
    if tower.deploy_endpoint and tower.compute is None:
        check_rollout(tower)
    if tower.rollout.auto_rollback and not tower.monitoring.alarms:
        raise ValueError(
            "rollout.auto_rollback rolls back on the monitoring alarms: set monitoring.alarms: true "
            "or rollout.auto_rollback: false"
        )
    if tower.model_monitor.enabled and not tower.data_capture.enabled:
        raise ValueError(
            "model_monitor analyses captured requests: set data_capture.enabled: true or remove the baseline URIs"
        )


def _check_serverless(tower: Tower, explicit: set[str]) -> None:
    if is_accelerated(tower.instance_type):
        raise ValueError(
            f"serverless endpoints run on CPU only, but instance_type is {tower.instance_type!r}: "
            "set instance_type to a CPU type such as ml.m5.xlarge (it selects the CPU image) "
            "or use inference_mode: realtime"
        )
    if "autoscaling" in explicit and tower.autoscaling.enabled:
        raise ValueError(
            "serverless endpoints scale themselves (serverless.max_concurrency): "
            "set autoscaling.enabled: false or use inference_mode: realtime"
        )
    if tower.rollout.strategy is RolloutStrategy.ROLLING:
        raise ValueError(
            "serverless endpoints cannot do rolling updates: set rollout.strategy: blue_green"
        )
    if tower.data_capture.enabled:
        raise ValueError(
            "serverless endpoints do not support data capture: set data_capture.enabled: false "
            "or use inference_mode: realtime"
        )
    if tower.network.in_vpc or tower.network.enable_network_isolation is True:
        raise ValueError(
            "serverless endpoints support neither VPC nor network isolation: remove network "
            "settings or use inference_mode: realtime"
        )


def _check_capacity(tower: Tower) -> None:
    low, high = scaling_bounds(tower)
    if low == 0 and tower.inference_mode is not InferenceMode.ASYNC:
        raise ValueError(
            "autoscaling.min_capacity 0 (scale to zero) is only for inference_mode async: "
            "set min_capacity to 1 or more"
        )
    if high < max(low, 1):
        raise ValueError(
            f"autoscaling.max_capacity ({high}) is below min_capacity ({low}): raise max_capacity"
        )
    if not low <= tower.initial_instance_count <= high:
        raise ValueError(
            f"initial_instance_count ({tower.initial_instance_count}) is outside autoscaling "
            f"min_capacity..max_capacity ({low}..{high}): change one of them"
        )


# Deployment guardrails, "Exclusions" (docs.aws.amazon.com/sagemaker/latest/dg/
# deployment-guardrails-exclusions.html): endpoints on Inf1 instances fall back to blue/green all
# at once with no baking period, whatever DeploymentConfig says; rolling deployments also exclude
# serverless endpoints (refused in _check_serverless). Asynchronous endpoints are not excluded.
_GUARDRAILS_EXCLUDED = re.compile(r"^ml\.inf1\.")
GUARDRAILS_EXCLUSIONS_PAGE = (
    "docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html"
)


def keeps_capacity_on_update(tower: Tower) -> bool:
    """True where an update keeps the variant's current instance count (the Endpoint's
    ``RetainAllVariantProperties``): instance variants with autoscaling whose floor is at least
    one instance. A scale-to-zero async variant may hold 0 instances when a rollout starts; it
    starts the new fleet with ``initial_instance_count`` instead, so the rollout has instances
    to bake (autoscaling scales it in again)."""
    if tower.inference_mode is InferenceMode.SERVERLESS or not tower.autoscaling.enabled:
        return False
    return scaling_bounds(tower)[0] >= 1


def rollout_fleet_size(tower: Tower) -> int:
    """The smallest fleet a rollout may start from: the autoscaling floor where the update keeps
    the current count (autoscaling may have scaled in to it), else ``initial_instance_count``."""
    if keeps_capacity_on_update(tower):
        return min(scaling_bounds(tower)[0], tower.initial_instance_count)
    return tower.initial_instance_count


def rollout_wait_seconds(rollout: Rollout) -> int:
    """The waits a rollout's ``max_execution_timeout_seconds`` must cover: one baking period
    (``wait_interval_seconds``) per traffic step or rolling batch, plus the blue/green
    ``termination_wait_seconds`` before the old fleet goes."""
    if rollout.strategy is RolloutStrategy.ROLLING:
        return math.ceil(100 / rollout.rolling_batch_percent) * rollout.wait_interval_seconds
    steps = 1
    if rollout.traffic is TrafficShift.LINEAR:
        steps = math.ceil(100 / rollout.linear_step_percent)
    return steps * rollout.wait_interval_seconds + rollout.termination_wait_seconds


def check_rollout(tower: Tower) -> None:
    """Rollout settings SageMaker can carry out for this tower's fleet; ValueError otherwise."""
    rollout = tower.rollout
    gradual = rollout.strategy is RolloutStrategy.ROLLING or rollout.traffic is not (
        TrafficShift.ALL_AT_ONCE
    )
    if gradual and _GUARDRAILS_EXCLUDED.match(tower.instance_type):
        raise ValueError(
            f"instance_type {tower.instance_type!r} (Inf1) is excluded from deployment guardrails: "
            "SageMaker ignores canary, linear and rolling settings and shifts all traffic at once "
            f"({GUARDRAILS_EXCLUSIONS_PAGE}); set rollout.strategy: blue_green with rollout.traffic: "
            "all_at_once, or use an Inf2 or GPU instance type"
        )
    # MaximumExecutionTimeoutInSeconds "should be larger than the total waiting time specified
    # in TerminationWaitInSeconds and WaitIntervalInSeconds" (BlueGreenUpdatePolicy,
    # docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html); a
    # rolling update bakes once per batch (API_RollingUpdatePolicy.html).
    waits = rollout_wait_seconds(rollout)
    if rollout.max_execution_timeout_seconds <= waits:
        raise ValueError(
            f"rollout.max_execution_timeout_seconds ({rollout.max_execution_timeout_seconds}) does "
            f"not exceed the rollout's waits ({waits} s: {_waits_text(rollout)}): the update would "
            f"time out and roll back; raise max_execution_timeout_seconds above {waits} "
            "(at most 28800) or shorten wait_interval_seconds/termination_wait_seconds"
        )
    if tower.inference_mode is InferenceMode.SERVERLESS:
        return  # no instance count: capacity sizes are SageMaker's to map onto concurrency
    fleet = rollout_fleet_size(tower)
    # Under autoscaling the floor is min_capacity, which defaults to initial_instance_count.
    floor_configured = tower.autoscaling.min_capacity is not None
    source = (
        "autoscaling.min_capacity"
        if keeps_capacity_on_update(tower) and floor_configured
        else "initial_instance_count"
    )
    for key, percent, most, rule in _capacity_sizes(rollout):
        if percent * fleet < 100:
            smallest = math.ceil(100 / fleet)
            raise_percent = f"raise rollout.{key} to {smallest}, " if smallest <= most else ""
            raise ValueError(
                f"rollout.{key} {percent} % of a fleet of {fleet} instance(s) ({source}) is "
                f"less than one instance ({rule}): {raise_percent}raise {source} to at least "
                f"{math.ceil(100 / percent)}, or use rollout.traffic: all_at_once"
                + (
                    " with strategy blue_green"
                    if rollout.strategy is RolloutStrategy.ROLLING
                    else ""
                )
            )


def _capacity_sizes(rollout: Rollout) -> list[tuple[str, int, int, str]]:
    """(key, percent, its largest value, AWS rule) of every capacity step the rollout takes."""
    if rollout.strategy is RolloutStrategy.ROLLING:
        sizes = [
            (
                "rolling_batch_percent",
                rollout.rolling_batch_percent,
                50,
                "a rolling batch is 5-50 % of the variant's instance count, API_RollingUpdatePolicy",
            )
        ]
        if rollout.rollback_batch_percent is not None:
            sizes.append(
                (
                    "rollback_batch_percent",
                    rollout.rollback_batch_percent,
                    100,
                    "RollbackMaximumBatchSize, API_RollingUpdatePolicy",
                )
            )
        return sizes
    if rollout.traffic is TrafficShift.CANARY:
        return [
            (
                "canary_percent",
                rollout.canary_percent,
                50,
                "the canary is at most 50 % of the variant's instance count, API_TrafficRoutingConfig",
            )
        ]
    if rollout.traffic is TrafficShift.LINEAR:
        return [
            (
                "linear_step_percent",
                rollout.linear_step_percent,
                50,
                "a linear step is 10-50 % of the green fleet, deployment-guardrails-blue-green-linear",
            )
        ]
    return []


def _waits_text(rollout: Rollout) -> str:
    if rollout.strategy is RolloutStrategy.ROLLING:
        batches = math.ceil(100 / rollout.rolling_batch_percent)
        return f"{batches} batches x wait_interval_seconds {rollout.wait_interval_seconds}"
    steps = (
        math.ceil(100 / rollout.linear_step_percent)
        if rollout.traffic is TrafficShift.LINEAR
        else 1
    )
    return (
        f"{steps} x wait_interval_seconds {rollout.wait_interval_seconds} + "
        f"termination_wait_seconds {rollout.termination_wait_seconds}"
    )


def scaling_bounds(tower: Tower) -> tuple[int, int]:
    """(min, max) instance count of the tower's autoscaling, defaults resolved."""
    scaling = tower.autoscaling
    low = tower.initial_instance_count if scaling.min_capacity is None else scaling.min_capacity
    high = scaling.max_capacity if scaling.max_capacity is not None else min(100, max(2, 2 * low))
    return low, high
