"""Monthly cost of towers on separate endpoints vs one shared endpoint (inference components).

Pure functions over the price table (``hf_towers/recommend/data/instance_prices.json``): no
config, no AWS. A month is ``HOURS_PER_MONTH`` = 730 hours of on-demand hosting.

* Separate: each tower's own endpoint, ``price(instance_type) x instance count x 730``.
* Shared: instances of one type whose accelerators, vCPUs and memory hold the towers'
  reservations (per copy, times the copies; copies packed onto as few instances as first-fit
  decreasing finds), ``price x instances x 730``; the cheapest such type of the table, and a
  configured type when there is one (with whether it fits).

A reservation is what an ``InferenceComponent`` asks for in ``ComputeResourceRequirements``
(``NumberOfAcceleratorDevicesRequired``, ``NumberOfCpuCoresRequired``,
``MinMemoryRequiredInMb``). ``MinMemoryRequiredInMb`` is host memory; GPU memory is not part of
a reservation, so a fit here says nothing about whether the model fits one GPU of another
family (``--gpu`` sizing of an artifact, ``main.py recommend ARTIFACT``, does).
"""

from __future__ import annotations

from dataclasses import dataclass

from hf_towers.recommend import InstanceType, PriceTable

HOURS_PER_MONTH = 730
MIB_PER_GIB = 1024


class PriceLookupError(ValueError):
    """An instance type the price table does not list."""


@dataclass(frozen=True)
class TowerNeed:
    """One tower as the cost comparison sees it.

    ``instance_type``/``instance_count``: its own endpoint (the separate case). ``copies``: the
    component copies it starts with on a shared endpoint; ``accelerators``, ``cpu_cores`` and
    ``memory_mib`` are per copy. ``needs_gpu``: it must land on an instance with an
    accelerator even when it reserves none (it shares one GPU by memory only)."""

    name: str
    instance_type: str
    instance_count: int
    accelerators: int
    cpu_cores: float
    memory_mib: int
    copies: int = 1
    needs_gpu: bool = False

    @property
    def total_accelerators(self) -> int:
        return self.accelerators * self.copies

    @property
    def total_cpu_cores(self) -> float:
        return self.cpu_cores * self.copies

    @property
    def total_memory_mib(self) -> int:
        return self.memory_mib * self.copies


@dataclass(frozen=True)
class SeparateCost:
    """One tower on its own endpoint."""

    tower: str
    instance: InstanceType
    count: int

    @property
    def monthly(self) -> float:
        return self.instance.price * self.count * HOURS_PER_MONTH


@dataclass(frozen=True)
class SharedFit:
    """One instance type as the shared endpoint: what the towers reserve of it, and on how many
    instances their copies fit (``needed``; None when one copy is bigger than an instance).
    ``count`` instances are billed."""

    instance: InstanceType
    count: int
    accelerators: int
    cpu_cores: float
    memory_mib: int
    needed: int | None
    too_big: tuple[str, ...] = ()

    @property
    def fits(self) -> bool:
        return self.needed is not None and self.needed <= self.count

    @property
    def shortfalls(self) -> tuple[str, ...]:
        """Why it does not fit, in words (empty when it does)."""
        if self.needed is None:
            return self.too_big
        if self.needed > self.count:
            return (
                f"the copies need {self.needed} instances of this type, {self.count} configured",
            )
        return ()

    @property
    def monthly(self) -> float:
        """Every billed instance around the clock (no scale to zero)."""
        return self.instance.price * self.count * HOURS_PER_MONTH

    @property
    def hourly(self) -> float:
        return self.instance.price * self.count


@dataclass(frozen=True)
class CostComparison:
    """Separate endpoints vs the cheapest fitting shared one (and a configured one)."""

    towers: tuple[TowerNeed, ...]
    separate: tuple[SeparateCost, ...]
    cheapest_shared: SharedFit | None
    configured_shared: SharedFit | None

    @property
    def separate_monthly(self) -> float:
        return sum(cost.monthly for cost in self.separate)


def price_of(table: PriceTable, instance_type: str) -> InstanceType:
    """The table's row for ``instance_type``."""
    for instance in table.instances:
        if instance.name == instance_type:
            return instance
    raise PriceLookupError(
        f"{instance_type} is not in the price table (hf_towers/recommend/data/"
        f"instance_prices.json, {table.region}, {table.as_of}): add its row (vcpu, memory_gib, "
        "gpus, gpu_memory_gib, price) or choose a listed type"
    )


def _too_big(instance: InstanceType, tower: TowerNeed) -> list[str]:
    """Why one copy of ``tower`` does not fit one ``instance`` (empty when it does)."""
    memory = instance.memory_gib * MIB_PER_GIB
    found = []
    if tower.accelerators > instance.gpus:
        found.append(
            f"{tower.name}: {tower.accelerators} accelerators a copy, {instance.gpus} there"
        )
    if tower.needs_gpu and instance.gpus == 0:
        found.append(f"{tower.name} needs a GPU, {instance.name} has none")
    if tower.cpu_cores > instance.vcpu:
        found.append(f"{tower.name}: {tower.cpu_cores:g} CPU cores a copy, {instance.vcpu} there")
    if tower.memory_mib > memory:
        found.append(f"{tower.name}: {tower.memory_mib} MiB a copy, {memory:.0f} MiB there")
    return found


def instances_needed(
    instance: InstanceType, towers: tuple[TowerNeed, ...] | list[TowerNeed]
) -> int | None:
    """How many ``instance``s hold every copy (first-fit decreasing: biggest copies first, each
    on the first instance with room); None when a copy fits no instance."""
    if any(_too_big(instance, t) for t in towers):
        return None
    copies = sorted(
        (c for t in towers for c in [t] * t.copies),
        key=lambda t: (t.accelerators, t.memory_mib, t.cpu_cores),
        reverse=True,
    )
    free: list[list[float]] = []  # per instance: accelerators, CPU cores, MiB left
    capacity = [float(instance.gpus), float(instance.vcpu), instance.memory_gib * MIB_PER_GIB]
    for copy in copies:
        need = (copy.accelerators, copy.cpu_cores, copy.memory_mib)
        room = next((f for f in free if all(n <= r for n, r in zip(need, f, strict=True))), None)
        if room is None:
            room = list(capacity)
            free.append(room)
        for index, amount in enumerate(need):
            room[index] -= amount
    return max(1, len(free))


def shared_fit(
    instance: InstanceType,
    towers: tuple[TowerNeed, ...] | list[TowerNeed],
    count: int | None = None,
) -> SharedFit:
    """What ``towers`` reserve on ``instance`` (sums over every copy) and how many instances
    they need; ``count`` instances are billed (default: as many as needed)."""
    needed = instances_needed(instance, towers)
    return SharedFit(
        instance,
        count if count is not None else (needed or 1),
        accelerators=sum(t.total_accelerators for t in towers),
        cpu_cores=sum(t.total_cpu_cores for t in towers),
        memory_mib=sum(t.total_memory_mib for t in towers),
        needed=needed,
        too_big=tuple(reason for t in towers for reason in _too_big(instance, t)),
    )


def endpoint_costs(
    towers: list[TowerNeed] | tuple[TowerNeed, ...],
    table: PriceTable,
    *,
    configured_type: str | None = None,
    configured_count: int = 1,
) -> CostComparison:
    """The monthly cost of ``towers`` on separate endpoints and on one shared endpoint.

    The shared candidate is the cheapest type of ``table`` times the instances its copies
    need (``cheapest_fit``). ``configured_type`` (with ``configured_count`` instances) is
    priced as given, fitting or not."""
    if not towers:
        raise ValueError("no towers to compare: give at least one tower with an endpoint")
    ordered = tuple(towers)
    separate = tuple(
        SeparateCost(t.name, price_of(table, t.instance_type), t.instance_count) for t in ordered
    )
    configured = (
        shared_fit(price_of(table, configured_type), ordered, configured_count)
        if configured_type is not None
        else None
    )
    return CostComparison(ordered, separate, cheapest_fit(ordered, table.instances), configured)


def cheapest_fit(
    towers: tuple[TowerNeed, ...] | list[TowerNeed], instances: tuple[InstanceType, ...]
) -> SharedFit | None:
    """The cheapest way to hold ``towers`` on instances of one type of ``instances`` (price x
    instances needed; then fewer instances, then the smaller type, then by name); None when
    no type holds a copy."""
    fitting = [fit for fit in (shared_fit(i, towers) for i in instances) if fit.fits]
    return min(
        fitting,
        key=lambda f: (f.hourly, f.count, f.instance.memory_gib, f.instance.name),
        default=None,
    )


def family(instance_type: str) -> str:
    """``ml.g5.xlarge`` -> ``ml.g5``."""
    return ".".join(instance_type.split(".")[:2])


def scale_to_zero_formula(fit: SharedFit, currency: str) -> str:
    """What scaling the shared endpoint to zero instances saves, as a formula: the idle hours
    depend on traffic, which no config says."""
    per_hour = fit.hourly
    return (
        f"{per_hour:.3f} {currency}/hour x idle hours a month (hours with no instance running; "
        f"at most {HOURS_PER_MONTH} h = {per_hour * HOURS_PER_MONTH:.2f} {currency})"
    )
