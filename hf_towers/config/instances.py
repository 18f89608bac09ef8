"""Capacity of SageMaker instance types (vCPUs, memory, accelerators), read from the dated table
that ``recommend`` ships (``hf_towers/recommend/data/instance_prices.json``), so the config's fit
check and the cost figures use the same numbers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "recommend" / "data" / "instance_prices.json"


@dataclass(frozen=True)
class InstanceCapacity:
    """One row of the table: what one instance of ``type`` offers, and its hourly price."""

    type: str
    vcpu: int
    memory_gib: float
    gpus: int
    gpu_memory_gib: float
    price: float

    @property
    def memory_mib(self) -> int:
        return int(self.memory_gib * 1024)


@cache
def instance_table() -> dict[str, InstanceCapacity]:
    """Instance type -> its capacity, in the table's order."""
    data = json.loads(TABLE.read_text(encoding="utf-8"))
    return {
        row["type"]: InstanceCapacity(
            type=row["type"],
            vcpu=int(row["vcpu"]),
            memory_gib=float(row["memory_gib"]),
            gpus=int(row["gpus"]),
            gpu_memory_gib=float(row["gpu_memory_gib"]),
            price=float(row["price"]),
        )
        for row in data["instances"]
    }


def instance_capacity(instance_type: str) -> InstanceCapacity | None:
    """The capacity of ``instance_type``, or None when the table does not know it."""
    return instance_table().get(instance_type)
