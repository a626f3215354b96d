"""What zonehub recorded in one rotation: its activities and their attendance, the "three ones",
the supervision of the zone's units, the notices that reached the zone, the zone fund's lines.
The handover report is prefilled from it; the ledger reads the same figures."""

from __future__ import annotations

from typing import Any

from models.activities import Activity, ActivityStatus
from models.ledger import EntryStatus, FundEntry
from models.notices import InboxItem, Notice, NoticeKind, NoticeTally
from models.org import Rotation, Unit
from models.supervision import Assignment, AssignmentState
from services import compliance
from services.ledger import effect


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def activities_of(rotation: Rotation) -> list[dict[str, Any]]:
    rows = await Activity.filter(rotation_id=rotation.id).order_by("starts_at", "id")
    return [{"id": a.id, "kind": a.kind.value, "title": a.title, "starts_at": a.starts_at.isoformat(),
             "status": a.status.value, "confirmed": a.confirmed, "checked_in": a.checked_in,
             "held": a.status is ActivityStatus.ACTIVE and a.ends_at <= rotation.ends_at
             and a.checked_in > 0} for a in rows]


async def supervision_of(rotation: Rotation) -> dict[str, Any]:
    """Assignments of the zone's units due within the rotation: states and on-time share."""
    rows = await Assignment.filter(zone_id=rotation.zone_id, item__due_at__gte=rotation.starts_at,
                                   item__due_at__lt=rotation.ends_at).select_related("item")
    done = [a for a in rows if a.submitted_at is not None]
    on_time = [a for a in done if a.submitted_at <= a.item.due_at]
    by_state: dict[str, int] = {}
    for a in rows:
        by_state[a.state.value] = by_state.get(a.state.value, 0) + 1
    return {"assigned": len(rows), "submitted": len(done), "on_time": len(on_time),
            "accepted": sum(a.state is AssignmentState.ACCEPTED for a in rows),
            "on_time_share": share(len(on_time), len(rows)), "by_state": by_state}


async def notices_of(rotation: Rotation) -> dict[str, Any]:
    """Notices (not system messages) sent during the rotation, as they reached the zone's units."""
    units = await Unit.filter(zone_id=rotation.zone_id).values_list("id", flat=True)
    notice_ids = await Notice.filter(kind=NoticeKind.NOTICE, created_at__gte=rotation.starts_at,
                                     created_at__lt=rotation.ends_at).values_list("id", flat=True)
    items = InboxItem.filter(notice_id__in=notice_ids, unit_id__in=units)
    delivered = await items.count()
    read = await items.filter(read_at__isnull=False).count()
    ack_items = InboxItem.filter(notice_id__in=notice_ids, unit_id__in=units, notice__require_ack=True)
    ack_due = await ack_items.count()
    acked = await ack_items.filter(acked_at__isnull=False).count()
    reached = set(await items.values_list("notice_id", flat=True))
    for t in await NoticeTally.filter(notice_id__in=notice_ids, unit_id__in=units).select_related("notice"):
        delivered, read = delivered + t.delivered, read + t.read
        if t.notice.require_ack:
            ack_due, acked = ack_due + t.delivered, acked + t.acked
        reached.add(t.notice_id)
    return {"notices": len(reached),
            "delivered": delivered, "read": read, "read_share": share(read, delivered),
            "ack_required": ack_due, "acked": acked, "ack_share": share(acked, ack_due)}


async def funds_of(rotation: Rotation) -> dict[str, Any]:
    """The zone fund's booked lines in the rotation: income, expense, the balance at its end."""
    lines = await FundEntry.filter(zone_id=rotation.zone_id, status=EntryStatus.BOOKED,
                                   booked_at__lt=rotation.ends_at).values_list(
                                       "direction", "amount_fen", "booked_at")
    income = sum(a for d, a, at in lines if d.value == "income" and at >= rotation.starts_at)
    expense = sum(a for d, a, at in lines if d.value == "expense" and at >= rotation.starts_at)
    return {"income_fen": income, "expense_fen": expense,
            "lines": sum(1 for _, _, at in lines if at >= rotation.starts_at),
            "balance_fen": sum(effect(d, a) for d, a, _ in lines)}


async def record(rotation: Rotation) -> dict[str, Any]:
    activities = await activities_of(rotation)
    three = await compliance.rotation_status(rotation, at=rotation.ends_at)
    held = [a for a in activities if a["held"]]
    return {
        "rotation_id": rotation.id, "zone_id": rotation.zone_id, "unit_id": rotation.unit_id,
        "year": rotation.year, "quarter": rotation.quarter,
        "activities": activities,
        "attendance": {"held": len(held), "attendee_times": sum(a["checked_in"] for a in held),
                       "signed_up": sum(a["confirmed"] for a in held)},
        "three_ones": {k: three[k] for k in ("party_lesson", "party_activity", "handover_meeting")},
        "supervision": await supervision_of(rotation),
        "notices": await notices_of(rotation),
        "funds": await funds_of(rotation),
    }
