"""Writing and reading the audit log. `record` is called inside the transaction of the change it
describes (a rolled-back change leaves no record, a recorded change cannot lose its record)."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from tortoise.expressions import Q

from models.audit import AuditEntry
from services import clock, privacy, requestctx
from services.access import liaison_zone_ids
from services.auth import Principal
from services.errors import Forbidden
from services.views import View


def _plain(value: Any) -> Any:
    """JSON-friendly: enums by value, times as ISO 8601, containers walked."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


async def record(actor: Principal | int | None, action: str, target_type: str, target_id: int | None,
                 *, zone_id: int | None = None, **detail: Any) -> None:
    actor_id = actor.member_id if isinstance(actor, Principal) else actor
    await AuditEntry.create(at=clock.now(), actor_id=actor_id, action=action, target_type=target_type,
                            target_id=target_id, zone_id=zone_id, detail=_plain(detail),
                            address=requestctx.client_address.get())


async def families(principal: Principal) -> list[str]:
    """The kinds of change on record ("refund", "member", ...): what a reader filters by."""
    if not principal.is_staff:
        raise Forbidden()
    actions = await AuditEntry.all().distinct().order_by("action").values_list("action", flat=True)
    return sorted({str(a).split(".", 1)[0] for a in actions})


async def page(principal: Principal, *, cursor: int | None, limit: int, action: str | None,
               actor_id: int | None, target_type: str | None, target_id: int | None,
               zone_id: int | None) -> dict[str, Any]:
    """Newest first. The committee reads everything; a liaison what concerns their zones."""
    if not principal.is_staff:
        raise Forbidden()
    qs = AuditEntry.all()
    if not principal.is_committee:
        qs = qs.filter(zone_id__in=await liaison_zone_ids(principal))
    if cursor is not None:
        qs = qs.filter(id__lt=cursor)
    if action is not None:
        qs = qs.filter(Q(action=action) | Q(action__startswith=action.rstrip(".") + "."))
    for name, value in (("actor_id", actor_id), ("target_type", target_type),
                        ("target_id", target_id), ("zone_id", zone_id)):
        if value is not None:
            qs = qs.filter(**{name: value})
    rows: list[Any] = await qs.order_by("-id").limit(limit)
    if not principal.is_committee:  # a liaison reads who changed what, not whole phone numbers
        rows = [View(row, detail=privacy.mask_phones_in(row.detail)) for row in rows]
    return {"items": rows, "next_cursor": rows[-1].id if len(rows) == limit else None}
