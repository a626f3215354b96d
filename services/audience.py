"""Audiences of notices and activities, and who may address whom.

An audience names people: `all` (every member of a unit), `zone_ids` (the members of their units),
`unit_ids` — the union of what is named. `roles` narrows that union to those roles
(`{"zone_ids": [3], "roles": ["unit_admin"]}`: zone 3's unit admins); alone, it names everyone
with those roles city-wide. The role `committee` always adds the committee staff (liaisons too).

- the committee: anyone;
- a liaison: the zones assigned to them and units in them;
- a duty unit: its own zone and units in it;
- a unit admin: their own unit.
Every named zone and unit must exist: a notice "delivered" to nobody is refused up front.
"""

from __future__ import annotations

from typing import Any

from models.org import Unit, Zone
from services.errors import (
    AudienceOutOfScope,
    UnitNotFound,
    ZoneNotFound,
)


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


def matches(audience: dict[str, Any], *, unit_id: int | None, zone_id: int | None,
            role: str) -> bool:
    """Whether a person (their unit, its zone, their role) is in the audience."""
    roles = audience.get("roles") or []
    if role in ("committee", "liaison"):
        return "committee" in roles
    targeted = bool(audience.get("all") or audience.get("zone_ids") or audience.get("unit_ids"))
    if targeted and not (audience.get("all") or zone_id in audience.get("zone_ids", [])
                         or unit_id in audience.get("unit_ids", [])):
        return False
    return not roles or role in roles or (role == "unit_admin" and "member" in roles)


async def check_within(audience: dict[str, Any], *, zone_ids: set[int] | None = None,
                       unit_id: int | None = None) -> None:
    """The audience names nothing outside the given zones (and their units), or outside the one
    given unit: `all`, the committee, and roles on their own (city-wide) are out of any scope."""
    targeted = audience.get("zone_ids") or audience.get("unit_ids")
    if audience.get("all") or "committee" in (audience.get("roles") or []) or (
            audience.get("roles") and not targeted):
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
