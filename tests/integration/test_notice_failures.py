"""Nothing lost, nothing doubled: a worker killed mid-fan-out, and Redis stopped mid-way."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis as sync_redis
from aiohttp.test_utils import TestClient

from fakewechat import FakeWeChat
from models.notices import InboxItem, PushStatus
from models.org import Member
from server.app import create_app
from server.keys import ARQ
from services import clock
from services.settings import Settings
from tests.integration.test_notices import everyone, grant_all, notice_to_granted_city, send
from tests.support import City, free_port, run_workers, staff_login, start_redis

ROOT = Path(__file__).parents[2]


async def _sweep_and_run(client: TestClient[Any, Any], settings: Settings) -> None:
    """What the cron does every 10 s: the sweeper hands over what was left behind."""
    await client.app[ARQ].enqueue_job("sweep_notices", _job_id=f"sweep-{time.monotonic_ns()}")
    await run_workers(settings)


async def test_a_cron_job_a_killed_worker_left_queued_is_run_by_the_next_worker(
        client: TestClient[Any, Any], settings: Settings) -> None:
    # A worker enqueues its own schedule's job ("cron:<name>:<ms>") and may die before running
    # it; the kill tests below then hand the queue to run_workers (CI once failed on exactly this:
    # "function 'cron:sweep_notices' not found").
    await client.app[ARQ].enqueue_job("cron:sweep_notices", _job_id="cron:sweep_notices:1")
    (worker,) = await run_workers(settings)
    assert worker.jobs_complete == 1


async def test_worker_killed_mid_fan_out_leaves_one_row_and_at_most_one_push_each(
        client: TestClient[Any, Any], settings: Settings, fake_wechat: FakeWeChat) -> None:
    staff, members, sent = await notice_to_granted_city(client)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ZONEHUB_")},
           "ZONEHUB_DATABASE_URL": settings.database_url, "ZONEHUB_REDIS_URL": settings.redis_url or "",
           "ZONEHUB_SECRET_KEY": settings.secret_key.get_secret_value(),
           "ZONEHUB_WECHAT_APPID": settings.wechat_appid,
           "ZONEHUB_WECHAT_SECRET": settings.wechat_secret.get_secret_value(),
           "ZONEHUB_WECHAT_API_BASE": settings.wechat_api_base,
           "ZONEHUB_PUSH_PER_MINUTE": "600", "ZONEHUB_PUSH_IN_FLIGHT": "2",
           "ZONEHUB_NOTICE_BATCH_SIZE": "10"}
    worker = subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(fake_wechat.messages) < 6 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(fake_wechat.messages) >= 6, "the worker never started pushing"
    finally:
        worker.send_signal(signal.SIGKILL)  # no clean shutdown: killed mid-way
        worker.wait(10)
    pushed_by_dead_worker = len(fake_wechat.messages)
    assert pushed_by_dead_worker < len(members)  # it really died mid-way

    # arq retries a dead worker's jobs once their in-progress marks expire (job_timeout); here
    # the marks are dropped instead of waiting, and the clock moves past our own push lease.
    r = sync_redis.Redis.from_url(settings.redis_url or "")
    for k in r.scan_iter("arq:in-progress:*"):
        r.delete(k)
    r.close()
    clock.travel(timedelta(minutes=11))
    await _sweep_and_run(client, settings)
    await _sweep_and_run(client, settings)
    rows = await InboxItem.filter(notice_id=sent["id"]).values_list("member_id", "push_status", "push_error")
    assert sorted(m for m, _, _ in rows) == members                # exactly one inbox row each
    per_member = Counter(m["touser"] for m in fake_wechat.messages)
    assert max(per_member.values()) == 1                            # at most one push each
    unknown = {m for m, s, _ in rows if s is PushStatus.UNKNOWN}
    batches = -(-len(members) // 10)
    assert len(unknown) <= 2 * batches             # at most the chunk each batch had in flight
    sent_ids = {m for m, s, _ in rows if s is PushStatus.SENT}
    assert len(sent_ids) + len(unknown) == len(members)
    openid_of = dict(await Member.filter(id__in=members).values_list("id", "openid"))
    # Every push recorded as sent reached WeChat; the unknown ones may have, once at most.
    assert {openid_of[m] for m in sent_ids} <= set(per_member)
    assert set(per_member) - {openid_of[m] for m in sent_ids} <= {openid_of[m] for m in unknown}


async def test_redis_stopped_then_started_loses_nothing(
        aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], settings: Settings,
        fake_wechat: FakeWeChat, client: TestClient[Any, Any]) -> None:
    await City.build(zones=1, units_per_zone=3, members_per_unit=4)
    members = await everyone(None)  # type: ignore[arg-type]
    await grant_all(members, n=2)
    port = free_port()
    redis_proc = start_redis(port)
    own = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
    api = await aiohttp_client(create_app(own))
    staff = await staff_login(api)
    try:
        # 1. Redis goes down after the notice was queued, before any worker ran: the job is lost.
        first = await send(api, staff, title="第一条")
        redis_proc.kill()
        redis_proc.wait(5)
        r = await api.post("/api/v1/notices", json={"title": "x", "audience": {"all": True}},
                           headers={"Authorization": f"Bearer {staff}"})
        assert r.status == 503  # while it is down a sender gets a clear error, not a half-send
        redis_proc = start_redis(port)  # back, empty: nothing of the queue survived
        # 2. Redis goes down mid fan-out: a worker planned and delivered one batch, the rest of
        #    the queued batches die with Redis.
        second = await send(api, staff, title="第二条")
        await run_workers(own.model_copy(update={"notice_batch_size": 3}), max_burst_jobs=2)
        redis_proc.kill()
        redis_proc.wait(5)
        redis_proc = start_redis(port)
        clock.travel(timedelta(minutes=1))
        await _sweep_and_run(api, own)
        await _sweep_and_run(api, own)
    finally:
        redis_proc.kill()
        redis_proc.wait(5)
    for notice in (first, second):
        rows = await InboxItem.filter(notice_id=notice["id"]).values_list("member_id", "push_status")
        assert sorted(m for m, _ in rows) == members
        assert all(s is PushStatus.SENT for _, s in rows)
    assert Counter(Counter(m["touser"] for m in fake_wechat.messages).values()) == {2: len(members)}
