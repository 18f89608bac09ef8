"""The comparison's input from an environment file: default reservations, the shared_endpoints
shape, towers left out, and file/key/value/fix messages for unusable keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hf_towers.config.loader import ConfigError
from hf_towers.config.models import PROJECT_ROOT
from hf_towers.recommend.from_config import DEFAULT_MEMORY_MIB, needs_from_file

DEFAULT = PROJECT_ROOT / "config" / "default.yaml"


def default_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT.read_text(encoding="utf-8"))
    return data


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def shared(data: dict[str, Any]) -> dict[str, Any]:
    """The shape of the issue's example: vision + text on one GPU endpoint scaling to zero."""
    data["shared_endpoints"] = {
        "gpu": {
            "towers": ["vision", "text"],
            "instance_type": "ml.g5.xlarge",
            "managed_instance_scaling": {"min_instance_count": 0, "max_instance_count": 1},
            "initial_instance_count": 1,
        }
    }
    data["towers"]["vision"]["compute"] = {
        "accelerators": 1,
        "cpu_cores": 1,
        "min_memory_mib": 4096,
    }
    data["towers"]["vision"]["copies"] = {"initial": 2, "min": 0, "max": 2}
    # Members of a shared endpoint run on its type and each reserves compute (config rules).
    data["shared_endpoints"]["gpu"]["managed_instance_scaling"]["max_instance_count"] = 2
    for name in ("vision", "text"):
        data["towers"][name].pop("instance_type", None)
        data["towers"][name].pop("initial_instance_count", None)
    data["towers"]["text"]["compute"] = {"cpu_cores": 1, "min_memory_mib": 2048}
    return data


def test_default_config_is_one_hypothetical_plan_with_assumed_reservations() -> None:
    needs = needs_from_file(DEFAULT)
    assert needs.left_out == ()
    [plan] = needs.plans
    assert plan.name is None and plan.instance_type is None
    assert [t.name for t in plan.towers] == ["vision", "text", "qa"]
    assert plan.assumed == ("vision", "text", "qa")
    vision, text, qa = plan.towers
    assert (qa.instance_type, qa.accelerators) == ("ml.m5.xlarge", 0)
    assert (vision.instance_type, vision.accelerators, vision.needs_gpu) == (
        "ml.g5.xlarge",
        1,
        True,
    )
    assert (text.instance_type, text.accelerators, text.needs_gpu) == ("ml.m5.xlarge", 0, False)
    assert all(t.memory_mib == DEFAULT_MEMORY_MIB and t.copies == 1 for t in plan.towers)
    assert plan.sharing_gpu is None  # one GPU tower: nothing to share


def test_shared_endpoints_and_compute_are_read(tmp_path: Path) -> None:
    needs = needs_from_file(write(tmp_path, shared(default_data())))
    [plan] = needs.plans
    assert plan.name == "gpu"
    assert (plan.instance_type, plan.initial_instance_count) == ("ml.g5.xlarge", 1)
    assert (plan.min_instances, plan.max_instances) == (0, 2)
    vision, text = plan.towers
    assert (vision.accelerators, vision.cpu_cores, vision.memory_mib, vision.copies) == (
        1,
        1.0,
        4096,
        2,
    )
    assert plan.assumed == ()  # both towers reserve compute
    assert (text.accelerators, text.memory_mib) == (0, 2048)  # no accelerator in its compute
    assert text.instance_type == "ml.g5.xlarge"  # a member runs on the shared endpoint's type


def test_two_gpu_towers_with_assumed_accelerators_get_a_gpu_sharing_sizing(
    tmp_path: Path,
) -> None:
    data = default_data()
    data["towers"]["text"]["instance_type"] = "ml.g5.xlarge"
    [plan] = needs_from_file(write(tmp_path, data)).plans
    assert [t.accelerators for t in plan.towers] == [1, 1, 0]
    assert plan.sharing_gpu is not None
    assert [(t.accelerators, t.needs_gpu) for t in plan.sharing_gpu] == [
        (0, True),
        (0, True),
        (0, False),
    ]


def test_towers_without_a_realtime_endpoint_are_left_out(tmp_path: Path) -> None:
    data = default_data()
    data["towers"]["qa"]["deploy_endpoint"] = False
    needs = needs_from_file(write(tmp_path, data))
    assert needs.left_out == (("qa", "deploy_endpoint: false (no endpoint)"),)
    assert [t.name for t in needs.plans[0].towers] == ["vision", "text"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["shared_endpoints"]["gpu"].update(towers=["vision", "text", "nope"]),
            "shared_endpoints: shared_endpoints.gpu.towers names ['nope'], not towers of this file",
        ),
        (
            lambda d: d["shared_endpoints"]["gpu"].update(towers=[]),
            "shared_endpoints.gpu.towers = []",
        ),
        (
            lambda d: d["towers"]["vision"]["compute"].update(min_memory_mib=64),
            "towers.vision.compute.min_memory_mib = 64",
        ),
        (
            lambda d: d["towers"]["vision"]["compute"].update(cpu_cores="two"),
            "towers.vision.compute.cpu_cores = 'two'",
        ),
        (
            lambda d: d["towers"]["vision"].update(copies=[1]),
            "towers.vision.copies",
        ),
    ],
)
def test_unusable_keys_name_file_key_value_and_fix(
    tmp_path: Path, edit: Any, expected: str
) -> None:
    # The config models (hf_towers/config/shared_endpoints.py) own these keys: the loader's
    # message names the file and the key.
    data = shared(default_data())
    edit(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        needs_from_file(path)
    assert f"{path}: {expected}" in str(caught.value)


def test_the_rest_of_the_file_is_still_validated_by_the_loader(tmp_path: Path) -> None:
    data = shared(default_data())
    data["towers"]["text"]["instance_type"] = "g5.xlarge"
    with pytest.raises(ConfigError, match=r"towers\.text\.instance_type = 'g5\.xlarge'"):
        needs_from_file(write(tmp_path, data))
