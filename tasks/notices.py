"""Notice jobs: thin, idempotent, IDs only. Each step hands the next to the queue after its data
is committed; the sweeper re-hands anything left behind (Redis outage, killed worker). The job
names and ids are defined here, once: everyone enqueues through the `enqueue_*` functions."""

from __future__ import annotations

import logging
from typing import Any

from arq import cron
from arq.connections import ArqRedis

from services import clock, delivery
from services.push import PushSlots
from services.settings import Settings
from tasks.observe import traced

log = logging.getLogger(__name__)


def _id(notice_id: int, step: str, batch_no: int | None = None, bucket: str | None = None) -> str:
    return ":".join(str(p) for p in ("notice", notice_id, step, batch_no, bucket) if p is not None)


async def enqueue_plan(redis: ArqRedis, notice_id: int, *, bucket: str | None = None) -> None:
    await redis.enqueue_job("plan_notice", notice_id, _job_id=_id(notice_id, "plan", bucket=bucket),
                            **traced())


async def enqueue_deliver(redis: ArqRedis, notice_id: int, batch_no: int, *,
                          bucket: str | None = None) -> None:
    await redis.enqueue_job("deliver_notice_batch", notice_id, batch_no,
                            _job_id=_id(notice_id, "deliver", batch_no, bucket), **traced())


async def enqueue_push(redis: ArqRedis, notice_id: int, batch_no: int, *,
                       bucket: str | None = None, waited: int = 0, defer_s: float | None = None) -> None:
    await redis.enqueue_job("push_notice_batch", notice_id, batch_no, waited,
                            _job_id=_id(notice_id, "push", batch_no, bucket), _defer_by=defer_s, **traced())


async def hand_over(redis: ArqRedis, notice_id: int) -> None:
    """After a notice is written: start its fan-out now. If the queue cannot be reached, the
    notice row is the outbox and the sweeper hands it over later; nothing is lost."""
    try:
        await enqueue_plan(redis, notice_id)
    except Exception:  # noqa: BLE001 (Redis down: the sweeper will pick it up)
        log.warning("queue unreachable; notice %s waits for the sweeper", notice_id)


async def plan_notice(ctx: dict[str, Any], notice_id: int) -> int:
    settings: Settings = ctx["settings"]
    batches = await delivery.plan(notice_id, batch_size=settings.notice_batch_size)
    for batch_no in batches:
        await enqueue_deliver(ctx["redis"], notice_id, batch_no)
    return len(batches)


async def deliver_notice_batch(ctx: dict[str, Any], notice_id: int, batch_no: int) -> int:
    size = await delivery.deliver_batch(notice_id, batch_no)
    await enqueue_push(ctx["redis"], notice_id, batch_no)
    return size


async def push_notice_batch(ctx: dict[str, Any], notice_id: int, batch_no: int,
                            waited: int = 0) -> dict[str, int]:
    """Push a batch when one of the push slots is free (services.push.PushSlots); else hand it
    to the queue again a little later, so waiting never counts against the job timeout."""
    settings: Settings = ctx["settings"]
    if not await delivery.push_pending(notice_id, batch_no):
        return {}
    slots: PushSlots = ctx["push_slots"]
    token = f"{notice_id}:{batch_no}:{ctx.get('job_id', '')}"
    if not await slots.acquire(token):
        await delivery.still_queued(notice_id, batch_no)  # the sweeper leaves it to this chain
        batch_s = settings.notice_batch_size / (settings.push_per_minute / 60)
        await enqueue_push(ctx["redis"], notice_id, batch_no, bucket=f"wait{waited + 1}",
                           waited=waited + 1, defer_s=max(0.2, min(5.0, batch_s / 4)))
        return {"waiting": 1}
    try:
        counts = await delivery.push_batch(notice_id, batch_no, pusher=ctx["pusher"],
                                           template_for=settings.template_for)
    finally:
        await slots.release(token)
    return dict(counts)


async def sweep_notices(ctx: dict[str, Any]) -> int:
    """Cron (every 10 s): hand over again every step left behind, in its 30-second bucket (a
    step handed over twice in one bucket is one job)."""
    work = await delivery.due_work()
    bucket = str(int(clock.now().timestamp() // delivery.STALE_AFTER.total_seconds()))
    for due in work:
        if due.step == "plan":
            await enqueue_plan(ctx["redis"], due.notice_id, bucket=bucket)
        elif due.step == "deliver":
            await enqueue_deliver(ctx["redis"], due.notice_id, due.batch_no or 0, bucket=bucket)
        else:
            await enqueue_push(ctx["redis"], due.notice_id, due.batch_no or 0, bucket=bucket)
    return len(work)


async def chase_notices(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron (every minute): one reminder after the delay, the deadline lists at the deadline."""
    settings: Settings = ctx["settings"]
    reminded = await delivery.send_reminders(pusher=ctx["pusher"],
                                             template_id=settings.wechat_notice_template_id,
                                             default_after_s=settings.notice_remind_after_s,
                                             late_s=settings.notice_remind_late_s)
    lists = await delivery.send_deadline_lists()
    return {"reminded": reminded, "deadline_lists": lists}


CRON = [
    cron(sweep_notices, second=set(range(0, 60, 10)), unique=True),
    cron(chase_notices, second=30, unique=True),
]
