"""The escalation scan over 100,000 open assignments on the bench database, in this process.

Set-up: enough items assigned to every demo unit (95 units) to make 100,000 assignments, written
with COPY; DUE of them have their reminder due now, the rest a step days to weeks ahead.
Then, beside each other in the same run:

1. the bare indexed SELECT (asyncpg, no ORM): the floor of a scan that finds a full batch, and
   (row 5) of one that finds nothing;
2. `services.escalation.due()`: the same query through tortoise, as the cron runs it;
3. `services.escalation.run_escalations()` firing the due reminders: escalations per second,
   latency per batch of 500 (claim rows, advance pointers, write the inbox messages, commit);
4. `run_escalations()` once nothing is due: the steady cost of the minute-by-minute cron, beside
   the bare SELECT that finds nothing.

The `vs baseline` column compares with the HTTP baseline like every figure; the ratio to the bare
SELECT of row 1 is in each label.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.figure import Context, Figure, Result, SetupFailed
from bench.loadgen import LoadStats, percentile
from bench.stack import _asyncpg_dsn

ASSIGNMENTS = 100_000
DUE = 30_000
SCAN_SQL = ("SELECT id, next_step, next_step_at FROM supervision_assignment "
            "WHERE next_step_at <= $1 ORDER BY next_step_at LIMIT 500")  # = services.escalation.due


def _stats(latencies_s: list[float], count: int, elapsed_s: float) -> LoadStats:
    lat = sorted(latencies_s)
    return LoadStats(requests=count, elapsed_s=elapsed_s, rate=count / max(elapsed_s, 1e-9),
                     p50_ms=percentile(lat, 50) * 1000, p99_ms=percentile(lat, 99) * 1000,
                     errors=0, error_kinds={})


async def _loop(fn: Callable[[], Awaitable[Any]], *, duration_s: float, warmup_s: float) -> LoadStats:
    """Call fn back to back: warm-up, then measure calls per second and latency."""
    stop_warm = time.perf_counter() + warmup_s
    while time.perf_counter() < stop_warm:
        await fn()
    latencies: list[float] = []
    start = time.perf_counter()
    while (began := time.perf_counter()) - start < duration_s:
        await fn()
        latencies.append(time.perf_counter() - began)
    return _stats(latencies, len(latencies), time.perf_counter() - start)


async def _populate(conn: asyncpg.Connection, now: Any) -> int:
    units = await conn.fetch("SELECT id, zone_id FROM unit ORDER BY id")
    staff = await conn.fetchval("SELECT id FROM member WHERE role = 'committee' ORDER BY id LIMIT 1")
    if not units or staff is None:
        raise SetupFailed("the demo city has no units or no committee staff")
    items = math.ceil(ASSIGNMENTS / len(units))
    ladder = json.dumps({"remind_before_h": 48, "liaison_after_h": 24, "committee_after_h": 72})
    due_at = now + timedelta(hours=24)  # the reminder (48 h before) is due now
    await conn.copy_records_to_table(
        "supervision_item", columns=["title", "detail", "attachments", "due_at", "ladder", "target",
                                     "created_by_id", "created_at"],
        records=[(f"bench item {i}", "", "[]", due_at, ladder, "{}", staff, now) for i in range(items)])
    item_ids = [r["id"] for r in await conn.fetch(
        "SELECT id FROM supervision_item WHERE title LIKE 'bench item %' ORDER BY id")]
    records = []
    n = 0
    for item_id in item_ids:
        for unit in units:
            if n == ASSIGNMENTS:
                break
            due_now = n < DUE
            step_at = now - timedelta(minutes=1) if due_now else now + timedelta(hours=1 + n % 1000)
            records.append((item_id, unit["id"], unit["zone_id"], "open", now, 0, "remind", step_at, 0))
            n += 1
    await conn.copy_records_to_table(
        "supervision_assignment", columns=["item_id", "unit_id", "zone_id", "state", "assigned_at",
                                           "escalation_level", "next_step", "next_step_at",
                                           "urge_count"], records=records)
    await conn.execute("ANALYZE supervision_assignment")
    return len(records)


async def run(ctx: Context) -> list[Result]:
    from services import clock
    from services import escalation as svc
    from services.db import close_db, init_db

    url = ctx.stack.database_url
    if url.startswith("sqlite://"):
        raise SetupFailed("the escalation figure needs PostgreSQL")
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    await init_db(url)
    try:
        now = clock.now()
        total = await _populate(conn, now)
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + SCAN_SQL.replace("$1", "now()")))
        if "Index" not in plan:
            raise SetupFailed(f"the scan does not use the index:\n{plan}")
        label = f"{total:,} open, {DUE:,} due"

        bare = await _loop(lambda: conn.fetch(SCAN_SQL, clock.now()), duration_s=ctx.duration_s,
                           warmup_s=ctx.warmup_s)
        orm = await _loop(lambda: svc.due(at=clock.now()), duration_s=ctx.duration_s,
                          warmup_s=ctx.warmup_s)

        # Fire for the run's duration (or until every due reminder has fired). The demo city's
        # year already holds escalations: count the rows this run adds.
        before = await conn.fetchval("SELECT count(*) FROM supervision_escalation")
        batches: list[float] = []
        fired = 0
        start = time.perf_counter()
        while time.perf_counter() - start < ctx.duration_s:
            began = time.perf_counter()
            one = await svc.run_escalations(budget_s=0)  # 0: exactly one batch per call
            if one.fired == 0:
                break
            fired += one.fired
            batches.append(time.perf_counter() - began)
        firing = _stats(batches, fired, time.perf_counter() - start)
        counted = await conn.fetchval("SELECT count(*) FROM supervision_escalation") - before
        if counted != fired:
            raise SetupFailed(f"{fired} fired but {counted} escalation rows")

        # Nothing due any more: what the cron costs every minute.
        await conn.execute("UPDATE supervision_assignment SET next_step_at = $1 "
                           "WHERE next_step_at <= $1", clock.now() + timedelta(hours=1))
        idle = await _loop(svc.run_escalations, duration_s=ctx.duration_s, warmup_s=ctx.warmup_s)
        bare_idle = await _loop(lambda: conn.fetch(SCAN_SQL, clock.now()), duration_s=ctx.duration_s,
                                warmup_s=ctx.warmup_s)
    finally:
        await conn.close()
        await close_db()

    def vs(s: LoadStats, base: LoadStats) -> str:
        return f"{s.rate / base.rate:.2f}x bare SELECT" if base.rate else "-"

    return [
        Result(f"bare indexed SELECT, asyncpg ({label}), queries/s", bare),
        Result(f"scan query via tortoise, svc.due(), scans/s ({vs(orm, bare)})", orm),
        Result("firing reminders: escalations/s (p50/p99: ms per batch of 500)", firing),
        Result(f"run_escalations(), nothing due, scans/s ({vs(idle, bare_idle)})", idle),
        Result("bare indexed SELECT, asyncpg, nothing due, queries/s", bare_idle),
    ]


FIGURE = Figure("escalation", run)
