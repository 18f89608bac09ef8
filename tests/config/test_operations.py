"""Operations config: safe defaults, and every invalid combination rejected naming key and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hf_towers.config import parse_config
from hf_towers.config.loader import ConfigError
from hf_towers.config.models import Tower, installs_packages
from hf_towers.config.operations import (
    InferenceMode,
    RolloutStrategy,
    TrafficShift,
    is_accelerated,
    keeps_capacity_on_update,
    rollout_fleet_size,
    scaling_bounds,
)
from tests.synth_helpers import default_data

CPU = {"kind": "text", "model_uri": "s3://bucket-a/model.tar.gz", "instance_type": "ml.m5.xlarge"}


def _tower(**keys: Any) -> Tower:
    return Tower.model_validate({**CPU, **keys})


def _error(**keys: Any) -> str:
    data = default_data()
    data["towers"] = {"text": {**CPU, **keys}}
    with pytest.raises(ConfigError) as info:
        parse_config(data, "config/x.yaml")
    return str(info.value)


def test_defaults_are_real_time_with_autoscaling_alarms_and_blue_green_rollback() -> None:
    tower = _tower()
    assert tower.inference_mode is InferenceMode.REALTIME
    assert tower.autoscaling.enabled and scaling_bounds(tower) == (1, 2)
    assert tower.rollout.strategy is RolloutStrategy.BLUE_GREEN
    assert tower.rollout.traffic is TrafficShift.ALL_AT_ONCE
    assert tower.rollout.auto_rollback and tower.monitoring.alarms and tower.monitoring.dashboard
    assert not tower.data_capture.enabled and not tower.model_monitor.enabled
    assert not tower.network.in_vpc and tower.network.enable_network_isolation is None
    assert tower.network_isolation  # model_code/text's requirements.txt installs nothing


def test_scaling_bounds_follow_instance_count_unless_configured() -> None:
    assert scaling_bounds(_tower(initial_instance_count=3)) == (3, 6)
    assert scaling_bounds(_tower(initial_instance_count=60)) == (60, 100)
    assert scaling_bounds(
        _tower(autoscaling={"min_capacity": 2, "max_capacity": 9}, initial_instance_count=2)
    ) == (2, 9)


def test_serverless_with_default_autoscaling_is_valid() -> None:
    tower = _tower(inference_mode="serverless", serverless={"memory_size_mb": 6144})
    assert tower.serverless.memory_size_mb == 6144 and tower.serverless.max_concurrency == 5


def test_async_prefix_defaults_are_siblings_of_the_output() -> None:
    tower = _tower(inference_mode="async", async_inference={"output_prefix": "async/t/out"})
    assert tower.async_inference.effective_failure_prefix == "async/t/out-failures"
    assert tower.async_inference.effective_input_prefix == "async/t/out-requests"


def test_accelerated_instance_types() -> None:
    assert [
        is_accelerated(t)
        for t in (
            "ml.g5.xlarge",
            "ml.p4d.24xlarge",
            "ml.inf2.xlarge",
            "ml.m5.xlarge",
            "ml.c7i.large",
        )
    ] == [True, True, True, False, False]


INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "serverless-autoscaling": (
        {"inference_mode": "serverless", "autoscaling": {"enabled": True}},
        "serverless endpoints scale themselves (serverless.max_concurrency): set autoscaling.enabled: false",
    ),
    "serverless-gpu": (
        {"inference_mode": "serverless", "instance_type": "ml.g5.xlarge"},
        "serverless endpoints run on CPU only, but instance_type is 'ml.g5.xlarge': set instance_type to a CPU type",
    ),
    "async-without-output": (
        {"inference_mode": "async"},
        "inference_mode async needs an output: set async_inference.output_prefix",
    ),
    "async-settings-in-realtime": (
        {"async_inference": {"output_prefix": "a/b"}},
        "async_inference settings without inference_mode: async",
    ),
    "serverless-settings-in-realtime": (
        {"serverless": {"max_concurrency": 3}},
        "serverless settings without inference_mode: serverless",
    ),
    "serverless-rolling": (
        {"inference_mode": "serverless", "rollout": {"strategy": "rolling"}},
        "serverless endpoints cannot do rolling updates: set rollout.strategy: blue_green",
    ),
    "serverless-capture": (
        {"inference_mode": "serverless", "data_capture": {"enabled": True}},
        "serverless endpoints do not support data capture: set data_capture.enabled: false",
    ),
    "serverless-vpc": (
        {"inference_mode": "serverless", "network": {"enable_network_isolation": True}},
        "serverless endpoints support neither VPC nor network isolation",
    ),
    "provisioned-above-max": (
        {
            "inference_mode": "serverless",
            "serverless": {"max_concurrency": 2, "provisioned_concurrency": 3},
        },
        "serverless.provisioned_concurrency (3) exceeds serverless.max_concurrency (2)",
    ),
    "rolling-with-canary": (
        {"rollout": {"strategy": "rolling", "traffic": "canary"}},
        "rollout.traffic 'canary' is a blue/green traffic shift: use strategy blue_green",
    ),
    "max-below-min": (
        {"initial_instance_count": 3, "autoscaling": {"min_capacity": 3, "max_capacity": 2}},
        "autoscaling.max_capacity (2) is below min_capacity (3): raise max_capacity",
    ),
    "zero-in-realtime": (
        {"autoscaling": {"min_capacity": 0}},
        "autoscaling.min_capacity 0 (scale to zero) is only for inference_mode async",
    ),
    "count-outside-bounds": (
        {"initial_instance_count": 1, "autoscaling": {"min_capacity": 2, "max_capacity": 4}},
        "initial_instance_count (1) is outside autoscaling min_capacity..max_capacity (2..4)",
    ),
    "rollback-without-alarms": (
        {"monitoring": {"alarms": False}},
        "rollout.auto_rollback rolls back on the monitoring alarms: set monitoring.alarms: true",
    ),
    "monitor-without-capture": (
        {
            "model_monitor": {
                "baseline_constraints_uri": "s3://b-1/c.json",
                "baseline_statistics_uri": "s3://b-1/s.json",
            }
        },
        "model_monitor analyses captured requests: set data_capture.enabled: true",
    ),
    "monitor-one-baseline": (
        {"model_monitor": {"baseline_constraints_uri": "s3://b-1/c.json"}},
        "model_monitor needs both baseline_constraints_uri and baseline_statistics_uri",
    ),
    "monitor-bad-schedule": (
        {"model_monitor": {"schedule": "hourly"}},
        "model_monitor.schedule 'hourly' is not a schedule expression",
    ),
    "subnets-without-groups": (
        {"network": {"subnet_ids": ["subnet-0123456789abcdef0"]}},
        "network needs both subnet_ids and security_group_ids",
    ),
    # Rollouts SageMaker cannot carry out for the fleet (API_TrafficRoutingConfig,
    # API_RollingUpdatePolicy, API_BlueGreenUpdatePolicy, deployment guardrails exclusions).
    "canary-below-one-instance": (
        {"rollout": {"traffic": "canary", "canary_percent": 25}, "initial_instance_count": 2},
        "rollout.canary_percent 25 % of a fleet of 2 instance(s) (initial_instance_count) is "
        "less than one instance (the canary is at most 50 % of the variant's instance count, "
        "API_TrafficRoutingConfig): raise rollout.canary_percent to 50, raise "
        "initial_instance_count to at least 4, or use rollout.traffic: all_at_once",
    ),
    "canary-on-one-instance": (
        {"rollout": {"traffic": "canary"}, "autoscaling": {"enabled": False}},
        "rollout.canary_percent 10 % of a fleet of 1 instance(s) (initial_instance_count) is "
        "less than one instance (the canary is at most 50 % of the variant's instance count, "
        "API_TrafficRoutingConfig): raise initial_instance_count to at least 10",
    ),
    "canary-autoscaled-floor": (
        {
            "rollout": {"traffic": "canary", "canary_percent": 50},
            "initial_instance_count": 2,
            "autoscaling": {"min_capacity": 1, "max_capacity": 4},
        },
        "rollout.canary_percent 50 % of a fleet of 1 instance(s) (autoscaling.min_capacity)",
    ),
    "linear-below-one-instance": (
        {"rollout": {"traffic": "linear", "linear_step_percent": 20}, "initial_instance_count": 3},
        "rollout.linear_step_percent 20 % of a fleet of 3 instance(s) (initial_instance_count) "
        "is less than one instance (a linear step is 10-50 % of the green fleet",
    ),
    "rolling-on-one-instance": (
        {"rollout": {"strategy": "rolling", "rolling_batch_percent": 50}},
        "rollout.rolling_batch_percent 50 % of a fleet of 1 instance(s) (initial_instance_count) "
        "is less than one instance (a rolling batch is 5-50 % of the variant's instance count, "
        "API_RollingUpdatePolicy): raise initial_instance_count to at least 2, or use "
        "rollout.traffic: all_at_once with strategy blue_green",
    ),
    "rollback-batch-below-one-instance": (
        {
            "rollout": {
                "strategy": "rolling",
                "rolling_batch_percent": 50,
                "rollback_batch_percent": 25,
            },
            "initial_instance_count": 2,
        },
        "rollout.rollback_batch_percent 25 % of a fleet of 2 instance(s)",
    ),
    "timeout-below-waits": (
        {
            "rollout": {
                "wait_interval_seconds": 600,
                "termination_wait_seconds": 300,
                "max_execution_timeout_seconds": 900,
            }
        },
        "rollout.max_execution_timeout_seconds (900) does not exceed the rollout's waits "
        "(900 s: 1 x wait_interval_seconds 600 + termination_wait_seconds 300): the update would "
        "time out and roll back; raise max_execution_timeout_seconds above 900",
    ),
    "timeout-below-linear-steps": (
        {
            "initial_instance_count": 10,
            "rollout": {
                "traffic": "linear",
                "linear_step_percent": 10,
                "wait_interval_seconds": 600,
            },
        },
        "(6300 s: 10 x wait_interval_seconds 600 + termination_wait_seconds 300)",
    ),
    "timeout-below-rolling-batches": (
        {
            "initial_instance_count": 20,
            "rollout": {
                "strategy": "rolling",
                "rolling_batch_percent": 5,
                "wait_interval_seconds": 300,
                "max_execution_timeout_seconds": 6000,
            },
        },
        "(6000 s: 20 batches x wait_interval_seconds 300)",
    ),
    "inf1-canary": (
        {
            "instance_type": "ml.inf1.xlarge",
            "initial_instance_count": 2,
            "rollout": {"traffic": "canary", "canary_percent": 50},
        },
        "instance_type 'ml.inf1.xlarge' (Inf1) is excluded from deployment guardrails: SageMaker "
        "ignores canary, linear and rolling settings and shifts all traffic at once "
        "(docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html)",
    ),
    "capture-nothing": (
        {"data_capture": {"enabled": True, "capture_input": False, "capture_output": False}},
        "data_capture captures nothing",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_combination_is_rejected_with_key_and_fix(case: str) -> None:
    keys, expected = INVALID[case]
    message = _error(**keys)
    assert "config/x.yaml: towers.text" in message
    assert expected in message


@pytest.mark.parametrize(
    ("keys", "path"),
    [
        (
            {"inference_mode": "serverless", "serverless": {"memory_size_mb": 1500}},
            "towers.text.serverless.memory_size_mb = 1500",
        ),
        ({"inference_mode": "batch"}, "towers.text.inference_mode = 'batch'"),
        ({"rollout": {"canary_percent": 80}}, "towers.text.rollout.canary_percent = 80"),
        (
            {"rollout": {"traffic": "linear", "linear_step_percent": 5}},
            "towers.text.rollout.linear_step_percent = 5",
        ),
        (
            {"data_capture": {"sampling_percentage": 0}},
            "towers.text.data_capture.sampling_percentage = 0",
        ),
        (
            {"network": {"subnet_ids": ["vpc-1"], "security_group_ids": ["sg-0123456789abcdef0"]}},
            "towers.text.network.subnet_ids.0 = 'vpc-1'",
        ),
        ({"autoscaling": {"cooldown": 5}}, "towers.text.autoscaling.cooldown: unknown key"),
    ],
)
def test_bad_values_name_their_key(keys: dict[str, Any], path: str) -> None:
    assert path in _error(**keys)


@pytest.mark.parametrize(
    "keys",
    [
        # exactly one instance per step, and waits just under the timeout
        {"rollout": {"traffic": "canary", "canary_percent": 50}, "initial_instance_count": 2},
        {"rollout": {"traffic": "linear", "linear_step_percent": 25}, "initial_instance_count": 4},
        {
            "rollout": {"strategy": "rolling", "rolling_batch_percent": 50},
            "initial_instance_count": 2,
        },
        {
            "rollout": {
                "wait_interval_seconds": 600,
                "termination_wait_seconds": 300,
                "max_execution_timeout_seconds": 901,
            }
        },
        # serverless has no instance count; Inf1 all at once is what SageMaker does anyway
        {"inference_mode": "serverless", "rollout": {"traffic": "canary"}},
        {"instance_type": "ml.inf1.xlarge"},
        # a model without endpoint has no rollout to check
        {"deploy_endpoint": False, "rollout": {"traffic": "canary"}},
    ],
)
def test_feasible_rollouts_are_accepted(keys: dict[str, Any]) -> None:
    _tower(**keys)


def test_scale_to_zero_rollouts_start_from_the_initial_count() -> None:
    tower = _tower(
        inference_mode="async",
        async_inference={"output_prefix": "a/out"},
        initial_instance_count=2,
        autoscaling={"min_capacity": 0, "max_capacity": 3},
        rollout={"traffic": "canary", "canary_percent": 50},
    )
    assert not keeps_capacity_on_update(tower) and rollout_fleet_size(tower) == 2
    assert keeps_capacity_on_update(_tower()) and rollout_fleet_size(_tower()) == 1
    assert not keeps_capacity_on_update(_tower(autoscaling={"enabled": False}))
    assert not keeps_capacity_on_update(_tower(inference_mode="serverless"))


@pytest.mark.parametrize(
    ("keys", "isolated"),
    [
        ({}, True),  # model_code/text: requirements.txt has comments only
        ({"kind": "task", "hf_task": "question-answering"}, True),
        ({"network": {"enable_network_isolation": False}}, False),  # the opt-out
        ({"network": {"enable_network_isolation": True}}, True),
        ({"environment": {"HF_MODEL_ID": "bert-base-uncased"}}, False),  # downloads from the Hub
        ({"inference_mode": "serverless"}, False),  # serverless supports no isolation
        ({"code_dir": "tests/config/fixtures/installs"}, False),
        (
            {
                "code_dir": "tests/config/fixtures/installs",
                "network": {"enable_network_isolation": True},
            },
            True,
        ),
    ],
)
def test_network_isolation_default_follows_what_the_container_needs(
    keys: dict[str, Any], isolated: bool
) -> None:
    assert _tower(**keys).network_isolation is isolated


def test_installs_packages_reads_requirement_lines_not_comments(tmp_path: Path) -> None:
    assert not installs_packages(tmp_path)  # no requirements.txt
    (tmp_path / "requirements.txt").write_text("# nothing\n\n   # indented comment\n")
    assert not installs_packages(tmp_path)
    (tmp_path / "requirements.txt").write_text("# pinned\nopen_clip_torch==2.24.0  # model\n")
    assert installs_packages(tmp_path)
    (tmp_path / "requirements.txt").write_text("-r more.txt\n")
    assert installs_packages(tmp_path)
