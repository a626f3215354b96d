"""arq WorkerSettings: `zonehub worker` (or `arq tasks.worker.WorkerSettings`)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, async_check_health
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from prometheus_client import start_http_server
from tortoise.context import get_current_context

from services import clock, metrics
from services.db import close_db, init_db
from services.pay import WeChatPay
from services.push import Pusher, PushSlots, batch_slots
from services.redis import (
    QUEUE_NAME,
    create_redis,
    master_kwargs,
    register_process_client,
    unregister_process_client,
)
from services.settings import Settings, get_settings
from services.wechat import WeChat
from tasks import activities, funds, notices, personal_data, rotations, supervision, wechat
from tasks.observe import observed

log = logging.getLogger("zonehub.worker")


_metrics_served = False
HEALTH_CHECK_INTERVAL_S = 30


def health_check_key(settings: Settings) -> str:
    """Each worker's own heartbeat (a worker's name, default the host name): `zonehub worker
    --check` asks whether this one is alive, not whether any is."""
    return f"{QUEUE_NAME}:health-check:{settings.worker_name or socket.gethostname()}"


async def check(settings: Settings) -> int:
    """`zonehub worker --check`: 0 when this worker's heartbeat (written every 30 s, kept 31 s)
    is in Redis, else 1; prints what it found."""
    return await async_check_health(redis_settings(settings), health_check_key(settings),
                                    QUEUE_NAME)


async def startup(ctx: dict[str, Any]) -> None:
    settings = ctx.get("settings") or get_settings()  # tests pass their own
    # A worker inside a process that already set up Tortoise (the tests) shares it.
    ctx["owns_db"] = get_current_context() is None
    if ctx["owns_db"]:
        await init_db(settings.database_url)
    assert settings.redis_url
    ctx["settings"] = settings
    ctx["wechat"] = WeChat(appid=settings.wechat_appid,
                           secret=settings.wechat_secret.get_secret_value(),
                           api_base=settings.wechat_api_base, settings=settings)
    ctx["app_redis"] = create_redis(settings)
    register_process_client(ctx["app_redis"])  # caches' versions moved after a job's commit
    ctx["pusher"] = Pusher(wechat=ctx["wechat"], redis=ctx["app_redis"],
                           api_base=settings.wechat_api_base, per_minute=settings.push_per_minute,
                           in_flight=settings.push_in_flight, retries=settings.push_retries)
    ctx["push_slots"] = PushSlots(
        ctx["app_redis"], hold_s=2 * settings.push_batch_budget_s,
        cap=batch_slots(per_minute=settings.push_per_minute, batch_size=settings.notice_batch_size,
                        budget_s=settings.push_batch_budget_s))
    ctx["pay"] = WeChatPay(settings)
    await ctx["pay"].start()
    global _metrics_served
    if settings.worker_metrics_port and not _metrics_served:  # once a process
        start_http_server(settings.worker_metrics_port, registry=metrics.REGISTRY)
        _metrics_served = True
        log.info("worker metrics on :%s/metrics", settings.worker_metrics_port)


async def shutdown(ctx: dict[str, Any]) -> None:
    if "pay" in ctx:
        await ctx["pay"].close()
    if "pusher" in ctx:
        await ctx["pusher"].close()
        unregister_process_client(ctx["app_redis"])
        await ctx["app_redis"].aclose()
    if "wechat" in ctx:
        ctx["wechat"].close()
    if ctx.get("owns_db"):
        await close_db()


def redis_settings(app_settings: Settings | None = None) -> RedisSettings:
    """arq's connection: the Redis at ZONEHUB_REDIS_URL, or the master the Sentinels name."""
    app_settings = app_settings or get_settings()
    url = app_settings.redis_url
    if not url:
        raise RuntimeError("ZONEHUB_REDIS_URL is required for the worker")
    if app_settings.redis_sentinel_master:
        master = master_kwargs(app_settings)
        hosts: Any = list(app_settings.redis_sentinel_hosts)
        settings = RedisSettings(host=hosts, sentinel=True,
                                 sentinel_master=app_settings.redis_sentinel_master,
                                 username=master.get("username"), password=master.get("password"),
                                 database=master.get("db", 0), ssl=bool(master.get("ssl")))
    else:
        settings = RedisSettings.from_dsn(url)
    settings.conn_retries = 10**9      # at start-up: wait for Redis, however long it takes
    settings.conn_retry_delay = 1
    settings.retry_on_error = [RedisConnectionError]
    settings.retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 3,
                           supported_errors=(RedisConnectionError,))
    return settings


REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class ResilientWorker(Worker):
    """arq's worker, riding out a Redis outage instead of exiting: a poll that cannot reach Redis
    waits and tries again (every job is idempotent and its effects are recorded in the database,
    so a job whose result could not be written is simply run again later)."""

    _down_since: float | None = None

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("redis unreachable (%s); the worker waits for it", type(exc).__name__)
            await asyncio.sleep(min(5.0, 0.5 + time.monotonic() - self._down_since))
            return
        if self._down_since is not None:
            log.info("redis is back after %.1f s", time.monotonic() - self._down_since)
            self._down_since = None


def run(*, burst: bool = False) -> None:
    """`zonehub worker`."""
    kwargs = {k: v for k, v in vars(WorkerSettings).items() if not k.startswith("_")}
    kwargs["health_check_key"] = health_check_key(get_settings())
    ResilientWorker(**kwargs, redis_settings=redis_settings(), burst=burst,
                    health_check_interval=HEALTH_CHECK_INTERVAL_S).run()


MODULES = (wechat, activities, rotations, notices, supervision, funds, personal_data)
CRON_JOBS = [job for module in MODULES for job in module.CRON]  # each schedule beside its job
for _cron in CRON_JOBS:  # counted, timed and logged with their request id (tasks/observe.py)
    _cron.coroutine = observed(_cron.coroutine)
FUNCTIONS: list[Any] = [*{job.coroutine for job in CRON_JOBS},
                        *map(observed, (notices.plan_notice, notices.deliver_notice_batch,
                                        notices.push_notice_batch))]


class WorkerSettings:
    functions = FUNCTIONS
    cron_jobs = CRON_JOBS
    on_startup = startup
    on_shutdown = shutdown
    max_jobs = 100  # arq's default of 10 caps throughput at ~200 jobs/s (PERFORMANCE.md)
    job_timeout = 300  # twice ZONEHUB_PUSH_BATCH_BUDGET_S's default
    keep_result = 3600
    queue_name = QUEUE_NAME
    timezone = clock.SHANGHAI  # "hour=3" in a schedule is 03:00 in Shanghai, whatever the host's zone
    health_check_key = QUEUE_NAME + ":health-check"
