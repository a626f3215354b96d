"""A notice to 100,000 members: POST /api/v1/notices -> plan -> 100 batches of inbox rows ->
100,000 WeChat subscribe-message pushes to the fake WeChat, by ONE `zonehub worker`.

Set-up (unmeasured, asyncpg straight into the bench database): members are added with COPY,
spread over the demo units, until 100,000 active members have a unit, and every one of them gets
one `subscription_grant` for the notice template (available 1), so each is pushed exactly once.
Only then the worker is started (ctx.spawn, the stack's environment) and awaited (arq's
health-check key in Redis).

Beside it, in the same run: the baseline, plain aiohttp POSTs of the same JSON body straight to
the fake's `/cgi-bin/message/subscribe/send`, 50 in flight like the worker's
ZONEHUB_PUSH_IN_FLIGHT; then `/_fake/reset` so the figure counts only its own pushes.

The figure: the committee POSTs the notice; the harness polls every 0.25 s the inbox rows of the
notice (SQL count) and the fake's message count, until 100,000 each (timeout TIMEOUT_S). Rows:
rate = rows (or pushes) per second from the POST; p50/p99 = ms from the POST until a row was
delivered (inbox_item.delivered_at) or pushed (inbox_item.pushed_at). Checked at the end: 100,000
rows `push_status='sent'`, the fake received exactly 100,000 messages to 100,000 distinct users,
no grant left unconsumed.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import redis.asyncio as aioredis

from bench.figure import Context, Figure, Result, SetupFailed
from bench.loadgen import LoadStats, percentile
from bench.stack import _asyncpg_dsn, zonehub_command

MEMBERS = 100_000
TEMPLATE = "zonehub-notice"  # ZONEHUB_WECHAT_NOTICE_TEMPLATE_ID's default
IN_FLIGHT = 50  # ZONEHUB_PUSH_IN_FLIGHT's default
BASELINE_MESSAGES = 20_000
POLL_S = 0.25
TIMEOUT_S = 240.0
WORKER_READY_S = 30.0
WORKER_NAME = "bench-notices"
HEALTH_KEY = f"zonehub:queue:health-check:{WORKER_NAME}"  # tasks.worker.health_check_key
DEFAULT_APPID, DEFAULT_SECRET = "wx-zonehub-demo", "zonehub-demo-secret"  # services.settings


def _stats(count: int, elapsed_s: float, latencies_ms: list[float], errors: int = 0,
           error_kinds: dict[str, int] | None = None) -> LoadStats:
    lat = sorted(latencies_ms)
    return LoadStats(requests=count, elapsed_s=elapsed_s, rate=count / max(elapsed_s, 1e-9),
                     p50_ms=percentile(lat, 50), p99_ms=percentile(lat, 99), errors=errors,
                     error_kinds=error_kinds or {})


# -- set-up --------------------------------------------------------------------------------------

async def populate(conn: asyncpg.Connection) -> tuple[int, int]:
    """Members up to MEMBERS with a unit, one grant each; (members added, audience size)."""
    have = await conn.fetchval(
        "SELECT count(*) FROM member WHERE is_active AND unit_id IS NOT NULL")
    units = [r["id"] for r in await conn.fetch("SELECT id FROM unit ORDER BY id")]
    if not units:
        raise SetupFailed("the demo city has no units")
    add = max(0, MEMBERS - have)
    now = datetime.now(UTC)
    await conn.copy_records_to_table(
        "member", columns=["unit_id", "name", "phone", "role", "position", "openid",
                           "token_version", "is_active", "created_at", "updated_at"],
        records=[(units[n % len(units)], f"压测成员{n}", f"19{n:09d}", "member", "member",
                  f"bench-{n}", 0, True, now, now) for n in range(add)])
    await conn.execute(
        "INSERT INTO subscription_grant (member_id, template_id, available, accepted_total, "
        "rejected_total, updated_at) SELECT id, $1, 1, 1, 0, now() FROM member "
        "WHERE is_active AND unit_id IS NOT NULL "
        "ON CONFLICT (member_id, template_id) DO UPDATE SET available = 1", TEMPLATE)
    await conn.execute("ANALYZE member")
    await conn.execute("ANALYZE subscription_grant")
    audience = await conn.fetchval(
        "SELECT count(*) FROM member m JOIN subscription_grant g ON g.member_id = m.id "
        "AND g.template_id = $1 AND g.available > 0 "
        "WHERE m.is_active AND m.unit_id IS NOT NULL AND m.openid IS NOT NULL", TEMPLATE)
    return add, int(audience)


async def start_worker(ctx: Context) -> None:
    """`zonehub worker` with the stack's env; returns once arq has written its health check."""
    redis = aioredis.Redis.from_url(ctx.stack.redis_url)
    try:
        await redis.delete(HEALTH_KEY)
        proc = ctx.stack.processes.spawn("worker", [*zonehub_command(), "worker"],
                                         env={**ctx.stack.env, "ZONEHUB_WORKER_NAME": WORKER_NAME})
        deadline = time.monotonic() + WORKER_READY_S
        while not await redis.exists(HEALTH_KEY):
            if proc.poll() is not None:
                raise SetupFailed(f"zonehub worker exited {proc.returncode}:\n"
                                  f"{ctx.stack.processes.log_tail('worker')}")
            if time.monotonic() > deadline:
                raise SetupFailed(f"zonehub worker not ready within {WORKER_READY_S:.0f} s:\n"
                                  f"{ctx.stack.processes.log_tail('worker')}")
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()


# -- the baseline: straight to the fake ----------------------------------------------------------

def push_body(openid: str) -> bytes:
    """What services.delivery sends for a notice titled 压测通知 (services.push.Pusher.send)."""
    data = {"thing1": {"value": "压测通知"}, "time2": {"value": "2025-01-01 09:00"},
            "thing3": {"value": "请及时阅读"}}
    return json.dumps({"touser": openid, "template_id": TEMPLATE, "data": data,
                       "page": "pages/notices/index"}, ensure_ascii=False).encode()


async def direct_baseline(ctx: Context) -> LoadStats:
    """BASELINE_MESSAGES subscribe/send POSTs to the fake, IN_FLIGHT at a time."""
    env = ctx.stack.env
    wechat = ctx.stack.wechat_url
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async with http.post(f"{wechat}/cgi-bin/stable_token", json={
                "grant_type": "client_credential",
                "appid": env.get("ZONEHUB_WECHAT_APPID", DEFAULT_APPID),
                "secret": env.get("ZONEHUB_WECHAT_SECRET", DEFAULT_SECRET)}) as resp:
            answer = await resp.json()
        token = answer.get("access_token")
        if not token:
            raise SetupFailed(f"fake WeChat stable_token: {answer}")
        url = f"{wechat}/cgi-bin/message/subscribe/send"
        params = {"access_token": token}
        headers = {"Content-Type": "application/json"}
        bodies = [push_body(f"baseline-{n}") for n in range(BASELINE_MESSAGES)]
        latencies: list[float] = []
        errors: dict[str, int] = {}
        next_n = 0

        async def lane() -> None:
            nonlocal next_n
            while next_n < len(bodies):
                body = bodies[next_n]
                next_n += 1
                began = time.perf_counter()
                try:
                    async with http.post(url, params=params, data=body, headers=headers) as r:
                        result = json.loads(await r.read())
                    code = int(result.get("errcode", 0))
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    code, result = -1, {"errmsg": type(exc).__name__}
                latencies.append((time.perf_counter() - began) * 1000)
                if code:
                    kind = f"errcode {code}: {result.get('errmsg')}"
                    errors[kind] = errors.get(kind, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
        elapsed = time.perf_counter() - start
        async with http.post(f"{wechat}/_fake/reset") as resp:
            if resp.status != 200:
                raise SetupFailed(f"/_fake/reset: HTTP {resp.status}")
    return _stats(len(latencies), elapsed, latencies, sum(errors.values()), errors)


# -- the figure ----------------------------------------------------------------------------------

async def fake_messages(ctx: Context) -> int:
    async with ctx.session.get(f"{ctx.stack.wechat_url}/_fake/stats") as resp:
        return int((await resp.json())["messages"])


async def run(ctx: Context) -> list[Result]:
    from bench.signups import committee_token

    url = ctx.stack.database_url
    if url.startswith("sqlite://"):
        raise SetupFailed("the notices figure needs PostgreSQL")
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        t0 = time.perf_counter()
        added, audience = await populate(conn)
        print(f"bench: notices: {added:,} members added, {audience:,} with a grant "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
        if audience != MEMBERS:
            raise SetupFailed(f"{audience:,} members to push, expected {MEMBERS:,}")
        base = await direct_baseline(ctx)
        await start_worker(ctx)
        staff = await committee_token(ctx)

        posted_wall = time.time()
        posted = time.perf_counter()
        answer = await ctx.call("POST", "/notices", token=staff, expect=202,
                                body={"title": "压测通知", "audience": {"all": True}})
        notice_id = int(answer["id"])
        inbox_s = pushes_s = None
        rows = pushed = 0
        while time.perf_counter() - posted < TIMEOUT_S:
            rows = await conn.fetchval("SELECT count(*) FROM inbox_item WHERE notice_id = $1",
                                       notice_id)
            pushed = await fake_messages(ctx)
            now = time.perf_counter() - posted
            if inbox_s is None and rows >= MEMBERS:
                inbox_s = now
            if pushes_s is None and pushed >= MEMBERS:
                pushes_s = now
            if inbox_s is not None and pushes_s is not None:
                break
            await asyncio.sleep(POLL_S)
        await asyncio.sleep(1.0)  # anything sent twice would arrive now

        # Latency of each row from the POST, from the worker's own timestamps.
        times = await conn.fetch(
            "SELECT extract(epoch FROM delivered_at) AS d, extract(epoch FROM pushed_at) AS p, "
            "push_status FROM inbox_item WHERE notice_id = $1", notice_id)
        delivered_ms = [(float(r["d"]) - posted_wall) * 1000 for r in times]
        pushed_ms = [(float(r["p"]) - posted_wall) * 1000 for r in times if r["p"] is not None]
        statuses: dict[str, int] = {}
        for r in times:
            statuses[str(r["push_status"])] = statuses.get(str(r["push_status"]), 0) + 1
        sent = statuses.get("sent", 0)
        async with ctx.session.get(f"{ctx.stack.wechat_url}/_fake/stats") as resp:
            stats = await resp.json()
        left = await conn.fetchval("SELECT count(*) FROM subscription_grant WHERE template_id = $1 "
                                   "AND available > 0", TEMPLATE)
        notice = await conn.fetchrow("SELECT status, recipients, planned_at, delivered_at "
                                     "FROM notice WHERE id = $1", notice_id)
        batches = await conn.fetchrow(
            "SELECT count(*) AS n, count(pushed_at) AS pushed, max(attempts) AS attempts "
            "FROM notice_batch WHERE notice_id = $1", notice_id)
    finally:
        await conn.close()

    # Distinct users at the fake: the message list (touser only), once, after the figure.
    distinct = None
    try:
        async with ctx.session.get(f"{ctx.stack.wechat_url}/_fake/messages",
                                   timeout=aiohttp.ClientTimeout(total=60)) as resp:
            msgs = (await resp.json())["messages"]
        distinct = len({m["touser"] for m in msgs})
    except (aiohttp.ClientError, TimeoutError, ValueError):
        pass

    problems: list[str] = []
    if inbox_s is None:
        problems.append(f"only {rows:,} inbox rows after {TIMEOUT_S:.0f} s")
    if pushes_s is None:
        problems.append(f"only {pushed:,} pushes at the fake after {TIMEOUT_S:.0f} s")
    if sent != MEMBERS:
        problems.append(f"push_status: {statuses} (expected {MEMBERS:,} sent)")
    if stats["messages"] != MEMBERS:
        problems.append(f"the fake received {stats['messages']:,} messages, expected {MEMBERS:,}")
    if distinct is not None and distinct != stats["messages"]:
        problems.append(f"{stats['messages']:,} messages to {distinct:,} distinct users")
    if left:
        problems.append(f"{left:,} grants not consumed")
    if base.errors:
        problems.append(f"direct baseline: {base.error_kinds}")

    print(f"bench: notices: notice {notice_id}: {dict(notice)}; batches {dict(batches)}; "
          f"fake stats {stats}; push_status {statuses}; distinct users at the fake {distinct}",
          flush=True)
    verdict = "✓" if not problems else "CHECK FAILED"
    results = [Result(f"direct POST subscribe/send to fake, {IN_FLIGHT} in flight, msgs/s", base)]
    if inbox_s is not None:
        results.append(Result(
            f"notice → {MEMBERS // 1000}k inbox rows in {inbox_s:.1f} s, rows/s "
            f"(p50/p99: ms POST → row)", _stats(MEMBERS, inbox_s, delivered_ms)))
    if pushes_s is not None:
        rate = MEMBERS / pushes_s
        results.append(Result(
            f"notice → {MEMBERS // 1000}k pushes at fake in {pushes_s:.1f} s, pushes/s "
            f"({rate / base.rate:.2f}x direct; p50/p99: ms POST → push) {verdict}",
            _stats(MEMBERS, pushes_s, pushed_ms)))
    if problems:
        results.append(Result(label="notices check", failure="; ".join(problems)[:300]))
    return results


FIGURE = Figure("notices", run)
