"""Each member's inbox: system messages written into it with the change that causes them (and
pushed to the phone by the same rate-limited subscribe path as notices, one template per kind of
message), reading it, read and acknowledgement receipts, a unit admin signing for the unit, and
the subscribe-message grants members give."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from models.notices import (
    InboxItem,
    Notice,
    NoticeBatch,
    NoticeKind,
    NoticeStatus,
    NoticeTally,
    SubscriptionGrant,
    UnitReceipt,
)
from models.org import Liaison, Member, Role
from services import clock
from services.auth import Principal
from services.errors import AckNotRequired, Forbidden, NoticeNotFound

SYSTEM_BATCH = 1000


async def send_system(*, member_ids: Iterable[int], topic: str, title: str, body: str = "",
                      ref_type: str = "", ref_id: int | None = None) -> Notice | None:
    """One notice to the named members; call inside the transaction that causes it."""
    ids = sorted(set(member_ids))
    if not ids:
        return None
    now = clock.now()
    notice = await Notice.create(kind=NoticeKind.SYSTEM, topic=topic, title=title[:128], body=body,
                                 audience={"member_ids": ids[:1000]}, ref_type=ref_type,
                                 ref_id=ref_id, recipients=len(ids), planned_at=now,
                                 delivered_at=now, status=NoticeStatus.DELIVERED)
    units = dict(await Member.filter(id__in=ids).values_list("id", "unit_id"))
    await InboxItem.bulk_create(
        [InboxItem(notice_id=notice.id, member_id=m, unit_id=units.get(m), delivered_at=now)
         for m in ids], batch_size=1000, ignore_conflicts=True)
    # Delivered, not yet pushed: the notice sweeper hands these batches to the push job once
    # this transaction has committed, so the message reaches the phone too.
    await NoticeBatch.bulk_create(
        [NoticeBatch(notice_id=notice.id, batch_no=n, member_ids=ids[i:i + SYSTEM_BATCH],
                     size=len(ids[i:i + SYSTEM_BATCH]), delivered_at=now)
         for n, i in enumerate(range(0, len(ids), SYSTEM_BATCH))])
    return notice


async def unit_admin_ids(unit_ids: Iterable[int]) -> list[int]:
    return await Member.filter(unit_id__in=list(unit_ids), role=Role.UNIT_ADMIN,
                               is_active=True).values_list("id", flat=True)


async def liaison_ids(zone_id: int) -> list[int]:
    return await Liaison.filter(zone_id=zone_id).values_list("member_id", flat=True)


async def staff_ids(zone_id: int) -> list[int]:
    """Who governs a zone: the committee, and the zone's liaisons."""
    committee = await Member.filter(role=Role.COMMITTEE, is_active=True).values_list("id", flat=True)
    return sorted({*committee, *await liaison_ids(zone_id)})


# -- reading and receipts -----------------------------------------------------------------------

async def inbox_page(member_id: int, *, cursor: int | None, limit: int) -> dict[str, Any]:
    """Newest notice first, whatever order the worker delivered them in (`cursor`: the previous
    page's next_cursor, a notice id), with the unread count."""
    qs = InboxItem.filter(member_id=member_id)
    if cursor is not None:
        qs = qs.filter(notice_id__lt=cursor)
    rows = await qs.order_by("-notice_id").limit(limit).select_related("notice")
    unread = await InboxItem.filter(member_id=member_id, read_at__isnull=True).count()
    return {"items": rows, "unread": unread,
            "next_cursor": rows[-1].notice_id if len(rows) == limit else None}


async def _item(member_id: int, notice_id: int) -> InboxItem:
    item = await InboxItem.get_or_none(notice_id=notice_id, member_id=member_id)
    if item is None:
        raise NoticeNotFound(notice_id=notice_id)
    return item


async def mark_read(member_id: int, notice_id: int) -> InboxItem:
    await _item(member_id, notice_id)
    await InboxItem.filter(notice_id=notice_id, member_id=member_id, read_at__isnull=True).update(
        read_at=clock.now())
    return await _item(member_id, notice_id)


async def acknowledge(member_id: int, notice_id: int) -> InboxItem:
    item = await _item(member_id, notice_id)
    notice = await Notice.get(id=notice_id)
    if not notice.require_ack:
        raise AckNotRequired()
    now = clock.now()
    if item.read_at is None:
        await InboxItem.filter(id=item.id, read_at__isnull=True).update(read_at=now)
    await InboxItem.filter(id=item.id, acked_at__isnull=True).update(acked_at=now)
    return await _item(member_id, notice_id)


async def sign_for_unit(principal: Principal, notice_id: int) -> UnitReceipt:
    if not principal.is_unit_admin or principal.unit_id is None:
        raise Forbidden()
    await _item(principal.member_id, notice_id)
    try:
        return await UnitReceipt.create(notice_id=notice_id, unit_id=principal.unit_id,
                                        signed_by_id=principal.member_id, signed_at=clock.now())
    except IntegrityError:
        return await UnitReceipt.get(notice_id=notice_id, unit_id=principal.unit_id)


async def record_subscription(member_id: int, *, template_id: str, accept: bool) -> SubscriptionGrant:
    await SubscriptionGrant.bulk_create([SubscriptionGrant(member_id=member_id, template_id=template_id)],
                                        ignore_conflicts=True)
    if accept:
        await SubscriptionGrant.filter(member_id=member_id, template_id=template_id).update(
            available=F("available") + 1, accepted_total=F("accepted_total") + 1)
    else:
        await SubscriptionGrant.filter(member_id=member_id, template_id=template_id).update(
            rejected_total=F("rejected_total") + 1)
    return await SubscriptionGrant.get(member_id=member_id, template_id=template_id)


# -- archiving old notices -----------------------------------------------------------------------

async def archive_old(*, older_than: timedelta, limit: int = 50) -> int:
    """Fold the inbox rows of notices created before `older_than` ago into per-unit counts
    (NoticeTally) and delete them, a notice per transaction: its reach and acknowledgement
    figures survive, the table stops growing with every city-wide notice. Safe to run twice and
    on several workers (the notice's `archived_at` is claimed by a conditional update)."""
    cutoff = clock.now() - older_than
    ids = await Notice.filter(created_at__lt=cutoff, archived_at__isnull=True,
                              delivered_at__isnull=False).order_by("id").limit(limit) \
        .values_list("id", flat=True)
    done = 0
    for notice_id in ids:
        async with in_transaction():
            if not await Notice.filter(id=notice_id, archived_at__isnull=True).update(archived_at=clock.now()):
                continue
            tallies: dict[int | None, NoticeTally] = {}
            rows = InboxItem.filter(notice_id=notice_id)
            for unit_id, status, delivered, read, acked in await rows.group_by("unit_id", "push_status") \
                    .annotate(n=Count("id"), r=Count("read_at"), a=Count("acked_at")) \
                    .values_list("unit_id", "push_status", "n", "r", "a"):
                tally = tallies.setdefault(unit_id, NoticeTally(notice_id=notice_id, unit_id=unit_id, pushes={}))
                tally.delivered += delivered
                tally.read += read
                tally.acked += acked
                key = status.value if status is not None else "pending"
                tally.pushes[key] = tally.pushes.get(key, 0) + delivered
            await NoticeTally.bulk_create(list(tallies.values()))
            await rows.delete()
            done += 1
    return done


async def tallies(notice_ids: Iterable[int], *, unit_ids: Iterable[int] | None = None) -> list[NoticeTally]:
    qs = NoticeTally.filter(notice_id__in=list(notice_ids))
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=list(unit_ids))
    return await qs
