"""Prometheus metrics, in one place: what every process counts (requests in the API, jobs in a
worker, WeChat and WeChat Pay errors in both) and the gauges read when /metrics is scraped
(queue depth, outbox backlog). Each process exposes its own; Prometheus sums them."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter("zonehub_http_requests", "HTTP requests answered, by route template",
                        ["method", "route", "status"], registry=REGISTRY)
HTTP_SECONDS = Histogram("zonehub_http_request_duration_seconds", "Time to answer, by route template",
                         ["method", "route"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
JOBS = Counter("zonehub_jobs", "arq jobs run, by name and outcome (ok, error, retry, cancelled)",
               ["job", "outcome"], registry=REGISTRY)
JOB_SECONDS = Histogram("zonehub_job_duration_seconds", "Time a job ran, by name", ["job"],
                        buckets=(*LATENCY_BUCKETS, 60, 120, 300), registry=REGISTRY)
WECHAT_ERRORS = Counter("zonehub_wechat_errors", "WeChat API errors, by call and errcode "
                        "(-1: unreachable or unreadable)", ["api", "errcode"], registry=REGISTRY)
WECHAT_PAY_ERRORS = Counter("zonehub_wechat_pay_errors", "WeChat Pay errors, by call and code "
                            "(the answer's code, else its HTTP status; unreachable)", ["api", "code"],
                            registry=REGISTRY)
QUEUE_DEPTH = Gauge("zonehub_queue_depth", "Jobs waiting in the arq queue (read at scrape)",
                    registry=REGISTRY)
OUTBOX_BACKLOG = Gauge("zonehub_outbox_backlog", "Notice work not done yet (read at scrape): "
                       "notices to plan, batches to deliver, batches to push", ["step"], registry=REGISTRY)
UP = Gauge("zonehub_dependency_up", "Whether a dependency answered the last scrape", ["dependency"],
           registry=REGISTRY)


def wechat_error(api: str, errcode: int | None) -> None:
    WECHAT_ERRORS.labels(api, str(errcode if errcode is not None else -1)).inc()


def wechat_pay_error(api: str, code: str | int | None) -> None:
    WECHAT_PAY_ERRORS.labels(api, str(code) if code is not None else "unreachable").inc()


async def refresh_gauges(redis: Any, queue_name: str) -> None:
    """Read the queue depth and the notice outbox backlog now (called when /metrics is scraped);
    a dependency that does not answer is reported down, its gauge left as it was."""
    from models.notices import Notice, NoticeBatch, NoticeStatus  # models never import services

    try:
        QUEUE_DEPTH.set(await redis.zcard(queue_name))
        UP.labels("redis").set(1)
    except Exception:  # noqa: BLE001 (whatever Redis raised: it is down for this scrape)
        UP.labels("redis").set(0)
    try:
        OUTBOX_BACKLOG.labels("plan").set(await Notice.filter(status=NoticeStatus.QUEUED).count())
        OUTBOX_BACKLOG.labels("deliver").set(await NoticeBatch.filter(delivered_at__isnull=True).count())
        OUTBOX_BACKLOG.labels("push").set(
            await NoticeBatch.filter(delivered_at__isnull=False, pushed_at__isnull=True).count())
        UP.labels("database").set(1)
    except Exception:  # noqa: BLE001
        UP.labels("database").set(0)


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
