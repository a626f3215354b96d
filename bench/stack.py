"""The system under test: a fresh database and Redis, `zonehub migrate` and `zonehub demo`, then
the fake WeChat (with WeChat Pay), the API and the bare baseline server as subprocesses, all
stopped at the end.

WeChat Pay is configured as `zonehub up` does it (server/cli.py `_fake_pay_env`): merchant and
platform keys made for this run in a temporary directory (deleted at the end, never in the repo),
the API given them through `ZONEHUB_WECHAT_PAY_*`, the fake started with `--pay-keys DIR` but
without `--auto-notify` (bench/funds.py delivers the notifications itself, built with
`Stack.pay_keys`)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from fakewechat import PayKeys

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
LOG_DIR = RESULTS_DIR / "logs"

POSTGRES_ADMIN_DSN = "postgres://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = "zonehub_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
#: The mini-program app id of the run: the API, the fake and the pay keys must agree on it.
BENCH_APPID = "wx-zonehub-bench"
NOTIFY_PATH = "/pay/wechat/notify"  # after /api/v1


class StackError(Exception):
    """The stack could not be set up; the message says which part and shows its log."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def zonehub_command() -> list[str]:
    """The `zonehub` console script of this interpreter's environment."""
    found = shutil.which("zonehub") or str(Path(sys.executable).with_name("zonehub"))
    return [found] if Path(found).exists() else [sys.executable, "-m", "server.cli"]


class Processes:
    """Child processes in their own sessions, logging to LOG_DIR/<name>.log; a context manager
    that stops them all (SIGTERM, then SIGKILL) on exit, whatever the exit."""

    def __init__(self, log_dir: Path = LOG_DIR) -> None:
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> Self:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def spawn(self, name: str, argv: list[str], *, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start argv; stdout and stderr go to the log; cwd is RESULTS_DIR (no `.env` there)."""
        if name in self.children:
            raise ValueError(f"a process named {name!r} already runs")
        with self.log_path(name).open("wb") as log:
            proc = subprocess.Popen(argv, env=env, cwd=RESULTS_DIR, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.children[name] = proc
        return proc

    async def run_once(self, name: str, argv: list[str], *, env: dict[str, str]) -> None:
        """Run a one-shot command to completion; StackError with its log if it fails."""
        proc = self.spawn(name, argv, env=env)
        while proc.poll() is None:
            await asyncio.sleep(0.1)
        del self.children[name]
        if proc.returncode != 0:
            raise StackError(f"{name} exited {proc.returncode}:\n"
                             f"{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 40) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop_all(self) -> None:
        """SIGTERM every child (newest first), wait, SIGKILL whoever is left."""
        for proc in reversed(self.children.values()):
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self.children.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        self.children.clear()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


async def wait_http(url: str, *, procs: Processes, name: str,
                    timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Poll url until it answers 200; StackError with the log if the process dies or times out."""
    proc = procs.children[name]
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"{name} exited {proc.returncode}:\n{procs.log_tail(name)}")
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.1)
    raise StackError(f"{name}: {url} did not answer 200 within {timeout_s:.0f} s:\n"
                     f"{procs.log_tail(name)}")


def _asyncpg_dsn(database_url: str) -> str:
    """The URL without tortoise's scheme and pool options, for asyncpg.connect()."""
    parts = urlsplit(database_url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))


async def reset_database() -> str:
    """Drop and recreate BENCH_DATABASE; return its URL."""
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    finally:
        await conn.close()
    netloc = urlsplit(POSTGRES_ADMIN_DSN).netloc
    return urlunsplit(("postgres", netloc, f"/{BENCH_DATABASE}", "", ""))


async def database_kind(database_url: str) -> str:
    """'PostgreSQL 15.20' or 'SQLite'."""
    if database_url.startswith("sqlite://"):
        return "SQLite"
    conn = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        version = str(await conn.fetchval("SHOW server_version"))
        return f"PostgreSQL {version.split()[0]}"
    finally:
        await conn.close()


async def flush_redis(redis_url: str) -> str:
    """Empty the Redis database; return the server version."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.flushdb()
        info = await client.info("server")
        return str(info.get("redis_version", "?"))
    finally:
        await client.aclose()


def pay_env(keys_dir: Path, *, wechat_url: str, api: str) -> tuple[PayKeys, dict[str, str]]:
    """Fresh WeChat Pay keys saved in keys_dir and the API's settings for them (as
    server/cli.py `_fake_pay_env`); the notify URL is the API's own."""
    keys = PayKeys.load_or_create(keys_dir, appid=BENCH_APPID)
    return keys, {"wechat_pay_mchid": keys.mchid,
                  "wechat_pay_serial_no": keys.merchant_serial_no,
                  "wechat_pay_private_key": str(keys_dir / "merchant_private.pem"),
                  "wechat_pay_apiv3_key": keys.apiv3_key,
                  "wechat_pay_public_key": str(keys_dir / "platform_public.pem"),
                  "wechat_pay_public_key_id": keys.platform_public_key_id,
                  "wechat_pay_api_base": wechat_url,
                  "wechat_pay_notify_url": f"{api}{NOTIFY_PATH}"}


def child_env(**zonehub: str) -> dict[str, str]:
    """This environment without inherited ZONEHUB_* variables, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZONEHUB_")}
    env.update({f"ZONEHUB_{k.upper()}": v for k, v in zonehub.items()})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(frozen=True)
class Stack:
    """Where everything runs; `env` is what zonehub processes get (e.g. for an extra worker)."""

    api: str
    baseline_url: str
    wechat_url: str
    database_url: str
    redis_url: str
    database_kind: str
    redis_version: str
    env: dict[str, str]
    processes: Processes
    #: The run's WeChat Pay keys (the fake and the API have them too): figures sign
    #: notifications with the platform key, as WeChat Pay would.
    pay_keys: PayKeys


async def _storage() -> tuple[str, str, str, str]:
    """Database URL (fresh unless ZONEHUB_BENCH_DATABASE_URL), flushed Redis URL, versions."""
    redis_url = os.environ.get("ZONEHUB_BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    try:
        database_url = os.environ.get("ZONEHUB_BENCH_DATABASE_URL") or await reset_database()
        kind = await database_kind(database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StackError(f"PostgreSQL: {type(exc).__name__}: {exc}") from None
    try:
        version = await flush_redis(redis_url)
    except (OSError, RedisError) as exc:
        raise StackError(f"Redis at {redis_url}: {type(exc).__name__}: {exc}") from None
    return database_url, redis_url, kind, version


@asynccontextmanager
async def open_stack(*, api_workers: int = 1) -> AsyncIterator[Stack]:
    """Fresh storage, migrate + demo, then fake WeChat, API and baseline; all stopped on exit."""
    database_url, redis_url, kind, redis_version = await _storage()
    wechat_port, api_port, baseline_port = free_port(), free_port(), free_port()
    wechat_url = f"http://127.0.0.1:{wechat_port}"
    api = f"http://127.0.0.1:{api_port}/api/v1"
    zonehub = zonehub_command()
    with tempfile.TemporaryDirectory(prefix="zonehub-bench-pay-") as keys_tmp, \
            Processes() as procs:
        keys_dir = Path(keys_tmp) / "pay-keys"
        pay_keys, pay = pay_env(keys_dir, wechat_url=wechat_url, api=api)
        env = child_env(database_url=database_url, redis_url=redis_url,
                        secret_key=secrets.token_urlsafe(48), wechat_api_base=wechat_url,
                        wechat_appid=BENCH_APPID, admin_password=secrets.token_urlsafe(16),
                        **pay)
        await procs.run_once("migrate", [*zonehub, "migrate"], env=env)
        await procs.run_once("demo", [*zonehub, "demo"], env=env)
        procs.spawn("fake-wechat", [*zonehub, "fake-wechat", "--port", str(wechat_port),
                                    "--pay-keys", str(keys_dir)], env=env)
        procs.spawn("serve", [*zonehub, "serve", "--port", str(api_port),
                              "--workers", str(api_workers)], env=env)
        procs.spawn("baseline", [sys.executable, "-m", "bench.baseline", "--port",
                                 str(baseline_port)], env=env)
        baseline_url = f"http://127.0.0.1:{baseline_port}/hello"
        await asyncio.gather(
            wait_http(f"{wechat_url}/_fake/stats", procs=procs, name="fake-wechat"),
            wait_http(f"{api}/health", procs=procs, name="serve"),
            wait_http(baseline_url, procs=procs, name="baseline"))
        yield Stack(api=api, baseline_url=baseline_url, wechat_url=wechat_url,
                    database_url=database_url, redis_url=redis_url, database_kind=kind,
                    redis_version=redis_version, env=env, processes=procs, pay_keys=pay_keys)
