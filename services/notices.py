"""Notices: committee-to-member broadcast with receipts, reminders and deadline lists.

The way a notice travels, each step idempotent and recorded in the database:
1. `create` writes the notice (status queued) — the notice row is its own outbox.
2. `plan` resolves the audience once and writes batches of recipients (unique per notice).
3. `deliver_batch` bulk-inserts the batch's inbox rows (unique per member and notice).
4. `push_batch` claims the batch, then each chunk of rows (push_status NULL -> sending) before
   sending, so a member is pushed at most once per notice even if a worker dies mid-way.
5. `due_work` (the sweeper) finds any step not done after a while and hands it to the queue
   again: a Redis outage or a killed worker delays a notice, never drops or doubles it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from models.notices import (
    DeadlineList,
    InboxItem,
    Notice,
    NoticeBatch,
    NoticeKind,
    NoticePriority,
    NoticeStatus,
    PushStatus,
    SubscriptionGrant,
    UnitReceipt,
)
from models.org import Member, Role, Unit
from services import audience as audience_rules
from services import clock, files, inbox
from services.audience import AudienceOutOfScope
from services.access import NotOnDuty, duty_rotation
from services.auth import Principal
from services.db import fetch_rows
from services.errors import Forbidden, NotFound, ServiceError
from services.push import Pusher

PUSH_CHUNK = 50
PUSH_LEASE = timedelta(seconds=20)  # renewed before every chunk: a dead worker's batch is free soon
STALE_AFTER = timedelta(seconds=30)  # handed over this long ago and not done: hand it over again


class NoticeNotFound(NotFound):
    code, default_message = "notice_not_found", "找不到该通知"


class AckNotRequired(ServiceError):
    code, http_status, default_message = "ack_not_required", 409, "该通知不需要确认"


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
                 attachments: list[dict[str, Any]], remind_after_s: int | None) -> Notice:
    sender_unit = await check_audience(principal, audience)
    attachments = await files.resolve(principal, attachments)
    async with in_transaction():
        notice = await Notice.create(
            kind=NoticeKind.NOTICE, status=NoticeStatus.QUEUED, title=title, body=body,
            audience=audience, require_ack=require_ack, ack_due_at=ack_due_at,
            priority=NoticePriority(priority), attachments=attachments,
            remind_after_s=remind_after_s, sender_id=principal.member_id,
            sender_unit_id=sender_unit)
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

async def due_work(*, now: datetime | None = None) -> list[tuple[str, tuple[int, ...], str]]:
    """(job, args, job_id) for every step not done and not handed over lately."""
    now = now or clock.now()
    stale = now - STALE_AFTER
    bucket = int(now.timestamp() // STALE_AFTER.total_seconds())
    work: list[tuple[str, tuple[int, ...], str]] = []
    for nid in await Notice.filter(status=NoticeStatus.QUEUED).filter(
            Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)).values_list("id", flat=True):
        work.append(("plan_notice", (nid,), f"notice:{nid}:plan:{bucket}"))
        await Notice.filter(id=nid).update(enqueued_at=now)
    undelivered = await NoticeBatch.filter(delivered_at__isnull=True).filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)).values_list("id", "notice_id", "batch_no")
    unpushed = await NoticeBatch.filter(delivered_at__isnull=False, pushed_at__isnull=True).filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)).filter(
        Q(leased_until__isnull=True) | Q(leased_until__lt=now)).values_list("id", "notice_id", "batch_no")
    for job, rows in (("deliver_notice_batch", undelivered), ("push_notice_batch", unpushed)):
        for bid, nid, bno in rows:
            work.append((job, (nid, bno), f"notice:{nid}:{job}:{bno}:{bucket}"))
        if rows:
            await NoticeBatch.filter(id__in=[r[0] for r in rows]).update(enqueued_at=now)
    return work


# -- chasing -------------------------------------------------------------------------------------

async def send_reminders(*, pusher: Pusher, template_id: str, default_after_s: int,
                         now: datetime | None = None) -> int:
    """One reminder to each member who has not read (or not acknowledged) after the delay."""
    now = now or clock.now()
    sent = 0
    for notice in await Notice.filter(kind=NoticeKind.NOTICE, reminders_done_at__isnull=True,
                                      delivered_at__isnull=False):
        after = timedelta(seconds=notice.remind_after_s or default_after_s)
        if notice.created_at + after > now:
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


# -- members -------------------------------------------------------------------------------------

async def inbox_page(member_id: int, *, before_id: int | None, limit: int) -> dict[str, Any]:
    qs = InboxItem.filter(member_id=member_id)
    if before_id is not None:
        qs = qs.filter(id__lt=before_id)
    rows = await qs.order_by("-id").limit(limit).select_related("notice")
    unread = await InboxItem.filter(member_id=member_id, read_at__isnull=True).count()
    return {"items": rows, "unread": unread,
            "next_cursor": rows[-1].id if len(rows) == limit else None}


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
        if not (principal.is_unit_admin and await InboxItem.exists(notice_id=notice_id,
                                                                  unit_id=principal.unit_id)):
            raise Forbidden()
        own_unit_only = True
    base = InboxItem.filter(notice_id=notice_id)
    if own_unit_only:
        base = base.filter(unit_id=principal.unit_id)
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

