"""Audiences of notices and activities: `{"all": true}` or any of zone_ids, unit_ids, roles (the
union of what is named), and who may address whom.

- the committee: anyone;
- a liaison: the zones assigned to them and units in them;
- a duty unit: its own zone and units in it;
- a unit admin: their own unit.
Every named zone and unit must exist: a notice "delivered" to nobody is refused up front.
"""

from __future__ import annotations

from typing import Any

from models.org import Unit, Zone
from services.errors import ServiceError, UnitNotFound, ZoneNotFound


class AudienceOutOfScope(ServiceError):
    code, http_status, default_message = "audience_out_of_scope", 403, "只能向本人负责的范围发送"


async def check_exists(audience: dict[str, Any]) -> None:
    zones, units = set(audience.get("zone_ids", [])), set(audience.get("unit_ids", []))
    if zones:
        found = set(await Zone.filter(id__in=zones).values_list("id", flat=True))
        if missing := sorted(zones - found):
            raise ZoneNotFound(zone_ids=missing)
    if units:
        found = set(await Unit.filter(id__in=units).values_list("id", flat=True))
        if missing := sorted(units - found):
            raise UnitNotFound(unit_ids=missing)


async def check_within(audience: dict[str, Any], *, zone_ids: set[int] | None = None,
                       unit_id: int | None = None) -> None:
    """The audience names nothing outside the given zones (and their units), or outside the one
    given unit; `all` and `roles` (city-wide by nature) are out of any such scope."""
    if audience.get("all") or audience.get("roles"):
        raise AudienceOutOfScope()
    zones, units = set(audience.get("zone_ids", [])), set(audience.get("unit_ids", []))
    if unit_id is not None:
        if zones or units - {unit_id}:
            raise AudienceOutOfScope()
        return
    allowed = zone_ids or set()
    if zones - allowed:
        raise AudienceOutOfScope(zone_ids=sorted(zones - allowed))
    if units:
        inside = set(await Unit.filter(id__in=units, zone_id__in=allowed).values_list("id", flat=True))
        if units - inside:
            raise AudienceOutOfScope(unit_ids=sorted(units - inside))
