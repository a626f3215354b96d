"""Scope checks shared by every domain, in one place.

- **committee** staff: everything, city-wide.
- **liaison** (staff assigned to zones, 挂点): the committee's powers inside their zones only.
- **duty unit**: the admins of the unit on duty in a zone, during its rotation only.
- **unit admin**: their own unit.
- **member**: their own things, and what is addressed to their unit or zone.
"""

from __future__ import annotations

from datetime import datetime

from models.org import Liaison, Rotation, Unit
from services import clock
from services.auth import Principal
from services.errors import (
    Forbidden,
    NoRotation,
    NotOnDuty,
)


async def current_rotation(zone_id: int, *, at: datetime | None = None) -> Rotation | None:
    at = at or clock.now()
    return await Rotation.filter(zone_id=zone_id, starts_at__lte=at, ends_at__gt=at).first()


async def duty_rotation(principal: Principal, *, at: datetime | None = None) -> Rotation | None:
    """The rotation in which the caller's unit is on duty now, if the caller is its admin."""
    if not principal.is_unit_admin or principal.zone_id is None or principal.unit_id is None:
        return None
    at = at or clock.now()
    return await Rotation.filter(zone_id=principal.zone_id, unit_id=principal.unit_id,
                                 starts_at__lte=at, ends_at__gt=at).first()


async def liaison_zone_ids(principal: Principal) -> list[int]:
    """Zones the caller is assigned to as a liaison (committee staff may be assigned too)."""
    if principal.is_liaison:
        return sorted(principal.liaison_zone_ids)
    if not principal.is_committee:
        return []
    return await Liaison.filter(member_id=principal.member_id).values_list("zone_id", flat=True)


def check_governs(principal: Principal, zone_id: int | None) -> None:
    """Committee powers over this zone (the committee; a liaison of the zone)."""
    if not principal.governs(zone_id):
        raise Forbidden()


def check_committee(principal: Principal) -> None:
    """City-wide powers: the committee only, liaisons are refused."""
    if not principal.is_committee:
        raise Forbidden()


async def unit_zone(unit_id: int) -> int | None:
    rows = await Unit.filter(id=unit_id).values_list("zone_id", flat=True)
    return rows[0] if rows else None


async def check_unit_scope(principal: Principal, unit_id: int) -> None:
    """The committee: any unit. A liaison: units of their zones. A unit admin: their own."""
    if principal.is_committee:
        return
    if principal.is_unit_admin and principal.unit_id == unit_id:
        return
    if principal.is_liaison and principal.governs(await unit_zone(unit_id)):
        return
    raise Forbidden()


async def check_duty_zone(principal: Principal, zone_id: int, *,
                          at: datetime | None = None) -> Rotation | None:
    """Who may act for a zone: staff governing it (returns None), or the admin of the unit on
    duty in it now (returns its rotation). A zone without a rotation now says so."""
    if principal.governs(zone_id):
        return None
    if principal.is_liaison or principal.is_committee:
        raise Forbidden()
    rotation = await duty_rotation(principal, at=at)
    if rotation is not None and rotation.zone_id == zone_id:
        return rotation
    if principal.is_unit_admin and principal.zone_id == zone_id and \
            await current_rotation(zone_id, at=at) is None:
        raise NoRotation(zone_id=zone_id)
    raise NotOnDuty(zone_id=zone_id)
