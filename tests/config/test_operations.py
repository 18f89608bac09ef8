"""Operations config: safe defaults, and every invalid combination rejected naming key and fix."""

from __future__ import annotations

from typing import Any

import pytest

from hf_towers.config import parse_config
from hf_towers.config.loader import ConfigError
from hf_towers.config.models import Tower
from hf_towers.config.operations import (
    InferenceMode,
    RolloutStrategy,
    TrafficShift,
    is_accelerated,
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
    assert not tower.network.in_vpc and not tower.network.enable_network_isolation


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
