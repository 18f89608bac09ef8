"""``shared_endpoints:`` and per-tower ``compute``/``copies`` (hf_towers/config/shared_endpoints.py):
derived names, and every rule a user can break rejected naming file, key and fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from hf_towers.config import parse_config
from hf_towers.config.instances import TABLE, instance_capacity, instance_table
from hf_towers.config.loader import ConfigError
from hf_towers.config.models import EnvironmentConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "shared-gpu.yaml"


def _data() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))


def _config(data: dict[str, Any]) -> EnvironmentConfig:
    return parse_config(data, "config/x.yaml")


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "config/x.yaml")
    return str(info.value)


def test_the_example_shares_one_gpu_endpoint_that_scales_to_zero() -> None:
    config = _config(_data())
    assert config.shared_endpoint_of("vision") == "gpu"
    assert config.shared_endpoint_of("text") == "gpu"
    assert config.shared_endpoint_name("gpu") == "hf-towers-shared-gpu"
    assert config.shared_stack_name("gpu") == "hf-towers-shared-shared-gpu"
    # Both towers are served by the shared endpoint, each through its own component.
    assert config.endpoint_name("vision") == config.endpoint_name("text") == "hf-towers-shared-gpu"
    assert config.endpoint_names == ["hf-towers-shared-gpu"]
    assert config.inference_component_name("vision") == "hf-towers-shared-vision"
    assert config.inference_component_name("text") == "hf-towers-shared-text"
    shared = config.shared_endpoints["gpu"]
    assert shared.managed_instance_scaling.min_instance_count == 0
    # The member's image follows the shared instance type (GPU), not the tower default.
    assert config.placed_tower("text").instance_type == "ml.g5.xlarge"


def test_the_default_config_has_no_shared_endpoint() -> None:
    data = _data()
    del data["shared_endpoints"]
    for tower in data["towers"].values():
        for key in ("compute", "copies", "rollout"):
            tower.pop(key, None)
    with pytest.raises(ConfigError, match=r"towers\.vision\.compute is only for"):
        _config({**_data(), "shared_endpoints": {}})
    config = _config(data)
    assert config.shared_endpoints == {}
    assert config.shared_endpoint_of("vision") is None
    assert config.inference_component_name("vision") is None
    assert config.endpoint_name("vision") == "hf-towers-shared-vision"


def test_configured_endpoint_name_and_defaults() -> None:
    data = _data()
    data["shared_endpoints"]["gpu"]["endpoint_name"] = "Team-Gpu"
    del data["towers"]["text"]["copies"]
    config = _config(data)
    assert config.endpoint_name("text") == "Team-Gpu"
    assert config.towers["text"].copies is None  # defaults: initial 1, min 0, max 2


def test_the_capacity_table_is_recommends() -> None:
    assert TABLE.name == "instance_prices.json" and TABLE.parent.parent.name == "recommend"
    g5 = instance_capacity("ml.g5.xlarge")
    assert g5 is not None
    assert (g5.vcpu, g5.memory_mib, g5.gpus) == (4, 16384, 1)
    assert instance_capacity("ml.nope.xlarge") is None
    assert "ml.m5.xlarge" in instance_table()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["shared_endpoints"]["gpu"]["towers"].append("nope"),
            "config/x.yaml: shared_endpoints: shared_endpoints.gpu.towers names ['nope'], not "
            "towers of this file (these are ['text', 'vision']): list only those",
        ),
        (
            lambda d: d["shared_endpoints"].update(
                other={"towers": ["text"], "instance_type": "ml.m5.xlarge"}
            ),
            "tower 'text' is in shared_endpoints.gpu and shared_endpoints.other: a tower "
            "belongs to at most one shared endpoint",
        ),
        (
            lambda d: d["shared_endpoints"]["gpu"]["towers"].append("vision"),
            "towers lists ['vision'] twice: list each tower once",
        ),
        (
            lambda d: d["towers"]["text"].pop("compute"),
            "towers.text is in shared_endpoints.gpu but has no compute: set towers.<tower>.compute",
        ),
        (
            lambda d: d["shared_endpoints"]["gpu"]["towers"].remove("text"),
            "towers.text.compute is only for towers of a shared endpoint: add 'text' to a "
            "shared_endpoints.<name>.towers list, or remove compute",
        ),
        (
            lambda d: d["shared_endpoints"]["gpu"].update(instance_type="ml.z9.xlarge"),
            "instance_type 'ml.z9.xlarge' is not in the capacity table "
            "hf_towers/recommend/data/instance_prices.json, which the reservation check reads: "
            "use one of ml.t2.medium,",
        ),
        (
            lambda d: d["towers"]["text"]["compute"].update(accelerators=1),
            "shared_endpoints.gpu: the towers' reservations at copies.max need 3 accelerators "
            "(sum of compute.accelerators x copies.max over ['vision', 'text']), but 1 x "
            "ml.g5.xlarge (managed_instance_scaling.max_instance_count) offer 1",
        ),
        (
            lambda d: d["towers"]["text"]["compute"].update(min_memory_mib=8192),
            "need 24576 min_memory_mib",
        ),
        (
            lambda d: d["towers"]["vision"]["compute"].update(cpu_cores=8),
            "towers.vision.compute.cpu_cores (8) exceeds one ml.g5.xlarge (4): lower it or use "
            "a larger shared_endpoints.gpu.instance_type",
        ),
        (
            lambda d: d["shared_endpoints"]["gpu"].update(instance_type="ml.m5.xlarge"),
            "towers.vision.compute.accelerators is 1.0, but shared_endpoints.gpu.instance_type "
            "ml.m5.xlarge has no accelerators: remove accelerators or use a GPU instance type",
        ),
        (
            lambda d: d["towers"]["text"]["copies"].update(min=1, initial=1),
            "shared_endpoints.gpu.managed_instance_scaling.min_instance_count is 0 (scale to "
            "zero), but ['text'] keep copies.min above 0, so an instance always stays: set "
            "copies.min: 0 on them, or min_instance_count: 1",
        ),
        (
            lambda d: d["towers"]["text"].update(image="build"),
            "towers.text.image: build is CPU-only (torch's CPU wheel) but "
            "shared_endpoints.gpu.instance_type ml.g5.xlarge has accelerators",
        ),
        (
            lambda d: d["towers"].update(
                gpu={"kind": "text", "model_uri": "s3://bucket-a/m.tar.gz"}
            ),
            "two towers would share the endpoint name(s) ['hf-towers-shared-gpu']",
        ),
    ],
)
def test_cross_tower_rules(change: Any, expected: str) -> None:
    data = _data()
    change(data)
    assert expected in _error(data)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (
            {"inference_mode": "serverless"},
            "config/x.yaml: towers.text: a shared-endpoint tower is an inference component on "
            "the instances of the shared endpoint's variant; a serverless variant has no "
            "instances to place it on",
        ),
        (
            {"inference_mode": "async", "async_inference": {"output_prefix": "async/out"}},
            "inference components serve InvokeEndpoint only: InvokeEndpointAsync has no "
            "inference-component resource",
        ),
        ({"deploy_endpoint": False}, "deploy_endpoint: false creates the Model only"),
        (
            {"instance_type": "ml.m5.xlarge"},
            "instance_type sizes an endpoint of the tower's own, but this tower is an inference "
            "component of a shared endpoint: remove instance_type and set "
            "shared_endpoints.<name>.instance_type instead",
        ),
        (
            {"initial_instance_count": 2},
            "remove initial_instance_count and set shared_endpoints.<name>.initial_instance_count",
        ),
        ({"endpoint_name": "mine"}, "remove endpoint_name and set shared_endpoints.<name>."),
        (
            {"autoscaling": {"max_capacity": 3}},
            "remove autoscaling and set copies (copy-count autoscaling) instead",
        ),
        (
            {"data_capture": {"enabled": True}},
            "data capture is an EndpointConfig setting (DataCaptureConfig), shared by every "
            "component of the endpoint",
        ),
        (
            {
                "network": {
                    "subnet_ids": ["subnet-0123456789abcdef0"],
                    "security_group_ids": ["sg-0123456789abcdef0"],
                }
            },
            "a shared endpoint's VPC is an EndpointConfig setting shared by every component",
        ),
        (
            {"rollout": {"strategy": "blue_green"}},
            "an inference component updates by rolling batches of copies only",
        ),
        (
            {"rollout": {"strategy": "rolling", "termination_wait_seconds": 60}},
            "remove traffic, canary_percent, linear_step_percent and termination_wait_seconds",
        ),
        (
            {"rollout": {"wait_interval_seconds": 900, "max_execution_timeout_seconds": 600}},
            "rollout.max_execution_timeout_seconds (600) does not exceed "
            "rollout.wait_interval_seconds (900)",
        ),
        (
            {"monitoring": {"alarms": False}},
            "rollout.auto_rollback rolls back on the monitoring alarms",
        ),
        (
            {"copies": {"initial": 3, "min": 0, "max": 2}},
            "copies.initial (3) is outside copies.min..copies.max (0..2)",
        ),
        ({"compute": {"accelerators": 0.5}}, "towers.text.compute.accelerators = 0.5"),
        ({"compute": {"cpu_cores": 0.1}}, "towers.text.compute.cpu_cores = 0.1"),
        ({"compute": {"min_memory_mib": 64}}, "towers.text.compute.min_memory_mib = 64"),
    ],
)
def test_member_tower_rules(keys: dict[str, Any], expected: str) -> None:
    data = _data()
    data["towers"]["text"].update(keys)
    assert expected in _error(data)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (
            {"managed_instance_scaling": {"min_instance_count": 2, "max_instance_count": 1}},
            "managed_instance_scaling.max_instance_count (1) is below min_instance_count (2)",
        ),
        (
            {"initial_instance_count": 2},
            "initial_instance_count (2) exceeds managed_instance_scaling.max_instance_count (1)",
        ),
        ({"towers": []}, "shared_endpoints.gpu.towers = []"),
        ({"routing": "round_robin"}, "shared_endpoints.gpu.routing = 'round_robin'"),
        ({"endpoint_name": "-bad"}, "shared_endpoints.gpu.endpoint_name = '-bad'"),
    ],
)
def test_shared_endpoint_rules(keys: dict[str, Any], expected: str) -> None:
    data = _data()
    data["shared_endpoints"]["gpu"].update(keys)
    assert expected in _error(data)


def test_a_member_with_copies_that_never_reach_zero_needs_a_floor_of_instances() -> None:
    data = _data()
    data["towers"]["text"]["copies"] = {"initial": 1, "min": 1, "max": 2}
    data["shared_endpoints"]["gpu"]["managed_instance_scaling"]["min_instance_count"] = 1
    config = _config(data)
    assert config.towers["text"].copies is not None
    assert config.towers["text"].copies.min == 1


def test_reservations_count_every_instance_up_to_the_maximum() -> None:
    data = _data()
    # Two GPU copies on a one-GPU type fit on two instances, not on one.
    data["towers"]["vision"]["copies"] = {"initial": 1, "min": 0, "max": 2}
    assert "need 2 accelerators" in _error(data)
    data["shared_endpoints"]["gpu"]["managed_instance_scaling"]["max_instance_count"] = 2
    assert _config(data).shared_endpoints["gpu"].managed_instance_scaling.max_instance_count == 2
