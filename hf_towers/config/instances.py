"""Capacity of SageMaker instance types (vCPUs, memory, accelerators): the rows of the dated
table that ``recommend`` ships and reads (``hf_towers/recommend/data/instance_prices.json``,
``recommend.load_prices``), so the config's fit check and the cost figures use the same numbers."""

from __future__ import annotations

from functools import cache

from hf_towers.recommend import PRICES, InstanceType, load_prices

TABLE = PRICES
InstanceCapacity = InstanceType
"""One row of the table: what one instance offers, and its hourly price."""


@cache
def instance_table() -> dict[str, InstanceCapacity]:
    """Instance type -> its capacity, in the table's order."""
    return {row.name: row for row in load_prices().instances}


def instance_capacity(instance_type: str) -> InstanceCapacity | None:
    """The capacity of ``instance_type``, or None when the table does not know it."""
    return instance_table().get(instance_type)
