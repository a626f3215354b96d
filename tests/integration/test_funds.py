"""Funds end to end: the real app, wechatpayv3 talking to the fake WeChat Pay over HTTP, the fake
delivering signed, encrypted notifications back over HTTP, and the arq worker running the
reconcile job."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from arq import create_pool
from arq.connections import RedisSettings
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from models.funds import Campaign, Contribution, ContributionStatus, Refund
from models.org import Role
from services import clock, errors, payments, refunds
from services.auth import Principal
from services.pay import WeChatPay
from tasks.worker import WorkerSettings
from tests.support import City, bearer, run_workers, staff_login, wechat_login

NOTIFY = "/api/v1/pay/wechat/notify"
REFUND_NOTIFY = "/api/v1/pay/wechat/refund-notify"


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def new_campaign(client: TestClient[Any, Any], staff: str, **extra: Any) -> dict[str, Any]:
    body = {"title": "特殊党费", "kind": "special_dues", "target_fen": 1_000_000,
            "ends_at": (clock.now() + timedelta(days=3)).isoformat(), **extra}
    resp = await client.post("/api/v1/campaigns", json=body, headers=bearer(staff))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def drive_and_payer(client: TestClient[Any, Any], city: City) -> tuple[str, dict[str, Any], Any, str]:
    """A committee token, an open drive, a member of zone 1 and the member's token."""
    staff = await staff_login(client)
    campaign = await new_campaign(client, staff)
    member = city.members[city.units[city.zones[0].id][0].id][0]
    return staff, campaign, member, await wechat_login(client, member.openid)


async def paid_order(client: TestClient[Any, Any], fake_wechat: Any, token: str, campaign_id: int,
                     amount: int) -> dict[str, Any]:
    """An order the member paid and WeChat Pay notified."""
    order = await pay_order(client, token, campaign_id, amount)
    fake_wechat.pay.succeed(order["out_trade_no"])
    assert await fake_wechat.pay.deliver(order["out_trade_no"]) == 204
    return order


async def pay_order(client: TestClient[Any, Any], token: str, campaign_id: int, amount: int,
                    headers: dict[str, str] | None = None) -> dict[str, Any]:
    resp = await client.post(f"/api/v1/campaigns/{campaign_id}/contributions",
                             json={"amount_fen": amount}, headers={**bearer(token), **(headers or key())})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def post_notification(client: TestClient[Any, Any], note: tuple[dict[str, str], bytes],
                            path: str = NOTIFY) -> int:
    headers, body = note
    resp = await client.post(path, data=body, headers=headers)
    return resp.status


async def totals(client: TestClient[Any, Any], token: str, campaign_id: int) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/campaigns/{campaign_id}/totals", headers=bearer(token))
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def run_reconcile(settings: Any) -> None:
    """Enqueue the reconcile job and let a real arq worker run it."""
    pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    try:
        await pool.enqueue_job("reconcile_payments", _job_id=f"reconcile-{uuid.uuid4()}",
                               _queue_name=WorkerSettings.queue_name)
        await run_workers(settings, 1)
    finally:
        await pool.aclose()


# -- the happy path --------------------------------------------------------------------------

async def test_pay_notify_and_count(client: TestClient[Any, Any], city: City, fake_wechat: Any,
                                    pay_keys: Any) -> None:
    staff, campaign, member, token = await drive_and_payer(client, city)
    order = await pay_order(client, token, campaign["id"], 5000)

    # The wx.requestPayment parameters are signed by the merchant key over appId, timeStamp,
    # nonceStr and package: check them the way WeChat does.
    params = order["pay_params"]
    assert params["package"].startswith("prepay_id=") and params["signType"] == "RSA"
    message = "\n".join([pay_keys.appid, params["timeStamp"], params["nonceStr"],
                         params["package"]]) + "\n"
    load_pem_public_key(pay_keys.merchant_public_pem.encode()).verify(  # type: ignore[union-attr]
        base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(), SHA256())  # type: ignore[call-arg]
    assert fake_wechat.pay.orders[order["out_trade_no"]].total == 5000

    fake_wechat.pay.succeed(order["out_trade_no"])
    assert await fake_wechat.pay.deliver(order["out_trade_no"]) == 204

    t = await totals(client, token, campaign["id"])
    assert (t["total_fen"], t["count"], t["online_fen"]) == (5000, 1, 5000)
    assert t["by_unit"][0]["unit_id"] == member.unit_id and t["by_unit"][0]["total_fen"] == 5000
    assert t["by_zone"][0]["zone_id"] == city.zones[0].id and t["progress"] == 0.005

    mine = await (await client.get("/api/v1/me/contributions", headers=bearer(token))).json()
    [receipt] = mine["items"]
    assert receipt["status"] == "paid" and receipt["transaction_id"].startswith("4200")
    assert receipt["out_trade_no"] == order["out_trade_no"]


async def test_order_replay_and_idempotency_misuse(client: TestClient[Any, Any], city: City,
                                                   fake_wechat: Any) -> None:
    staff, campaign, member, token = await drive_and_payer(client, city)
    url = f"/api/v1/campaigns/{campaign['id']}/contributions"
    k = key()
    first = await pay_order(client, token, campaign["id"], 1000, k)
    again = await client.post(url, json={"amount_fen": 1000}, headers={**bearer(token), **k})
    assert again.status == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert (await again.json())["contribution_id"] == first["contribution_id"]
    other = await client.post(url, json={"amount_fen": 2000}, headers={**bearer(token), **k})
    assert other.status == 409
    err = await other.json()
    assert err["code"] == "idempotency_key_reused" and err["contribution_id"] == first["contribution_id"]
    missing = await client.post(url, json={"amount_fen": 1000}, headers=bearer(token))
    assert (missing.status, (await missing.json())["code"]) == (400, "idempotency_key_required")
    bad = await client.post(url, json={"amount_fen": 1000}, headers={**bearer(token), "Idempotency-Key": "has spaces"})
    assert bad.status == 422 and (await bad.json())["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await Contribution.all().count() == 1
    assert fake_wechat.pay.prepay_calls == 1  # the replay re-signed, it did not order again
    spec = await (await client.get("/api/openapi.json")).json()
    op = spec["paths"]["/api/v1/campaigns/{campaign_id}/contributions"]["post"]
    [header] = [p for p in op["parameters"] if p["in"] == "header"]
    assert (header["name"], header["required"]) == ("Idempotency-Key", True)
    assert {"200", "201", "409"} <= set(op["responses"])


# -- notifications that must not be believed --------------------------------------------------

async def test_forged_and_tampered_notifications(client: TestClient[Any, Any], city: City,
                                                 fake_wechat: Any) -> None:
    staff, campaign, member, token = await drive_and_payer(client, city)
    forged_order = await pay_order(client, token, campaign["id"], 100)
    no = forged_order["out_trade_no"]
    # Never paid, yet "notified": a forger's key, then a real signature over an altered body.
    fake_wechat.pay.orders[no].trade_state = "SUCCESS"  # what the forger claims
    fake_wechat.pay.orders[no].transaction_id = "4200000000000000000000000001"
    assert await post_notification(client, fake_wechat.pay.notification(no, forge=True)) == 401
    assert await post_notification(client, fake_wechat.pay.notification(
        no, tamper={"amount": {"total": 100, "payer_total": 100, "currency": "CNY",
                               "payer_currency": "CNY"}}, resign=False)) == 401
    stale = fake_wechat.pay.notification(no, timestamp=int(clock.now().timestamp()) - 3600)
    assert await post_notification(client, stale) == 401  # a replay of an old message
    assert await post_notification(client, ({"Content-Type": "application/json"}, b"{}")) == 401
    # The stale signature again under Django-style names beside a fresh timestamp: the check must
    # read the same headers the signature is verified with (it once read one set, verified another).
    old_headers, old_body = fake_wechat.pay.notification(
        no, timestamp=int(clock.now().timestamp()) - 600)
    smuggled = {"Content-Type": "application/json",
                "Wechatpay-Timestamp": str(int(clock.now().timestamp())),
                **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in old_headers.items()
                   if k.lower().startswith("wechatpay-")}}
    assert await post_notification(client, (smuggled, old_body)) == 401
    assert await post_notification(client, ({**old_headers, **{
        "Wechatpay-Timestamp": smuggled["Wechatpay-Timestamp"]}}, old_body)) == 401
    assert (await Contribution.get(out_trade_no=no)).status is ContributionStatus.PENDING

    # A genuine payment whose verified notification disagrees on the amount: flagged, not counted.
    paid = await pay_order(client, token, campaign["id"], 300)
    fake_wechat.pay.succeed(paid["out_trade_no"])
    wrong = fake_wechat.pay.notification(paid["out_trade_no"], tamper={
        "amount": {"total": 30000, "payer_total": 30000, "currency": "CNY", "payer_currency": "CNY"}})
    assert await post_notification(client, wrong) == 204
    row = await Contribution.get(out_trade_no=paid["out_trade_no"])
    assert row.status is ContributionStatus.FLAGGED and row.flag_reason == "amount_mismatch"
    assert row.flag_detail and row.flag_detail["reported_total"] == 30000
    other_merchant = await pay_order(client, token, campaign["id"], 400)
    fake_wechat.pay.succeed(other_merchant["out_trade_no"])
    assert await post_notification(client, fake_wechat.pay.notification(
        other_merchant["out_trade_no"], tamper={"mchid": "1999999999"})) == 204
    assert (await Contribution.get(out_trade_no=other_merchant["out_trade_no"])).flag_reason == "mchid_mismatch"
    t = await totals(client, token, campaign["id"])
    assert (t["total_fen"], t["count"]) == (0, 0)
    flagged = await client.get(f"/api/v1/campaigns/{campaign['id']}/contributions?status=flagged",
                               headers=bearer(staff))
    assert len((await flagged.json())["items"]) == 2


async def test_duplicates_and_out_of_order(client: TestClient[Any, Any], city: City,
                                           fake_wechat: Any, settings: Any) -> None:
    staff = await staff_login(client)
    campaign = await new_campaign(client, staff)
    members = [m for unit in city.units[city.zones[0].id] for m in city.members[unit.id]][:4]
    orders = []
    for i, member in enumerate(members):
        token = await wechat_login(client, member.openid)
        orders.append(await pay_order(client, token, campaign["id"], 1000 * (i + 1)))
        fake_wechat.pay.succeed(orders[-1]["out_trade_no"])
    # The first order's notification five times at once, the others interleaved, newest first.
    first = orders[0]["out_trade_no"]
    statuses = await asyncio.gather(
        *(fake_wechat.pay.deliver(first) for _ in range(5)),
        *(fake_wechat.pay.deliver(o["out_trade_no"]) for o in reversed(orders[1:])),
        *(fake_wechat.pay.deliver(o["out_trade_no"]) for o in orders[1:]))
    assert set(statuses) <= {200, 204}
    t = await totals(client, staff, campaign["id"])
    assert (t["total_fen"], t["count"]) == (10_000, 4)
    # The query job reads the same payments again: nothing changes.
    clock.travel(timedelta(seconds=settings.pay_query_after_s + 1))
    await Contribution.all().update(next_check_at=clock.now() - timedelta(seconds=1))
    await run_reconcile(settings)
    t = await totals(client, staff, campaign["id"])
    assert (t["total_fen"], t["count"]) == (10_000, 4)
    # A notification that arrives after the job already counted the order changes nothing either.
    late = await pay_order(client, await wechat_login(client, members[0].openid), campaign["id"], 7)
    fake_wechat.pay.succeed(late["out_trade_no"])
    got = await client.get(f"/api/v1/contributions/{late['contribution_id']}?refresh=true",
                           headers=bearer(await wechat_login(client, members[0].openid)))
    assert (await got.json())["status"] == "paid"
    assert await fake_wechat.pay.deliver(late["out_trade_no"]) == 204
    t = await totals(client, staff, campaign["id"])
    assert (t["total_fen"], t["count"]) == (10_007, 5)


# -- lost notifications and unpaid orders -----------------------------------------------------

async def test_lost_notification_recovered_and_unpaid_order_closed(
        client: TestClient[Any, Any], city: City, fake_wechat: Any, settings: Any) -> None:
    staff = await staff_login(client)
    campaign = await new_campaign(client, staff)
    member = city.members[city.units[city.zones[1].id][0].id][0]
    token = await wechat_login(client, member.openid)
    lost = await pay_order(client, token, campaign["id"], 2500)
    unpaid_key = key()
    unpaid = await pay_order(client, token, campaign["id"], 800, unpaid_key)
    fake_wechat.pay.succeed(lost["out_trade_no"])  # paid, but its notification never arrives

    await run_reconcile(settings)  # too early: nothing is due yet
    assert fake_wechat.pay.query_calls == 0
    clock.travel(timedelta(seconds=settings.pay_query_after_s + 1))
    await run_reconcile(settings)
    assert (await Contribution.get(id=lost["contribution_id"])).status is ContributionStatus.PAID
    assert (await Contribution.get(id=unpaid["contribution_id"])).status is ContributionStatus.PENDING
    t = await totals(client, token, campaign["id"])
    assert (t["total_fen"], t["count"]) == (2500, 1)

    clock.travel(timedelta(seconds=settings.pay_order_ttl_s))
    await run_reconcile(settings)
    closed = await Contribution.get(id=unpaid["contribution_id"])
    assert closed.status is ContributionStatus.CLOSED
    assert fake_wechat.pay.orders[unpaid["out_trade_no"]].trade_state == "CLOSED"
    # The same key now answers the closed order, without anything to pay with.
    resp = await client.post(f"/api/v1/campaigns/{campaign['id']}/contributions",
                             json={"amount_fen": 800}, headers={**bearer(token), **unpaid_key})
    replay = await resp.json()
    assert (resp.status, replay["status"], replay["pay_params"]) == (200, "closed", None)


async def test_prepay_failure_is_clear_and_retry_completes(client: TestClient[Any, Any], city: City,
                                                           fake_wechat: Any) -> None:
    staff, campaign, member, token = await drive_and_payer(client, city)
    k = key()
    fake_wechat.pay.script_pay_failure("prepay", status=500, code="SYSTEM_ERROR")
    url = f"/api/v1/campaigns/{campaign['id']}/contributions"
    failed = await client.post(url, json={"amount_fen": 900}, headers={**bearer(token), **k})
    assert (failed.status, (await failed.json())["code"]) == (502, "wechat_pay_unavailable")
    retry = await client.post(url, json={"amount_fen": 900}, headers={**bearer(token), **k})
    assert retry.status == 200 and (await retry.json())["pay_params"]["package"].startswith("prepay_id=")
    assert await Contribution.all().count() == 1


# -- refunds -----------------------------------------------------------------------------------

async def test_refunds(client: TestClient[Any, Any], city: City, fake_wechat: Any,
                       settings: Any) -> None:
    staff, campaign, member, token = await drive_and_payer(client, city)
    order = await paid_order(client, fake_wechat, token, campaign["id"], 10_000)
    url = f"/api/v1/contributions/{order['contribution_id']}/refunds"

    denied = await client.post(url, json={"amount_fen": 1}, headers={**bearer(token), **key()})
    assert denied.status == 403
    k = key()
    part = await client.post(url, json={"amount_fen": 4000, "reason": "多缴"}, headers={**bearer(staff), **k})
    assert part.status == 201, await part.text()
    refund = await part.json()
    assert refund["status"] == "processing"
    replay = await client.post(url, json={"amount_fen": 4000, "reason": "多缴"}, headers={**bearer(staff), **k})
    assert replay.status == 200 and (await replay.json())["id"] == refund["id"]
    too_much = await client.post(url, json={"amount_fen": 6001}, headers={**bearer(staff), **key()})
    assert (too_much.status, (await too_much.json())["code"]) == (409, "refund_exceeds_paid")

    # Totals move only when WeChat Pay says the refund is done; its notification, 3 times.
    assert (await totals(client, staff, campaign["id"]))["total_fen"] == 10_000
    fake_wechat.pay.complete_refund(refund["out_refund_no"])
    forged = fake_wechat.pay.refund_notification(refund["out_refund_no"], forge=True)
    assert await post_notification(client, forged, REFUND_NOTIFY) == 401
    for _ in range(3):
        assert await fake_wechat.pay.deliver_refund(refund["out_refund_no"]) == 204
    t = await totals(client, staff, campaign["id"])
    assert (t["total_fen"], t["refunded_fen"], t["refund_count"]) == (6000, 4000, 1)

    # The rest, with the notification lost: the reconcile job finds it done.
    rest = await client.post(url, json={"amount_fen": 6000}, headers={**bearer(staff), **key()})
    rest_refund = await rest.json()
    fake_wechat.pay.complete_refund(rest_refund["out_refund_no"])
    clock.travel(timedelta(minutes=6))
    await run_reconcile(settings)
    assert (await Refund.get(id=rest_refund["id"])).status.value == "success"
    c = await Contribution.get(id=order["contribution_id"])
    assert (c.status, c.refunded_fen, c.refund_reserved_fen) == (ContributionStatus.REFUNDED, 10_000, 0)
    t = await totals(client, staff, campaign["id"])
    assert (t["total_fen"], t["refunded_fen"], t["refund_count"]) == (0, 10_000, 2)
    again = await client.post(url, json={"amount_fen": 1}, headers={**bearer(staff), **key()})
    assert (again.status, (await again.json())["code"]) == (409, "not_refundable")


async def test_refund_refused_by_wechat_frees_the_amount(client: TestClient[Any, Any], city: City,
                                                         fake_wechat: Any) -> None:
    staff, campaign, member, token = await drive_and_payer(client, city)
    order = await paid_order(client, fake_wechat, token, campaign["id"], 500)
    fake_wechat.pay.script_pay_failure("refund", status=403, code="NOT_ENOUGH")
    url = f"/api/v1/contributions/{order['contribution_id']}/refunds"
    refused = await client.post(url, json={"amount_fen": 500}, headers={**bearer(staff), **key()})
    assert (refused.status, (await refused.json())["code"]) == (409, "wechat_pay_refused")
    assert (await Contribution.get(id=order["contribution_id"])).refund_reserved_fen == 0
    ok = await client.post(url, json={"amount_fen": 500}, headers={**bearer(staff), **key()})
    assert ok.status == 201


async def test_without_wechat_pay_configured_nothing_is_set_aside_and_reconcile_waits(
        client: TestClient[Any, Any], city: City, fake_wechat: Any, settings: Any) -> None:
    staff, campaign, member, token = await drive_and_payer(client, city)
    order = await paid_order(client, fake_wechat, token, campaign["id"], 800)
    pending = await pay_order(client, token, campaign["id"], 300)
    unconfigured = WeChatPay(settings.model_copy(update={"wechat_pay_mchid": None}))
    assert not unconfigured.configured
    committee = Principal(member_id=city.committee.id, role=Role.COMMITTEE, unit_id=None,  # type: ignore[union-attr]
                          zone_id=None, jti="t", exp=0)
    with pytest.raises(errors.PayNotConfigured):
        await refunds.request_refund(committee, unconfigured, contribution_id=order["contribution_id"],
                                     amount_fen=100, reason="退", idempotency_key="k-unconfigured")
    assert (await Contribution.get(id=order["contribution_id"])).refund_reserved_fen == 0
    assert not await Refund.exists(contribution_id=order["contribution_id"])
    clock.travel(timedelta(minutes=10))
    assert await payments.reconcile_pending(unconfigured) == {}   # not a crash every minute
    assert await refunds.reconcile_refunds(unconfigured) == {}
    assert (await Contribution.get(id=pending["contribution_id"])).status is ContributionStatus.PENDING


# -- offline entries ---------------------------------------------------------------------------

async def test_offline_entries_and_reversal(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    campaign = await new_campaign(client, staff)
    unit = city.units[city.zones[0].id][1]
    other_unit = city.units[city.zones[0].id][2]
    admin = await wechat_login(client, city.admins[unit.id].openid)
    url = f"/api/v1/campaigns/{campaign['id']}/offline-contributions"
    body = {"unit_id": unit.id, "amount_fen": 20_000, "channel": "cash", "receipt_no": "NO.0001",
            "payer_name": "张三", "received_on": clock.now().astimezone(clock.SHANGHAI).date().isoformat()}
    first = await client.post(url, json=body, headers=bearer(admin))
    assert first.status == 201, await first.text()
    entry = await first.json()
    replay = await client.post(url, json=body, headers=bearer(admin))
    assert replay.status == 200 and (await replay.json())["id"] == entry["id"]
    clash = await client.post(url, json={**body, "amount_fen": 1}, headers=bearer(admin))
    assert (clash.status, (await clash.json())["code"]) == (409, "receipt_no_taken")
    foreign = await client.post(url, json={**body, "unit_id": other_unit.id}, headers=bearer(admin))
    assert foreign.status == 403
    future = await client.post(url, json={**body, "receipt_no": "NO.2", "received_on": "2999-01-01"},
                               headers=bearer(admin))
    assert future.status == 422
    member = await wechat_login(client, city.members[unit.id][0].openid)
    assert (await client.post(url, json=body, headers=bearer(member))).status == 403
    stranger = city.members[other_unit.id][0].id
    wrong = await client.post(url, json={**body, "receipt_no": "NO.3", "member_id": stranger},
                              headers=bearer(admin))
    assert wrong.status == 422 and (await wrong.json())["errors"][0]["loc"] == ["body", "member_id"]

    t = await totals(client, staff, campaign["id"])
    assert (t["total_fen"], t["offline_fen"], t["offline_count"]) == (20_000, 20_000, 1)
    rev_url = f"/api/v1/contributions/{entry['id']}/reverse"
    reversed_ = await client.post(rev_url, json={"reason": "金额录错"}, headers=bearer(admin))
    assert reversed_.status == 201
    reversal = await reversed_.json()
    assert reversal["amount_fen"] == -20_000 and reversal["reverses_id"] == entry["id"]
    twice = await client.post(rev_url, json={"reason": "再冲"}, headers=bearer(admin))
    assert (twice.status, (await twice.json())["code"]) == (409, "already_reversed")
    of_reversal = await client.post(f"/api/v1/contributions/{reversal['id']}/reverse",
                                    json={"reason": "x"}, headers=bearer(admin))
    assert (of_reversal.status, (await of_reversal.json())["code"]) == (409, "not_reversible")
    t = await totals(client, staff, campaign["id"])
    assert (t["total_fen"], t["offline_fen"], t["offline_count"]) == (0, 0, 0)
    assert await Contribution.all().count() == 2  # nothing was edited or deleted


async def test_a_page_of_drives_is_summed_in_one_query_as_each_drive_is(
        client: TestClient[Any, Any], city: City) -> None:
    """The console's list of drives reads a page's totals in one grouped query
    (contributions.summaries); each figure agrees with the drive's own totals."""
    from services import campaigns, contributions

    staff = await staff_login(client)
    funded, empty = await new_campaign(client, staff), await new_campaign(client, staff, target_fen=50_000)
    url = f"/api/v1/campaigns/{funded['id']}/offline-contributions"
    day = clock.now().astimezone(clock.SHANGHAI).date().isoformat()
    for n, zone in enumerate(city.zones[:2]):
        unit = city.units[zone.id][0]
        admin = await wechat_login(client, city.admins[unit.id].openid)
        r = await client.post(url, json={"unit_id": unit.id, "amount_fen": 10_000 * (n + 1), "channel": "cash",
                                         "receipt_no": f"S-{n}", "received_on": day}, headers=bearer(admin))
        assert r.status == 201, await r.text()
    committee = Principal(member_id=0, role=Role.COMMITTEE, unit_id=None, zone_id=None, jti="t", exp=0)
    drives = await campaigns.list_campaigns(committee, state=None, limit=50, cursor=None)
    page = await contributions.summaries(drives)
    assert set(page) == {funded["id"], empty["id"]}
    for campaign_id, summary in page.items():
        whole = await totals(client, staff, campaign_id)
        assert summary == {k: whole[k] for k in summary}, campaign_id
    assert (page[funded["id"]]["total_fen"], page[funded["id"]]["count"]) == (30_000, 2)
    assert (page[empty["id"]]["total_fen"], page[empty["id"]]["progress"]) == (0, 0.0)
    assert await contributions.summaries([]) == {}


async def test_totals_are_kept_until_the_drive_moves_and_still_checked_for_each_reader(
        client: TestClient[Any, Any], city: City, settings: Any) -> None:
    """GET totals answers from Redis until a commit moves the drive's money or state
    (services/totals_cache.py); who may see a drive is checked on every read, kept or not."""
    from models.funds import CampaignTotal
    from services import campaigns, totals_cache
    from services.redis import create_redis

    staff = await staff_login(client)
    zone, other = city.zones[0], city.zones[1]
    drive = await new_campaign(client, staff, zone_ids=[zone.id])
    unit = city.units[zone.id][0]
    admin = await wechat_login(client, city.admins[unit.id].openid)
    url = f"/api/v1/campaigns/{drive['id']}/offline-contributions"
    day = clock.now().astimezone(clock.SHANGHAI).date().isoformat()
    r = await client.post(url, json={"unit_id": unit.id, "amount_fen": 10_000, "channel": "cash",
                                     "receipt_no": "K-1", "received_on": day}, headers=bearer(admin))
    assert r.status == 201
    assert (await totals(client, staff, drive["id"]))["total_fen"] == 10_000  # kept from here on
    # A change behind the services' back (no version moved) is not seen: the answer is kept.
    await CampaignTotal.filter(campaign_id=drive["id"], unit_id=unit.id).update(offline_fen=10_005)
    assert (await totals(client, staff, drive["id"]))["total_fen"] == 10_000
    # The kept answer is not everyone's: a member of another zone is told there is no such drive.
    outsider = await wechat_login(client, city.members[city.units[other.id][0].id][0].openid)
    resp = await client.get(f"/api/v1/campaigns/{drive['id']}/totals", headers=bearer(outsider))
    assert (resp.status, (await resp.json())["code"]) == (404, "campaign_not_found")
    insider = await wechat_login(client, city.members[unit.id][0].openid)
    assert (await totals(client, insider, drive["id"]))["total_fen"] == 10_000
    # Closing moves the version: the state and the money are read again.
    assert (await client.post(f"/api/v1/campaigns/{drive['id']}/close", headers=bearer(staff))).status == 200
    t = await totals(client, staff, drive["id"])
    assert (t["state"], t["total_fen"]) == ("closed", 10_005)
    # So does the job that closes drives whose time is up.
    ending = await new_campaign(client, staff, ends_at=(clock.now() + timedelta(hours=1)).isoformat())
    assert (await totals(client, staff, ending["id"]))["state"] == "open"
    clock.travel(timedelta(hours=2))
    assert await campaigns.close_ended_campaigns() == 1
    assert (await totals(client, staff, ending["id"]))["state"] == "closed"

    # An answer made from a snapshot older than a commit is never served after that commit's
    # version moved: it is kept under the version read before its query.
    redis = create_redis(settings)
    try:
        version, _ = await totals_cache.read(redis, ending["id"])
        await totals_cache.moved([ending["id"]])   # a payment committed meanwhile
        await totals_cache.keep(redis, ending["id"], version, state="open", zone_ids=[], answer="{}")
        assert (await totals_cache.read(redis, ending["id"]))[1] is None
    finally:
        await redis.aclose()


async def test_payments_at_once_share_version_moves_each_after_its_commit(settings: Any) -> None:
    """Hundreds of payments of one drive at once: each returns only once the drive's version
    moved after it asked (what makes its commit visible to the next reader), and they share a
    few INCRs rather than one each; an unreachable Redis is logged, never raised."""
    from services import totals_cache
    from services.redis import create_redis, register_process_client, unregister_process_client

    redis = create_redis(settings)
    register_process_client(redis)
    version_key = totals_cache.keys(7)[0]
    incrs = 0
    real_incr = redis.incr

    async def counted_incr(name: str) -> int:
        nonlocal incrs
        incrs += 1
        await asyncio.sleep(0.001)  # a round trip long enough for payments to pile up: on the
        value = await real_incr(name)  # way there, and back after Redis has applied it (a commit
        await asyncio.sleep(0.001)  # ending now must not count on this INCR)
        return value

    redis.incr = counted_incr  # type: ignore[method-assign]

    async def one_payment(n: int) -> tuple[int, int]:
        await asyncio.sleep(n / 10_000)  # spread over 30 ms, over many INCRs
        committed_at = int(await redis.get(version_key) or 0)  # the version when the commit ended
        await totals_cache.moved([7])
        return committed_at, int(await redis.get(version_key))

    try:
        seen = await asyncio.gather(*(one_payment(n) for n in range(300)))
        assert all(after > at for at, after in seen)
        assert 1 <= incrs < 100, incrs  # one each would be 300
        assert int(await redis.get(version_key)) == incrs
    finally:
        unregister_process_client(redis)
        await redis.aclose()
    broken = create_redis(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    register_process_client(broken)
    try:
        await totals_cache.moved([7])  # logged: the payment stands, readers catch up by TTL
    finally:
        unregister_process_client(broken)
        await broken.aclose()


# -- campaigns and who may do what ------------------------------------------------------------

async def test_campaign_rules_and_access(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    member = city.members[city.units[city.zones[0].id][0].id][0]
    token = await wechat_login(client, member.openid)
    ends = (clock.now() + timedelta(days=1)).isoformat()
    body = {"title": "捐款", "kind": "donation", "ends_at": ends}
    assert (await client.post("/api/v1/campaigns", json=body, headers=bearer(token))).status == 403
    bad = await client.post("/api/v1/campaigns", json={**body, "kind": "zone_fund"}, headers=bearer(staff))
    assert bad.status == 422
    past = await client.post("/api/v1/campaigns", json={**body, "ends_at": "2020-01-01T00:00:00+08:00"},
                             headers=bearer(staff))
    assert past.status == 422
    draft = await new_campaign(client, staff, draft=True, zone_ids=[city.zones[1].id])
    assert draft["state"] == "draft"
    # Drafts are invisible to members; a drive for another zone too.
    assert (await client.get(f"/api/v1/campaigns/{draft['id']}", headers=bearer(token))).status == 404
    opened = await client.post(f"/api/v1/campaigns/{draft['id']}/open", headers=bearer(staff))
    assert (await opened.json())["state"] == "open"
    url = f"/api/v1/campaigns/{draft['id']}/contributions"
    other_zone = await client.post(url, json={"amount_fen": 100}, headers={**bearer(token), **key()})
    assert other_zone.status == 404
    everyone = await new_campaign(client, staff, min_amount_fen=100, max_amount_fen=100_000)
    url = f"/api/v1/campaigns/{everyone['id']}/contributions"
    low = await client.post(url, json={"amount_fen": 99}, headers={**bearer(token), **key()})
    assert (low.status, (await low.json())["code"]) == (422, "amount_out_of_range")
    zero = await client.post(url, json={"amount_fen": 0}, headers={**bearer(token), **key()})
    assert zero.status == 422
    assert (await client.post(f"/api/v1/campaigns/{everyone['id']}/close", headers=bearer(staff))).status == 200
    closed = await client.post(url, json={"amount_fen": 100}, headers={**bearer(token), **key()})
    assert (closed.status, (await closed.json())["code"]) == (409, "campaign_not_open")
    reopen = await client.post(f"/api/v1/campaigns/{everyone['id']}/open", headers=bearer(staff))
    assert (reopen.status, (await reopen.json())["code"]) == (409, "illegal_transition")
    listing = await (await client.get("/api/v1/campaigns", headers=bearer(token))).json()
    assert [c["id"] for c in listing["items"]] == [everyone["id"]]
    # A unit admin reads only their own unit's contributions.
    unit = city.units[city.zones[0].id][0]
    admin = await wechat_login(client, city.admins[unit.id].openid)
    other = city.units[city.zones[0].id][1].id
    resp = await client.get(f"/api/v1/campaigns/{everyone['id']}/contributions?unit_id={other}",
                            headers=bearer(admin))
    assert resp.status == 403


# -- a zone_fund drive ends in its zone ledger -------------------------------------------------

async def test_zone_fund_drive_is_booked_into_the_ledger_once_settled(
        client: TestClient[Any, Any], city: City, fake_wechat: Any, settings: Any) -> None:
    staff = await staff_login(client)
    zone = city.zones[0]
    campaign = await new_campaign(client, staff, kind="zone_fund", title="网络区活动经费",
                                  fund_zone_id=zone.id)
    assert campaign["zone_ids"] == [zone.id]
    unit = city.units[zone.id][0]
    paid = await pay_order(client, await wechat_login(client, city.members[unit.id][0].openid),
                           campaign["id"], 30_000)
    fake_wechat.pay.succeed(paid["out_trade_no"])
    await fake_wechat.pay.deliver(paid["out_trade_no"])
    pending = await pay_order(client, await wechat_login(client, city.members[unit.id][1].openid),
                              campaign["id"], 700)
    admin = await wechat_login(client, city.admins[unit.id].openid)
    cash = await client.post(f"/api/v1/campaigns/{campaign['id']}/offline-contributions", json={
        "unit_id": unit.id, "amount_fen": 5_000, "channel": "cash", "receipt_no": "Z-1",
        "received_on": clock.now().astimezone(clock.SHANGHAI).date().isoformat()}, headers=bearer(admin))
    assert cash.status == 201
    await client.post(f"/api/v1/campaigns/{campaign['id']}/close", headers=bearer(staff))

    # Closed, but an order is still pending: nothing is booked until it ends.
    await run_reconcile(settings)
    ledger_url = f"/api/v1/zones/{zone.id}/fund-ledger"
    book = await (await client.get(ledger_url, headers=bearer(staff))).json()
    assert book["entries"] == []
    clock.travel(timedelta(seconds=settings.pay_order_ttl_s + 1))
    await run_reconcile(settings)  # closes the unpaid order, then books the settled drive
    await run_reconcile(settings)  # books nothing more
    assert (await Contribution.get(id=pending["contribution_id"])).status is ContributionStatus.CLOSED
    book = await (await client.get(ledger_url, headers=bearer(staff))).json()
    assert [(e["category"], e["amount_fen"]) for e in book["entries"]] == [("campaign", 35_000)]
    assert book["closing_balance_fen"] == 35_000
    # A drive that collected nothing is settled too, with no line (and not looked at again).
    empty = await new_campaign(client, staff, kind="zone_fund", title="空募集", fund_zone_id=zone.id)
    await client.post(f"/api/v1/campaigns/{empty['id']}/close", headers=bearer(staff))
    await run_reconcile(settings)
    assert await Campaign.filter(settled_at__isnull=False).count() == 2
    book = await (await client.get(ledger_url, headers=bearer(staff))).json()
    assert len(book["entries"]) == 1
    # The money is in the ledger now: refunds and late offline entries would unbalance it.
    refund = await client.post(f"/api/v1/contributions/{paid['contribution_id']}/refunds",
                               json={"amount_fen": 100}, headers={**bearer(staff), **key()})
    assert (refund.status, (await refund.json())["code"]) == (409, "campaign_booked")
    late = await client.post(f"/api/v1/campaigns/{campaign['id']}/offline-contributions", json={
        "unit_id": unit.id, "amount_fen": 100, "channel": "cash", "receipt_no": "Z-2",
        "received_on": clock.now().astimezone(clock.SHANGHAI).date().isoformat()}, headers=bearer(admin))
    assert (late.status, (await late.json())["code"]) == (409, "campaign_booked")


# -- the connection pool to WeChat Pay ---------------------------------------------------------

async def test_one_pool_keeps_a_connection_per_call_in_flight(settings: Any, fake_wechat: Any) -> None:
    """Calls in flight at once each keep their connection for the next ones (the library's
    default client kept 20, so a burst of orders reconnected to WeChat Pay on most calls)."""
    pay = WeChatPay(settings)
    await pay.start()
    try:
        found = await asyncio.gather(*(pay.query(f"ZHNONE{i:04d}") for i in range(40)))
        assert found == [None] * 40
        kept = pay.connections_kept()
        assert kept > 20
        await asyncio.gather(*(pay.query(f"ZHNONE{i:04d}") for i in range(kept)))
        assert pay.connections_kept() == kept   # reused, none opened
    finally:
        await pay.close()


async def test_what_each_delivery_of_a_payment_is_called(client: TestClient[Any, Any], city: City,
                                                         settings: Any) -> None:
    """The outcomes of applying WeChat Pay's word on an order, each its own path: the paying
    statement pays; its own answer settles a duplicate; another transaction for a paid order
    is ignored (not flagged); an unknown order is reported; a wrong amount on an unpaid order
    is flagged, never counted."""
    staff, campaign, member, token = await drive_and_payer(client, city)
    order = await pay_order(client, token, campaign["id"], 1200)
    other = await pay_order(client, token, campaign["id"], 700)
    pay = WeChatPay(settings)

    def said(no: str, transaction_id: str, total: int) -> dict[str, Any]:
        return {"out_trade_no": no, "trade_state": "SUCCESS", "transaction_id": transaction_id,
                "amount": {"total": total}, "appid": pay.appid, "mchid": pay.mchid,
                "success_time": clock.now().isoformat()}

    no = order["out_trade_no"]
    assert await payments.apply_transaction(pay, said(no, "4200000001", 1200)) == "paid"
    assert await payments.apply_transaction(pay, said(no, "4200000001", 1200)) == "duplicate"
    assert await payments.apply_transaction(pay, said(no, "4200000002", 1200)) == "ignored"
    assert await payments.apply_transaction(pay, said("ZHNOSUCHORDER0001", "4200000003", 5)) == "unknown_order"
    assert await payments.apply_transaction(pay, said(other["out_trade_no"], "4200000004", 1)) == "flagged"
    t = await totals(client, staff, campaign["id"])
    assert (t["total_fen"], t["count"]) == (1200, 1)
    paid = await Contribution.get(id=order["contribution_id"])
    assert (paid.status, paid.transaction_id) == (ContributionStatus.PAID, "4200000001")
    assert (await Contribution.get(id=other["contribution_id"])).status is ContributionStatus.FLAGGED
