"""The cost comparison's input (``TowerNeed``s, grouped per shared endpoint) from an environment
file.

The file is validated by the project's loader. The inference-component keys —
``shared_endpoints:`` (top level) and ``compute:``/``copies:`` (per tower) — are read from the
models when they have them, and otherwise from the raw YAML (removed before the loader sees
it, so an older model does not refuse them); both end up as the same plain dicts here.

Defaults where a tower gives no ``compute``: 1 accelerator per copy when the tower's own
instance type has accelerators (``NumberOfAcceleratorDevicesRequired`` is at least 1 when
set: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_InferenceComponentComputeResourceRequirements.html),
else none; 1 CPU core; 1024 MiB; 1 copy (``copies.initial``). Where two or more towers get
that default accelerator, a second sizing lets them share one GPU (no accelerator reserved,
memory only, on a type with a GPU).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hf_towers.config.base import load_file
from hf_towers.config.loader import ConfigError, parse_config
from hf_towers.config.models import EnvironmentConfig, Tower
from hf_towers.config.operations import InferenceMode, is_accelerated
from hf_towers.recommend.shared import TowerNeed

DEFAULT_CPU_CORES = 1.0
DEFAULT_MEMORY_MIB = 1024
DEFAULT_COPIES = 1
SHARED_KEY = "shared_endpoints"
TOWER_KEYS = ("compute", "copies")


@dataclass(frozen=True)
class SharedPlan:
    """Towers to compare on one shared endpoint.

    ``name`` None: no ``shared_endpoints:`` in the file, so every tower with a real-time
    endpoint, as if shared. ``instance_type``/``initial_instance_count``/``min_instances``/
    ``max_instances``: the configured endpoint's (None when not configured).
    ``sharing_gpu``: the same towers when those with an assumed accelerator share one GPU."""

    name: str | None
    towers: tuple[TowerNeed, ...]
    assumed: tuple[str, ...]
    instance_type: str | None = None
    initial_instance_count: int = 1
    min_instances: int | None = None
    max_instances: int | None = None
    sharing_gpu: tuple[TowerNeed, ...] | None = None


@dataclass(frozen=True)
class ConfigNeeds:
    """Every plan of one environment file, and the towers left out (name, why)."""

    source: str
    plans: tuple[SharedPlan, ...]
    left_out: tuple[tuple[str, str], ...]


def _dump(value: Any) -> Any:
    """A pydantic model (or None) as plain data."""
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else value


def _split(data: Any) -> tuple[Any, Any, dict[str, dict[str, Any]]]:
    """(data the loader accepts, raw shared_endpoints, raw per-tower keys), taking out only
    the keys the models do not define."""
    if not isinstance(data, Mapping):
        return data, None, {}
    stripped = dict(data)
    shared = None
    if SHARED_KEY not in EnvironmentConfig.model_fields:
        shared = stripped.pop(SHARED_KEY, None)
    extras: dict[str, dict[str, Any]] = {}
    towers = stripped.get("towers")
    if isinstance(towers, Mapping):
        copied: dict[str, Any] = {}
        for name, tower in towers.items():
            if isinstance(tower, Mapping):
                tower = dict(tower)
                for key in TOWER_KEYS:
                    if key not in Tower.model_fields and key in tower:
                        extras.setdefault(str(name), {})[key] = tower.pop(key)
            copied[name] = tower
        stripped["towers"] = copied
    return stripped, shared, extras


class _Reader:
    """Small checks of the raw keys, each failure naming file, key, value and fix."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, value: Any, fix: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key} = {value!r}: {fix}")

    def mapping(self, key: str, value: Any) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(key, value, "must be a mapping of keys to values")
        return value

    def number(self, key: str, value: Any, default: float, minimum: float) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.fail(key, value, f"must be a number of at least {minimum:g}")
        return float(value)

    def whole(self, key: str, value: Any, default: int, minimum: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, value, f"must be a whole number of at least {minimum}")
        return value


def _need(name: str, tower: Tower, extra: Mapping[str, Any], read: _Reader) -> TowerNeed:
    compute = read.mapping(f"towers.{name}.compute", _dump(extra.get("compute")))
    copies = read.mapping(f"towers.{name}.copies", _dump(extra.get("copies")))
    gpu = is_accelerated(tower.instance_type)
    raw_accelerators = compute.get("accelerators")
    if isinstance(raw_accelerators, float) and raw_accelerators.is_integer():
        raw_accelerators = int(raw_accelerators)  # the config model holds a float
    # With compute given and no accelerators the copy runs on CPU cores (config semantics);
    # without compute, one accelerator is assumed on a GPU type.
    assumed_accelerators = 0 if compute else (1 if gpu else 0)
    accelerators = read.whole(
        f"towers.{name}.compute.accelerators", raw_accelerators, assumed_accelerators, 0
    )
    return TowerNeed(
        name=name,
        instance_type=tower.instance_type,
        instance_count=tower.initial_instance_count,
        accelerators=accelerators,
        cpu_cores=read.number(
            f"towers.{name}.compute.cpu_cores", compute.get("cpu_cores"), DEFAULT_CPU_CORES, 0.25
        ),
        memory_mib=int(
            read.whole(
                f"towers.{name}.compute.min_memory_mib",
                compute.get("min_memory_mib"),
                DEFAULT_MEMORY_MIB,
                128,
            )
        ),
        copies=max(
            1,
            read.whole(f"towers.{name}.copies.initial", copies.get("initial"), DEFAULT_COPIES, 0),
        ),
        needs_gpu=gpu,
    )


def _why_left_out(tower: Tower) -> str | None:
    if not tower.deploy_endpoint:
        return "deploy_endpoint: false (no endpoint)"
    if tower.inference_mode is not InferenceMode.REALTIME:
        return (
            f"inference_mode: {tower.inference_mode.value} (this comparison covers real-time "
            "endpoints on instances)"
        )
    return None


def _sharing_gpu(
    needs: tuple[TowerNeed, ...], assumed: tuple[str, ...]
) -> tuple[TowerNeed, ...] | None:
    guessed = [n for n in needs if n.name in assumed and n.accelerators > 0]
    if len(guessed) < 2:
        return None
    return tuple(replace(n, accelerators=0, needs_gpu=True) if n in guessed else n for n in needs)


def _plan(
    name: str | None,
    towers: list[str],
    needs: Mapping[str, TowerNeed],
    assumed_all: set[str],
    settings: Mapping[str, Any],
    read: _Reader,
) -> SharedPlan:
    chosen = tuple(needs[t] for t in towers)
    assumed = tuple(t for t in towers if t in assumed_all)
    key = f"{SHARED_KEY}.{name}"
    scaling = read.mapping(
        f"{key}.managed_instance_scaling", _dump(settings.get("managed_instance_scaling"))
    )
    instance_type = settings.get("instance_type")
    if name is not None and not isinstance(instance_type, str):
        raise read.fail(
            f"{key}.instance_type", instance_type, "must be an instance type such as ml.g5.xlarge"
        )
    return SharedPlan(
        name=name,
        towers=chosen,
        assumed=assumed,
        instance_type=instance_type if isinstance(instance_type, str) else None,
        initial_instance_count=read.whole(
            f"{key}.initial_instance_count", settings.get("initial_instance_count"), 1, 0
        ),
        min_instances=read.whole(
            f"{key}.managed_instance_scaling.min_instance_count",
            scaling.get("min_instance_count"),
            -1,
            0,
        )
        if "min_instance_count" in scaling
        else None,
        max_instances=read.whole(
            f"{key}.managed_instance_scaling.max_instance_count",
            scaling.get("max_instance_count"),
            -1,
            1,
        )
        if "max_instance_count" in scaling
        else None,
        sharing_gpu=_sharing_gpu(chosen, assumed),
    )


def needs_from_file(path: Path) -> ConfigNeeds:
    """The comparison input of the environment file ``path``; raises ``ConfigError`` with the
    file, key, value and fix for anything unusable."""
    data = load_file(path, error=ConfigError, what="config file", example="config/default.yaml")
    loadable, raw_shared, extras = _split(data)
    source = str(path)
    config = parse_config(loadable, source)
    read = _Reader(source)
    shared = read.mapping(
        SHARED_KEY,
        raw_shared if raw_shared is not None else _dump(getattr(config, SHARED_KEY, None)),
    )
    needs: dict[str, TowerNeed] = {}
    assumed: set[str] = set()
    left_out: list[tuple[str, str]] = []
    for name in config.towers:
        # A tower of a shared endpoint has no type of its own: it runs on the endpoint's.
        tower = config.placed_tower(name)
        extra = dict(extras.get(name, {}))
        for key in TOWER_KEYS:
            if key not in extra and getattr(tower, key, None) is not None:
                extra[key] = getattr(tower, key)
        if (why := _why_left_out(tower)) is not None:
            left_out.append((name, why))
            continue
        needs[name] = _need(name, tower, extra, read)
        if not extra.get("compute"):
            assumed.add(name)
    plans: list[SharedPlan] = []
    for endpoint, settings in shared.items():
        settings = read.mapping(f"{SHARED_KEY}.{endpoint}", _dump(settings))
        towers = settings.get("towers")
        key = f"{SHARED_KEY}.{endpoint}.towers"
        if not isinstance(towers, list) or not towers:
            raise read.fail(
                key, towers, "must list the towers this endpoint hosts, e.g. [vision, text]"
            )
        for tower_name in towers:
            if tower_name not in needs:
                known = ", ".join(sorted(needs)) or "none"
                raise read.fail(
                    key,
                    towers,
                    f"{tower_name!r} is not a tower with a real-time endpoint in this file "
                    f"(those are: {known})",
                )
        plans.append(_plan(str(endpoint), [str(t) for t in towers], needs, assumed, settings, read))
    if not plans and needs:
        plans.append(_plan(None, list(needs), needs, assumed, {}, read))
    return ConfigNeeds(source, tuple(plans), tuple(left_out))
