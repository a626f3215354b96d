"""Scope checks shared by every domain: own unit, duty unit of a zone in its quarter, liaison."""

from __future__ import annotations

from datetime import datetime

from models.org import Liaison, Rotation
from services import clock
from services.auth import Principal
from services.errors import Forbidden, ServiceError


class NotOnDuty(ServiceError):
    code, http_status, default_message = "not_on_duty", 403, "本单位当前不是该网络区的轮值单位"


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
    if not principal.is_committee:
        return []
    return await Liaison.filter(member_id=principal.member_id).values_list("zone_id", flat=True)


def check_unit_scope(principal: Principal, unit_id: int) -> None:
    """Committee: any unit. Unit admin: only their own."""
    if principal.is_committee:
        return
    if principal.is_unit_admin and principal.unit_id == unit_id:
        return
    raise Forbidden()


async def check_duty_zone(principal: Principal, zone_id: int, *,
                          at: datetime | None = None) -> Rotation | None:
    """Committee: any zone (returns None). Otherwise the caller must be on duty in that zone now."""
    if principal.is_committee:
        return None
    rotation = await duty_rotation(principal, at=at)
    if rotation is None or rotation.zone_id != zone_id:
        raise NotOnDuty(zone_id=zone_id)
    return rotation

