"""Model -> JSON-ready dicts, shared by the route modules."""

from __future__ import annotations

from typing import Any

from models.org import Member, Rotation, Unit


def unit_ref(unit: Unit | None) -> dict[str, Any] | None:
    return {"id": unit.id, "name": unit.name} if unit is not None else None


def member(m: Member) -> dict[str, Any]:
    return {"id": m.id, "name": m.name, "phone": m.phone, "role": m.role.value,
            "unit_id": m.unit_id, "wechat_bound": m.openid is not None}


def unit(u: Unit, *, with_invite: bool = False) -> dict[str, Any]:
    out = {"id": u.id, "name": u.name, "zone_id": u.zone_id, "district": u.district,
           "nature": u.nature, "member_count": u.member_count, "strength": u.strength,
           "duty_order": u.duty_order}
    if with_invite:
        out["invite_code"] = u.invite_code
    return out


def rotation(r: Rotation | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"id": r.id, "zone_id": r.zone_id, "unit": unit_ref(r.unit), "year": r.year,
            "quarter": r.quarter, "starts_at": r.starts_at, "ends_at": r.ends_at}
