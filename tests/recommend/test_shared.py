"""The cost comparison of separate vs shared endpoints: separate sums, the reservation fit,
packing copies onto instances, the cheapest type, a configured type, the scale-to-zero formula."""

from __future__ import annotations

import pytest

from hf_towers.recommend import InstanceType, PriceTable, load_prices
from hf_towers.recommend.shared import (
    HOURS_PER_MONTH,
    PriceLookupError,
    TowerNeed,
    cheapest_fit,
    endpoint_costs,
    family,
    instances_needed,
    price_of,
    scale_to_zero_formula,
    shared_fit,
)

TABLE = PriceTable(
    region="us-east-1",
    as_of="2025-01-15",
    currency="USD",
    instances=(
        InstanceType("ml.cpu.small", vcpu=2, memory_gib=8, gpus=0, gpu_memory_gib=0, price=0.1),
        InstanceType("ml.cpu.big", vcpu=16, memory_gib=64, gpus=0, gpu_memory_gib=0, price=0.8),
        InstanceType("ml.gpu.one", vcpu=4, memory_gib=16, gpus=1, gpu_memory_gib=24, price=1.0),
        InstanceType("ml.gpu.four", vcpu=48, memory_gib=192, gpus=4, gpu_memory_gib=96, price=5.0),
    ),
)


def tower(
    name: str,
    instance_type: str = "ml.gpu.one",
    *,
    accelerators: int = 0,
    cpu: float = 1,
    memory: int = 1024,
    copies: int = 1,
    count: int = 1,
    needs_gpu: bool = False,
) -> TowerNeed:
    return TowerNeed(name, instance_type, count, accelerators, cpu, memory, copies, needs_gpu)


def test_separate_cost_is_each_towers_type_times_count_times_730_hours() -> None:
    towers = [tower("vision", "ml.gpu.one", accelerators=1), tower("text", "ml.cpu.small", count=2)]
    costs = endpoint_costs(towers, TABLE)
    assert [(c.tower, c.instance.name, c.count) for c in costs.separate] == [
        ("vision", "ml.gpu.one", 1),
        ("text", "ml.cpu.small", 2),
    ]
    assert costs.separate_monthly == pytest.approx((1.0 + 2 * 0.1) * HOURS_PER_MONTH)
    assert HOURS_PER_MONTH == 730


def test_cheapest_shared_type_holds_the_sum_of_reservations() -> None:
    # 1 accelerator + 2 CPU-only copies of 1 core / 1 GiB each: the 1-GPU type holds all three.
    towers = [tower("vision", accelerators=1), tower("text"), tower("qa")]
    fit = endpoint_costs(towers, TABLE).cheapest_shared
    assert fit is not None and (fit.instance.name, fit.count) == ("ml.gpu.one", 1)
    assert (fit.accelerators, fit.cpu_cores, fit.memory_mib) == (1, 3, 3072)
    assert fit.monthly == pytest.approx(1.0 * 730)
    # CPU-only towers go to the cheapest CPU type that holds their cores and memory.
    cpu_only = endpoint_costs([tower("text"), tower("qa")], TABLE).cheapest_shared
    assert cpu_only is not None and cpu_only.instance.name == "ml.cpu.small"
    # 3 cores do not fit the 2-vCPU type on one instance: two of them are cheaper than cpu.big.
    three = endpoint_costs([tower("a"), tower("b"), tower("c")], TABLE).cheapest_shared
    assert three is not None and (three.instance.name, three.count) == ("ml.cpu.small", 2)


def test_a_tower_that_needs_a_gpu_without_reserving_one_excludes_cpu_types() -> None:
    shared = tower("vision", needs_gpu=True)
    fit = endpoint_costs([shared, tower("text")], TABLE).cheapest_shared
    assert fit is not None and fit.instance.name == "ml.gpu.one"
    assert shared_fit(TABLE.instances[0], [shared]).shortfalls == (
        "vision needs a GPU, ml.cpu.small has none",
    )


def test_copies_are_packed_onto_instances_first_fit_decreasing() -> None:
    one_gpu, four_gpus = TABLE.instances[2], TABLE.instances[3]
    two = [tower("vision", accelerators=1), tower("text", accelerators=1)]
    assert instances_needed(one_gpu, two) == 2
    assert instances_needed(four_gpus, two) == 1
    # Two 1-GPU instances (2.0/h) are cheaper than one 4-GPU instance (5.0/h).
    fit = cheapest_fit(two, TABLE.instances)
    assert fit is not None and (fit.instance.name, fit.count, fit.hourly) == ("ml.gpu.one", 2, 2.0)
    # Copies count: 3 copies of a 1-GPU tower need 3 one-GPU instances.
    assert instances_needed(one_gpu, [tower("vision", accelerators=1, copies=3)]) == 3
    # Memory packs too: 10 GiB copies, two per 16 GiB instance do not fit.
    assert instances_needed(one_gpu, [tower("big", memory=10 * 1024, copies=2)]) == 2


def test_a_copy_bigger_than_every_type_fits_nowhere() -> None:
    huge = tower("huge", accelerators=8)
    costs = endpoint_costs([huge], TABLE)
    assert costs.cheapest_shared is None
    fit = shared_fit(TABLE.instances[3], [huge])
    assert fit.needed is None and not fit.fits
    assert fit.shortfalls == ("huge: 8 accelerators a copy, 4 there",)


def test_configured_type_is_priced_as_given_with_whether_it_fits() -> None:
    two = [tower("vision", accelerators=1), tower("text", accelerators=1)]
    costs = endpoint_costs(two, TABLE, configured_type="ml.gpu.one", configured_count=1)
    configured = costs.configured_shared
    assert configured is not None and configured.monthly == pytest.approx(730.0)
    assert not configured.fits
    assert configured.shortfalls == ("the copies need 2 instances of this type, 1 configured",)
    enough = endpoint_costs(two, TABLE, configured_type="ml.gpu.four").configured_shared
    assert enough is not None and enough.fits and enough.count == 1


def test_unknown_instance_type_names_the_table_and_the_fix() -> None:
    with pytest.raises(
        PriceLookupError, match=r"ml\.x\.y is not in the price table .*instance_prices\.json"
    ):
        price_of(TABLE, "ml.x.y")
    with pytest.raises(PriceLookupError):
        endpoint_costs([tower("t", "ml.x.y")], TABLE)
    with pytest.raises(ValueError, match="no towers"):
        endpoint_costs([], TABLE)


def test_scale_to_zero_is_a_formula_of_price_and_idle_hours() -> None:
    fit = shared_fit(TABLE.instances[2], [tower("vision", accelerators=1)], count=2)
    text = scale_to_zero_formula(fit, "USD")
    assert text.startswith("2.000 USD/hour x idle hours a month")
    assert "at most 730 h = 1460.00 USD" in text


def test_shipped_table_prices_the_default_towers() -> None:
    table = load_prices()
    default = [
        tower("vision", "ml.g5.xlarge", accelerators=1, needs_gpu=True),
        tower("text", "ml.m5.xlarge"),
        tower("qa", "ml.m5.xlarge"),
    ]
    costs = endpoint_costs(default, table)
    assert costs.separate_monthly == pytest.approx((1.408 + 0.23 + 0.23) * 730)
    fit = costs.cheapest_shared
    assert fit is not None and fit.instance.gpus >= 1 and fit.count == 1
    same = cheapest_fit(default, tuple(i for i in table.instances if family(i.name) == "ml.g5"))
    assert same is not None and same.instance.name == "ml.g5.xlarge"
    assert family("ml.g5.12xlarge") == "ml.g5"
