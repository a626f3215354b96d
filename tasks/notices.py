"""Notice jobs: thin, idempotent, IDs only. Each step hands the next to the queue after its data
is committed; the sweeper re-hands anything left behind (Redis outage, killed worker)."""

from __future__ import annotations

import logging
from typing import Any

from services import notices
from services.settings import Settings

log = logging.getLogger(__name__)


async def _enqueue(ctx: dict[str, Any], job: str, *args: Any, job_id: str) -> None:
    await ctx["redis"].enqueue_job(job, *args, _job_id=job_id)


async def plan_notice(ctx: dict[str, Any], notice_id: int) -> int:
    settings: Settings = ctx["settings"]
    batches = await notices.plan(notice_id, batch_size=settings.notice_batch_size)
    for batch_no in batches:
        await _enqueue(ctx, "deliver_notice_batch", notice_id, batch_no,
                       job_id=f"notice:{notice_id}:deliver:{batch_no}")
    return len(batches)


async def deliver_notice_batch(ctx: dict[str, Any], notice_id: int, batch_no: int) -> int:
    size = await notices.deliver_batch(notice_id, batch_no)
    await _enqueue(ctx, "push_notice_batch", notice_id, batch_no,
                   job_id=f"notice:{notice_id}:push:{batch_no}")
    return size


async def push_notice_batch(ctx: dict[str, Any], notice_id: int, batch_no: int) -> dict[str, int]:
    settings: Settings = ctx["settings"]
    counts = await notices.push_batch(notice_id, batch_no, pusher=ctx["pusher"],
                                      template_for=settings.template_for)
    return dict(counts)


async def sweep_notices(ctx: dict[str, Any]) -> int:
    """Cron (every 10 s): hand over again every step left behind."""
    work = await notices.due_work()
    for job, args, job_id in work:
        await _enqueue(ctx, job, *args, job_id=job_id)
    return len(work)


async def chase_notices(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron (every minute): one reminder after the delay, the deadline lists at the deadline."""
    settings: Settings = ctx["settings"]
    reminded = await notices.send_reminders(pusher=ctx["pusher"],
                                            template_id=settings.wechat_notice_template_id,
                                            default_after_s=settings.notice_remind_after_s)
    lists = await notices.send_deadline_lists()
    return {"reminded": reminded, "deadline_lists": lists}
