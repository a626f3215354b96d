"""Recovery in a minute, not ten: a real worker rides out a Redis outage, pushes left by a killed
worker resume within a minute, and the API answers a prompt 503 while a dependency is down."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from fakewechat import FakeWeChat
from models.notices import InboxItem, Notice, NoticeBatch, NoticeKind, NoticeStatus, PushStatus
from models.org import Member
from server.app import create_app
from services.settings import Settings
from tests.integration.test_notices import everyone, notice_to_granted_city
from tests.support import City, bearer, free_port, staff_login, start_redis, wechat_login

ROOT = Path(__file__).parents[2]


def _worker(settings: Settings, redis_url: str, **env: str) -> subprocess.Popen[bytes]:
    """A real `zonehub worker` process."""
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("ZONEHUB_")},
            "ZONEHUB_DATABASE_URL": settings.database_url, "ZONEHUB_REDIS_URL": redis_url,
            "ZONEHUB_SECRET_KEY": settings.secret_key.get_secret_value(),
            "ZONEHUB_WECHAT_APPID": settings.wechat_appid,
            "ZONEHUB_WECHAT_SECRET": settings.wechat_secret.get_secret_value(),
            "ZONEHUB_WECHAT_API_BASE": settings.wechat_api_base, **env}
    return subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], env=full, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float) -> float:
    """Seconds until `check` holds; fails after `timeout_s`."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not within {timeout_s} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - start


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(10)


async def test_the_worker_rides_out_a_redis_outage(client: TestClient[Any, Any], settings: Settings,
                                                   fake_wechat: FakeWeChat) -> None:
    await City.build(zones=1, units_per_zone=2, members_per_unit=3)
    port = free_port()
    redis_proc = start_redis(port)
    worker = _worker(settings, f"redis://127.0.0.1:{port}/0")
    try:
        await asyncio.sleep(3)  # started, crons scheduled
        redis_proc.kill()
        redis_proc.wait(5)
        await asyncio.sleep(6)
        assert worker.poll() is None, "the worker exited when Redis went away"
        redis_proc = start_redis(port)  # back, empty
        # A notice written while nobody could be told: the worker's own sweeper finds it.
        notice = await Notice.create(kind=NoticeKind.NOTICE, status=NoticeStatus.QUEUED,
                                     title="停电后", audience={"all": True})
        people = len(await everyone(None))  # type: ignore[arg-type]

        async def delivered() -> bool:
            return await InboxItem.filter(notice_id=notice.id).count() == people

        await _until(delivered, 60)
        assert worker.poll() is None
    finally:
        _stop(worker)
        redis_proc.kill()
        redis_proc.wait(5)


async def test_pushes_left_by_a_killed_worker_resume_within_a_minute(
        client: TestClient[Any, Any], settings: Settings, fake_wechat: FakeWeChat) -> None:
    staff, members, sent = await notice_to_granted_city(client)
    slow = {"ZONEHUB_PUSH_PER_MINUTE": "600", "ZONEHUB_PUSH_IN_FLIGHT": "2",
            "ZONEHUB_NOTICE_BATCH_SIZE": "10"}
    first = _worker(settings, settings.redis_url or "", **slow)
    try:
        async def started() -> bool:
            return len(fake_wechat.messages) >= 6

        await _until(started, 60)
    finally:
        _stop(first)  # SIGKILL mid-way: no clean shutdown, leases held
    killed_at = time.monotonic()
    assert len(fake_wechat.messages) < len(members)
    second = _worker(settings, settings.redis_url or "")  # no clock moved, no queue cleaned
    try:
        async def all_done() -> bool:
            return not await NoticeBatch.filter(notice_id=sent["id"], pushed_at__isnull=True).exists()

        await _until(all_done, 90)
        resumed_in = time.monotonic() - killed_at
    finally:
        _stop(second)
    assert resumed_in < 60, f"pushes resumed only after {resumed_in:.0f} s"
    per_member = Counter(m["touser"] for m in fake_wechat.messages)
    assert max(per_member.values()) == 1                              # never twice
    statuses = Counter(await InboxItem.filter(notice_id=sent["id"]).values_list("push_status", flat=True))
    assert set(statuses) <= {PushStatus.SENT, PushStatus.UNKNOWN}
    stats = await (await client.get(f"/api/v1/notices/{sent['id']}/stats", headers=bearer(staff))).json()
    assert stats["pushes"]["unknown"] == statuses[PushStatus.UNKNOWN]  # reported, not hidden


async def _own_redis_app(aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
                         settings: Settings) -> tuple[TestClient[Any, Any], subprocess.Popen[bytes], int]:
    port = free_port()
    proc = start_redis(port)
    own = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
    return await aiohttp_client(create_app(own)), proc, port


async def test_our_redis_down_during_wechat_login_is_a_503(
        aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], settings: Settings,
        client: TestClient[Any, Any]) -> None:
    await City.build(zones=1, units_per_zone=1, members_per_unit=1)
    api, proc, _ = await _own_redis_app(aiohttp_client, settings)
    proc.kill()
    proc.wait(5)
    member = await Member.filter(unit_id__isnull=False, role="member").first()
    assert member is not None
    r = await api.post("/api/v1/auth/wechat", json={"code": f"test-{member.openid}"})
    assert r.status == 503 and (await r.json())["code"] == "service_unavailable"


async def test_a_frozen_redis_answers_a_prompt_503(
        aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], settings: Settings,
        client: TestClient[Any, Any]) -> None:
    city = await City.build(zones=1, units_per_zone=1, members_per_unit=1)
    api, proc, _ = await _own_redis_app(aiohttp_client, settings)
    token = await wechat_login(api, city.members[city.units[city.zones[0].id][0].id][0].openid or "")
    os.kill(proc.pid, signal.SIGSTOP)  # alive, listening, answering nothing
    try:
        started = time.monotonic()
        r = await asyncio.wait_for(api.get("/api/v1/me", headers=bearer(token)), timeout=15)
        took = time.monotonic() - started
        assert r.status == 503 and (await r.json())["code"] == "service_unavailable"
        assert took < 10, f"a frozen Redis held the request {took:.1f} s"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(5)


@pytest.mark.parametrize("error", [asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
                                   asyncpg.exceptions.CannotConnectNowError("starting up"),
                                   ConnectionRefusedError(111, "refused")])
async def test_database_connection_errors_are_a_503(client: TestClient[Any, Any], city: City,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    error: Exception) -> None:
    import services.org

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise error

    token = await staff_login(client)
    monkeypatch.setattr(services.org, "list_zones", down)
    r = await client.get("/api/v1/zones", headers=bearer(token))
    assert r.status == 503 and (await r.json())["code"] == "service_unavailable"
