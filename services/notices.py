"""Notices: who may send to whom, writing one (the row is its own outbox: services/delivery.py
carries it to every inbox and phone), who may read it, and its receipts and delivery figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from models.notices import (
    InboxItem,
    Notice,
    NoticeBatch,
    NoticeKind,
    NoticeTally,
    NoticePriority,
    NoticeStatus,
    PushStatus,
    UnitReceipt,
)
from models.org import Member, Role, Unit
from services import audience as audience_rules
from services import files
from services.access import duty_rotation
from services.auth import Principal
from services.errors import (
    Forbidden,
    NoticeNotFound,
    NotOnDuty,
)
from services.views import View

# -- sending -------------------------------------------------------------------------------------

async def check_audience(principal: Principal, audience: dict[str, Any]) -> int | None:
    """Committee: anyone. Liaison: their zones. Duty unit: its zone. Unit admin: their unit.
    Returns the sender's unit."""
    await audience_rules.check_exists(audience)
    if principal.is_committee:
        return None
    if principal.is_liaison:
        await audience_rules.check_within(audience, zone_ids=set(principal.liaison_zone_ids))
        return None
    if not principal.is_unit_admin or principal.unit_id is None:
        raise Forbidden()
    zones, units = set(audience.get("zone_ids", [])), set(audience.get("unit_ids", []))
    if not audience.get("all") and not audience.get("roles") and not zones and units <= {principal.unit_id}:
        return principal.unit_id
    duty = await duty_rotation(principal)
    if duty is None:
        raise NotOnDuty(zone_id=principal.zone_id)
    await audience_rules.check_within(audience, zone_ids={duty.zone_id})
    return principal.unit_id


async def create(principal: Principal, *, title: str, body: str, audience: dict[str, Any],
                 require_ack: bool, ack_due_at: datetime | None, priority: str,
                 attachments: list[dict[str, Any]], remind_after_s: int | None,
                 ref_type: str = "", ref_id: int | None = None) -> Notice:
    """A notice for an audience (`ref_type`/`ref_id`: what it is about, e.g. a featured practice)."""
    sender_unit = await check_audience(principal, audience)
    attachments = await files.resolve(principal, attachments)
    async with in_transaction():
        notice = await Notice.create(
            kind=NoticeKind.NOTICE, status=NoticeStatus.QUEUED, title=title, body=body,
            audience=audience, require_ack=require_ack, ack_due_at=ack_due_at,
            priority=NoticePriority(priority), attachments=attachments,
            remind_after_s=remind_after_s, sender_id=principal.member_id,
            sender_unit_id=sender_unit, ref_type=ref_type, ref_id=ref_id)
        await files.attach(attachments, ref_type="notice", ref_id=notice.id)
    return notice


async def resolve_audience(audience: dict[str, Any]) -> list[int]:
    """Active people named by the audience (see services/audience.py): the union of everyone,
    zones and units, narrowed to `roles` when given; `committee` adds the committee staff."""
    roles = set(audience.get("roles") or [])
    people = Member.filter(is_active=True, unit_id__isnull=False)
    if audience.get("all"):
        pass
    elif audience.get("zone_ids") or audience.get("unit_ids"):
        people = people.filter(Q(unit__zone_id__in=audience.get("zone_ids") or [])
                               | Q(unit_id__in=audience.get("unit_ids") or []))
    elif not roles - {"committee"}:
        people = people.filter(id__in=[])  # only the committee was named (or member_ids below)
    unit_roles = roles - {"committee"}
    if unit_roles and "member" not in unit_roles:  # "member" names every member, admins too
        people = people.filter(role__in=sorted(unit_roles))
    ids = set(await people.values_list("id", flat=True))
    if "committee" in roles:
        ids |= set(await Member.filter(is_active=True, role__in=[Role.COMMITTEE, Role.LIAISON])
                   .values_list("id", flat=True))
    if audience.get("member_ids"):  # system messages name their people
        ids |= set(await Member.filter(id__in=audience["member_ids"], is_active=True)
                   .values_list("id", flat=True))
    return sorted(ids)


async def can_read_any(principal: Principal, notice_ids: list[int]) -> bool:
    """Whether the caller received or sent one of these notices (their attachments' readers)."""
    if await InboxItem.exists(notice_id__in=notice_ids, member_id=principal.member_id):
        return True
    return await Notice.exists(id__in=notice_ids, sender_id=principal.member_id)


# -- stats ---------------------------------------------------------------------------------------

async def stats(principal: Principal, notice_id: int) -> dict[str, Any]:
    notice = await Notice.get_or_none(id=notice_id, kind=NoticeKind.NOTICE)
    if notice is None:
        raise NoticeNotFound(notice_id=notice_id)
    own_unit_only = False
    if not principal.is_committee and notice.sender_id != principal.member_id:
        if not (principal.is_unit_admin and (
                await InboxItem.exists(notice_id=notice_id, unit_id=principal.unit_id)
                or await NoticeTally.exists(notice_id=notice_id, unit_id=principal.unit_id))):
            raise Forbidden()
        own_unit_only = True
    base = InboxItem.filter(notice_id=notice_id)
    if own_unit_only:
        base = base.filter(unit_id=principal.unit_id)
    if notice.archived_at is not None:  # its rows were folded into per-unit counts
        kept = await NoticeTally.filter(notice_id=notice_id, **(
            {"unit_id": principal.unit_id} if own_unit_only else {}))
        delivered, read = sum(t.delivered for t in kept), sum(t.read for t in kept)
        acked = sum(t.acked for t in kept)
        by_push: dict[Any, int] = {}
        for t in kept:
            for status, n in t.pushes.items():
                key = None if status == "pending" else PushStatus(status)
                by_push[key] = by_push.get(key, 0) + n
    else:
        delivered = await base.count()
        read = await base.filter(read_at__isnull=False).count()
        acked = await base.filter(acked_at__isnull=False).count()
        by_push = dict(await base.group_by("push_status").annotate(n=Count("id"))
                       .values_list("push_status", "n"))
    pushes = {s.value: by_push.get(s, 0) for s in PushStatus} | {"pending": by_push.get(None, 0)}
    pushed = pushes[PushStatus.SENT.value]
    per_unit = await _per_unit(notice_id, principal.unit_id if own_unit_only else None)
    # A unit admin sees their unit: its recipients are its members in the audience, each
    # delivered with their batch (one row each).
    if own_unit_only:
        total = delivered
        batches = [(at, 1) for (at,) in await base.order_by("delivered_at").values_list("delivered_at")]
        if notice.archived_at is not None:
            batches = []  # when each row arrived went with the rows
    else:
        total = notice.recipients
        batches = await NoticeBatch.filter(notice_id=notice_id, delivered_at__isnull=False) \
            .order_by("delivered_at").values_list("delivered_at", "size")
    s99 = s100 = None
    if total and batches:
        reached = 0
        for at, size in batches:
            reached += size
            if s99 is None and reached >= 0.99 * total:
                s99 = round((at - notice.created_at).total_seconds(), 3)
        if reached >= total:
            s100 = round((batches[-1][0] - notice.created_at).total_seconds(), 3)
    out: dict[str, Any] = {
        "notice_id": notice_id, "status": notice.status.value, "recipients": total,
        "delivered": delivered, "pushed": pushed, "read": read, "acked": acked,
        "share_delivered": round(delivered / total, 4) if total else None,
        "share_read": round(read / total, 4) if total else None,
        "pushes": pushes, "scope": "unit" if own_unit_only else "all",
        "seconds_to_deliver_99": s99, "seconds_to_deliver_all": s100, "by_unit": per_unit,
        "units_signed": await UnitReceipt.filter(notice_id=notice_id).count(),
    }
    if principal.is_unit_admin and principal.unit_id is not None:
        unread = await InboxItem.filter(notice_id=notice_id, unit_id=principal.unit_id,
                                        read_at__isnull=True).values_list("member_id", flat=True)
        names = dict(await Member.filter(id__in=unread).values_list("id", "name"))
        out["my_unit_unread"] = [{"member_id": m, "name": names.get(m, "")} for m in unread]
    return out


async def _per_unit(notice_id: int, unit_id: int | None) -> list[dict[str, Any]]:
    kept = await NoticeTally.filter(notice_id=notice_id, **({"unit_id": unit_id} if unit_id is not None else {}))
    if kept:
        signed = set(await UnitReceipt.filter(notice_id=notice_id).values_list("unit_id", flat=True))
        names = dict(await Unit.filter(id__in=[t.unit_id for t in kept if t.unit_id]).values_list("id", "name"))
        return [{"unit_id": t.unit_id, "unit_name": names.get(t.unit_id, ""), "delivered": t.delivered,
                 "read": t.read, "acked": t.acked, "signed": t.unit_id in signed}
                for t in sorted(kept, key=lambda t: t.unit_id or 0)]
    qs = InboxItem.filter(notice_id=notice_id)
    if unit_id is not None:
        qs = qs.filter(unit_id=unit_id)
    delivered = dict(await qs.group_by("unit_id").annotate(n=Count("id")).values_list("unit_id", "n"))
    read = dict(await qs.filter(read_at__isnull=False).group_by("unit_id").annotate(n=Count("id"))
                .values_list("unit_id", "n"))
    acked = dict(await qs.filter(acked_at__isnull=False).group_by("unit_id").annotate(n=Count("id"))
                 .values_list("unit_id", "n"))
    signed = set(await UnitReceipt.filter(notice_id=notice_id).values_list("unit_id", flat=True))
    names = dict(await Unit.filter(id__in=[u for u in delivered if u]).values_list("id", "name"))
    return [{"unit_id": u, "unit_name": names.get(u, ""), "delivered": n, "read": read.get(u, 0),
             "acked": acked.get(u, 0), "signed": u in signed}
            for u, n in sorted(delivered.items(), key=lambda kv: kv[0] or 0)]



# -- what was sent --------------------------------------------------------------------------------

async def sent(principal: Principal, *, cursor: int | None, limit: int) -> dict[str, Any]:
    """Notices newest first, with their reach: the committee sees every notice, anyone else who
    may send (liaisons, duty units) the ones they sent. Two queries per page."""
    if not (principal.is_staff or principal.is_unit_admin):
        raise Forbidden()
    qs = Notice.filter(kind=NoticeKind.NOTICE)
    if not principal.is_committee:
        qs = qs.filter(sender_id=principal.member_id)
    if cursor is not None:
        qs = qs.filter(id__lt=cursor)
    rows = await qs.order_by("-id").limit(limit)
    ids = [n.id for n in rows]
    read = dict(await InboxItem.filter(notice_id__in=ids, read_at__isnull=False)
                .annotate(n=Count("id")).group_by("notice_id").values_list("notice_id", "n")) if ids else {}
    acked = dict(await InboxItem.filter(notice_id__in=ids, acked_at__isnull=False)
                 .annotate(n=Count("id")).group_by("notice_id").values_list("notice_id", "n")) if ids else {}
    for t in await NoticeTally.filter(notice_id__in=[n.id for n in rows if n.archived_at is not None]):
        read[t.notice_id] = read.get(t.notice_id, 0) + t.read
        acked[t.notice_id] = acked.get(t.notice_id, 0) + t.acked
    return {"items": [View(n, read=read.get(n.id, 0), acked=acked.get(n.id, 0)) for n in rows],
            "next_cursor": rows[-1].id if len(rows) == limit else None}
