"""Re-partitioning (调整网络区): propose a new partition of all units into zones of 8-10 from the
database, keep proposals, and apply one from a future quarter.

Reading. Each unit's members (`member_count`), strength, nature of work and district; the history
(pairs of units that already shared a zone, which the solver avoids) is today's zones, the
partitions before and after every applied proposal, and the duty units of each zone's rotations
between two re-partitionings (units on duty in one zone in one period shared it).

Proposing. The solver (services/partition.py, simulated annealing) is CPU-bound for seconds: it
runs in a separate process (a one-worker spawn process pool, `solve_off_loop`), so the API keeps
answering while it works. Each zone index of the proposal is matched to the existing zone holding
most of its units (greedily, largest overlap first); an index left over becomes a new zone when
applied, a zone left over is emptied. The proposal keeps `basis`, the partition it was computed
from: it is stale (409 `partition_stale`) once a unit is added, removed or moved.

Applying, from a quarter that has not started (`quarter_started` otherwise). In one transaction,
with every zone row locked (two applies at once: one wins, the other finds it applied or pending):
the proposal turns `applied`, new zones are created, and every rotation from that quarter on is
regenerated for the new zones, continuing the duty-order rules of services/rotations.py — a
zone's units that stay keep their order and come first, units joining it follow strongest first,
and its duty continues after the last unit on duty before the boundary (the first of the order
when that unit leaves). A rotation that keeps its zone and quarter is updated in place (told
again; a work plan the previous unit drafted for it is dropped); an emptied zone loses its
rotations from the boundary. Rotations before the boundary, and the units' zones, are not
touched: the history stands as it was. The audit log records it in the same transaction.

Moving. Units change zone at the boundary, not before: the cron job `move_partitioned_units`
(every minute, and at start-up) moves the units of an applied proposal whose quarter has begun,
once (a conditional update of `moved_at`), sets the new duty orders, places units added since the
proposal was applied (`_place_newcomers`) and fills any rotation still missing. Between applying and moving, generating rotations leaves the quarters from the boundary
alone and a duty-order change affects only the quarters before it (services/rotations.py), and a
second proposal cannot be applied (409 `partition_pending`). One job run, so at most a minute,
after the boundary a unit still shows its old zone; duty powers of the new rotations follow then.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from tortoise.transactions import in_transaction

from models.governance import WorkPlan
from models.org import Rotation, Unit, Zone
from models.zoning import PartitionProposal, ProposalStatus
from services import audit, clock, rotations
from services.access import check_committee
from services.auth import Principal, sessions_changed
from services.errors import Conflict, InvalidInput, NotFound, Unavailable, define
from services.locks import lock_rows
from services.partition import Pair, UnitInfo, pairs_of, zone_count
from services.partition_report import Comparison, compare

PartitionNotFound = define("PartitionNotFound", NotFound, "partition_not_found", "找不到该网络区调整方案")
PartitionApplied = define("PartitionApplied", Conflict, "partition_applied", "该调整方案已经实施")
PartitionStale = define("PartitionStale", Conflict, "partition_stale",
                        "方案生成后单位或网络区已有变动，请重新生成方案")
PartitionPending = define("PartitionPending", Conflict, "partition_pending",
                          "已有调整方案待生效，生效前不能实施另一个方案")
QuarterStarted = define("QuarterStarted", InvalidInput, "quarter_started",
                        "只能从尚未开始的季度起实施调整", loc=("body", "from_quarter"))
SolverUnavailable = define("SolverUnavailable", Unavailable, "solver_unavailable",
                           "分区计算进程异常，请稍后重试")

RANDOMS = 20  # random partitions averaged for the baseline column
T = TypeVar("T")


# -- the solver, off the event loop ----------------------------------------------------------------

_pool: ProcessPoolExecutor | None = None


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:  # spawn, not fork: the parent has threads (the SQLite driver, the loop)
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _pool


def shutdown_solver() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


async def solve_off_loop(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in the solver process (one at a time per API process; callers
    queue). A crashed worker process answers 503 and the next call starts a fresh one."""
    try:
        return await asyncio.get_running_loop().run_in_executor(
            _executor(), partial(fn, *args, **kwargs))
    except BrokenProcessPool:
        shutdown_solver()
        raise SolverUnavailable() from None


# -- reading the city ------------------------------------------------------------------------------

async def read_units() -> list[UnitInfo]:
    units = await Unit.all().order_by("id").values_list(
        "id", "member_count", "strength", "nature", "district", "zone_id")
    return [UnitInfo(id=i, member_count=m, strength=float(s), nature=n or "", district=d or "",
                     current_zone=z) for i, m, s, n, d, z in units]


def _keys_int(mapping: Mapping[str, Any]) -> dict[int, Any]:
    return {int(k): v for k, v in mapping.items()}


async def read_history(units: list[UnitInfo]) -> set[Pair]:
    """Pairs of today's units that shared a zone: today, before and after each applied
    proposal, and on duty in one zone between two re-partitionings."""
    ids = {u.id for u in units}
    pairs = pairs_of({u.id: u.current_zone for u in units if u.current_zone is not None})
    applied = await PartitionProposal.filter(status=ProposalStatus.APPLIED).order_by("starts_at")
    for p in applied:
        pairs |= pairs_of(_keys_int(p.basis))
        pairs |= pairs_of({u: _zone_of(p, z) for u, z in _keys_int(p.assignment).items()})
    boundaries = [p.starts_at for p in applied if p.starts_at is not None]
    on_duty: dict[tuple[int, int], set[int]] = defaultdict(set)
    for zone_id, unit_id, starts_at in await Rotation.all().values_list("zone_id", "unit_id",
                                                                        "starts_at"):
        on_duty[(zone_id, bisect_right(boundaries, starts_at))].add(unit_id)
    for group in on_duty.values():
        pairs |= pairs_of(dict.fromkeys(group, 0))
    return {p for p in pairs if p <= ids}


def _zone_of(p: PartitionProposal, index: int) -> int:
    """A proposal's zone by index: the zone id it takes over, or a negative stand-in for a new
    zone (history only needs which units share one)."""
    zone_id = p.zone_ids[index]
    return zone_id if zone_id is not None else -1 - index


def basis_of(units: list[UnitInfo]) -> dict[str, int | None]:
    return {str(u.id): u.current_zone for u in units}


def match_zones(assignment: Mapping[int, int], current: Mapping[int, int | None],
                zones: int) -> list[int | None]:
    """Per zone index the existing zone it takes over: largest overlap first, each zone once."""
    overlap = Counter((index, current[u]) for u, index in assignment.items()
                      if current.get(u) is not None)
    taken: dict[int, int] = {}
    used: set[int] = set()
    for (index, zone_id), _ in sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0])):
        if index not in taken and zone_id not in used:
            taken[index] = zone_id
            used.add(zone_id)
    return [taken.get(i) for i in range(zones)]


# -- proposing -------------------------------------------------------------------------------------

async def compute(*, seed: int, zones: int | None, time_budget_s: float,
                  randoms: int = RANDOMS,
                  **options: int) -> tuple[list[UnitInfo], set[Pair], Comparison]:
    """Read the city and run the solver in its process: the units, the history, the comparison."""
    units = await read_units()
    zone_count(len(units), zones=zones)  # infeasible sizes answer 422 here, with their data
    history = await read_history(units)
    comparison = await solve_off_loop(compare, units, seed=seed, zones=zones, history=history,
                                      randoms=randoms, time_budget_s=time_budget_s, **options)
    return units, history, comparison


async def propose(principal: Principal | None, *, seed: int, zones: int | None = None,
                  time_budget_s: float = 50.0, **options: int) -> dict[str, Any]:
    """Propose and keep a partition (`principal` None: the command line)."""
    if principal is not None:
        check_committee(principal)
    units, _, comparison = await compute(seed=seed, zones=zones, time_budget_s=time_budget_s,
                                         **options)
    return await store(principal, units, comparison)


async def store(principal: Principal | None, units: list[UnitInfo],
                comparison: Comparison) -> dict[str, Any]:
    p = comparison.proposal
    current = {u.id: u.current_zone for u in units}
    columns = {"today": comparison.today, "random": comparison.random,
               "proposal": (p.measures, p.objective)}
    measures = {name: ({**asdict(col[0]), "objective": col[1]} if col else None)
                for name, col in columns.items()}
    measures["random_count"] = comparison.randoms
    async with in_transaction():
        row = await PartitionProposal.create(
            seed=p.seed, zone_count=p.measures.zones,
            assignment={str(u): z for u, z in p.assignment.items()},
            zone_ids=match_zones(p.assignment, current, p.measures.zones), basis=basis_of(units),
            measures=measures, steps=p.steps, elapsed_ms=round(p.elapsed_s * 1000),
            out_of_time=p.out_of_time, created_by_id=principal.member_id if principal else None)
        await audit.record(principal, "partition.proposed", "partition_proposal", row.id,
                           seed=p.seed, zones=p.measures.zones, units=len(units),
                           objective=round(p.objective, 6))
    return await view(row, units=units)


# -- reading proposals -----------------------------------------------------------------------------

async def list_proposals(principal: Principal) -> list[dict[str, Any]]:
    check_committee(principal)
    units = await read_units()
    return [await view(p, units=units, detail=False) for p in await PartitionProposal.all()]


async def get_proposal(principal: Principal, proposal_id: int) -> dict[str, Any]:
    check_committee(principal)
    row = await PartitionProposal.get_or_none(id=proposal_id)
    if row is None:
        raise PartitionNotFound(partition_id=proposal_id)
    return await view(row, units=await read_units())


async def view(row: PartitionProposal, *, units: list[UnitInfo],
               detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "status": row.status, "seed": row.seed, "zone_count": row.zone_count,
        "measures": row.measures, "steps": row.steps, "elapsed_ms": row.elapsed_ms,
        "out_of_time": row.out_of_time, "created_by_id": row.created_by_id,
        "created_at": row.created_at, "from_quarter": row.from_quarter,
        "starts_at": row.starts_at, "applied_at": row.applied_at,
        "applied_by_id": row.applied_by_id, "moved_at": row.moved_at,
        "stale": row.status is ProposalStatus.PENDING and row.basis != basis_of(units)}
    if not detail:
        return out
    info = {u.id: u for u in units}
    names = dict(await Zone.all().values_list("id", "name"))
    unit_names = dict(await Unit.all().values_list("id", "name"))
    members: dict[int, list[int]] = defaultdict(list)
    for unit_id, index in sorted(_keys_int(row.assignment).items()):
        members[index].append(unit_id)
    orders = row.duty_orders or {}
    zones = []
    for index in range(row.zone_count):
        ids = orders.get(str(_zone_of(row, index))) or members[index]
        known = [info[u] for u in ids if u in info]
        zone_id = row.zone_ids[index]
        zones.append({
            "index": index, "zone_id": zone_id,
            "zone_name": names.get(zone_id) if zone_id is not None else None,
            "units": [{"id": u, "name": unit_names.get(u, ""),
                       "from_zone_id": row.basis.get(str(u))} for u in ids],
            "members": sum(u.member_count for u in known),
            "mean_strength": sum(u.strength for u in known) / len(known) if known else 0.0,
            "natures": len({u.nature for u in known}),
            "districts": len({u.district for u in known})})
    out["zones"] = zones
    return out


# -- applying --------------------------------------------------------------------------------------

def parse_future_quarter(text: str, *, at: datetime) -> tuple[int, int, datetime]:
    try:
        year, quarter = clock.parse_quarter(text)
    except ValueError:
        raise InvalidInput("季度格式应为 2027Q1", field="from_quarter") from None
    rotations.check_year(year)
    starts_at, _ = clock.quarter_bounds(year, quarter)
    if starts_at <= at:
        raise QuarterStarted(from_quarter=text)
    return year, quarter, starts_at


async def apply(principal: Principal, proposal_id: int, *, from_quarter: str) -> dict[str, Any]:
    """Apply a proposal from a quarter that has not started (see the module docstring)."""
    check_committee(principal)
    now = clock.now()
    year, quarter, starts_at = parse_future_quarter(from_quarter, at=now)
    label = f"{year}Q{quarter}"
    async with in_transaction():
        await lock_rows("zone", await Zone.all().values_list("id", flat=True))
        row = await PartitionProposal.get_or_none(id=proposal_id)
        if row is None:
            raise PartitionNotFound(partition_id=proposal_id)
        if row.status is not ProposalStatus.PENDING:
            raise PartitionApplied(partition_id=proposal_id, from_quarter=row.from_quarter)
        pending = await PartitionProposal.filter(status=ProposalStatus.APPLIED,
                                                 moved_at__isnull=True).first()
        if pending is not None:
            raise PartitionPending(partition_id=pending.id, from_quarter=pending.from_quarter)
        units = await read_units()
        if row.basis != basis_of(units):
            raise PartitionStale(partition_id=proposal_id)
        zone_ids = list(row.zone_ids)
        for index, zone_id in enumerate(zone_ids):
            if zone_id is None:
                zone_ids[index] = (await Zone.create(name=await _new_zone_name(index))).id
        assignment = {u: zone_ids[i] for u, i in _keys_int(row.assignment).items()}
        orders, changed = await _regenerate(assignment, starts_at=starts_at, from_year=year)
        updated = await PartitionProposal.filter(id=row.id, status=ProposalStatus.PENDING).update(
            status=ProposalStatus.APPLIED, zone_ids=zone_ids, from_quarter=label,
            starts_at=starts_at, duty_orders={str(z): ids for z, ids in orders.items()},
            applied_at=now, applied_by_id=principal.member_id)
        if not updated:  # cannot happen under the zone locks, kept as the last line of defence
            raise PartitionApplied(partition_id=proposal_id)
        moving = sorted(u for u, z in assignment.items() if row.basis.get(str(u)) != z)
        await audit.record(principal, "partition.applied", "partition_proposal", row.id,
                           from_quarter=label, zones=zone_ids, units_moving=moving,
                           rotations=changed)
    row = await PartitionProposal.get(id=proposal_id)
    return await view(row, units=await read_units())


async def _new_zone_name(index: int) -> str:
    n = index + 1
    while await Zone.exists(name=f"新网络区{n}"):
        n += 100
    return f"新网络区{n}"


async def _regenerate(assignment: dict[int, int], *, starts_at: datetime,
                      from_year: int) -> tuple[dict[int, list[int]], dict[str, int]]:
    """Rotations from `starts_at` on for the new zones, through the last year that has any;
    returns each zone's new duty order and counts of what changed."""
    last_year = max([from_year, *await Rotation.all().values_list("year", flat=True)])
    quarters = [(y, q) for y in range(from_year, last_year + 1) for q in range(1, 5)
                if clock.quarter_bounds(y, q)[0] >= starts_at]
    units = {u.id: u for u in await Unit.filter(id__in=list(assignment))}
    by_zone: dict[int, list[Unit]] = defaultdict(list)
    for unit_id, zone_id in assignment.items():
        unit = units[unit_id]
        if unit.zone_id != zone_id:
            unit.duty_order = None  # joins the new zone's order at the end (in memory only)
        by_zone[zone_id].append(unit)
    counts = {"created": 0, "reassigned": 0, "deleted": 0}
    emptied = [z for z in await Zone.all().values_list("id", flat=True) if z not in by_zone]
    if emptied:
        counts["deleted"] = await Rotation.filter(zone_id__in=emptied,
                                                  starts_at__gte=starts_at).delete()
    orders: dict[int, list[int]] = {}
    for zone_id, members in sorted(by_zone.items()):
        order = rotations.duty_order(members)
        orders[zone_id] = [u.id for u in order]
        last = await Rotation.filter(zone_id=zone_id, starts_at__lt=starts_at) \
            .order_by("-starts_at").first()
        previous = last.unit_id if last else None
        existing = {r.starts_at: r for r in await Rotation.filter(zone_id=zone_id,
                                                                 starts_at__gte=starts_at)}
        for y, q in quarters:
            begins, ends = clock.quarter_bounds(y, q)
            unit = rotations.next_unit(order, previous)
            previous = unit.id
            rotation = existing.pop(begins, None)
            if rotation is None:
                await Rotation.create(zone_id=zone_id, unit_id=unit.id, year=y, quarter=q,
                                      starts_at=begins, ends_at=ends)
                counts["created"] += 1
            elif rotation.unit_id != unit.id:
                await Rotation.filter(id=rotation.id).update(unit_id=unit.id, told_at=None)
                await WorkPlan.filter(rotation_id=rotation.id).exclude(unit_id=unit.id).delete()
                counts["reassigned"] += 1
        if existing:  # beyond the quarters regenerated (cannot be: they run to the last year)
            counts["deleted"] += await Rotation.filter(
                id__in=[r.id for r in existing.values()]).delete()
    return orders, counts


# -- moving at the boundary ------------------------------------------------------------------------

async def _place_newcomers(assignment: Mapping[int, int], zone_ids: list[int]) -> dict[int, int]:
    """Units the proposal does not know (added between applying and the boundary): one whose zone
    lives on stays in it, at the end of its duty order; one whose zone was emptied, or that has
    none, joins the new zone holding most units of its district (districts kept together), else
    the one with the fewest members. Returns where each unit that had to move went."""
    units = await read_units()
    member_count = {u.id: u.member_count for u in units}
    members: Counter[int] = Counter({z: 0 for z in zone_ids})
    districts: dict[str, Counter[int]] = defaultdict(Counter)
    for u in units:
        if u.id in assignment:
            zone = zone_ids[assignment[u.id]]
            members[zone] += member_count[u.id]
            if u.district:
                districts[u.district][zone] += 1
    placed: dict[int, int] = {}
    for u in units:
        if u.id in assignment:
            continue
        if u.current_zone in zone_ids:
            await Unit.filter(id=u.id).update(duty_order=None)
            continue
        near = districts[u.district].most_common() if u.district else []
        zone = near[0][0] if near else min(zone_ids, key=lambda z: (members[z], z))
        await Unit.filter(id=u.id).update(zone_id=zone, duty_order=None)
        members[zone] += u.member_count
        if u.district:
            districts[u.district][zone] += 1
        placed[u.id] = zone
    return placed


async def move_due(*, at: datetime | None = None) -> int:
    """Cron: move the units of each applied proposal whose quarter has begun, once; returns how
    many proposals moved. Safe to run twice and on several workers."""
    at = at or clock.now()
    moved = 0
    for row in await PartitionProposal.filter(status=ProposalStatus.APPLIED, moved_at__isnull=True,
                                              starts_at__lte=at).order_by("starts_at"):
        async with in_transaction():
            if not await PartitionProposal.filter(id=row.id, moved_at__isnull=True).update(
                    moved_at=at):
                continue
            zone_ids = row.zone_ids
            assignment = _keys_int(row.assignment)
            for unit_id, index in assignment.items():
                order = row.duty_orders.get(str(zone_ids[index]), [])
                await Unit.filter(id=unit_id).update(
                    zone_id=zone_ids[index],
                    duty_order=order.index(unit_id) if unit_id in order else None)
            placed = await _place_newcomers(assignment, zone_ids)
            await audit.record(None, "partition.moved", "partition_proposal", row.id,
                               from_quarter=row.from_quarter, units=len(row.assignment),
                               placed={str(u): z for u, z in placed.items()})
            moved += 1
        year, _ = clock.quarter_of(row.starts_at)
        last_year = max([year, *await Rotation.all().values_list("year", flat=True)])
        for y in range(year, last_year + 1):  # anything generation left alone meanwhile
            await rotations.generate_rotations(year=y)
    if moved:
        await sessions_changed()  # members' zones and duty powers in every process's cache
    return moved

