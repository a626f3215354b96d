"""Duty rotations (轮值): who is on duty in each zone, quarter by quarter, and never running out.

Rule: each zone has a duty order — its units by strength, strongest first — fixed when the zone
first rotates; new units join at the end. Each quarter (Asia/Shanghai) the next unit in that
order is on duty, one quarter each, continuing across years. The committee may reorder a zone:
rotations that have not started follow the new order, history stays as it was.

Next year's rotations are generated ahead of time by a daily job (continuing the order), and the
committee is told to confirm or reorder them; a unit is told a while before its quarter that it
is on duty next.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.org import Member, Role, Rotation, RotationChange, RotationPlan, Unit, Zone
from models.zoning import PartitionProposal, ProposalStatus
from services import audit, clock, inbox
from services.access import check_committee
from services.auth import Principal, sessions_changed
from services.errors import (
    AlreadyOnDuty,
    InvalidInput,
    NoCurrentRotation,
    PlanNotFound,
    UnitNotFound,
    UnitNotInZone,
    YearOutOfRange,
    ZoneNotFound,
)

# -- the order -----------------------------------------------------------------------------------

def duty_order(units: list[Unit]) -> list[Unit]:
    """The zone's order: the fixed order first, then unordered units strongest first."""
    ordered = sorted((u for u in units if u.duty_order is not None), key=lambda u: (u.duty_order, u.id))
    fresh = sorted((u for u in units if u.duty_order is None), key=lambda u: (-u.strength, u.id))
    return ordered + fresh


def next_unit(order: list[Unit], last_unit_id: int | None) -> Unit:
    """The unit after `last_unit_id` in the order, cyclically; the first if it is not there."""
    ids = [u.id for u in order]
    if last_unit_id not in ids:
        return order[0]
    return order[(ids.index(last_unit_id) + 1) % len(order)]


async def partition_boundary() -> datetime | None:
    """The first instant of a re-partitioning applied but not yet in force (services/zoning.py):
    its rotations are already made for the new zones, so generating and reordering stop there."""
    row = await PartitionProposal.filter(status=ProposalStatus.APPLIED, moved_at__isnull=True) \
        .order_by("starts_at").first()
    return row.starts_at if row else None


def check_year(year: int) -> None:
    this_year, _ = clock.quarter_of(clock.now())
    if not this_year - 5 <= year <= this_year + 10:
        raise YearOutOfRange(min=this_year - 5, max=this_year + 10)


# -- reading -------------------------------------------------------------------------------------

async def list_rotations(zone_id: int, *, year: int | None = None) -> list[Rotation]:
    if not await Zone.exists(id=zone_id):
        raise ZoneNotFound(zone_id=zone_id)
    qs = Rotation.filter(zone_id=zone_id)
    if year is not None:
        qs = qs.filter(year=year)
    return await qs.select_related("unit").order_by("starts_at")


async def get_plan(year: int) -> dict[str, Any]:
    """A year's rotations zone by zone, and whether the committee confirmed them."""
    check_year(year)
    rotations = await Rotation.filter(year=year).select_related("unit").order_by("zone_id", "starts_at")
    plan = await RotationPlan.get_or_none(year=year)
    if plan is None and not rotations:
        raise PlanNotFound(year=year)
    zones: dict[int, list[Rotation]] = {}
    for r in rotations:
        zones.setdefault(r.zone_id, []).append(r)
    return {"year": year, "generated_at": plan.generated_at if plan else None,
            "confirmed_at": plan.confirmed_at if plan else None,
            "confirmed_by_id": plan.confirmed_by_id if plan else None,
            "zones": [{"zone_id": z, "rotations": rs} for z, rs in sorted(zones.items())]}


# -- generating ----------------------------------------------------------------------------------

async def generate_rotations(*, year: int) -> dict[str, int]:
    """Create the missing rotations of `year` for every zone; existing ones are kept as they are."""
    check_year(year)
    created = existing = 0
    until = await partition_boundary()
    for zone in await Zone.all():
        c, e = await _generate_zone_year(zone.id, year, until=until)
        created, existing = created + c, existing + e
    return {"created": created, "existing": existing}


async def _generate_zone_year(zone_id: int, year: int, *,
                              until: datetime | None) -> tuple[int, int]:
    async with in_transaction():
        units = await Unit.filter(zone_id=zone_id).select_for_update()
        if not units:
            return 0, 0
        order = duty_order(units)
        for position, unit in enumerate(order):
            if unit.duty_order != position:
                unit.duty_order = position
                await unit.save(update_fields=["duty_order"])
        created = existing = 0
        for quarter in range(1, 5):
            if await Rotation.exists(zone_id=zone_id, year=year, quarter=quarter):
                existing += 1
                continue
            starts_at, ends_at = clock.quarter_bounds(year, quarter)
            if until is not None and starts_at >= until:
                continue  # the new zones' rotations, made when the re-partitioning was applied
            last = await Rotation.filter(zone_id=zone_id, starts_at__lt=starts_at) \
                .order_by("-starts_at").first()
            unit = next_unit(order, last.unit_id if last else None)
            await Rotation.create(zone_id=zone_id, unit_id=unit.id, year=year, quarter=quarter,
                                  starts_at=starts_at, ends_at=ends_at)
            created += 1
    if created:
        await sessions_changed()  # who is on duty, in /me
    return created, existing


async def plan_ahead(*, ahead: timedelta, at: datetime | None = None) -> dict[str, int]:
    """Daily job: this year's rotations always exist; within `ahead` of the year's end, next
    year's are generated (continuing the order) and the committee is told once to confirm or
    reorder them. Safe to run twice and on several workers: generation is idempotent and the
    plan row is unique per year."""
    at = at or clock.now()
    this_year, _ = clock.quarter_of(at)
    done = {"created": (await generate_rotations(year=this_year))["created"], "told": 0}
    next_year_starts, _ = clock.quarter_bounds(this_year + 1, 1)
    if next_year_starts - at > ahead:
        return done
    done["created"] += (await generate_rotations(year=this_year + 1))["created"]
    with suppress(IntegrityError):  # told already (another run, or an earlier day)
        async with in_transaction():
            await RotationPlan.create(year=this_year + 1, generated_at=at)
            staff = await Member.filter(role=Role.COMMITTEE, is_active=True).values_list("id", flat=True)
            await inbox.send_system(
                member_ids=staff, topic="rotation.plan", title=f"{this_year + 1} 年轮值表已生成，请确认",
                body="各网络区明年的轮值单位已按轮值顺序排好，请在年底前确认或调整顺序。",
                ref_type="rotation_plan", ref_id=this_year + 1)
        done["told"] = 1
    return done


async def confirm_plan(principal: Principal, *, year: int) -> dict[str, Any]:
    """The committee confirms a year's rotations (idempotent: the first confirmation stands)."""
    check_committee(principal)
    check_year(year)
    if not await Rotation.exists(year=year):
        raise PlanNotFound(year=year)
    plan, _ = await RotationPlan.get_or_create(year=year, defaults={"generated_at": clock.now()})
    async with in_transaction():
        if await RotationPlan.filter(id=plan.id, confirmed_at__isnull=True).update(
                confirmed_at=clock.now(), confirmed_by_id=principal.member_id):
            await audit.record(principal, "rotation_plan.confirmed", "rotation_plan", plan.id, year=year)
    return await get_plan(year)


async def reorder(principal: Principal, *, zone_id: int, unit_ids: list[int]) -> list[Rotation]:
    """The committee sets a zone's duty order; every rotation that has not started follows it
    (continuing from the last one that has), those that have are history and stay. With a
    re-partitioning applied but not yet in force, only the rotations before it follow."""
    check_committee(principal)
    now = clock.now()
    until = await partition_boundary()
    async with in_transaction():
        units = {u.id: u for u in await Unit.filter(zone_id=zone_id).select_for_update()}
        if not units and not await Zone.exists(id=zone_id):
            raise ZoneNotFound(zone_id=zone_id)
        if sorted(unit_ids) != sorted(units) or len(set(unit_ids)) != len(unit_ids):
            raise InvalidInput(errors=[{"loc": ["body", "unit_ids"], "type": "value_error",
                                        "msg": "须按新顺序列出该网络区的全部单位，每个单位一次",
                                        "expected": sorted(units)}])
        before = [u.id for u in sorted(units.values(), key=lambda u: (u.duty_order is None, u.duty_order, u.id))]
        for position, unit_id in enumerate(unit_ids):
            await Unit.filter(id=unit_id).update(duty_order=position)
        await audit.record(principal, "rotation.order_changed", "zone", zone_id, zone_id=zone_id,
                           before=before, after=unit_ids)
        order = [units[u] for u in unit_ids]
        last = await Rotation.filter(zone_id=zone_id, starts_at__lte=now).order_by("-starts_at").first()
        previous = last.unit_id if last else None
        later = Rotation.filter(zone_id=zone_id, starts_at__gt=now)
        if until is not None:
            later = later.filter(starts_at__lt=until)
        for rotation in await later.order_by("starts_at"):
            unit = next_unit(order, previous)
            if rotation.unit_id != unit.id:
                await Rotation.filter(id=rotation.id).update(unit_id=unit.id, told_at=None)
            previous = unit.id
    await sessions_changed()  # who is on duty, in /me
    return await list_rotations(zone_id)


async def change_duty_unit(principal: Principal, *, zone_id: int, unit_id: int,
                           reason: str) -> Rotation:
    """Committee action: hand the rest of the current quarter to another unit, kept in history."""
    check_committee(principal)
    unit = await Unit.get_or_none(id=unit_id)
    if unit is None:
        raise UnitNotFound(unit_id=unit_id)
    if unit.zone_id != zone_id:
        raise UnitNotInZone(unit_id=unit_id, zone_id=zone_id)
    now = clock.now()
    async with in_transaction():
        current = await Rotation.filter(zone_id=zone_id, starts_at__lte=now, ends_at__gt=now) \
            .select_for_update().first()
        if current is None:
            raise NoCurrentRotation(zone_id=zone_id)
        if current.unit_id == unit_id:
            raise AlreadyOnDuty(unit_id=unit_id)
        old_end = current.ends_at
        await Rotation.filter(id=current.id).update(ends_at=now)
        rotation = await Rotation.create(zone_id=zone_id, unit_id=unit_id, year=current.year,
                                         quarter=current.quarter, starts_at=now, ends_at=old_end,
                                         told_at=now)
        await RotationChange.create(zone_id=zone_id, from_unit_id=current.unit_id,
                                    to_unit_id=unit_id, effective_at=now, reason=reason,
                                    changed_by_id=principal.member_id)
        await audit.record(principal, "rotation.duty_changed", "rotation", rotation.id, zone_id=zone_id,
                           from_unit_id=current.unit_id, to_unit_id=unit_id, reason=reason)
        await inbox.send_system(
            member_ids=await inbox.unit_admin_ids([unit_id]), topic="rotation.duty_now",
            title="本单位即日起担任网络区轮值单位", body=reason, ref_type="rotation", ref_id=rotation.id)
    await sessions_changed()  # who is on duty, in /me
    await rotation.fetch_related("unit")
    return rotation


# -- telling the next duty unit ------------------------------------------------------------------

async def tell_next_duty_units(*, before: timedelta, at: datetime | None = None) -> int:
    """Hourly job: each unit whose rotation starts within `before` is told once that it is on
    duty next (inbox and phone), with the quarter's "three ones" to plan. The conditional
    update of `told_at` decides which run tells."""
    at = at or clock.now()
    told = 0
    for rotation in await Rotation.filter(starts_at__gt=at, starts_at__lte=at + before,
                                          told_at__isnull=True).select_related("zone"):
        async with in_transaction():
            if not await Rotation.filter(id=rotation.id, told_at__isnull=True).update(told_at=at):
                continue
            await inbox.send_system(
                member_ids=await inbox.unit_admin_ids([rotation.unit_id]), topic="rotation.next_duty",
                title=f"下季度轮值：{rotation.zone.name} {rotation.year}年第{rotation.quarter}季度",
                body=f"本单位将于 {clock.local_iso(rotation.starts_at)[:10]} 起担任轮值单位，"
                     "请提前拟定工作计划，安排一次党课、一次党建活动和一次交接会。",
                ref_type="rotation", ref_id=rotation.id)
            told += 1
    return told
