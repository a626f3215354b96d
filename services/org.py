"""Zones, units and rosters (rotations: services/rotations.py)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from models.org import Liaison, Member, Role, Rotation, Unit, Zone
from services import clock, privacy
from services.access import check_unit_scope, current_rotation
from services.auth import Principal, member_view
from services.errors import (
    Forbidden,
    UnitNotFound,
    ZoneNotFound,
)
from services.views import View

# -- zones and units ------------------------------------------------------------------------------

async def list_zones(*, at: datetime | None = None) -> list[View]:
    """Zones with their unit count and the unit on duty now (three queries in all)."""
    at = at or clock.now()
    zones = await Zone.all()
    counts = Counter(await Unit.filter(zone_id__isnull=False).values_list("zone_id", flat=True))
    duty = {r.zone_id: r for r in await Rotation.filter(starts_at__lte=at, ends_at__gt=at)
            .select_related("unit")}
    return [View(z, unit_count=counts.get(z.id, 0), rotation=duty.get(z.id),
                 duty_unit=duty[z.id].unit if z.id in duty else None) for z in zones]


async def governed_zones(principal: Principal) -> list[Zone]:
    """The zones a member of staff may narrow a list to (the committee: all; a liaison: theirs;
    anyone else: none), by id, one query."""
    if principal.is_committee:
        return await Zone.all().order_by("id")
    if principal.is_liaison and principal.liaison_zone_ids:
        return await Zone.filter(id__in=sorted(principal.liaison_zone_ids)).order_by("id")
    return []


async def get_zone(zone_id: int, viewer: Principal | None = None) -> View:
    """One zone with its units (in duty order), its liaisons and the rotation now."""
    zone = await Zone.get_or_none(id=zone_id)
    if zone is None:
        raise ZoneNotFound(zone_id=zone_id)
    units = await Unit.filter(zone_id=zone_id).order_by("duty_order", "id")
    liaisons = await Liaison.filter(zone_id=zone_id).select_related("member")
    rotation = await current_rotation(zone_id)
    if rotation is not None:
        await rotation.fetch_related("unit")
    return View(zone, units=units, rotation=rotation, liaisons=[
        View(link.member, phone=privacy.phone_for(viewer, member_id=link.member.id, unit_id=link.member.unit_id,
                                                   phone=link.member.phone)) for link in liaisons])


async def unit_names(unit_ids: set[int]) -> dict[int, str]:
    """Unit id -> name, for labelling rows that carry a unit id."""
    if not unit_ids:
        return {}
    return dict(await Unit.filter(id__in=unit_ids).values_list("id", "name"))


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
                       limit: int = 200, cursor: int | None = None) -> list[View]:
    """A unit's roster in id order (`cursor`: the last id of the previous page)."""
    if not await Unit.exists(id=unit_id):
        raise UnitNotFound(unit_id=unit_id)
    await check_unit_scope(principal, unit_id)
    qs = Member.filter(unit_id=unit_id, id__gt=cursor or 0)
    if role is not None:
        qs = qs.filter(role=role)
    return [member_view(m, principal) for m in await qs.order_by("id").limit(limit)]
