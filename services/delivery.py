"""How a notice travels, each step idempotent and recorded in the database:
1. `plan` resolves the audience once and writes batches of recipients (unique per notice).
2. `deliver_batch` bulk-inserts the batch's inbox rows (unique per member and notice).
3. `push_batch` leases the batch, takes rate-limit tokens, claims each chunk of rows (push_status
   NULL -> sending) before sending, so a member is pushed at most once per notice even if a
   worker dies mid-way; the lease is short and renewed, so another worker resumes within seconds.
4. `due_work` (the sweeper) finds any step not done after a while and hands it to the queue
   again: a Redis outage or a killed worker delays a notice, never drops or doubles it.
5. `send_reminders` and `send_deadline_lists` chase who has not read or acknowledged (a reminder
   more than two days late is not sent).
System messages (services/inbox.py) are written delivered; from step 3 on they travel alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models.notices import (
    DeadlineList,
    InboxItem,
    Notice,
    NoticeBatch,
    NoticeKind,
    NoticeStatus,
    PushStatus,
)
from models.org import Member
from services import clock, inbox
from services.db import fetch_rows
from services.notices import resolve_audience
from services.push import Pusher

log = logging.getLogger(__name__)

PUSH_CHUNK = 50
PUSH_LEASE = timedelta(seconds=20)  # renewed before every chunk: a dead worker's batch is free soon
STALE_AFTER = timedelta(seconds=30)  # handed over this long ago and not done: hand it over again


async def plan(notice_id: int, *, batch_size: int) -> list[int]:
    """Resolve the audience once and write the batches; returns batch numbers not yet delivered."""
    notice = await Notice.get_or_none(id=notice_id)
    if notice is None:
        return []
    if notice.planned_at is None:
        members = await resolve_audience(notice.audience)
        chunks = [members[i:i + batch_size] for i in range(0, len(members), batch_size)]
        try:
            async with in_transaction():
                # The conditional update decides which run plans; a second run changes nothing.
                won = await Notice.filter(id=notice_id, planned_at__isnull=True).update(
                    planned_at=clock.now(), recipients=len(members),
                    status=NoticeStatus.DELIVERING if chunks else NoticeStatus.DELIVERED,
                    delivered_at=None if chunks else clock.now())
                if won:
                    await NoticeBatch.bulk_create(
                        [NoticeBatch(notice_id=notice_id, batch_no=n, member_ids=c, size=len(c))
                         for n, c in enumerate(chunks)], batch_size=200)
        except IntegrityError:
            pass
    return await NoticeBatch.filter(notice_id=notice_id, delivered_at__isnull=True) \
        .order_by("batch_no").values_list("batch_no", flat=True)


async def deliver_batch(notice_id: int, batch_no: int) -> int:
    """Write the batch's inbox rows (idempotent); returns how many the batch holds."""
    batch = await NoticeBatch.get_or_none(notice_id=notice_id, batch_no=batch_no)
    if batch is None:
        return 0
    if batch.delivered_at is None:
        now = clock.now()
        units = dict(await Member.filter(id__in=batch.member_ids).values_list("id", "unit_id"))
        async with in_transaction():
            await InboxItem.bulk_create(
                [InboxItem(notice_id=notice_id, member_id=m, unit_id=units.get(m), delivered_at=now)
                 for m in batch.member_ids], batch_size=1000, ignore_conflicts=True)
            await NoticeBatch.filter(id=batch.id, delivered_at__isnull=True).update(
                delivered_at=now, enqueued_at=now)  # the push job is handed over next
        if not await NoticeBatch.exists(notice_id=notice_id, delivered_at__isnull=True):
            await Notice.filter(id=notice_id, delivered_at__isnull=True).update(
                delivered_at=clock.now(), status=NoticeStatus.DELIVERED)
    return batch.size


def push_data(notice: Notice) -> dict[str, Any]:
    """The subscribe message: what it is, when, and what to do (20 characters each at most)."""
    if notice.kind is NoticeKind.SYSTEM:
        hint = (notice.body.strip().splitlines() or ["请在小程序中查看详情"])[0]
    else:
        hint = "请及时阅读" + ("并确认" if notice.require_ack else "")
    return {"thing1": {"value": notice.title[:20]},
            "time2": {"value": clock.local_iso(notice.created_at)[:16].replace("T", " ")},
            "thing3": {"value": hint[:20]}}


async def push_pending(notice_id: int, batch_no: int) -> bool:
    """The batch is delivered to the inbox and not yet pushed."""
    return await NoticeBatch.filter(notice_id=notice_id, batch_no=batch_no, delivered_at__isnull=False,
                                    pushed_at__isnull=True).exists()


async def still_queued(notice_id: int, batch_no: int) -> None:
    """A push batch waiting for a slot is in the queue: the sweeper need not hand it over."""
    await NoticeBatch.filter(notice_id=notice_id, batch_no=batch_no).update(enqueued_at=clock.now())


async def push_batch(notice_id: int, batch_no: int, *, pusher: Pusher,
                     template_for: Callable[[str], str]) -> Counter[str]:
    """Push the batch's members once each. The batch is leased for a short while and the lease
    renewed before each chunk; each chunk of rows is claimed (NULL -> sending) before it is sent,
    so after a crash claimed rows are not sent again and the rest is free within seconds."""
    now = clock.now()
    counts: Counter[str] = Counter()
    batch = await NoticeBatch.get_or_none(notice_id=notice_id, batch_no=batch_no)
    if batch is None or batch.delivered_at is None or batch.pushed_at is not None:
        return counts
    # A dead worker's lease runs out; rows it had claimed stay claimed (at most one push).
    leased = await NoticeBatch.filter(id=batch.id, pushed_at__isnull=True).filter(
        Q(leased_until__isnull=True) | Q(leased_until__lt=now)).update(
        leased_until=now + PUSH_LEASE, attempts=batch.attempts + 1)
    if not leased:
        return counts
    try:
        notice = await Notice.get(id=notice_id)
        data, template_id = push_data(notice), template_for(notice.topic)
        await InboxItem.filter(notice_id=notice_id, member_id__in=batch.member_ids,
                               push_status=PushStatus.SENDING).update(push_status=PushStatus.UNKNOWN)
        pending = await InboxItem.filter(notice_id=notice_id, member_id__in=batch.member_ids,
                                         push_status__isnull=True).values_list("id", "member_id")
        step = min(PUSH_CHUNK, pusher.chunk)
        for i in range(0, len(pending), step):
            chunk = pending[i:i + step]
            await pusher.reserve(len(chunk))  # wait for the rate limit, then hold the lease again
            await NoticeBatch.filter(id=batch.id).update(leased_until=clock.now() + PUSH_LEASE)
            counts.update(await _push_chunk(chunk, pusher=pusher, template_id=template_id,
                                            data=data))
    except BaseException:
        # Let the sweeper hand the rest to another run at once (claimed rows stay claimed).
        await NoticeBatch.filter(id=batch.id, pushed_at__isnull=True).update(
            leased_until=None, enqueued_at=None)
        raise
    await NoticeBatch.filter(id=batch.id).update(pushed_at=clock.now(), leased_until=None)
    return counts


async def _push_chunk(rows: list[tuple[int, int]], *, pusher: Pusher, template_id: str,
                      data: dict[str, Any]) -> Counter[str]:
    """Claim the rows (the rate-limit tokens are already taken), then send at once."""
    ids = [r[0] for r in rows]
    claimed = await InboxItem.filter(id__in=ids, push_status__isnull=True).update(
        push_status=PushStatus.SENDING)
    if claimed != len(ids):  # someone else has them: leave this chunk to them
        ids = await InboxItem.filter(id__in=ids, push_status=PushStatus.SENDING).values_list("id", flat=True)
    by_id = dict(rows)
    members = [by_id[i] for i in ids]
    granted = set(await _consume_grants(members, template_id))
    openids = dict(await Member.filter(id__in=list(granted)).values_list("id", "openid"))
    now = clock.now()
    outcome: dict[PushStatus | tuple[PushStatus, int | None], list[int]] = {}
    targets = [(i, by_id[i]) for i in ids if by_id[i] in granted and openids.get(by_id[i])]
    outcome[PushStatus.NO_GRANT] = [i for i in ids if not (by_id[i] in granted and openids.get(by_id[i]))]
    results = await asyncio.gather(*(pusher.send(openid=openids[m], template_id=template_id,
                                                 data=data, page="pages/notices/index")
                                     for _, m in targets))
    for (item_id, _), result in zip(targets, results, strict=True):
        outcome.setdefault((result.status, result.errcode), []).append(item_id)
    counts: Counter[str] = Counter()
    for k, item_ids in outcome.items():
        if not item_ids:
            continue
        status, errcode = (k, None) if isinstance(k, PushStatus) else k
        values: dict[str, Any] = {"push_status": status, "push_error": errcode}
        if status is PushStatus.SENT:
            values["pushed_at"] = now
        await InboxItem.filter(id__in=item_ids).update(**values)
        counts[status.value] += len(item_ids)
    return counts


async def _consume_grants(member_ids: list[int], template_id: str) -> list[int]:
    """Take one grant from each member who has one; returns who did (one statement)."""
    if not member_ids:
        return []
    marks = ", ".join(f"${i + 2}" for i in range(len(member_ids)))
    rows = await fetch_rows(
        f"UPDATE subscription_grant SET available = available - 1 WHERE template_id = $1 "
        f"AND available > 0 AND member_id IN ({marks}) RETURNING member_id",
        template_id, *member_ids)
    return [r[0] for r in rows]


# -- the sweeper ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Due:
    """A step of a notice left behind: "plan" (the notice), "deliver" or "push" (a batch)."""

    step: str
    notice_id: int
    batch_no: int | None = None


async def due_work(*, now: datetime | None = None) -> list[Due]:
    """Every step not done and not handed over lately; each is marked handed over now."""
    now = now or clock.now()
    stale = now - STALE_AFTER
    work: list[Due] = []
    queued = await Notice.filter(status=NoticeStatus.QUEUED).filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)).values_list("id", flat=True)
    if queued:
        await Notice.filter(id__in=queued).update(enqueued_at=now)
    work += [Due("plan", nid) for nid in queued]
    undelivered = await NoticeBatch.filter(delivered_at__isnull=True).filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)).values_list("id", "notice_id", "batch_no")
    unpushed = await NoticeBatch.filter(delivered_at__isnull=False, pushed_at__isnull=True).filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)).filter(
        Q(leased_until__isnull=True) | Q(leased_until__lt=now)).values_list("id", "notice_id", "batch_no")
    for step, rows in (("deliver", undelivered), ("push", unpushed)):
        if rows:
            await NoticeBatch.filter(id__in=[r[0] for r in rows]).update(enqueued_at=now)
        work += [Due(step, nid, bno) for _, nid, bno in rows]
    return work


# -- chasing -------------------------------------------------------------------------------------

async def send_reminders(*, pusher: Pusher, template_id: str, default_after_s: int,
                         late_s: int, now: datetime | None = None) -> int:
    """One reminder to each member who has not read (or not acknowledged) after the delay; one
    that fell due more than `late_s` ago is noise by now, and is dropped."""
    now = now or clock.now()
    sent = 0
    for notice in await Notice.filter(kind=NoticeKind.NOTICE, reminders_done_at__isnull=True,
                                      delivered_at__isnull=False):
        after = timedelta(seconds=notice.remind_after_s or default_after_s)
        if notice.created_at + after > now:
            continue
        if notice.created_at + after + timedelta(seconds=late_s) < now:  # the jobs were stopped, or rows imported
            await Notice.filter(id=notice.id).update(reminders_done_at=now)
            log.warning("notice %s: its reminder was due %s ago, not sent", notice.id,
                        now - notice.created_at - after)
            continue
        waiting = InboxItem.filter(notice_id=notice.id, reminded_at__isnull=True)
        waiting = waiting.filter(acked_at__isnull=True) if notice.require_ack else \
            waiting.filter(read_at__isnull=True)
        rows = await waiting.values_list("id", "member_id")
        data = {"thing1": {"value": ("提醒：" + notice.title)[:20]},
                "time2": {"value": clock.local_iso(notice.created_at)[:16].replace("T", " ")},
                "thing3": {"value": "您有通知尚未" + ("确认" if notice.require_ack else "阅读")}}
        for i in range(0, len(rows), PUSH_CHUNK):
            chunk = rows[i:i + PUSH_CHUNK]
            # Claim before sending: whichever worker sets reminded_at sends.
            claimed_ids = [r[0] for r in chunk]
            got = await InboxItem.filter(id__in=claimed_ids, reminded_at__isnull=True).update(reminded_at=now)
            if got != len(chunk):
                continue
            granted = set(await _consume_grants([m for _, m in chunk], template_id))
            openids = dict(await Member.filter(id__in=list(granted)).values_list("id", "openid"))
            for m in granted:
                if openids.get(m):
                    await pusher.send(openid=openids[m], template_id=template_id, data=data)
            sent += len(chunk)
        await Notice.filter(id=notice.id).update(reminders_done_at=now)
    return sent


async def send_deadline_lists(*, now: datetime | None = None) -> int:
    """At the deadline each unit admin gets the names of their members who did not acknowledge:
    once per unit (the unique list row decides, whichever worker runs this)."""
    now = now or clock.now()
    lists = 0
    for notice in await Notice.filter(require_ack=True, ack_due_at__lte=now,
                                      deadline_done_at__isnull=True, delivered_at__isnull=False):
        missing = await InboxItem.filter(notice_id=notice.id, acked_at__isnull=True) \
            .values_list("unit_id", "member_id")
        by_unit: dict[int, list[int]] = {}
        for unit_id, member_id in missing:
            if unit_id is not None:
                by_unit.setdefault(unit_id, []).append(member_id)
        names = dict(await Member.filter(id__in=[m for _, m in missing]).values_list("id", "name"))
        for unit_id, member_ids in by_unit.items():
            try:
                async with in_transaction():
                    await DeadlineList.create(notice_id=notice.id, unit_id=unit_id,
                                              member_ids=member_ids, sent_at=now)
                    await inbox.send_system(
                        member_ids=await inbox.unit_admin_ids([unit_id]),
                        topic="notice.deadline_list", title=f"未确认名单：{notice.title}",
                        body="以下党员在截止时间前未确认：" + "、".join(names.get(m, str(m)) for m in member_ids),
                        ref_type="notice", ref_id=notice.id)
                lists += 1
            except IntegrityError:
                continue
        await Notice.filter(id=notice.id).update(deadline_done_at=now)
    return lists
