"""Zones, units and rosters (rotations: services/rotations.py)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from models.org import Liaison, Member, Role, Rotation, Unit, Zone
from services import clock
from services.access import check_unit_scope, current_rotation
from services.auth import Principal
from services.errors import Forbidden, ServiceError, UnitNotFound, ZoneNotFound


class UnitNotInZone(ServiceError):
    code, http_status, default_message = "unit_not_in_zone", 400, "该单位不属于这个网络区"


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
