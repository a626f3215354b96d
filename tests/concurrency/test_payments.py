"""A fund drive at burst load on PostgreSQL: 2,000 members pay at once, WeChat Pay notifies every
paid order, 30 % of notifications arrive more than once and 5 % are forged, all concurrently and
shuffled, over HTTP. The totals must be exact to the fen, per unit and per zone."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from models.funds import Contribution, ContributionStatus
from models.org import Member
from server.keys import AUTH
from services import clock
from services.db import fetch_rows
from tests.support import City, bearer, requires_postgres, staff_login

PAYERS = 2000
UNPAID_SHARE = 0.05      # orders made but never paid (the forgers claim these)
DUPLICATE_SHARE = 0.30   # paid orders whose notification arrives 2-4 times
FORGED_SHARE = 0.05      # notifications from someone without the platform key
IN_FLIGHT = 100


async def _payers(city: City) -> list[Member]:
    units = [u for zone in city.zones for u in city.units[zone.id]]
    await Member.bulk_create([
        Member(unit_id=units[i % len(units)].id, name=f"payer-{i}", phone=f"150{i:08d}",
               openid=f"payer-{i}") for i in range(PAYERS)], batch_size=500)
    return await Member.filter(openid__startswith="payer-").order_by("id")


async def _open_drive(client: TestClient[Any, Any], title: str) -> tuple[str, int]:
    """A committee token and an open donation drive."""
    staff = await staff_login(client)
    resp = await client.post("/api/v1/campaigns", json={
        "title": title, "kind": "donation", "ends_at": (clock.now() + timedelta(days=1)).isoformat()},
        headers=bearer(staff))
    return staff, int((await resp.json())["id"])


async def _gather(calls: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(call: Any) -> Any:
        async with gate:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


@requires_postgres
async def test_burst_of_payments_counts_every_fen_once(client: TestClient[Any, Any],
                                                       fake_wechat: Any) -> None:
    rng = random.Random(20261126)
    city = await City.build(zones=4, units_per_zone=5, members_per_unit=0)
    payers = await _payers(city)
    staff = await staff_login(client)
    resp = await client.post("/api/v1/campaigns", json={
        "title": "抗灾特殊党费", "kind": "special_dues", "target_fen": 100_000_000,
        "ends_at": (clock.now() + timedelta(days=1)).isoformat()}, headers=bearer(staff))
    campaign_id = (await resp.json())["id"]
    auth = client.server.app[AUTH]
    tokens = {m.id: auth.issue_token(m)[0] for m in payers}
    amounts = {m.id: rng.randint(1, 200_000) for m in payers}

    async def order(member: Member) -> tuple[int, dict[str, Any], int]:
        r = await client.post(f"/api/v1/campaigns/{campaign_id}/contributions",
                              json={"amount_fen": amounts[member.id]},
                              headers={**bearer(tokens[member.id]), "Idempotency-Key": str(uuid.uuid4())})
        return r.status, await r.json(), member.id

    # 2,000 members press "pay" at once.
    orders = await _gather([order(m) for m in payers])
    assert Counter(status for status, _, _ in orders) == {201: PAYERS}
    payer_of = {body["out_trade_no"]: member_id for _, body, member_id in orders}
    assert len(payer_of) == PAYERS

    # 95 % pay; every paid order is notified, 30 % of them 2-4 times; 5 % forged claims on top.
    numbers = list(payer_of)
    rng.shuffle(numbers)
    unpaid = set(numbers[:int(PAYERS * UNPAID_SHARE)])
    paid = [no for no in numbers if no not in unpaid]
    for no in paid:
        fake_wechat.pay.succeed(no)
    genuine = [fake_wechat.pay.notification(no) for no in paid]
    duplicates = [fake_wechat.pay.notification(no)
                  for no in rng.sample(paid, int(len(paid) * DUPLICATE_SHARE))
                  for _ in range(rng.randint(1, 3))]
    forged = []
    for i in range(int((len(genuine) + len(duplicates)) * FORGED_SHARE)):
        if i % 2 == 0:  # a forger claims an unpaid order was paid
            target = rng.choice(sorted(unpaid))
            fake_wechat.pay.orders[target].trade_state = "SUCCESS"
            fake_wechat.pay.orders[target].transaction_id = f"42000000{i:020d}"
            forged.append(fake_wechat.pay.notification(target, forge=True))
            fake_wechat.pay.orders[target].trade_state = "NOTPAY"
        else:  # or inflates a real one, keeping WeChat's signature over the original
            target = rng.choice(paid)
            total = amounts[payer_of[target]] * 100
            forged.append(fake_wechat.pay.notification(target, resign=False, tamper={
                "amount": {"total": total, "payer_total": total, "currency": "CNY",
                           "payer_currency": "CNY"}}))
    deliveries = [("ok", n) for n in genuine + duplicates] + [("forged", n) for n in forged]
    rng.shuffle(deliveries)

    async def deliver(kind: str, note: tuple[dict[str, str], bytes]) -> tuple[str, int]:
        r = await client.post("/api/v1/pay/wechat/notify", data=note[1], headers=note[0])
        return kind, r.status

    answers = Counter(await _gather([deliver(kind, note) for kind, note in deliveries]))
    assert answers == {("ok", 204): len(genuine) + len(duplicates), ("forged", 401): len(forged)}

    # Exactly the paid orders counted, each once, to the fen, per unit and per zone.
    member_unit = {m.id: m.unit_id for m in payers}
    unit_zone = {u.id: z.id for z in city.zones for u in city.units[z.id]}
    want_unit: dict[int, int] = defaultdict(int)
    want_zone: dict[int, int] = defaultdict(int)
    for no in paid:
        member_id = payer_of[no]
        unit = member_unit[member_id]
        want_unit[unit] += amounts[member_id]
        want_zone[unit_zone[unit]] += amounts[member_id]
    resp = await client.get(f"/api/v1/campaigns/{campaign_id}/totals", headers=bearer(staff))
    totals = await resp.json()
    assert totals["total_fen"] == sum(want_unit.values()) == sum(amounts[payer_of[no]] for no in paid)
    assert totals["count"] == len(paid)
    assert {u["unit_id"]: u["total_fen"] for u in totals["by_unit"]} == dict(want_unit)
    assert {z["zone_id"]: z["total_fen"] for z in totals["by_zone"]} == dict(want_zone)
    statuses = Counter(await Contribution.filter(campaign_id=campaign_id).values_list("status", flat=True))
    assert statuses == {ContributionStatus.PAID: len(paid), ContributionStatus.PENDING: len(unpaid)}
    # The running totals agree with the orders themselves.
    [(from_orders, from_totals)] = await fetch_rows(
        "SELECT (SELECT SUM(amount_fen) FROM contribution WHERE campaign_id = $1 AND status = 'paid') "
        "AS from_orders, (SELECT SUM(online_fen) FROM campaign_total WHERE campaign_id = $1) AS from_totals",
        campaign_id)
    assert from_orders == from_totals == totals["total_fen"]



async def test_control_a_naive_mark_paid_counts_duplicates(client: TestClient[Any, Any],
                                                            fake_wechat: Any, monkeypatch: Any) -> None:
    """The control: with the status condition dropped from the paid UPDATE, duplicated
    notifications are counted again, so the assertions above can see double counting."""
    from services import payments as funds

    naive = funds._MARK_PAID.replace("AND status IN ('pending', 'closed') ", "")
    assert naive != funds._MARK_PAID
    monkeypatch.setattr(funds, "_MARK_PAID", naive)
    city = await City.build(zones=1, units_per_zone=1, members_per_unit=1)
    staff, campaign_id = await _open_drive(client, "对照")
    member = city.members[city.units[city.zones[0].id][0].id][0]
    token = client.server.app[AUTH].issue_token(member)[0]
    r = await client.post(f"/api/v1/campaigns/{campaign_id}/contributions", json={"amount_fen": 100},
                          headers={**bearer(token), "Idempotency-Key": str(uuid.uuid4())})
    no = (await r.json())["out_trade_no"]
    fake_wechat.pay.succeed(no)
    for _ in range(3):
        await fake_wechat.pay.deliver(no)
    totals = await (await client.get(f"/api/v1/campaigns/{campaign_id}/totals", headers=bearer(staff))).json()
    assert totals["total_fen"] == 300  # counted three times: the real UPDATE counts it once


@requires_postgres
async def test_concurrent_refunds_never_exceed_the_payment(client: TestClient[Any, Any],
                                                           fake_wechat: Any) -> None:
    """Ten refunds of 30 yuan asked at once on a 100-yuan payment: three are accepted."""
    city = await City.build(zones=1, units_per_zone=1, members_per_unit=1)
    staff, campaign_id = await _open_drive(client, "退款并发")
    member = city.members[city.units[city.zones[0].id][0].id][0]
    token = client.server.app[AUTH].issue_token(member)[0]
    r = await client.post(f"/api/v1/campaigns/{campaign_id}/contributions", json={"amount_fen": 10_000},
                          headers={**bearer(token), "Idempotency-Key": str(uuid.uuid4())})
    order = await r.json()
    fake_wechat.pay.succeed(order["out_trade_no"])
    await fake_wechat.pay.deliver(order["out_trade_no"])

    async def refund() -> tuple[int, str]:
        r = await client.post(f"/api/v1/contributions/{order['contribution_id']}/refunds",
                              json={"amount_fen": 3000},
                              headers={**bearer(staff), "Idempotency-Key": str(uuid.uuid4())})
        body = await r.json()
        return r.status, body.get("code", body.get("status"))

    answers = Counter(await asyncio.gather(*(refund() for _ in range(10))))
    assert answers == {(201, "processing"): 3, (409, "refund_exceeds_paid"): 7}
    assert len(fake_wechat.pay.refunds) == 3
    row = await Contribution.get(id=order["contribution_id"])
    assert (row.refund_reserved_fen, row.refunded_fen) == (9000, 0)
