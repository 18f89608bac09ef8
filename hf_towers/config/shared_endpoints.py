"""Shared endpoints: several towers on one endpoint's instances, each an inference component.

``shared_endpoints.<name>`` names the towers it hosts, the instance type and the managed instance
scaling of its one variant (minimum 0: the endpoint scales to zero instances). Each member tower
keeps its own Model, role and code, and sets ``compute`` (its reservation per copy) and
``copies`` (copy count and its autoscaling). The rules that involve several towers live in
``check_shared_endpoints``; those of one member tower in ``check_component`` (called by the
tower's own validator, so messages carry the tower's key path).

AWS pages behind the rules:

* "Scale an endpoint to zero instances" (docs.aws.amazon.com/sagemaker/latest/dg/
  endpoint-auto-scaling-zero-instances.html): only an endpoint that hosts inference components
  scales to and from zero, with ``ManagedInstanceScaling.MinInstanceCount`` 0; each component
  registers ``sagemaker:inference-component:DesiredCopyCount`` with minimum 0, and a step
  scaling policy on an alarm over ``NoCapacityInvocationFailures`` brings the first copy back.
* ``ComputeResourceRequirements`` (docs.aws.amazon.com/sagemaker/latest/APIReference/
  API_InferenceComponentComputeResourceRequirements.html): accelerators at least 1 when given
  (two components never share one accelerator device), CPU cores at least 0.25, memory at least
  128 MB (the same bounds as the CloudFormation schema that cfn-lint ships).
* The Service Authorization Reference for SageMaker (docs.aws.amazon.com/service-authorization/
  latest/reference/list_amazonsagemaker.html): ``InvokeEndpoint`` and
  ``InvokeEndpointWithResponseStream`` take an ``inference-component`` resource,
  ``InvokeEndpointAsync`` does not (no async component), and the runtime's
  ``InvokeEndpointAsync`` has no ``InferenceComponentName`` parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from hf_towers.config.base import NAME_PATTERN, Strict
from hf_towers.config.instances import instance_capacity, instance_table
from hf_towers.config.operations import InferenceMode, RolloutStrategy, is_accelerated

if TYPE_CHECKING:  # pragma: no cover - typing only
    from hf_towers.config.models import Tower

ENDPOINT_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
ZERO_INSTANCES_PAGE = (
    "docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html"
)


class RoutingStrategy(StrEnum):
    """The variant's ``RoutingConfig.RoutingStrategy`` (API_ProductionVariantRoutingConfig)."""

    LEAST_OUTSTANDING_REQUESTS = "least_outstanding_requests"
    RANDOM = "random"


class ManagedInstanceScaling(Strict):
    """The variant's ``ManagedInstanceScaling``: SageMaker adds instances when copies do not fit
    and removes idle ones, within these bounds."""

    min_instance_count: int = Field(
        default=0, ge=0, le=100, description="0: the endpoint scales to zero instances."
    )
    max_instance_count: int = Field(default=1, ge=1, le=100)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.max_instance_count < self.min_instance_count:
            raise ValueError(
                f"managed_instance_scaling.max_instance_count ({self.max_instance_count}) is below "
                f"min_instance_count ({self.min_instance_count}): raise max_instance_count"
            )
        return self


class SharedEndpoint(Strict):
    """One endpoint (stack ``<project>-<env>-shared-<name>``) whose towers are inference
    components of its one variant."""

    towers: list[Annotated[str, StringConstraints(pattern=NAME_PATTERN)]] = Field(
        min_length=1, description="Towers of this file it hosts, each in one shared endpoint."
    )
    instance_type: Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] = (
        "ml.g5.xlarge"
    )
    endpoint_name: Annotated[str, StringConstraints(pattern=ENDPOINT_NAME_PATTERN)] | None = Field(
        default=None, description="Default: <project>-<environment>-<name>."
    )
    routing: RoutingStrategy = RoutingStrategy.LEAST_OUTSTANDING_REQUESTS
    managed_instance_scaling: ManagedInstanceScaling = Field(default_factory=ManagedInstanceScaling)
    initial_instance_count: int = Field(
        default=1, ge=1, le=100, description="Instances of the first deployment."
    )

    @model_validator(mode="after")
    def _rules(self) -> Self:
        duplicates = sorted({t for t in self.towers if self.towers.count(t) > 1})
        if duplicates:
            raise ValueError(f"towers lists {duplicates} twice: list each tower once")
        scaling = self.managed_instance_scaling
        if self.initial_instance_count > scaling.max_instance_count:
            raise ValueError(
                f"initial_instance_count ({self.initial_instance_count}) exceeds "
                f"managed_instance_scaling.max_instance_count ({scaling.max_instance_count}): "
                "lower it or raise max_instance_count"
            )
        if instance_capacity(self.instance_type) is None:
            known = ", ".join(instance_table())
            raise ValueError(
                f"instance_type {self.instance_type!r} is not in the capacity table "
                "hf_towers/recommend/data/instance_prices.json, which the reservation check "
                f"reads: use one of {known}, or add its row (vcpu, memory_gib, gpus) to the table"
            )
        return self


class Compute(Strict):
    """``ComputeResourceRequirements`` of one copy of a member tower."""

    accelerators: float | None = Field(
        default=None,
        ge=1,
        description="NumberOfAcceleratorDevicesRequired (GPUs); none: the copy runs on CPU cores.",
    )
    cpu_cores: float = Field(default=1.0, ge=0.25, description="NumberOfCpuCoresRequired.")
    min_memory_mib: int = Field(default=1024, ge=128, description="MinMemoryRequiredInMb.")


class Copies(Strict):
    """Copy count of a member tower's inference component and its autoscaling (target tracking
    on ``SageMakerInferenceComponentInvocationsPerCopy``; with ``min: 0`` a step policy on
    ``NoCapacityInvocationFailures`` adds the first copy back)."""

    initial: int = Field(default=1, ge=0, le=1000, description="RuntimeConfig.CopyCount.")
    min: int = Field(default=0, ge=0, le=1000, description="0: the component scales to zero.")
    max: int = Field(default=2, ge=1, le=1000)
    invocations_per_copy: int = Field(
        default=4, ge=1, le=100_000, description="Target invocations per copy per minute."
    )

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if not self.min <= self.initial <= self.max:
            raise ValueError(
                f"copies.initial ({self.initial}) is outside copies.min..copies.max "
                f"({self.min}..{self.max}): change one of them"
            )
        return self


def check_component(tower: Tower) -> None:
    """Rules of one member tower (one with ``compute``); ValueError naming the key and the fix.

    A member is placed on the shared endpoint's variant, so the keys that size or shape an
    endpoint of its own are refused rather than silently ignored.
    """
    explicit = tower.model_fields_set
    where = "shared_endpoints.<name>"
    if tower.inference_mode is InferenceMode.SERVERLESS:
        raise ValueError(
            "a shared-endpoint tower is an inference component on the instances of the shared "
            "endpoint's variant; a serverless variant has no instances to place it on: remove "
            "inference_mode: serverless, or take the tower out of shared_endpoints"
        )
    if tower.inference_mode is InferenceMode.ASYNC:
        raise ValueError(
            "inference components serve InvokeEndpoint only: InvokeEndpointAsync has no "
            "inference-component resource or InferenceComponentName (Service Authorization "
            "Reference, list_amazonsagemaker.html): remove inference_mode: async, or take the "
            "tower out of shared_endpoints"
        )
    if not tower.deploy_endpoint:
        raise ValueError(
            "deploy_endpoint: false creates the Model only, but a shared-endpoint tower is "
            "deployed as an inference component: remove deploy_endpoint, or take the tower out "
            "of shared_endpoints"
        )
    for key, owner in (
        ("instance_type", f"{where}.instance_type"),
        ("initial_instance_count", f"{where}.initial_instance_count"),
        ("endpoint_name", f"{where}.endpoint_name"),
        ("autoscaling", "copies (copy-count autoscaling)"),
    ):
        if key in explicit:
            raise ValueError(
                f"{key} sizes an endpoint of the tower's own, but this tower is an inference "
                f"component of a shared endpoint: remove {key} and set {owner} instead"
            )
    if tower.data_capture.enabled:
        raise ValueError(
            "data capture is an EndpointConfig setting (DataCaptureConfig), shared by every "
            "component of the endpoint, not a setting of one inference component: set "
            "data_capture.enabled: false, or give the tower its own endpoint"
        )
    if tower.network.in_vpc:
        # Endpoints that host components take VpcConfig on the EndpointConfig (shared by all
        # components; API_CreateEndpointConfig), which this product does not set.
        raise ValueError(
            "network.subnet_ids places one Model's containers in a VPC, but a shared "
            "endpoint's VPC is an EndpointConfig setting shared by every component, which "
            "shared_endpoints does not offer: remove network.subnet_ids/security_group_ids, or "
            "give the tower its own endpoint"
        )
    rollout = tower.rollout
    blue_green_keys = {
        "traffic",
        "canary_percent",
        "linear_step_percent",
        "termination_wait_seconds",
    }
    if (
        "strategy" in rollout.model_fields_set and rollout.strategy is RolloutStrategy.BLUE_GREEN
    ) or blue_green_keys & rollout.model_fields_set:
        raise ValueError(
            "an inference component updates by rolling batches of copies only "
            "(InferenceComponentDeploymentConfig has RollingUpdatePolicy, no blue/green): set "
            "rollout.strategy: rolling and remove traffic, canary_percent, linear_step_percent "
            "and termination_wait_seconds"
        )
    waits = rollout.wait_interval_seconds
    if rollout.max_execution_timeout_seconds <= waits:
        raise ValueError(
            f"rollout.max_execution_timeout_seconds ({rollout.max_execution_timeout_seconds}) does "
            f"not exceed rollout.wait_interval_seconds ({waits}): raise it (at most 28800)"
        )
    if tower.rollout.auto_rollback and not tower.monitoring.alarms:
        raise ValueError(
            "rollout.auto_rollback rolls back on the monitoring alarms: set monitoring.alarms: true "
            "or rollout.auto_rollback: false"
        )


def check_shared_endpoints(
    shared: Mapping[str, SharedEndpoint], towers: Mapping[str, Tower] | None
) -> None:
    """Rules across the file: real towers, one endpoint each, reservations that fit, and
    compute/copies exactly on the members."""
    if towers is None:  # the towers failed validation; their errors are reported
        return
    owner: dict[str, str] = {}
    for name, endpoint in shared.items():
        unknown = [t for t in endpoint.towers if t not in towers]
        if unknown:
            raise ValueError(
                f"shared_endpoints.{name}.towers names {unknown}, not towers of this file "
                f"(these are {sorted(towers)}): list only those"
            )
        for member_name in endpoint.towers:
            if member_name in owner:
                raise ValueError(
                    f"tower {member_name!r} is in shared_endpoints.{owner[member_name]} and "
                    f"shared_endpoints.{name}: a tower belongs to at most one shared endpoint"
                )
            owner[member_name] = name
    for tower_name, tower in towers.items():
        member = tower_name in owner
        if member and tower.compute is None:
            raise ValueError(
                f"towers.{tower_name} is in shared_endpoints.{owner[tower_name]} but has no "
                "compute: set towers.<tower>.compute (accelerators, cpu_cores, min_memory_mib), "
                "the reservation of one copy"
            )
        if not member and (tower.compute is not None or tower.copies is not None):
            key = "compute" if tower.compute is not None else "copies"
            raise ValueError(
                f"towers.{tower_name}.{key} is only for towers of a shared endpoint: add "
                f"{tower_name!r} to a shared_endpoints.<name>.towers list, or remove {key}"
            )
    for name, endpoint in shared.items():
        _check_fit(name, endpoint, towers)


def copies_of(tower: Tower) -> Copies:
    """The tower's copies, defaults resolved."""
    return tower.copies if tower.copies is not None else Copies()


def _check_fit(name: str, endpoint: SharedEndpoint, towers: Mapping[str, Tower]) -> None:
    capacity = instance_capacity(endpoint.instance_type)
    assert capacity is not None  # SharedEndpoint refuses unknown types
    instances = endpoint.managed_instance_scaling.max_instance_count
    where = f"shared_endpoints.{name}"
    total_accelerators = 0.0
    total_cores = 0.0
    total_memory = 0
    for tower_name in endpoint.towers:
        tower = towers[tower_name]
        compute = tower.compute
        assert compute is not None  # checked above
        accelerators = compute.accelerators or 0
        if tower.image == "build" and is_accelerated(endpoint.instance_type):
            raise ValueError(
                f"towers.{tower_name}.image: build is CPU-only (torch's CPU wheel) but "
                f"{where}.instance_type {endpoint.instance_type} has accelerators: use image: dlc "
                "or a CPU instance type"
            )
        if accelerators and capacity.gpus == 0:
            raise ValueError(
                f"towers.{tower_name}.compute.accelerators is {compute.accelerators}, but "
                f"{where}.instance_type {endpoint.instance_type} has no accelerators: remove "
                "accelerators or use a GPU instance type such as ml.g5.xlarge"
            )
        one_copy = [
            ("accelerators", accelerators, capacity.gpus),
            ("cpu_cores", compute.cpu_cores, capacity.vcpu),
            ("min_memory_mib", compute.min_memory_mib, capacity.memory_mib),
        ]
        for key, wanted, offered in one_copy:
            if wanted > offered:
                raise ValueError(
                    f"towers.{tower_name}.compute.{key} ({wanted:g}) exceeds one "
                    f"{endpoint.instance_type} ({offered:g}): lower it or use a larger "
                    f"{where}.instance_type"
                )
        copies = copies_of(tower).max
        total_accelerators += accelerators * copies
        total_cores += compute.cpu_cores * copies
        total_memory += compute.min_memory_mib * copies
    # Copies are packed onto the variant's instances; at most max_instance_count of them.
    for key, total, offered in (
        ("accelerators", total_accelerators, capacity.gpus * instances),
        ("cpu_cores", total_cores, capacity.vcpu * instances),
        ("min_memory_mib", total_memory, capacity.memory_mib * instances),
    ):
        if total > offered:
            raise ValueError(
                f"{where}: the towers' reservations at copies.max need {total:g} {key} "
                f"(sum of compute.{key} x copies.max over {endpoint.towers}), but "
                f"{instances} x {endpoint.instance_type} (managed_instance_scaling."
                f"max_instance_count) offer {offered:g}: lower compute or copies.max, raise "
                "max_instance_count, or use a larger instance_type"
            )
    if endpoint.managed_instance_scaling.min_instance_count == 0:
        pinned = [t for t in endpoint.towers if copies_of(towers[t]).min > 0]
        if pinned:
            raise ValueError(
                f"{where}.managed_instance_scaling.min_instance_count is 0 (scale to zero), but "
                f"{pinned} keep copies.min above 0, so an instance always stays: set copies.min: "
                f"0 on them, or min_instance_count: 1 ({ZERO_INSTANCES_PAGE})"
            )
