"""``main.py recommend --config FILE``: shared vs separate endpoint cost of a file's towers.

Exit status 0 when printed, 1 when no type of the table holds a plan's reservations, 2 for a
config that cannot be used (the message names the file, the key, the value and the fix)."""

from __future__ import annotations

import sys
from pathlib import Path

from hf_towers.config.loader import ConfigError
from hf_towers.recommend import PRICES, PriceTable, load_prices
from hf_towers.recommend.from_config import (
    DEFAULT_COPIES,
    DEFAULT_CPU_CORES,
    DEFAULT_MEMORY_MIB,
    SHARED_KEY,
    ConfigNeeds,
    SharedPlan,
    needs_from_file,
)
from hf_towers.recommend.shared import (
    HOURS_PER_MONTH,
    MIB_PER_GIB,
    CostComparison,
    PriceLookupError,
    SharedFit,
    cheapest_fit,
    endpoint_costs,
    family,
    scale_to_zero_formula,
)

# "after scaling in to zero instances, your endpoint can't respond to any incoming inference
# requests until it provisions at least one instance ... the provisioning process takes several
# minutes. During that time, any attempts to invoke the endpoint will produce an error."
# https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html
COLD_START = (
    "cold start: after scaling to zero, requests fail with an error (they do not wait) for the "
    "several minutes SageMaker takes to provision an instance and load the copies: callers must "
    "retry, or keep min_instance_count at 1 (no saving)"
)


def _fit_text(fit: SharedFit) -> str:
    i, n = fit.instance, fit.count
    memory = i.memory_gib * MIB_PER_GIB * n
    of = f" of {n} instances" if n > 1 else ""
    return (
        f"reserves {fit.accelerators}/{i.gpus * n} accelerators, {fit.cpu_cores:g}/{i.vcpu * n} "
        f"vCPUs, {fit.memory_mib}/{memory:.0f} MiB{of}"
    )


def _money(value: float, table: PriceTable) -> str:
    return f"{value:,.2f} {table.currency}/month"


def _assumptions(plan: SharedPlan) -> list[str]:
    if not plan.assumed:
        return ["reservations: as configured (towers.<name>.compute, copies.initial)"]
    names = ", ".join(plan.assumed)
    return [
        f"reservations assumed for {names} (no compute: in the file), per copy: 1 accelerator "
        f"where the tower's own instance type has one (the API's minimum when any is reserved), "
        f"{DEFAULT_CPU_CORES:g} CPU core, {DEFAULT_MEMORY_MIB} MiB; {DEFAULT_COPIES} copy each. "
        "Host memory only: GPU memory is no part of a reservation (size a model for one GPU with "
        "`recommend ARTIFACT --gpu`)",
    ]


def _print_plan(plan: SharedPlan, table: PriceTable) -> bool:
    """Print one plan; False when no type of the table holds it."""
    comparison = endpoint_costs(
        plan.towers,
        table,
        configured_type=plan.instance_type,
        configured_count=max(plan.initial_instance_count, 1),
    )
    names = ", ".join(t.name for t in plan.towers)
    title = (
        f"{SHARED_KEY}.{plan.name} ({names})"
        if plan.name is not None
        else f"{names} (no {SHARED_KEY}: in the file; all towers with a real-time endpoint)"
    )
    print(f"\n{title}")
    for line in _assumptions(plan):
        print(f"  {line}")
    _print_separate(comparison, table)
    found = _print_shared(plan, comparison, table, "one shared endpoint")
    if plan.sharing_gpu is not None:
        sharing = endpoint_costs(plan.sharing_gpu, table)
        print(
            "  if the towers with an assumed accelerator share one GPU (no accelerator "
            "reserved, memory only: whether a copy without one sees the GPU is up to the "
            "container; test it):"
        )
        _print_cheapest(sharing, comparison.separate_monthly, table, indent="    ")
    return found


def _print_separate(comparison: CostComparison, table: PriceTable) -> None:
    print(f"  separate endpoints: {_money(comparison.separate_monthly, table)}")
    for cost in comparison.separate:
        print(
            f"    {cost.tower:<12} {cost.instance.name:<16} x{cost.count}  "
            f"{cost.instance.price:.3f}/h  {_money(cost.monthly, table)}"
        )


def _print_cheapest(
    comparison: CostComparison, separate: float, table: PriceTable, indent: str = "  "
) -> bool:
    fit = comparison.cheapest_shared
    if fit is None:
        print(f"{indent}no instance type of the table holds these reservations")
        return False
    saved = separate - fit.monthly
    verdict = (
        f"saves {saved:,.2f} ({saved / separate:.0%})"
        if saved >= 0
        else f"costs {-saved:,.2f} more"
    )
    print(
        f"{indent}cheapest type that holds them: {fit.instance.name} x{fit.count}  "
        f"{fit.instance.price:.3f}/h each  {_money(fit.monthly, table)} ({_fit_text(fit)}); "
        f"{verdict} vs separate"
    )
    own = {family(t.instance_type) for t in comparison.towers if t.needs_gpu}
    if fit.instance.gpu and own and family(fit.instance.name) not in own:
        print(
            f"{indent}  note: {family(fit.instance.name)} is another GPU family than the "
            f"towers' own ({', '.join(sorted(own))}): other GPU, other GPU memory and latency"
        )
        same = cheapest_fit(
            comparison.towers, tuple(i for i in table.instances if family(i.name) in own)
        )
        if same is not None:
            kept = separate - same.monthly
            print(
                f"{indent}cheapest of the towers' own GPU family: {same.instance.name} x{same.count}  "
                f"{same.instance.price:.3f}/h each  {_money(same.monthly, table)} ({_fit_text(same)}); "
                + (
                    f"saves {kept:,.2f} ({kept / separate:.0%})"
                    if kept >= 0
                    else f"costs {-kept:,.2f} more"
                )
                + " vs separate"
            )
    return True


def _print_shared(
    plan: SharedPlan, comparison: CostComparison, table: PriceTable, label: str
) -> bool:
    print(f"  {label} (each tower an inference component, {HOURS_PER_MONTH} h a month):")
    found = _print_cheapest(comparison, comparison.separate_monthly, table, indent="    ")
    configured = comparison.configured_shared
    if configured is not None:
        fits = "fits" if configured.fits else "does NOT fit: " + "; ".join(configured.shortfalls)
        needed = configured.needed
        if needed is not None and needed > configured.count:
            scaled = plan.max_instances is not None and plan.max_instances >= needed
            fits += (
                f" (managed_instance_scaling.max_instance_count {plan.max_instances} lets "
                f"SageMaker add them: {needed} x = "
                f"{_money(configured.instance.price * needed * HOURS_PER_MONTH, table)})"
                if scaled
                else f": raise initial_instance_count to {needed}, or use a bigger type"
            )
        print(
            f"    configured: {configured.instance.name} x{configured.count}  "
            f"{_money(configured.monthly, table)} ({_fit_text(configured)}; {fits})"
        )
    priced = configured if configured is not None else comparison.cheapest_shared
    if priced is not None:
        at_zero = plan.min_instances == 0
        print(
            f"    scale to zero (managed_instance_scaling.min_instance_count: 0"
            f"{', as configured' if at_zero else ''}) of {priced.instance.name} x{priced.count} "
            f"saves {scale_to_zero_formula(priced, table.currency)}"
        )
        print(f"    {COLD_START}")
    return found


def print_costs(needs: ConfigNeeds, table: PriceTable) -> int:
    """The comparison of every plan of ``needs``; the exit status."""
    print(
        f"{needs.source}: monthly cost of the towers' endpoints, {HOURS_PER_MONTH} h of "
        f"on-demand hosting at {table.region} prices as of {table.as_of} ({table.currency}; "
        f"{PRICES.relative_to(PRICES.parents[3]).as_posix()}): check current prices before "
        "budgeting"
    )
    for tower, why in needs.left_out:
        print(f"left out: {tower}: {why}")
    if not needs.plans:
        print("no tower has a real-time endpoint: nothing to compare", file=sys.stderr)
        return 1
    found = [_print_plan(plan, table) for plan in needs.plans]
    return 0 if all(found) else 1


def run_costs(path: Path) -> int:
    """``recommend --config FILE``."""
    try:
        needs = needs_from_file(path)
        return print_costs(needs, load_prices())
    except (ConfigError, PriceLookupError) as exc:
        print(f"recommend: {exc}", file=sys.stderr)
        return 2
