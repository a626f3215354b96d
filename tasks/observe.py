"""Every job runs inside `observed`: counted by name and outcome, timed, and logged under the
request id it was enqueued with (the `request_id` keyword every `enqueue_*` helper adds)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from arq.worker import Retry

from services import metrics, requestctx

Job = Callable[..., Awaitable[Any]]


def observed(fn: Job) -> Job:
    name = fn.__name__
    if getattr(fn, "__observed__", False):
        return fn

    @functools.wraps(fn)
    async def job(ctx: dict[str, Any], *args: Any, request_id: str | None = None, **kwargs: Any) -> Any:
        rid = requestctx.request_id.set(request_id)
        tag = requestctx.job.set(f"{name}:{ctx.get('job_id', '')}")
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await fn(ctx, *args, **kwargs)
            outcome = "ok"
            return result
        except Retry:
            outcome = "retry"
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            metrics.JOBS.labels(name, outcome).inc()
            metrics.JOB_SECONDS.labels(name).observe(time.perf_counter() - started)
            requestctx.job.reset(tag)
            requestctx.request_id.reset(rid)

    job.__observed__ = True  # type: ignore[attr-defined]
    return job


def traced() -> dict[str, str]:
    """Keyword arguments an enqueue adds: the request id of the request (or job) enqueuing."""
    rid = requestctx.request_id.get()
    return {"request_id": rid} if rid else {}
