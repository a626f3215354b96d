"""Zones, units, rosters and duty rotations.

Rotation rule: each zone has a duty order — its units by strength, strongest first — fixed when
the zone first rotates; new units join at the end. Each quarter (Asia/Shanghai) the next unit in
that order is on duty, one quarter each, continuing across years. After a re-partition the zone
starts again with its strongest unit.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from models.org import Liaison, Member, Role, Rotation, RotationChange, Unit, Zone
from services import clock
from services.access import check_unit_scope, current_rotation
from services.auth import Principal
from services.errors import Forbidden, ServiceError, UnitNotFound, ZoneNotFound


class UnitNotInZone(ServiceError):
    code, http_status, default_message = "unit_not_in_zone", 400, "该单位不属于这个网络区"


class NoCurrentRotation(ServiceError):
    code, http_status, default_message = "no_current_rotation", 409, "该网络区当前没有轮值安排"


class AlreadyOnDuty(ServiceError):
    code, http_status, default_message = "already_on_duty", 409, "该单位已经是当前轮值单位"


class YearOutOfRange(ServiceError):
    code, http_status, default_message = "year_out_of_range", 400, "年份超出允许范围"


# -- zones and units ------------------------------------------------------------------------------

async def list_zones(*, at: datetime | None = None) -> list[dict[str, Any]]:
    """Zones with their unit count and the unit on duty now (three queries in all)."""
    at = at or clock.now()
    zones = await Zone.all()
    counts = Counter(await Unit.filter(zone_id__isnull=False).values_list("zone_id", flat=True))
    duty = {r.zone_id: r for r in await Rotation.filter(starts_at__lte=at, ends_at__gt=at)
            .select_related("unit")}
    return [{"zone": z, "unit_count": counts.get(z.id, 0), "rotation": duty.get(z.id)}
            for z in zones]


async def get_zone(zone_id: int) -> dict[str, Any]:
    zone = await Zone.get_or_none(id=zone_id)
    if zone is None:
        raise ZoneNotFound(zone_id=zone_id)
    units = await Unit.filter(zone_id=zone_id).order_by("duty_order", "id")
    liaisons = await Liaison.filter(zone_id=zone_id).select_related("member")
    rotation = await current_rotation(zone_id)
    if rotation is not None:
        await rotation.fetch_related("unit")
    return {"zone": zone, "units": units, "liaisons": [l.member for l in liaisons],
            "rotation": rotation}


async def list_units(principal: Principal, *, zone_id: int | None = None) -> list[Unit]:
    qs = Unit.all()
    if principal.is_liaison:
        qs = qs.filter(zone_id__in=sorted(principal.liaison_zone_ids))
    elif not principal.is_committee:
        if not principal.is_unit_admin or principal.unit_id is None:
            raise Forbidden()
        qs = qs.filter(id=principal.unit_id)
    if zone_id is not None:
        qs = qs.filter(zone_id=zone_id)
    return await qs.order_by("id")


async def list_members(principal: Principal, *, unit_id: int, role: Role | None = None,
                       limit: int = 200, after_id: int = 0) -> list[Member]:
    if not await Unit.exists(id=unit_id):
        raise UnitNotFound(unit_id=unit_id)
    await check_unit_scope(principal, unit_id)
    qs = Member.filter(unit_id=unit_id, id__gt=after_id)
    if role is not None:
        qs = qs.filter(role=role)
    return await qs.order_by("id").limit(limit)


# -- rotations -----------------------------------------------------------------------------------

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


async def list_rotations(zone_id: int, *, year: int | None = None) -> list[Rotation]:
    if not await Zone.exists(id=zone_id):
        raise ZoneNotFound(zone_id=zone_id)
    qs = Rotation.filter(zone_id=zone_id)
    if year is not None:
        qs = qs.filter(year=year)
    return await qs.select_related("unit").order_by("starts_at")


async def generate_rotations(*, year: int) -> dict[str, int]:
    """Create the missing rotations of `year` for every zone; existing ones are kept as they are."""
    this_year, _ = clock.quarter_of(clock.now())
    if not this_year - 5 <= year <= this_year + 10:
        raise YearOutOfRange(min=this_year - 5, max=this_year + 10)
    created = existing = 0
    for zone in await Zone.all():
        c, e = await _generate_zone_year(zone.id, year)
        created, existing = created + c, existing + e
    return {"created": created, "existing": existing}


async def _generate_zone_year(zone_id: int, year: int) -> tuple[int, int]:
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
            last = await Rotation.filter(zone_id=zone_id, starts_at__lt=starts_at) \
                .order_by("-starts_at").first()
            unit = next_unit(order, last.unit_id if last else None)
            await Rotation.create(zone_id=zone_id, unit_id=unit.id, year=year, quarter=quarter,
                                  starts_at=starts_at, ends_at=ends_at)
            created += 1
        return created, existing


async def change_duty_unit(principal: Principal, *, zone_id: int, unit_id: int,
                           reason: str) -> Rotation:
    """Committee action: hand the rest of the current quarter to another unit, kept in history."""
    if not principal.is_committee:
        raise Forbidden()
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
                                         quarter=current.quarter, starts_at=now, ends_at=old_end)
        await RotationChange.create(zone_id=zone_id, from_unit_id=current.unit_id,
                                    to_unit_id=unit_id, effective_at=now, reason=reason,
                                    changed_by_id=principal.member_id)
    await rotation.fetch_related("unit")
    return rotation
