"""The fault suite: zonehub's processes on a private PostgreSQL cluster and a private Redis
(created here, on free ports, never a shared server), then faults while work is in flight,
and after each the database is checked for lost or doubled rows.

    scripts/faults            # full: a city-wide broadcast, Redis down 30 s
    scripts/faults --short    # CI: one zone, Redis down 5 s

Scenarios:
  worker-kill     kill -9 the worker during a broadcast; a new worker finishes it: one inbox row
                  per recipient, one push per granted recipient
  redis-down      stop Redis under load (restarted empty): the API answers 503
                  service_unavailable (never 500) and writes nothing half-way, recovers by
                  itself, and a notice sent after is delivered once
  payments-api-kill kill -9 the API during a burst of payment notifications; WeChat Pay's
                  retries (and duplicates) then count every payment once
  reconcile-kill  kill -9 the worker while it asks WeChat Pay about orders paid without a
                  notification; the next worker's run pays the rest: each counted once
  escalation-kill kill -9 the worker mid-way through an escalation scan of overdue items to
                  every unit; the next scan fires the rest: each ladder step once, each unit
                  admin reminded once per item
  postgres-restart restart PostgreSQL under load: 503 while it is down, never 500, recovery by
                  itself, a broadcast in flight delivered exactly once
"""

from __future__ import annotations

import argparse
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
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[2]
ZONEHUB = [sys.executable, "-m", "server.cli"]
PASSWORD = "faults-admin-pass-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin(name: str) -> str:
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"faults: {name} not found (install PostgreSQL server binaries)")
    return found


def as_postgres(*cmd: str) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user when we are root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


class Postgres:
    """A private cluster: initdb into a temporary directory, its own port and socket directory."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "pg"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/zonehub"

    def _ctl(self, *args: str) -> None:
        subprocess.run(as_postgres(pg_bin("pg_ctl"), "-D", str(self.dir), "-l", str(self.dir / "log"),
                                   "-w", "-t", "60", *args), check=True, stdout=subprocess.DEVNULL)

    def create(self) -> None:
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.dir.parent, "postgres", "postgres")
        subprocess.run(as_postgres(pg_bin("initdb"), "-D", str(self.dir), "-U", "postgres", "-A", "trust",
                                   "--no-sync"), check=True, stdout=subprocess.DEVNULL)
        with open(self.dir / "postgresql.conf", "a") as conf:
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.dir}'\n"
                       "fsync = off\nmax_connections = 200\n")
        self.start()

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")


class Redis:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.dir = root / "redis"
        self.dir.mkdir()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL)
        wait_for(lambda: _connects(self.port), "redis")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(check: Any, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"faults: {what} did not come up in {timeout_s:.0f} s")


class Stack:
    """zonehub's processes: fake WeChat, the API, workers."""

    def __init__(self, root: Path, pg: Postgres, redis: Redis, *, push_per_minute: int) -> None:
        self.api_port, self.fake_port = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.fake = f"http://127.0.0.1:{self.fake_port}"
        self.env = {**os.environ, "ZONEHUB_DATABASE_URL": pg.url + "?maxsize=10", "ZONEHUB_REDIS_URL": redis.url,
                    "ZONEHUB_SECRET_KEY": secrets.token_urlsafe(40), "ZONEHUB_WECHAT_API_BASE": self.fake,
                    "ZONEHUB_ADMIN_PASSWORD": PASSWORD, "ZONEHUB_DATA_DIR": str(root / "data"),
                    "ZONEHUB_PUSH_PER_MINUTE": str(push_per_minute), "ZONEHUB_LOG_LEVEL": "WARNING"}
        self.logs = root / "logs"
        self.logs.mkdir()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def run(self, *cmd: str) -> None:
        subprocess.run([*ZONEHUB, *cmd], env=self.env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    def spawn(self, name: str, *cmd: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen([*ZONEHUB, *cmd], env=self.env, cwd=ROOT, stdout=log, stderr=log,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_api(self) -> None:
        self.spawn("api", "serve", "--port", str(self.api_port))
        wait_for(lambda: _connects(self.api_port), "the API")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, sig)
        proc.wait(30)

    def stop_all(self) -> None:
        for name in list(self.procs):
            try:
                self.kill(name, signal.SIGTERM)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


# -- checks ------------------------------------------------------------------------------------

async def notice_rows(db: asyncpg.Connection, notice_id: int) -> dict[str, int]:
    row = await db.fetchrow(
        "SELECT n.recipients, n.status, count(i.id) AS rows, count(DISTINCT i.member_id) AS members, "
        "count(i.id) FILTER (WHERE i.push_status = 'sent') AS sent, "
        "count(i.id) FILTER (WHERE i.push_status = 'unknown') AS unknown, "
        "count(i.id) FILTER (WHERE i.push_status IS NULL OR i.push_status = 'sending') AS unpushed "
        "FROM notice n LEFT JOIN inbox_item i ON i.notice_id = n.id WHERE n.id = $1 "
        "GROUP BY n.recipients, n.status", notice_id)
    return dict(row)


async def pushes_by_openid(http: aiohttp.ClientSession, fake: str) -> Counter[str]:
    async with http.get(f"{fake}/_fake/messages") as r:
        return Counter(m["touser"] for m in (await r.json())["messages"])


async def wait_delivered(db: asyncpg.Connection, notice_id: int, *, timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            facts = await notice_rows(db, notice_id)
            if facts["status"] == "delivered" and facts["rows"] == facts["recipients"] and facts["unpushed"] == 0:
                return facts
        except (asyncpg.PostgresError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"notice {notice_id} not delivered in {timeout_s:.0f} s: {facts}")
        await asyncio.sleep(0.5)


def check(ok: bool, what: str, failures: list[str]) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)


async def login(http: aiohttp.ClientSession, api: str) -> dict[str, str]:
    async with http.post(f"{api}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}) as r:
        body = await r.json()
        assert r.status == 200, body
    return {"Authorization": f"Bearer {body['token']}"}


async def send_notice(http: aiohttp.ClientSession, api: str, auth: dict[str, str], audience: dict[str, Any],
                      title: str) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{api}/api/v1/notices", headers=auth,
                         json={"title": title, "body": "故障演练", "audience": audience}) as r:
        return r.status, await r.json()


class Load:
    """Requests in a loop while a fault is on: every answer's status and code is kept."""

    def __init__(self, http: aiohttp.ClientSession, api: str, auth: dict[str, str]) -> None:
        self.http, self.api, self.auth = http, api, auth
        self.answers: Counter[tuple[str, int, str]] = Counter()
        self._stop = asyncio.Event()

    async def _one(self, name: str, method: str, path: str, **kw: Any) -> None:
        try:
            async with self.http.request(method, self.api + path, timeout=aiohttp.ClientTimeout(total=10),
                                         **kw) as r:
                code = ""
                if r.status >= 400:
                    code = (await r.json(content_type=None) or {}).get("code", "")
                self.answers[(name, r.status, code)] += 1
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.answers[(name, 0, type(exc).__name__)] += 1

    async def run(self) -> None:
        while not self._stop.is_set():
            await asyncio.gather(
                self._one("me", "GET", "/api/v1/me", headers=self.auth),
                self._one("login", "POST", "/api/v1/auth/login",
                          json={"username": "admin", "password": PASSWORD}),
                self._one("health", "GET", "/api/v1/health"))
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()


async def recovery(http: aiohttp.ClientSession, api: str, load: Load, running: asyncio.Task[None],
                   ) -> tuple[float, Counter[tuple[str, int, str]], Counter[tuple[str, int, str]]]:
    """After a dependency is back: how long until the API answered healthy (60 s at most), the
    load's answers until then, and those of two seconds more (the load is stopped)."""
    started = time.monotonic()
    while time.monotonic() - started <= 60:
        try:
            async with http.get(f"{api}/api/v1/health") as r:
                if r.status == 200:
                    break
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    recovered_s = time.monotonic() - started
    await asyncio.sleep(0.5)         # requests sent before recovery may still be answering
    during = Counter(load.answers)   # up to (half a second past) the first healthy answer
    await asyncio.sleep(2)
    load.stop()
    await running
    after = load.answers - during
    print(f"  answers until recovered: {dict(during)}; after: {dict(after)}", flush=True)
    return recovered_s, during, after


# -- scenarios ---------------------------------------------------------------------------------

async def worker_kill(stack: Stack, db: asyncpg.Connection, http: aiohttp.ClientSession,
                      audience: dict[str, Any], failures: list[str]) -> None:
    print("worker-kill: kill -9 the worker during a broadcast", flush=True)
    auth = await login(http, stack.api)
    await http.delete(f"{stack.fake}/_fake/messages")
    status, sent = await send_notice(http, stack.api, auth, audience, "演练：广播中杀掉工作进程")
    assert status == 202, sent
    deadline = time.monotonic() + 60
    while (await pushes_by_openid(http, stack.fake)).total() < 20:   # pushes under way
        if time.monotonic() > deadline:
            raise AssertionError("no push started")
        await asyncio.sleep(0.1)
    stack.kill("worker")
    facts = await notice_rows(db, sent["id"])
    print(f"  killed with {facts['rows']} of {facts['recipients']} inbox rows, {facts['sent']} pushes", flush=True)
    check(facts["unpushed"] > 0, "the kill landed mid-broadcast (work was left)", failures)
    stack.spawn("worker", "worker")
    facts = await wait_delivered(db, sent["id"], timeout_s=300)
    pushes = await pushes_by_openid(http, stack.fake)
    check(facts["rows"] == facts["recipients"] == facts["members"],
          f"one inbox row per recipient ({facts['rows']} rows, {facts['recipients']} recipients)", failures)
    check(max(pushes.values(), default=0) == 1, f"no member pushed twice ({pushes.total()} pushes)", failures)
    # a row the dead worker had claimed is `unknown` (maybe sent, never sent again): at most once
    check(facts["sent"] <= pushes.total() <= facts["sent"] + facts["unknown"],
          f"pushes received ({pushes.total()}) = recorded sent ({facts['sent']}) + some of the "
          f"{facts['unknown']} the killed worker had claimed", failures)
    sent_to = set(await db.fetchval(
        "SELECT array_agg(m.openid) FROM inbox_item i JOIN member m ON m.id = i.member_id "
        "WHERE i.notice_id = $1 AND i.push_status = 'sent'", sent["id"]) or [])
    check(all(pushes[o] == 1 for o in sent_to), "every push recorded sent was received once", failures)


async def redis_down(stack: Stack, redis: Redis, db: asyncpg.Connection, http: aiohttp.ClientSession,
                     audience: dict[str, Any], down_s: float, failures: list[str]) -> None:
    print(f"redis-down: stop Redis {down_s:.0f} s under load", flush=True)
    auth = await login(http, stack.api)
    load = Load(http, stack.api, auth)
    running = asyncio.create_task(load.run())
    await asyncio.sleep(1)
    redis.stop()
    await asyncio.sleep(1)
    status, sent = await send_notice(http, stack.api, auth, audience, "演练：Redis 停机时发的通知")
    await asyncio.sleep(max(0.0, down_s - 1))
    redis.start()
    recovered_s, during, after = await recovery(http, stack.api, load, running)
    # signed-in requests need Redis (token revocation, rate limits): a notice cannot be sent, and
    # the refusal must be clear and leave nothing half-written
    check(status == 503 and sent.get("code") == "service_unavailable",
          f"a notice sent while Redis was down answered 503 service_unavailable (got {status})", failures)
    check(await db.fetchval("SELECT count(*) FROM notice WHERE title = $1", "演练：Redis 停机时发的通知") == 0,
          "and left no notice behind", failures)
    check(during[("health", 503, "")] > 0 or any(k[0] == "health" and k[1] == 503 for k in during),
          "health answered 503 while Redis was down", failures)
    check(any(k[0] == "login" and k[1] == 503 and k[2] == "service_unavailable" for k in during),
          "a login (its rate limit lives in Redis) answered 503 service_unavailable", failures)
    check(not any(k[1] >= 500 and k[1] != 503 for k in load.answers), "never a 500", failures)
    check(recovered_s < 60, f"the API recovered by itself ({recovered_s:.1f} s after Redis)", failures)
    check(not any(k[1] >= 500 for k in after if k[0] != "health") and after[("me", 200, "")] > 0,
          "requests succeed again after recovery", failures)
    status, sent = await send_notice(http, stack.api, auth, audience, "演练：Redis 恢复后")
    check(status == 202, f"after recovery a notice is accepted (202, got {status})", failures)
    if status == 202:  # queued on a Redis that lost everything: the queue is rebuilt, nothing lost
        facts = await wait_delivered(db, sent["id"], timeout_s=300)
        check(facts["rows"] == facts["recipients"] == facts["members"],
              f"that notice reached every recipient once ({facts['rows']} rows)", failures)


async def postgres_restart(stack: Stack, pg: Postgres, db_url: str, http: aiohttp.ClientSession,
                           audience: dict[str, Any], failures: list[str]) -> None:
    print("postgres-restart: restart PostgreSQL under load, a broadcast in flight", flush=True)
    auth = await login(http, stack.api)
    status, sent = await send_notice(http, stack.api, auth, audience, "演练：数据库重启")
    assert status == 202, sent
    load = Load(http, stack.api, auth)
    running = asyncio.create_task(load.run())
    await asyncio.sleep(1)
    await asyncio.to_thread(pg.stop)
    await asyncio.sleep(3)
    await asyncio.to_thread(pg.start)
    recovered_s, during, after = await recovery(http, stack.api, load, running)
    check(any(k[1] == 503 and k[2] == "service_unavailable" for k in during),
          "503 service_unavailable while PostgreSQL was down", failures)
    check(not any(k[1] >= 500 and k[1] != 503 for k in load.answers), "never a 500", failures)
    check(recovered_s < 60, f"the API recovered by itself ({recovered_s:.1f} s after PostgreSQL)", failures)
    check(after[("me", 200, "")] > 0, "requests succeed again after recovery", failures)
    db = await asyncpg.connect(db_url)
    try:
        facts = await wait_delivered(db, sent["id"], timeout_s=300)
        check(facts["rows"] == facts["recipients"] == facts["members"],
              f"the broadcast reached every recipient once ({facts['rows']} rows)", failures)
    finally:
        await db.close()


async def payments_api_kill(stack: Stack, db: asyncpg.Connection, http: aiohttp.ClientSession, orders: int,
                            failures: list[str]) -> None:
    print(f"payments-api-kill: kill -9 the API during a burst of {orders} payment notifications", flush=True)
    campaign, trade_nos = await make_orders(stack, db, http, orders, "演练：捐款")
    notified: Counter[str] = Counter()

    async def pay(no: str) -> None:
        async with http.post(f"{stack.fake}/_fake/pay/orders/{no}/succeed?notify=1") as r:
            body = await r.json(content_type=None)
            notified["delivered" if r.status == 200 and body.get("notify_status") == 204 else "lost"] += 1

    half = len(trade_nos) // 2
    await asyncio.gather(*(pay(no) for no in trade_nos[:half]))
    slots = asyncio.Semaphore(4)                        # a steady burst, four at a time

    async def paced(no: str) -> None:
        async with slots:
            await pay(no)

    burst = [asyncio.create_task(paced(no)) for no in trade_nos[half:]]
    while notified.total() < half + 4:                  # a few of the burst got through ...
        await asyncio.sleep(0.005)
    stack.kill("api")                                   # ... then kill -9, mid-burst
    await asyncio.gather(*burst)
    stack.start_api()
    print(f"  notifications: {dict(notified)}", flush=True)
    # WeChat Pay retries a notification the merchant did not acknowledge; here every order's
    # notification is delivered again, twice, whether or not it got through before
    for no in trade_nos:
        async with http.post(f"{stack.fake}/_fake/pay/orders/{no}/notify", json={"duplicate": 1}) as r:
            assert r.status == 200, await r.text()
    check(notified["lost"] > 0, f"the kill lost notifications ({notified['lost']} of {len(trade_nos)})", failures)
    await check_counted_once(db, campaign, len(trade_nos), failures)


async def make_orders(stack: Stack, db: asyncpg.Connection, http: aiohttp.ClientSession, orders: int,
                      title: str) -> tuple[int, list[str]]:
    """A new drive and one 1-yuan WeChat Pay order in it from each of `orders` members, through
    the API; returns the drive's id and the orders' out_trade_no."""
    auth = await login(http, stack.api)
    ends = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 86400))
    async with http.post(f"{stack.api}/api/v1/campaigns", headers=auth,
                         json={"title": title, "kind": "donation", "ends_at": ends}) as r:
        campaign = await r.json()
        assert r.status == 201, campaign
    openids = await db.fetch("SELECT openid FROM member WHERE openid IS NOT NULL AND unit_id IS NOT NULL "
                             "AND is_active ORDER BY id LIMIT $1", orders)
    trade_nos: list[str] = []
    for n, row in enumerate(openids):
        async with http.post(f"{stack.api}/api/v1/auth/wechat", json={"code": f"test-{row['openid']}"}) as r:
            token = (await r.json())["token"]
        async with http.post(f"{stack.api}/api/v1/campaigns/{campaign['id']}/contributions",
                             headers={"Authorization": f"Bearer {token}",
                                      "Idempotency-Key": f"faults-{campaign['id']}-{n}"},
                             json={"amount_fen": 100}) as r:
            order = await r.json()
            assert r.status == 201, order
            trade_nos.append(order["out_trade_no"])
    return campaign["id"], trade_nos


async def check_counted_once(db: asyncpg.Connection, campaign_id: int, orders: int, failures: list[str]) -> None:
    paid = await db.fetchval("SELECT count(*) FROM contribution WHERE campaign_id = $1 AND status = 'paid'",
                             campaign_id)
    rows = await db.fetchval("SELECT count(*) FROM contribution WHERE campaign_id = $1", campaign_id)
    total = await db.fetchrow("SELECT coalesce(sum(online_fen), 0)::bigint AS fen, "
                              "coalesce(sum(online_count), 0)::bigint AS n "
                              "FROM campaign_total WHERE campaign_id = $1", campaign_id)
    check(paid == rows == orders, f"every paid order counted ({paid} paid of {rows} orders)", failures)
    check((total["fen"], total["n"]) == (100 * orders, orders),
          f"the drive's totals count each once ({total['n']} payments, {total['fen']} fen)", failures)


async def kill_worker_when(stack: Stack, db: asyncpg.Connection, done_sql: str, arg: Any, total: int,
                           what: str, failures: list[str]) -> int:
    """Start a worker (its start-up runs the cron jobs at once), kill -9 it once `done_sql` counts
    some of `total` done, and start another; returns how many were done at the kill."""
    stack.spawn("worker", "worker")
    deadline = time.monotonic() + 120
    while (done := await db.fetchval(done_sql, arg)) < max(1, total // 20):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: nothing done in 120 s")
        await asyncio.sleep(0.01)
    stack.kill("worker")
    done = await db.fetchval(done_sql, arg)
    print(f"  killed with {done} of {total} {what} done", flush=True)
    check(0 < done < total, f"the kill landed mid-{what} (work was left)", failures)
    stack.spawn("worker", "worker")
    return int(done)


async def wait_until(db: asyncpg.Connection, sql: str, arg: Any, want: int, what: str,
                     timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while (got := await db.fetchval(sql, arg)) < want:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {got} of {want} after {timeout_s:.0f} s")
        await asyncio.sleep(0.5)


async def reconcile_kill(stack: Stack, db: asyncpg.Connection, http: aiohttp.ClientSession, orders: int,
                         failures: list[str]) -> None:
    """Orders paid at WeChat Pay whose notifications never came: the reconcile job asks WeChat
    Pay about each. Killed mid-way, the next worker's run finishes them, each counted once."""
    print(f"reconcile-kill: kill -9 the worker while it reconciles {orders} orders paid without a "
          "notification", flush=True)
    campaign, trade_nos = await make_orders(stack, db, http, orders, "演练：对账")
    stack.kill("worker")
    for no in trade_nos:
        async with http.post(f"{stack.fake}/_fake/pay/orders/{no}/succeed") as r:  # no notification
            assert r.status == 200, await r.text()
    await db.execute("UPDATE contribution SET next_check_at = now() WHERE campaign_id = $1", campaign)
    paid_sql = "SELECT count(*) FROM contribution WHERE campaign_id = $1 AND status = 'paid'"
    await kill_worker_when(stack, db, paid_sql, campaign, orders, "reconcile", failures)
    await wait_until(db, paid_sql, campaign, orders, "orders reconciled")
    await check_counted_once(db, campaign, orders, failures)


async def escalation_kill(stack: Stack, db: asyncpg.Connection, items: int, failures: list[str]) -> None:
    """Supervision items long overdue for every unit: each assignment's whole ladder (reminder,
    overdue, liaison, committee) is due at once. Killed mid-scan, the next worker's scan fires
    the rest: every step once, every unit admin reminded once per item."""
    print(f"escalation-kill: kill -9 the worker during an escalation scan of {items} overdue items "
          "to every unit", flush=True)
    stack.kill("worker")
    admin = await db.fetchval("SELECT id FROM member WHERE username = 'admin'")
    ids = [await db.fetchval(
        "INSERT INTO supervision_item (title, detail, attachments, due_at, ladder, target, created_by_id, "
        "created_at) VALUES ($1, '', '[]', now() - interval '5 days', $2, '{}', $3, "
        "now() - interval '10 days') RETURNING id", f"演练：逾期督办 {n + 1}",
        '{"remind_before_h": 48, "liaison_after_h": 24, "committee_after_h": 72}', admin)
        for n in range(items)]
    assignments = await db.fetchval(
        "WITH made AS (INSERT INTO supervision_assignment (item_id, unit_id, zone_id, state, assigned_at, "
        "escalation_level, next_step, next_step_at, urge_count) SELECT i, u.id, u.zone_id, 'open', "
        "now() - interval '10 days', 0, 'remind', now() - interval '7 days', 0 "
        "FROM unnest($1::int[]) AS i, unit u RETURNING 1) SELECT count(*) FROM made", ids)
    fired_sql = ("SELECT count(*) FROM supervision_escalation e JOIN supervision_assignment a "
                 "ON a.id = e.assignment_id WHERE a.item_id = ANY($1::int[])")
    steps = 4 * assignments
    await kill_worker_when(stack, db, fired_sql, ids, steps, "escalation scan", failures)
    await wait_until(db, fired_sql, ids, steps, "escalations fired")
    await asyncio.sleep(1)  # anything fired twice would show by now
    fired = await db.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT (e.assignment_id, e.step)) AS distinct_steps "
        "FROM supervision_escalation e JOIN supervision_assignment a ON a.id = e.assignment_id "
        "WHERE a.item_id = ANY($1::int[])", ids)
    ladders_done = await db.fetchval(
        "SELECT count(*) FROM supervision_assignment WHERE item_id = ANY($1::int[]) "
        "AND escalation_level = 4 AND next_step IS NULL", ids)
    reminded = await db.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT (i.member_id, n.ref_id)) AS pairs FROM inbox_item i "
        "JOIN notice n ON n.id = i.notice_id WHERE n.topic = 'supervision.remind' "
        "AND n.ref_id = ANY($1::int[])", ids)
    admins = await db.fetchval(
        "SELECT count(*) FROM supervision_assignment a JOIN member m ON m.unit_id = a.unit_id "
        "AND m.role = 'unit_admin' AND m.is_active WHERE a.item_id = ANY($1::int[])", ids)
    check(fired["n"] == fired["distinct_steps"] == steps,
          f"each ladder step fired once ({fired['n']} of {steps} steps)", failures)
    check(ladders_done == assignments, f"every ladder ran to its end ({ladders_done} of {assignments})",
          failures)
    check(reminded["n"] == reminded["pairs"] == admins,
          f"every unit admin reminded once per item ({reminded['n']} reminders, {admins} admin-items)",
          failures)


# -- the run -----------------------------------------------------------------------------------

async def main(short: bool, keep: bool) -> int:
    root = Path(tempfile.mkdtemp(prefix="zonehub-faults-"))
    os.chmod(root, 0o755)
    pg, redis = Postgres(root), Redis(root)
    stack: Stack | None = None
    failures: list[str] = []
    began = time.monotonic()
    try:
        print(f"faults ({'short' if short else 'full'}): private PostgreSQL :{pg.port}, Redis :{redis.port} in {root}",
              flush=True)
        pg.create()
        admin = await asyncpg.connect(pg.url.rsplit("/", 1)[0] + "/postgres")
        await admin.execute("CREATE DATABASE zonehub")
        await admin.close()
        redis.start()
        stack = Stack(root, pg, redis, push_per_minute=3000 if short else 12000)
        pay_dir = root / "pay-keys"
        from fakewechat import PayKeys

        keys = PayKeys.load_or_create(pay_dir, appid="wx-zonehub-demo")
        stack.env.update({"ZONEHUB_WECHAT_PAY_MCHID": keys.mchid,
                          "ZONEHUB_WECHAT_PAY_SERIAL_NO": keys.merchant_serial_no,
                          "ZONEHUB_WECHAT_PAY_PRIVATE_KEY": str(pay_dir / "merchant_private.pem"),
                          "ZONEHUB_WECHAT_PAY_APIV3_KEY": keys.apiv3_key,
                          "ZONEHUB_WECHAT_PAY_PUBLIC_KEY": str(pay_dir / "platform_public.pem"),
                          "ZONEHUB_WECHAT_PAY_PUBLIC_KEY_ID": keys.platform_public_key_id,
                          "ZONEHUB_WECHAT_PAY_API_BASE": stack.fake,
                          "ZONEHUB_WECHAT_PAY_NOTIFY_URL": f"{stack.api}/api/v1/pay/wechat/notify"})
        stack.run("migrate")
        stack.run("demo")
        db = await asyncpg.connect(pg.url)
        # every member grants one notice push, so pushes can be counted (and doubles seen)
        await db.execute("INSERT INTO subscription_grant (member_id, template_id, available, accepted_total, "
                         "rejected_total, updated_at) SELECT id, 'zonehub-notice', 5, 5, 0, now() FROM member "
                         "WHERE openid IS NOT NULL ON CONFLICT DO NOTHING")
        zone = await db.fetchval("SELECT min(id) FROM zone")
        audience = {"zone_ids": [zone]} if short else {"all": True}
        stack.spawn("fake", "fake-wechat", "--port", str(stack.fake_port), "--pay-keys", str(pay_dir))
        wait_for(lambda: _connects(stack.fake_port), "the fake WeChat")
        stack.start_api()
        stack.spawn("worker", "worker")
        async with aiohttp.ClientSession() as http:
            await payments_api_kill(stack, db, http, 40 if short else 400, failures)
            await worker_kill(stack, db, http, audience, failures)
            await redis_down(stack, redis, db, http, audience, 5 if short else 30, failures)
            await reconcile_kill(stack, db, http, 150 if short else 400, failures)
            await escalation_kill(stack, db, 10 if short else 100, failures)
            await db.close()
            await postgres_restart(stack, pg, pg.url, http, audience, failures)
    finally:
        if stack:
            stack.stop_all()
        redis.stop()
        try:
            pg.stop()
        except subprocess.CalledProcessError:
            pass
        if not keep and not failures:
            shutil.rmtree(root, ignore_errors=True)
        elif failures:
            print(f"logs kept in {root}/logs", flush=True)
    print(f"faults: {len(failures)} failure(s) in {time.monotonic() - began:.0f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="one zone, Redis down 5 s (CI)")
    parser.add_argument("--keep", action="store_true", help="keep the cluster's directory")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.short, args.keep)))
