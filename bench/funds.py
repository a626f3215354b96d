"""Funds: paying a donation drive through WeChat Pay, four rows measured beside the raw asyncpg
transaction baseline (`POST /txn/{id}` of bench/baseline.py: one INSERT + one UPDATE).

Set-up: the committee opens a donation drive for the whole city, 2,000 demo members log in.

1. `POST /campaigns/{id}/contributions`: member n mod 2,000 makes an order of a random amount
   with a new Idempotency-Key per request, so every request is a new order: INSERT, WeChat Pay's
   JSAPI prepay on the fake over HTTP (the API RSA-signs the request, the fake verifies it and
   RSA-signs its answer, the API verifies that), then the RSA-signed wx.requestPayment
   parameters. Checked: every key sent is exactly one pending order with its member, amount and
   prepay_id, and the fake WeChat Pay holds every one of them (same total).
2. `POST /pay/wechat/notify`: a TRANSACTION.SUCCESS notification for each pending order, signed
   with the run's platform key and AES-256-GCM encrypted with its APIv3 key in this process (as
   WeChat Pay would), built before the load (the signing is not measured), each paying a distinct
   order: verify, decrypt, then the conditional UPDATE of the order and the upsert of its unit's
   running total in one transaction. The orders of row 1 come first; as the load runs for a fixed
   time, orders are added by SQL (pending, like row 1's) up to NOTIFY_RATE_CEILING_PER_S x
   (warm-up + duration); running past them fails the check. Checked: the drive's totals (API)
   equal the sum and count of the notified orders, overall and per unit, and exactly those orders
   are paid (SQL).
3. The same notifications (the same bytes) again, cycled if the load outruns them: all
   duplicates (verify, decrypt, a conditional UPDATE that matches nothing and one read).
   Checked: totals and paid orders unchanged.
4. `GET /campaigns/{id}/totals` by the 2,000 members, with nothing else running: the running
   rows of their units (41 of the demo's) joined with the names, summed by zone, ranked.

The API refuses a notification whose timestamp is more than 300 s from now: the signing and
rows 2 and 3 must fit in that time, else the figure fails before measuring (`--duration` up to
~60 s fits).
"""

from __future__ import annotations

import json
import math
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from yarl import URL

from bench.figure import Context, Figure, Result, SetupFailed
from bench.loadgen import Request
from bench.signups import committee_token, login_members
from bench.stack import NOTIFY_PATH, _asyncpg_dsn
from fakewechat.pay import CST, FakePay, Order
from services.pay import NOTIFY_MAX_SKEW_S

MEMBERS = 2000
AMOUNT_FEN = (100, 50_000)  # 1 to 500 yuan
#: Notifications are prepared for this rate (~0.4 ms of signing each, unmeasured: ~15 s at
#: `--duration 5`). A notification does more than the raw asyncpg transaction (~4k/s quiet) and
#: reached ~3.2k/s; faster than the ceiling, and the check fails loudly instead of measuring
#: duplicates as first deliveries.
NOTIFY_RATE_CEILING_PER_S = 6000.0
#: Rows 2 and 3 and their checks must end this long before the oldest signature is
#: NOTIFY_MAX_SKEW_S old (the checks between and after them take ~1 s).
FRESHNESS_MARGIN_S = 20.0
SIGNING_S_PER_NOTIFICATION = 0.0004  # measured here: ~0.37 ms (RSA-2048 sign + AES-GCM)
SETUP_ORDER_SQL = """
INSERT INTO contribution (campaign_id, member_id, unit_id, zone_id, channel, status, amount_fen,
    idempotency_key, out_trade_no, openid, prepay_id, next_check_at, checks, refunded_fen,
    refund_reserved_fen, flag_reason, payer_name, note, created_at)
SELECT $1, m.id, m.unit_id, u.zone_id, 'wechat', 'pending', t.amount, t.key, t.out_trade_no,
    m.openid, 'wx-bench-setup', now() + interval '180 seconds', 0, 0, 0, '', '', '', now()
FROM unnest($2::int[], $3::bigint[], $4::text[], $5::text[])
    AS t(member_id, amount, key, out_trade_no)
JOIN member m ON m.id = t.member_id JOIN unit u ON u.id = m.unit_id
RETURNING out_trade_no, amount_fen, unit_id, openid
"""
ORDERS_SQL = ("SELECT idempotency_key, member_id, amount_fen, out_trade_no, status, prepay_id, "
              "unit_id, openid FROM contribution WHERE campaign_id = $1")
PAID_SQL = ("SELECT out_trade_no, amount_fen FROM contribution "
            "WHERE campaign_id = $1 AND status = 'paid'")


# -- 1. orders -----------------------------------------------------------------------------------

class OrderRequests:
    """Request n: member n mod len(tokens) orders a random amount under a new Idempotency-Key;
    records what was sent under each key."""

    def __init__(self, ctx: Context, campaign_id: int, members: list[dict[str, Any]]) -> None:
        self.url = URL(f"{ctx.api}/campaigns/{campaign_id}/contributions")
        self.members = members
        self.headers = [{"Authorization": f"Bearer {m['token']}",
                         "Content-Type": "application/json"} for m in members]
        self.run_id = secrets.token_hex(4)
        self.rng = random.Random()
        #: Idempotency-Key -> (member id, amount).
        self.sent: dict[str, tuple[int, int]] = {}

    def pick(self, n: int) -> Request:
        i = n % len(self.members)
        key = f"bench-{self.run_id}-{n:08d}"
        amount = self.rng.randint(*AMOUNT_FEN)
        self.sent[key] = (self.members[i]["id"], amount)
        body = json.dumps({"amount_fen": amount}).encode()
        return Request("POST", self.url, {**self.headers[i], "Idempotency-Key": key}, body)


async def fake_pay_orders(ctx: Context) -> dict[str, int]:
    """out_trade_no -> total of every order the fake WeChat Pay holds."""
    async with ctx.session.get(f"{ctx.stack.wechat_url}/_fake/pay/orders") as resp:
        resp.raise_for_status()
        answer = await resp.json()
    return {o["out_trade_no"]: o["amount"]["total"] for o in answer["orders"]}


def check_orders(sent: dict[str, tuple[int, int]], rows: list[asyncpg.Record],
                 at_fake: dict[str, int]) -> list[str]:
    """Every key sent: exactly one pending order of its member and amount, with a prepay_id,
    known to the fake WeChat Pay with the same total; and no other order."""
    problems = []
    by_key = {r["idempotency_key"]: r for r in rows}
    if len(by_key) != len(rows):
        problems.append(f"{len(rows) - len(by_key)} orders share an Idempotency-Key")
    missing = [k for k in sent if k not in by_key]
    if missing:
        problems.append(f"{len(missing)} of {len(sent):,} orders sent do not exist "
                        f"(e.g. {missing[0]})")
    extra = len(set(by_key) - set(sent))
    if extra:
        problems.append(f"{extra} orders nobody sent")
    wrong = [k for k, (member_id, amount) in sent.items() if k in by_key and (
        by_key[k]["member_id"], by_key[k]["amount_fen"], by_key[k]["status"]) !=
        (member_id, amount, "pending")]
    if wrong:
        problems.append(f"{len(wrong)} orders with another member, amount or status")
    no_prepay = sum(1 for k in sent if k in by_key and not by_key[k]["prepay_id"])
    if no_prepay:
        problems.append(f"{no_prepay} orders without a prepay_id")
    unknown = sum(1 for r in rows if at_fake.get(r["out_trade_no"]) != r["amount_fen"])
    if unknown:
        problems.append(f"{unknown} orders unknown to WeChat Pay or with another total")
    return problems


# -- 2. and 3. notifications ---------------------------------------------------------------------

async def add_setup_orders(conn: asyncpg.Connection, campaign_id: int,
                           members: list[dict[str, Any]], count: int) -> list[asyncpg.Record]:
    """`count` pending orders written by SQL as row 1 makes them (never sent to the fake: the
    notification path does not ask it)."""
    if count <= 0:
        return []
    rng, run_id = random.Random(), secrets.token_hex(4)
    member_ids = [members[j % len(members)]["id"] for j in range(count)]
    amounts = [rng.randint(*AMOUNT_FEN) for _ in range(count)]
    keys = [f"bench-setup-{run_id}-{j:08d}" for j in range(count)]
    trade_nos = [f"ZB{run_id}{j:010d}{secrets.token_hex(3).upper()}" for j in range(count)]
    return list(await conn.fetch(SETUP_ORDER_SQL, campaign_id, member_ids, amounts, keys,
                                 trade_nos))


def build_notifications(ctx: Context, orders: list[asyncpg.Record]) -> list[Request]:
    """A signed, encrypted TRANSACTION.SUCCESS notification paying each order, as WeChat Pay
    sends it (fakewechat.pay: same keys, same wire format), to the API's notify URL."""
    pay = FakePay(ctx.stack.pay_keys)
    url = URL(f"{ctx.api}{NOTIFY_PATH}")
    return [sign_notification(pay, url, order) for order in orders]


def sign_notification(pay: FakePay, url: URL, order: Mapping[str, Any]) -> Request:
    """One TRANSACTION.SUCCESS notification paying `order` (out_trade_no, amount_fen, openid),
    signed and encrypted by `pay` (a FakePay with the run's keys), posted to `url`."""
    keys = pay.keys
    out_trade_no = order["out_trade_no"]
    pay.orders[out_trade_no] = Order(
        appid=keys.appid, mchid=keys.mchid, out_trade_no=out_trade_no,
        description="捐款压测", notify_url=str(url), total=order["amount_fen"],
        openid=order["openid"], prepay_id="wx-bench", trade_state="SUCCESS",
        transaction_id=f"4200{secrets.randbelow(10**24):024d}",
        success_time=datetime.now(CST).replace(microsecond=0), payer_total=order["amount_fen"])
    try:
        headers, body = pay.notification(out_trade_no)
    finally:
        del pay.orders[out_trade_no]
    return Request("POST", url, headers, body)


class Deliveries:
    """Request n is notification n; remembers which were sent and counts running past them."""

    def __init__(self, requests: list[Request]) -> None:
        self.requests = requests
        self.sent: set[int] = set()
        self.overflow = 0

    def pick(self, n: int) -> Request:
        if n >= len(self.requests):
            self.overflow += 1
            n %= len(self.requests)
        self.sent.add(n)
        return self.requests[n]


def cycle(requests: list[Request]) -> Callable[[int], Request]:
    return lambda n: requests[n % len(requests)]


def ensure_fresh(ctx: Context, signed_at: float, loads: int) -> None:
    """SetupFailed unless `loads` more loads end well before the notifications signed at
    `signed_at` (time.time()) are too old for the API."""
    ends = time.time() + loads * (ctx.warmup_s + ctx.duration_s) - signed_at
    if ends > NOTIFY_MAX_SKEW_S - FRESHNESS_MARGIN_S:
        raise SetupFailed(f"the notification loads would end {ends:.0f} s after the signing; the "
                          f"API refuses notifications {NOTIFY_MAX_SKEW_S} s old: use a shorter "
                          f"--duration")


def ensure_duration_fits(ctx: Context) -> None:
    """Fail before any set-up if signing the notifications and both loads cannot fit."""
    load_s = ctx.warmup_s + ctx.duration_s
    signing_s = NOTIFY_RATE_CEILING_PER_S * load_s * SIGNING_S_PER_NOTIFICATION
    if signing_s + 2 * load_s > NOTIFY_MAX_SKEW_S - FRESHNESS_MARGIN_S:
        raise SetupFailed(f"~{signing_s:.0f} s of signing + 2 x {load_s:g} s of load exceed the "
                          f"{NOTIFY_MAX_SKEW_S} s a notification stays valid: use a shorter "
                          f"--duration")


UnitTotals = dict[int, tuple[int, int]]  # unit id -> (fen, count)


def expected_totals(orders: list[asyncpg.Record], sent: set[int]) -> tuple[int, int, UnitTotals]:
    """Total fen, count and per unit (fen, count) of the notified orders."""
    units: dict[int, list[int]] = {}
    for n in sent:
        fen_count = units.setdefault(orders[n]["unit_id"], [0, 0])
        fen_count[0] += orders[n]["amount_fen"]
        fen_count[1] += 1
    return (sum(f for f, _ in units.values()), sum(c for _, c in units.values()),
            {u: (f, c) for u, (f, c) in units.items()})


def check_paid(orders: list[asyncpg.Record], sent: set[int], totals: dict[str, Any],
               paid: list[asyncpg.Record]) -> list[str]:
    """The drive's totals and paid orders are exactly the notified orders."""
    fen, count, units = expected_totals(orders, sent)
    problems = []
    if (totals["total_fen"], totals["count"]) != (fen, count):
        problems.append(f"totals {totals['total_fen']} fen / {totals['count']} orders, the "
                        f"notified orders make {fen} fen / {count}")
    got_units = {u["unit_id"]: (u["total_fen"], u["count"]) for u in totals["by_unit"]}
    if got_units != units:
        differ = sum(1 for u in set(got_units) | set(units) if got_units.get(u) != units.get(u))
        problems.append(f"{differ} units' totals differ from their notified orders")
    notified = {orders[n]["out_trade_no"] for n in sent}
    paid_nos = {r["out_trade_no"] for r in paid}
    if paid_nos != notified:
        problems.append(f"{len(paid_nos - notified)} paid orders not notified, "
                        f"{len(notified - paid_nos)} notified orders not paid")
    return problems


# -- the figure ----------------------------------------------------------------------------------

async def create_drive(ctx: Context, staff: str, *, title: str = "捐款：压测",
                       kind: str = "donation") -> int:
    body = {"title": title, "kind": kind,
            "ends_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()}
    return int((await ctx.call("POST", "/campaigns", body=body, token=staff, expect=201))["id"])


def verdict(problems: list[str]) -> str:
    return "✓" if not problems else "CHECK FAILED"


def measured_errors(result: Result, what: str) -> list[str]:
    assert result.stats is not None
    if not result.stats.errors:
        return []
    kinds = ", ".join(f"{n}× {k}" for k, n in Counter(result.stats.error_kinds).most_common(2))
    return [f"{what}: {result.stats.errors} requests failed ({kinds})"]


async def run(ctx: Context) -> list[Result]:
    ensure_duration_fits(ctx)
    staff = await committee_token(ctx)
    campaign_id = await create_drive(ctx, staff)
    members = await login_members(ctx, MEMBERS)
    conn = await asyncpg.connect(_asyncpg_dsn(ctx.stack.database_url))
    try:
        return await _run(ctx, conn, staff, campaign_id, members)
    finally:
        await conn.close()


async def _run(ctx: Context, conn: asyncpg.Connection, staff: str, campaign_id: int,
               members: list[dict[str, Any]]) -> list[Result]:
    totals_path = f"/campaigns/{campaign_id}/totals"
    problems: dict[str, list[str]] = {}

    # 1. orders
    orders_load = OrderRequests(ctx, campaign_id, members)
    made = await ctx.measure("contributions", orders_load.pick)
    rows = list(await conn.fetch(ORDERS_SQL, campaign_id))
    problems["orders"] = measured_errors(made, "orders") + check_orders(
        orders_load.sent, rows, await fake_pay_orders(ctx))

    # 2. notifications, each paying a distinct pending order
    pending = [r for r in rows if r["status"] == "pending"]
    wanted = math.ceil(NOTIFY_RATE_CEILING_PER_S * (ctx.warmup_s + ctx.duration_s))
    orders = pending + await add_setup_orders(conn, campaign_id, members, wanted - len(pending))
    signed_at = time.time()
    notes = build_notifications(ctx, orders)
    build_s = time.time() - signed_at
    ensure_fresh(ctx, signed_at, loads=2)
    first = Deliveries(notes)
    notified = await ctx.measure("notify", first.pick)
    after_first = await ctx.call("GET", totals_path, token=staff)
    paid = list(await conn.fetch(PAID_SQL, campaign_id))
    problems["notify"] = measured_errors(notified, "notifications") + check_paid(
        orders, first.sent, after_first, paid)
    if first.overflow:
        problems["notify"].append(f"{first.overflow} requests beyond the {len(notes):,} "
                                  f"notifications prepared (raise NOTIFY_RATE_CEILING_PER_S)")

    # 3. the same notifications again: all duplicates
    ensure_fresh(ctx, signed_at, loads=1)
    again = await ctx.measure("notify again", cycle([notes[n] for n in sorted(first.sent)]))
    after_again = await ctx.call("GET", totals_path, token=staff)
    paid_again = list(await conn.fetch(PAID_SQL, campaign_id))
    problems["again"] = measured_errors(again, "duplicates")
    if after_again != after_first:
        problems["again"].append("the totals changed under duplicate notifications")
    if sorted(map(tuple, paid_again)) != sorted(map(tuple, paid)):
        problems["again"].append("the paid orders changed under duplicate notifications")

    # 4. totals, read by the members
    read = await ctx.measure("totals", [Request.get(f"{ctx.api}{totals_path}", {
        "Authorization": f"Bearer {m['token']}"}) for m in members])
    problems["totals"] = measured_errors(read, "totals")

    assert made.stats and notified.stats and again.stats
    again_sent = again.stats.requests
    results = [
        Result(label=f"POST …/contributions (order + prepay + pay params: {len(rows):,} orders "
                     f"at WeChat Pay {verdict(problems['orders'])})", stats=made.stats),
        Result(label=f"POST /pay/wechat/notify ({len(first.sent):,} orders paid, totals = their "
                     f"sum {verdict(problems['notify'])}; signed in {build_s:.0f} s, unmeasured)",
               stats=notified.stats),
        Result(label=f"POST /pay/wechat/notify again ({again_sent:,} duplicates, nothing changed "
                     f"{verdict(problems['again'])})", stats=again.stats),
        Result(label=f"GET …/totals ({len(after_again['by_unit'])} units, "
                     f"{after_again['count']:,} orders)", stats=read.stats),
    ]
    failed = [p for ps in problems.values() for p in ps]
    if failed:
        results.append(Result(label="funds check", failure="; ".join(failed)[:300]))
    return results


FIGURE = Figure("funds", run)
