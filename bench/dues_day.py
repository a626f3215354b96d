"""Special dues day: 20,000 members log in, read a notice and pay, within a few minutes.

Opt-in (`--only dues_day`, never in the default run: 3-5 minutes here on one or two API processes).

Set-up (unmeasured, asyncpg straight into the bench database): MEMBERS members added with COPY,
spread over the demo units, each bound to the fake WeChat openid `dues-<n>` (login code
`test-dues-<n>`, docs/fake-wechat.md); one notice (status delivered) with an inbox row for each
of them, written by SQL as the worker's fan-out would; the committee opens a special-dues drive
through the API.

Then three steps, one after the other, each a fixed amount of work (every member once, not a
duration): `--connections` lanes each take the next member until all are done.

1. log in: `POST /auth/wechat {"code": "test-dues-<n>"}` (the API asks the fake's
   code2Session, finds the member, signs a token);
2. read the notice: `GET /me/notices` (the inbox with its unread count), then
   `POST /notices/{id}/read`;
3. pay: `POST /campaigns/{id}/contributions` (a random 1-500 yuan under Idempotency-Key
   `dues-<n>`: INSERT, JSAPI prepay at the fake over HTTP, the wx.requestPayment parameters),
   then WeChat Pay's TRANSACTION.SUCCESS notification for that order, signed and encrypted in
   this process with the run's platform and APIv3 keys (bench/funds.py `sign_notification`,
   ~0.4 ms of this process's CPU, inside the step's wall time but outside both latencies), to
   `POST /pay/wechat/notify`.

Rows: one per request kind; `req/s` = requests of that kind / the step's wall time (so the two
rows of a step share its wall), p50/p99 of that kind's 2xx answers. Checked at the end (SQL and
the API): MEMBERS inbox rows read, MEMBERS paid orders of the drive, one per member, with the
amounts sent, and the drive's totals (API) = their sum and count. Compared with the raw asyncpg
transaction (INSERT + UPDATE) of the same run (bench/run.py SQL_BASELINES).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
from yarl import URL

from bench.figure import Context, Figure, Result, SetupFailed
from bench.funds import AMOUNT_FEN, create_drive, sign_notification, verdict
from bench.loadgen import MAX_ERROR_KINDS, LoadStats, percentile
from bench.signups import committee_token
from bench.stack import NOTIFY_PATH, _asyncpg_dsn
from fakewechat.pay import FakePay

MEMBERS = 20_000
OPENID = "dues-{n}"
NOTICE_TITLE = "特殊党费收缴通知"
TIMEOUT_S = 60.0

NOTICE_SQL = """
INSERT INTO notice (kind, status, priority, attachments, title, body, audience, require_ack,
    ref_type, recipients, topic, planned_at, delivered_at, created_at)
VALUES ('notice', 'delivered', 'normal', '[]', $1, '请于今日内完成特殊党费缴纳。', '{"all": true}',
    false, '', $2, '', now(), now(), now())
RETURNING id
"""
INBOX_SQL = """
INSERT INTO inbox_item (notice_id, member_id, unit_id, delivered_at)
SELECT $1, id, unit_id, now() FROM member WHERE openid = ANY($2::text[])
"""
CHECK_SQL = """
SELECT
  (SELECT count(*) FROM inbox_item WHERE notice_id = $1 AND read_at IS NOT NULL) AS read,
  (SELECT count(*) FROM contribution WHERE campaign_id = $2 AND status = 'paid') AS paid,
  (SELECT count(DISTINCT member_id) FROM contribution WHERE campaign_id = $2
     AND status = 'paid') AS payers,
  (SELECT coalesce(sum(amount_fen), 0) FROM contribution WHERE campaign_id = $2
     AND status = 'paid') AS paid_fen
"""
PAID_SQL = ("SELECT c.amount_fen, m.openid FROM contribution c JOIN member m ON m.id = c.member_id "
            "WHERE c.campaign_id = $1 AND c.status = 'paid'")


# -- set-up --------------------------------------------------------------------------------------

async def seed(conn: asyncpg.Connection) -> int:
    """MEMBERS members with openids dues-<n> and a unit, one delivered notice in all their
    inboxes; the notice id."""
    units = [r["id"] for r in await conn.fetch("SELECT id FROM unit ORDER BY id")]
    if not units:
        raise SetupFailed("the demo city has no units")
    now = datetime.now(UTC)
    openids = [OPENID.format(n=n) for n in range(MEMBERS)]
    await conn.copy_records_to_table(
        "member", columns=["unit_id", "name", "phone", "role", "position", "openid",
                           "token_version", "is_active", "created_at", "updated_at"],
        records=[(units[n % len(units)], f"会费日党员{n}", f"17{n:09d}", "member", "member",
                  openids[n], 0, True, now, now) for n in range(MEMBERS)])
    async with conn.transaction():
        notice_id = int(await conn.fetchval(NOTICE_SQL, NOTICE_TITLE, MEMBERS))
        status = await conn.execute(INBOX_SQL, notice_id, openids)
    if status != f"INSERT 0 {MEMBERS}":
        raise SetupFailed(f"inbox rows: {status}, expected {MEMBERS:,}")
    for table in ("member", "inbox_item"):
        await conn.execute(f"ANALYZE {table}")
    return notice_id


# -- fixed work over N lanes ---------------------------------------------------------------------

class Kind:
    """The latencies (s) and errors of one kind of request within a step."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()

    def error(self, what: str) -> None:
        if what in self.errors or len(self.errors) < MAX_ERROR_KINDS:
            self.errors[what] += 1
        else:
            self.errors["(other)"] += 1

    def stats(self, wall_s: float) -> LoadStats:
        lat = sorted(self.latencies)
        return LoadStats(requests=len(lat), elapsed_s=wall_s, rate=len(lat) / max(wall_s, 1e-9),
                         p50_ms=percentile(lat, 50) * 1000, p99_ms=percentile(lat, 99) * 1000,
                         errors=sum(self.errors.values()), error_kinds=dict(self.errors))


async def send(session: aiohttp.ClientSession, kind: Kind, method: str, url: URL | str, *,
               headers: dict[str, str], body: bytes | None = None) -> Any:
    """One request; its latency if 2xx (→ the decoded JSON), else an error (→ None)."""
    began = time.perf_counter()
    try:
        async with session.request(method, url, headers=headers, data=body) as resp:
            text = await resp.read()
            status = resp.status
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        kind.error(f"{type(exc).__name__}: {exc}"[:200])
        return None
    if not 200 <= status < 300:
        kind.error(f"HTTP {status} {method} {URL(url).path}: {text[:120]!r}")
        return None
    kind.latencies.append(time.perf_counter() - began)
    return json.loads(text) if text else {}


async def every_member(connections: int, one: Callable[[aiohttp.ClientSession, int],
                                                       Awaitable[None]]) -> float:
    """one(session, n) for n in 0..MEMBERS-1 over `connections` lanes; the wall time (s)."""
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    next_n = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        async def lane() -> None:
            nonlocal next_n
            while next_n < MEMBERS:
                n = next_n
                next_n += 1
                await one(session, n)

        began = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(connections)))
        return time.perf_counter() - began


JSON = {"Content-Type": "application/json"}


# -- the figure ----------------------------------------------------------------------------------

async def run(ctx: Context) -> list[Result]:
    url = ctx.stack.database_url
    if url.startswith("sqlite://"):
        raise SetupFailed("the dues_day figure needs PostgreSQL")
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        t0 = time.perf_counter()
        notice_id = await seed(conn)
        staff = await committee_token(ctx)
        campaign_id = await create_drive(ctx, staff, title="特殊党费：压测", kind="special_dues")
        print(f"bench: dues_day: {MEMBERS:,} members and their inbox rows seeded "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
        return await _run(ctx, conn, staff, notice_id, campaign_id)
    finally:
        await conn.close()


async def _run(ctx: Context, conn: asyncpg.Connection, staff: str, notice_id: int,
               campaign_id: int) -> list[Result]:
    api, lanes = ctx.api, ctx.connections
    tokens: list[dict[str, str] | None] = [None] * MEMBERS
    openids = [OPENID.format(n=n) for n in range(MEMBERS)]

    # 1. log in
    login = Kind()
    login_url = URL(f"{api}/auth/wechat")

    async def log_in(session: aiohttp.ClientSession, n: int) -> None:
        answer = await send(session, login, "POST", login_url, headers=JSON,
                            body=json.dumps({"code": f"test-{openids[n]}"}).encode())
        if answer is not None:
            tokens[n] = {"Authorization": f"Bearer {answer['token']}"}

    login_s = await every_member(lanes, log_in)

    # 2. read the notice: the inbox, then mark it read
    inbox, read = Kind(), Kind()
    inbox_url, read_url = URL(f"{api}/me/notices"), URL(f"{api}/notices/{notice_id}/read")
    not_in_inbox = 0

    async def read_notice(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal not_in_inbox
        auth = tokens[n]
        if auth is None:
            return
        page = await send(session, inbox, "GET", inbox_url, headers=auth)
        if page is not None and not any(i["notice_id"] == notice_id
                                        for i in page["items"]):
            not_in_inbox += 1
        await send(session, read, "POST", read_url, headers=auth)

    read_s = await every_member(lanes, read_notice)

    # 3. pay: the order, then WeChat Pay's notification for it
    order, notify = Kind(), Kind()
    order_url = URL(f"{api}/campaigns/{campaign_id}/contributions")
    notify_url = URL(f"{api}{NOTIFY_PATH}")
    pay = FakePay(ctx.stack.pay_keys)
    rng = random.Random()
    amounts: dict[str, int] = {}  # openid -> fen ordered

    async def pay_dues(session: aiohttp.ClientSession, n: int) -> None:
        auth = tokens[n]
        if auth is None:
            return
        amount = rng.randint(*AMOUNT_FEN)
        made = await send(session, order, "POST", order_url,
                          headers={**auth, **JSON, "Idempotency-Key": f"dues-{n}"},
                          body=json.dumps({"amount_fen": amount}).encode())
        if made is None:
            return
        amounts[openids[n]] = amount
        note = sign_notification(pay, notify_url, {"out_trade_no": made["out_trade_no"],
                                                   "amount_fen": made["amount_fen"],
                                                   "openid": openids[n]})
        await send(session, notify, "POST", note.url, headers=note.headers, body=note.body)

    pay_s = await every_member(lanes, pay_dues)

    # checks
    counts = await conn.fetchrow(CHECK_SQL, notice_id, campaign_id)
    paid = {r["openid"]: r["amount_fen"] for r in await conn.fetch(PAID_SQL, campaign_id)}
    totals = await ctx.call("GET", f"/campaigns/{campaign_id}/totals", token=staff)
    want_fen = sum(amounts.values())
    problems: dict[str, list[str]] = {"login": [], "read": [], "pay": []}
    if login.errors:
        problems["login"].append(f"{sum(login.errors.values())} logins failed")
    if not_in_inbox:
        problems["read"].append(f"{not_in_inbox} inboxes without the notice")
    if counts["read"] != MEMBERS:
        problems["read"].append(f"{counts['read']:,} read receipts, expected {MEMBERS:,}")
    if (counts["paid"], counts["payers"]) != (MEMBERS, MEMBERS):
        problems["pay"].append(f"{counts['paid']:,} paid orders by {counts['payers']:,} members, "
                               f"expected {MEMBERS:,} by {MEMBERS:,}")
    if paid != amounts:
        differ = sum(1 for k in set(paid) | set(amounts) if paid.get(k) != amounts.get(k))
        problems["pay"].append(f"{differ} members' paid amount differs from their order")
    if (totals["total_fen"], totals["count"]) != (want_fen, len(amounts)) or \
            counts["paid_fen"] != want_fen:
        problems["pay"].append(f"totals {totals['total_fen']} fen / {totals['count']}, paid rows "
                               f"{counts['paid_fen']} fen, the orders make {want_fen} fen / "
                               f"{len(amounts)}")

    wall = login_s + read_s + pay_s
    print(f"bench: dues_day: log in {login_s:.1f} s, read {read_s:.1f} s, pay {pay_s:.1f} s: "
          f"{wall:.1f} s for {MEMBERS:,} members on {lanes} connections; "
          f"{counts['read']:,} read, {counts['paid']:,} paid, {want_fen / 100:,.2f} yuan",
          flush=True)
    k = f"{MEMBERS // 1000}k"
    results = [
        Result(f"dues day 1. POST /auth/wechat ({k} logins in {login_s:.1f} s "
               f"{verdict(problems['login'])})", login.stats(login_s)),
        Result(f"dues day 2. GET /me/notices (step 2: {read_s:.1f} s)", inbox.stats(read_s)),
        Result(f"dues day 2. POST /notices/{{id}}/read ({counts['read']:,} read "
               f"{verdict(problems['read'])})", read.stats(read_s)),
        Result(f"dues day 3. POST …/contributions (step 3: {pay_s:.1f} s)", order.stats(pay_s)),
        Result(f"dues day 3. POST /pay/wechat/notify ({counts['paid']:,} paid, totals = sum "
               f"{verdict(problems['pay'])}; all 3 steps {wall:.0f} s)", notify.stats(pay_s)),
    ]
    failed = [p for ps in problems.values() for p in ps]
    if failed:
        results.append(Result(label="dues_day check", failure="; ".join(failed)[:300]))
    return results


FIGURE = Figure("dues_day", run)
