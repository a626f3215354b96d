"""System messages: into members' inboxes with the change that causes them, and to their phones
by the same rate-limited subscribe-message path as notices (one template per kind of message)."""

from __future__ import annotations

from collections.abc import Iterable

from models.notices import InboxItem, Notice, NoticeBatch, NoticeKind, NoticeStatus
from models.org import Liaison, Member, Role
from services import clock

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
