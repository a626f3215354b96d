"""Two API processes and two workers on one PostgreSQL and one Redis (issue #16).

Real processes, started once for the module with bench/stack.py's process handling: the fake
WeChat (with WeChat Pay), `zonehub serve` twice (each on its own port, so the test knows which
process answers and spreads every burst over both) and `zonehub worker` twice (each its own
name and metrics port). Everything goes over HTTP, the database is only read to check rows:

1. sign-up: more members than seats race, half through each API → exactly `capacity`
   confirmed, the others waitlisted with distinct queue numbers;
2. notices: a notice to a few hundred granted members, delivered in small batches by both
   workers → one inbox row per recipient, one push per member at the fake;
3. supervision: overdue assignments, and the escalation scan queued many times at once for both
   workers → each ladder step recorded once per assignment;
4. funds: every payment notification delivered to both API processes at the same time → each
   order paid and counted once, the drive's total the sum of the paid orders.

PostgreSQL only (SQLite is one process's file): skipped without ZONEHUB_TEST_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis as sync_redis
from arq import create_pool
from arq.connections import RedisSettings

from bench.stack import (BENCH_APPID, RESULTS_DIR, Processes, StackError, _asyncpg_dsn,
                         child_env, free_port, pay_env, wait_http, zonehub_command)
from fakewechat import PayKeys
from fakewechat.pay import CST, FakePay, Order
from services.redis import QUEUE_NAME
from tests.support import STAFF_PASSWORD, City, requires_postgres

pytestmark = [requires_postgres, pytest.mark.timeout(300)]

MEMBERS = 300           # the notice's granted audience; the first ones also race for seats and pay
SIGNUPS = 120
CAPACITY = 25
PAYERS = 60
BATCH_SIZE = 20         # ZONEHUB_NOTICE_BATCH_SIZE: 300 recipients make 15 batches to share
TEMPLATE = "zonehub-notice"
WORKERS = ("multi-w1", "multi-w2")
READY_S = 60.0
SETTLE_S = 90.0


@dataclass
class Multi:
    apis: list[str]                      # http://127.0.0.1:<port>/api/v1, one per process
    wechat_url: str
    database_url: str
    redis_url: str
    pay_keys: PayKeys
    metrics: dict[str, str]              # worker name -> its /metrics URL
    procs: Processes
    tokens: list[str] = field(default_factory=list)  # member i's bearer token
    openids: list[str] = field(default_factory=list)
    member_ids: list[int] = field(default_factory=list)

    def api(self, n: int) -> str:
        """Request n goes to API process n % 2."""
        return self.apis[n % len(self.apis)]


def _with_pool_size(url: str, size: int) -> str:
    return url if "?" in url else f"{url}?maxsize={size}"


async def _seed(database_url: str) -> list[tuple[int, str]]:
    """Empty the database, then a small city and MEMBERS members each with one push grant."""
    from models.notices import SubscriptionGrant
    from models.org import Member
    from services.db import close_db, init_db
    from tests.conftest import reset_database

    await init_db(database_url)
    try:
        await reset_database()
        city = await City.build(zones=2, units_per_zone=2, members_per_unit=0)
        units = [u.id for us in city.units.values() for u in us]
        await Member.bulk_create([
            Member(unit_id=units[i % len(units)], name=f"并发{i}", phone=f"186{i:08d}",
                   openid=f"multi-{i}") for i in range(MEMBERS)])
        rows = await Member.filter(openid__startswith="multi-").order_by("id") \
            .values_list("id", "openid")
        await SubscriptionGrant.bulk_create([
            SubscriptionGrant(member_id=m, template_id=TEMPLATE, available=1, accepted_total=1)
            for m, _ in rows])
        return [(int(m), str(o)) for m, o in rows]
    finally:
        await close_db()


async def _ready(multi: Multi) -> None:
    """Every process answers; each worker has written its heartbeat; every member logged in."""
    await asyncio.gather(
        wait_http(f"{multi.wechat_url}/_fake/stats", procs=multi.procs, name="fake-wechat"),
        *(wait_http(f"{api}/health", procs=multi.procs, name=f"api-{i + 1}")
          for i, api in enumerate(multi.apis)),
        *(wait_http(url, procs=multi.procs, name=name) for name, url in multi.metrics.items()))
    client = sync_redis.Redis.from_url(multi.redis_url)
    try:
        deadline = time.monotonic() + READY_S
        for name in WORKERS:
            while not client.exists(f"{QUEUE_NAME}:health-check:{name}"):
                if multi.procs.children[name].poll() is not None or time.monotonic() > deadline:
                    raise StackError(f"{name} not ready:\n{multi.procs.log_tail(name)}")
                await asyncio.sleep(0.1)
    finally:
        client.close()
    async with aiohttp.ClientSession() as http:
        async def login(n: int) -> str:
            async with http.post(f"{multi.api(n)}/auth/wechat",
                                 json={"code": f"test-{multi.openids[n]}"}) as r:
                assert r.status == 200, await r.text()
                return str((await r.json())["token"])
        multi.tokens = list(await asyncio.gather(*(login(n) for n in range(MEMBERS))))


@pytest.fixture(scope="module")
def multi(database_url: str, redis_url: str) -> Iterator[Multi]:
    started = time.monotonic()
    members = asyncio.run(_seed(database_url))
    client = sync_redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)  # bench.stack's working directory (git-ignored)
    zonehub = zonehub_command()
    wechat_port = free_port()
    wechat_url = f"http://127.0.0.1:{wechat_port}"
    api_ports = [free_port(), free_port()]
    apis = [f"http://127.0.0.1:{p}/api/v1" for p in api_ports]
    metrics_ports = {name: free_port() for name in WORKERS}
    with tempfile.TemporaryDirectory(prefix="zonehub-multi-") as tmp, \
            Processes(log_dir=Path(tmp) / "logs") as procs:
        keys_dir = Path(tmp) / "pay-keys"
        pay_keys, pay = pay_env(keys_dir, wechat_url=wechat_url, api=apis[0])
        env = child_env(database_url=_with_pool_size(database_url, 8), redis_url=redis_url,
                        secret_key=secrets.token_urlsafe(48), wechat_api_base=wechat_url,
                        wechat_appid=BENCH_APPID, notice_batch_size=str(BATCH_SIZE),
                        data_dir=str(Path(tmp) / "data"), **pay)
        procs.spawn("fake-wechat", [*zonehub, "fake-wechat", "--port", str(wechat_port),
                                    "--pay-keys", str(keys_dir)], env=env)
        for i, port in enumerate(api_ports):
            procs.spawn(f"api-{i + 1}", [*zonehub, "serve", "--port", str(port)], env=env)
        for name, port in metrics_ports.items():
            procs.spawn(name, [*zonehub, "worker"],
                        env={**env, "ZONEHUB_WORKER_NAME": name,
                             "ZONEHUB_WORKER_METRICS_PORT": str(port)})
        multi = Multi(apis=apis, wechat_url=wechat_url, database_url=database_url,
                      redis_url=redis_url, pay_keys=pay_keys,
                      metrics={n: f"http://127.0.0.1:{p}/metrics"
                               for n, p in metrics_ports.items()},
                      procs=procs, member_ids=[m for m, _ in members],
                      openids=[o for _, o in members])
        asyncio.run(_ready(multi))
        print(f"\nmulti-process stack ready in {time.monotonic() - started:.1f} s")
        try:
            yield multi
        finally:
            for name in procs.children:
                print(f"--- {name} (last lines)\n{procs.log_tail(name, 15)}")
    # Processes.__exit__ has stopped every child (SIGTERM, then SIGKILL), whatever happened.


# -- helpers -------------------------------------------------------------------------------------

async def _staff(http: aiohttp.ClientSession, api: str) -> dict[str, str]:
    async with http.post(f"{api}/auth/login",
                         json={"username": "staff", "password": STAFF_PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return {"Authorization": f"Bearer {(await r.json())['token']}"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _db(multi: Multi) -> asyncpg.Connection:
    return await asyncpg.connect(_asyncpg_dsn(multi.database_url))


async def _until(check: Any, what: str, timeout_s: float = SETTLE_S) -> Any:
    """Poll check() until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        await asyncio.sleep(0.25)


def _jobs_by_worker(text: str) -> Counter[str]:
    """zonehub_jobs_total{job=...,outcome="ok"} of one worker's /metrics."""
    jobs: Counter[str] = Counter()
    for m in re.finditer(r'^zonehub_jobs_total\{job="([^"]+)",outcome="([^"]+)"\} ([0-9.e+]+)$',
                         text, re.M):
        if m.group(2) == "ok":
            jobs[m.group(1)] += int(float(m.group(3)))
    return jobs


async def _worker_jobs(multi: Multi) -> dict[str, Counter[str]]:
    async with aiohttp.ClientSession() as http:
        out = {}
        for name, url in multi.metrics.items():
            async with http.get(url) as r:
                out[name] = _jobs_by_worker(await r.text())
        return out


# -- 1. sign-up ----------------------------------------------------------------------------------

async def test_signup_race_over_two_api_processes(multi: Multi) -> None:
    async with aiohttp.ClientSession() as http:
        staff = await _staff(http, multi.apis[0])
        starts = datetime.now(UTC) + timedelta(days=2)
        async with http.post(f"{multi.apis[1]}/activities", headers=staff, json={
                "zone_id": None, "kind": "party_lesson", "title": "多进程报名",
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=2)).isoformat(),
                "capacity": CAPACITY, "audience": {"all": True}}) as r:
            assert r.status == 201, await r.text()
            activity_id = (await r.json())["id"]

        async def signup(n: int) -> tuple[int, str]:
            async with http.post(f"{multi.api(n)}/activities/{activity_id}/signup",
                                 headers=_bearer(multi.tokens[n])) as r:
                return r.status, (await r.json()).get("status", "")

        answers = await asyncio.gather(*(signup(n) for n in range(SIGNUPS)))
    assert Counter(s for s, _ in answers) == {201: SIGNUPS}, Counter(answers)
    assert Counter(status for _, status in answers) == {"confirmed": CAPACITY,
                                                        "waitlisted": SIGNUPS - CAPACITY}
    conn = await _db(multi)
    try:
        rows = await conn.fetch("SELECT member_id, status, queue_seq FROM signup "
                                "WHERE activity_id = $1", activity_id)
        confirmed = await conn.fetchval("SELECT count(*) FROM signup WHERE activity_id = $1 "
                                        "AND status = 'confirmed'", activity_id)
    finally:
        await conn.close()
    assert len(rows) == SIGNUPS and len({r["member_id"] for r in rows}) == SIGNUPS
    assert confirmed == CAPACITY
    queue = [r["queue_seq"] for r in rows if r["status"] == "waitlisted"]
    assert len(queue) == SIGNUPS - CAPACITY and None not in queue
    assert len(set(queue)) == len(queue), "two waitlisted members share a queue number"


# -- 2. notices ----------------------------------------------------------------------------------

async def test_notice_delivered_once_by_two_workers(multi: Multi) -> None:
    before = await _worker_jobs(multi)
    async with aiohttp.ClientSession() as http:
        staff = await _staff(http, multi.apis[1])
        async with http.post(f"{multi.apis[0]}/notices", headers=staff, json={
                "title": "多进程通知", "audience": {"all": True}}) as r:
            assert r.status == 202, await r.text()
            notice_id = (await r.json())["id"]
        conn = await _db(multi)
        try:
            recipients = await conn.fetchval(
                "SELECT count(*) FROM member WHERE unit_id IS NOT NULL AND is_active")

            async def pushed() -> bool:
                left = await conn.fetchval(
                    "SELECT count(*) FROM inbox_item WHERE notice_id = $1 AND member_id = ANY($2) "
                    "AND (push_status IS NULL OR push_status IN ('sending', 'pending'))",
                    notice_id, multi.member_ids)
                rows = await conn.fetchval("SELECT count(*) FROM inbox_item WHERE notice_id = $1",
                                           notice_id)
                return rows >= recipients and left == 0
            await _until(pushed, "every granted member's push settled")
            rows = await conn.fetch("SELECT member_id, count(*) AS n, "
                                    "count(*) FILTER (WHERE push_status = 'sent') AS sent "
                                    "FROM inbox_item WHERE notice_id = $1 GROUP BY member_id",
                                    notice_id)
        finally:
            await conn.close()
        async with http.get(f"{multi.wechat_url}/_fake/messages") as r:
            messages = (await r.json())["messages"]
    assert len(rows) == recipients and all(r["n"] == 1 for r in rows), "a doubled inbox row"
    granted = set(multi.member_ids)
    assert sum(r["sent"] for r in rows if r["member_id"] in granted) == MEMBERS
    pushes = Counter(m["touser"] for m in messages if m["touser"] in set(multi.openids))
    assert set(pushes) == set(multi.openids), "a granted member got no push"
    assert max(pushes.values()) == 1, f"pushed twice: {[o for o, n in pushes.items() if n > 1][:5]}"

    after = await _worker_jobs(multi)
    delivered = {name: sum(after[name][j] - before[name][j]
                           for j in ("plan_notice", "deliver_notice_batch", "push_notice_batch"))
                 for name in WORKERS}
    print(f"notice jobs per worker: {delivered}")
    batches = -(-recipients // BATCH_SIZE)
    assert sum(delivered.values()) >= 1 + batches, delivered


# -- 3. supervision ------------------------------------------------------------------------------

ITEMS = 60
SCANS = 12
MAX_SCANS = 400


async def _scans_since(multi: Multi, before: dict[str, Counter[str]]) -> list[int]:
    jobs = await _worker_jobs(multi)
    return [jobs[w]["escalate_supervision"] - before[w]["escalate_supervision"] for w in WORKERS]


async def test_escalations_fire_once_with_scans_on_both_workers(multi: Multi) -> None:
    """Every assignment 10 days overdue: all four steps are due, the scans race for them."""
    conn = await _db(multi)
    try:
        units = await conn.fetch("SELECT id, zone_id FROM unit ORDER BY id")
        staff = await conn.fetchval("SELECT id FROM member WHERE role = 'committee' LIMIT 1")
        now = datetime.now(UTC)
        due_at = now - timedelta(days=10)
        ladder = json.dumps({"remind_before_h": 48, "liaison_after_h": 24, "committee_after_h": 72})
        item_ids = [r["id"] for r in await conn.fetch(
            "INSERT INTO supervision_item (title, detail, attachments, due_at, ladder, target, "
            "created_by_id, created_at) SELECT '多进程督办 ' || g, '', '[]', $1, $2, '{}', $3, $4 "
            "FROM generate_series(1, $5) g RETURNING id", due_at, ladder, staff, now, ITEMS)]
        await conn.copy_records_to_table(
            "supervision_assignment", columns=["item_id", "unit_id", "zone_id", "state",
                                               "assigned_at", "escalation_level", "next_step",
                                               "next_step_at", "urge_count"],
            records=[(i, u["id"], u["zone_id"], "open", due_at - timedelta(days=5), 0, "remind",
                      due_at - timedelta(hours=48), 0) for i in item_ids for u in units])
        assignments = ITEMS * len(units)
        before = await _worker_jobs(multi)
        arq = await create_pool(RedisSettings.from_dsn(multi.redis_url),
                                default_queue_name=QUEUE_NAME)
        try:
            tag = secrets.token_hex(3)
            # Scans queued one after another while earlier ones run, until each worker has
            # taken at least one (a worker takes every job queued when it polls).
            n = 0
            while n < SCANS or not all(await _scans_since(multi, before)):
                assert n < MAX_SCANS, f"one worker took every scan: {await _worker_jobs(multi)}"
                await arq.enqueue_job("escalate_supervision", _job_id=f"multi-scan-{tag}-{n}")
                n += 1
                await asyncio.sleep(0.05)

            async def settled() -> bool:
                left = await conn.fetchval(
                    "SELECT count(*) FROM supervision_assignment WHERE item_id = ANY($1) "
                    "AND next_step IS NOT NULL", item_ids)
                return left == 0
            await _until(settled, "every assignment escalated to the end of its ladder")
        finally:
            await arq.aclose()
        events = await conn.fetch(
            "SELECT e.assignment_id, e.step, count(*) AS n FROM supervision_escalation e "
            "JOIN supervision_assignment a ON a.id = e.assignment_id WHERE a.item_id = ANY($1) "
            "GROUP BY e.assignment_id, e.step", item_ids)
        levels = Counter(r["escalation_level"] for r in await conn.fetch(
            "SELECT escalation_level FROM supervision_assignment WHERE item_id = ANY($1)",
            item_ids))
    finally:
        await conn.close()
    assert all(r["n"] == 1 for r in events), "a step recorded twice"
    steps = Counter(r["step"] for r in events)
    assert steps == {s: assignments for s in ("remind", "overdue", "liaison", "committee")}, steps
    assert levels == {4: assignments}, levels
    scans = dict(zip(WORKERS, await _scans_since(multi, before), strict=True))
    print(f"escalation scans per worker: {scans}")
    assert sum(scans.values()) >= SCANS and min(scans.values()) > 0, scans


# -- 4. funds ------------------------------------------------------------------------------------

def _notification(keys: PayKeys, api: str,
                  transaction: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """WeChat Pay's TRANSACTION.SUCCESS for the paid order, signed and encrypted with the run's
    platform keys (fakewechat.pay builds it, as bench/funds.py does)."""
    pay = FakePay(keys)
    no = transaction["out_trade_no"]
    pay.orders[no] = Order(
        appid=keys.appid, mchid=keys.mchid, out_trade_no=no, description="多进程缴费",
        notify_url=f"{api}/pay/wechat/notify", total=transaction["amount"]["total"],
        openid=transaction["payer"]["openid"], prepay_id="wx-multi", trade_state="SUCCESS",
        transaction_id=transaction["transaction_id"],
        success_time=datetime.now(CST).replace(microsecond=0),
        payer_total=transaction["amount"]["total"])
    headers, body = pay.notification(no)
    return dict(headers), body


async def test_each_payment_counted_once_when_notified_to_both_apis(multi: Multi) -> None:
    async with aiohttp.ClientSession() as http:
        staff = await _staff(http, multi.apis[0])
        async with http.post(f"{multi.apis[1]}/campaigns", headers=staff, json={
                "title": "多进程捐款", "kind": "donation",
                "ends_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()}) as r:
            assert r.status == 201, await r.text()
            campaign_id = (await r.json())["id"]

        amounts = [100 + 37 * n for n in range(PAYERS)]

        async def order(n: int) -> str:
            async with http.post(f"{multi.api(n)}/campaigns/{campaign_id}/contributions",
                                 headers={**_bearer(multi.tokens[n]),
                                          "Idempotency-Key": f"multi-{campaign_id}-{n}"},
                                 json={"amount_fen": amounts[n]}) as r:
                assert r.status == 201, await r.text()
                return str((await r.json())["out_trade_no"])

        trade_nos = await asyncio.gather(*(order(n) for n in range(PAYERS)))

        async def succeed(no: str) -> dict[str, Any]:  # the member pays; no notification yet
            async with http.post(f"{multi.wechat_url}/_fake/pay/orders/{no}/succeed") as r:
                assert r.status == 200, await r.text()
                return dict((await r.json())["transaction"])

        transactions = await asyncio.gather(*(succeed(no) for no in trade_nos))
        notes = [_notification(multi.pay_keys, multi.apis[0], t) for t in transactions]

        async def deliver(api: str, headers: dict[str, str], body: bytes) -> int:
            async with http.post(f"{api}/pay/wechat/notify", headers=headers, data=body) as r:
                return r.status

        # Each notification to both API processes at the same moment, all orders at once.
        statuses = await asyncio.gather(*(deliver(api, h, b) for h, b in notes
                                          for api in multi.apis))
        assert set(statuses) <= {200, 204}, Counter(statuses)
        async with http.get(f"{multi.apis[1]}/campaigns/{campaign_id}/totals",
                            headers=staff) as r:
            assert r.status == 200, await r.text()
            totals = await r.json()
    conn = await _db(multi)
    try:
        rows = await conn.fetch(
            "SELECT status, amount_fen FROM contribution WHERE campaign_id = $1", campaign_id)
        ledger = await conn.fetch("SELECT * FROM campaign_total WHERE campaign_id = $1",
                                  campaign_id)
    finally:
        await conn.close()
    assert Counter(r["status"] for r in rows) == {"paid": PAYERS}
    assert sum(r["amount_fen"] for r in rows) == sum(amounts)
    assert (totals["total_fen"], totals["count"]) == (sum(amounts), PAYERS), totals
    assert sum(r["online_fen"] for r in ledger) == sum(amounts)
    assert sum(r["online_count"] for r in ledger) == PAYERS


# -- last: both workers took part ----------------------------------------------------------------

async def test_both_workers_ran_jobs(multi: Multi) -> None:
    jobs = await _worker_jobs(multi)
    print(f"jobs per worker: { {n: dict(c) for n, c in jobs.items()} }")
    assert all(sum(jobs[name].values()) > 0 for name in WORKERS), jobs
    assert all(p.poll() is None for p in multi.procs.children.values()), "a process died"
