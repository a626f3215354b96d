"""Tests of the fake WeChat Pay API v3 (fakewechat.pay), driven by the real wechatpayv3 client."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3.async_ import AsyncWeChatPay, WeChatPayType
from wechatpayv3.utils import load_private_key, rsa_sign

from fakewechat import PAY_KEY, FakePay, PayKeys, create_app
from fakewechat.pay import PayError

APPID = "wx-pay-test-appid"
OPENID = "o-payer-1"
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass
class Receiver:
    """A merchant notify endpoint: records what it gets, answers the scripted statuses."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@dataclass
class PayServer:
    """The fake on a real TCP port, its state and a notify receiver."""

    pay: FakePay
    base_url: str
    receiver: Receiver


@pytest.fixture(scope="module")
def keys() -> PayKeys:
    """One set of keys for the module: RSA key generation is slow-ish."""
    return PayKeys.generate(appid=APPID)


async def start_receiver(aiohttp_server: ServerFactory) -> Receiver:
    receiver = Receiver(url="")

    async def notify(request: web.Request) -> web.Response:
        receiver.received.append((dict(request.headers), await request.read()))
        status = receiver.statuses.pop(0) if receiver.statuses else 200
        return web.json_response({"code": "SUCCESS"} if status == 200 else None, status=status)

    app = web.Application()
    app.router.add_post("/pay/notify", notify)
    server = await aiohttp_server(app)
    receiver.url = str(server.make_url("/pay/notify"))
    return receiver


async def start_fake(
    aiohttp_server: ServerFactory, keys: PayKeys, *, auto_notify: bool = False
) -> PayServer:
    app = create_app(appid=APPID, pay_keys=keys, auto_notify=auto_notify)
    server = await aiohttp_server(app)
    receiver = await start_receiver(aiohttp_server)
    return PayServer(app[PAY_KEY], str(server.make_url("")).rstrip("/"), receiver)


def make_client(
    keys: PayKeys, fake: PayServer, *, private_pem: str | None = None, serial: str | None = None
) -> AsyncWeChatPay:
    """The real client as a merchant configures it (public-key mode), aimed at the fake."""
    client = AsyncWeChatPay(
        wechatpay_type=WeChatPayType.MINIPROG,
        mchid=keys.mchid,
        private_key=private_pem or keys.merchant_private_pem,
        cert_serial_no=serial or keys.merchant_serial_no,
        appid=keys.appid,
        apiv3_key=keys.apiv3_key,
        notify_url=fake.receiver.url,
        public_key=keys.platform_public_pem,
        public_key_id=keys.platform_public_key_id,
    )
    client._core._gate_way = fake.base_url
    return client


@pytest.fixture
async def fake(aiohttp_server: ServerFactory, keys: PayKeys) -> PayServer:
    return await start_fake(aiohttp_server, keys)


@pytest.fixture
async def wxpay(keys: PayKeys, fake: PayServer) -> AsyncIterator[AsyncWeChatPay]:
    async with make_client(keys, fake) as client:
        yield client


def parse(answer: tuple[int, Any]) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of a client call."""
    code, message = answer
    return code, json.loads(message)


async def prepay(
    client: AsyncWeChatPay, out_trade_no: str, total: int = 100, openid: str = OPENID, **kw: Any
) -> tuple[int, dict[str, Any]]:
    return parse(
        await client.pay(
            description="场地预订",
            out_trade_no=out_trade_no,
            amount={"total": total, "currency": "CNY"},
            payer={"openid": openid},
            **kw,
        )
    )


async def paid_order(client: AsyncWeChatPay, fake: PayServer, out_trade_no: str,
                     total: int = 100) -> dict[str, Any]:
    code, _ = await prepay(client, out_trade_no, total)
    assert code == 200
    return fake.pay.succeed(out_trade_no)


async def refund(
    client: AsyncWeChatPay, out_refund_no: str, refund_amount: int, total: int = 100,
    out_trade_no: str = "order-0001", **kw: Any
) -> tuple[int, dict[str, Any]]:
    amount = {"refund": refund_amount, "total": total, "currency": "CNY"}
    return parse(
        await client.refund(out_refund_no=out_refund_no, amount=amount,
                            out_trade_no=out_trade_no, **kw)
    )


# ----------------------------------------------------------------- payments


async def test_prepay_query_pay_query(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    code, body = await prepay(wxpay, "order-0001", attach="zone-7")
    assert code == 200
    assert body["prepay_id"].startswith("wx")

    code, before = parse(await wxpay.query(out_trade_no="order-0001"))
    assert code == 200
    assert before["trade_state"] == "NOTPAY"
    assert before["attach"] == "zone-7"
    assert before["amount"]["total"] == 100
    assert "transaction_id" not in before

    fake.pay.succeed("order-0001")
    code, after = parse(await wxpay.query(out_trade_no="order-0001"))
    assert code == 200
    assert after["trade_state"] == "SUCCESS"
    assert after["trade_type"] == "JSAPI"
    assert after["payer"] == {"openid": OPENID}
    assert after["amount"] == {"total": 100, "payer_total": 100, "currency": "CNY",
                               "payer_currency": "CNY"}
    assert after["success_time"].endswith("+08:00")
    transaction_id = after["transaction_id"]
    assert len(transaction_id) == 28
    assert transaction_id.startswith("4200") and transaction_id.isdigit()

    code, by_id = parse(await wxpay.query(transaction_id=transaction_id))
    assert (code, by_id) == (200, after)
    assert (fake.pay.prepay_calls, fake.pay.query_calls) == (1, 3)


async def test_prepay_repeated(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    _, first = await prepay(wxpay, "order-0001")
    assert await prepay(wxpay, "order-0001") == (200, first)
    code, body = await prepay(wxpay, "order-0001", total=101)
    assert (code, body["code"]) == (400, "OUT_TRADE_NO_USED")
    code, body = await prepay(wxpay, "order-0001", openid="o-someone-else")
    assert (code, body["code"]) == (400, "OUT_TRADE_NO_USED")

    fake.pay.succeed("order-0001")
    assert await prepay(wxpay, "order-0001") == (
        400, {"code": "ORDERPAID", "message": "该订单已支付"}
    )
    await prepay(wxpay, "order-0002")
    await wxpay.close("order-0002")
    code, body = await prepay(wxpay, "order-0002")
    assert (code, body["code"]) == (400, "ORDER_CLOSED")


@pytest.mark.parametrize(
    ("out_trade_no", "total", "extra", "code"),
    [
        ("abc", 100, {}, "PARAM_ERROR"),
        ("order 0001", 100, {}, "PARAM_ERROR"),
        ("x" * 33, 100, {}, "PARAM_ERROR"),
        ("order-0001", 0, {}, "PARAM_ERROR"),
        ("order-0001", 100, {"notify_url": "ftp://merchant/notify"}, "PARAM_ERROR"),
        ("order-0001", 100, {"time_expire": "tomorrow"}, "PARAM_ERROR"),
        ("order-0001", 100, {"appid": "wx-other"}, "APPID_MCHID_NOT_MATCH"),
        ("order-0001", 100, {"mchid": "1900000999"}, "INVALID_REQUEST"),
    ],
)
async def test_prepay_rejects_bad_orders(
    wxpay: AsyncWeChatPay, fake: PayServer, out_trade_no: str, total: int,
    extra: dict[str, str], code: str
) -> None:
    status, body = await prepay(wxpay, out_trade_no, total, **extra)
    assert (status, body["code"]) == (400, code)
    assert fake.pay.orders == {}


async def test_prepay_rejects_long_description(wxpay: AsyncWeChatPay) -> None:
    code, body = parse(
        await wxpay.pay(description="长" * 128, out_trade_no="order-0001",
                        amount={"total": 1}, payer={"openid": OPENID})
    )
    assert (code, body["code"]) == (400, "PARAM_ERROR")


async def test_query_unknown_order(wxpay: AsyncWeChatPay) -> None:
    assert parse(await wxpay.query(out_trade_no="nope-0001")) == (
        404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
    )
    code, _ = parse(await wxpay.query(transaction_id="4200" + "0" * 24))
    assert code == 404


async def test_succeed_refuses_expired_closed_and_unknown(
    wxpay: AsyncWeChatPay, fake: PayServer
) -> None:
    expired = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600 - 60))
    await prepay(wxpay, "order-0001", time_expire=expired)
    with pytest.raises(ValueError, match="expired"):
        fake.pay.succeed("order-0001")
    with pytest.raises(ValueError, match="no order"):
        fake.pay.succeed("order-9999")
    await prepay(wxpay, "order-0002")
    fake.pay.succeed("order-0002")
    with pytest.raises(ValueError, match="SUCCESS"):
        fake.pay.succeed("order-0002")


async def test_close(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    await prepay(wxpay, "order-0001")
    # 204 with an empty body: the client verifies its signature, or it raises.
    assert await wxpay.close("order-0001") == (204, b"")
    assert await wxpay.close("order-0001") == (204, b"")
    _, body = parse(await wxpay.query(out_trade_no="order-0001"))
    assert body["trade_state"] == "CLOSED"
    with pytest.raises(ValueError, match="CLOSED"):
        fake.pay.succeed("order-0001")

    code, body = parse(await wxpay.close("order-9999"))
    assert (code, body["code"]) == (404, "ORDER_NOT_EXIST")
    await paid_order(wxpay, fake, "order-0002")
    assert parse(await wxpay.close("order-0002")) == (
        400, {"code": "ORDERPAID", "message": "该订单已支付"}
    )
    assert fake.pay.close_calls == 4


# ------------------------------------------------------------------- refunds


async def test_refunds(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    paid = await paid_order(wxpay, fake, "order-0001")
    code, partial = await refund(wxpay, "refund-1", 30, reason="场地取消")
    assert code == 200
    assert partial["status"] == "PROCESSING"
    assert partial["transaction_id"] == paid["transaction_id"]
    assert partial["channel"] == "ORIGINAL"
    assert partial["user_received_account"] == "支付用户零钱"
    assert partial["amount"] == {
        "total": 100, "refund": 30, "payer_total": 100, "payer_refund": 30,
        "settlement_total": 100, "settlement_refund": 30, "discount_refund": 0, "currency": "CNY",
    }
    assert await refund(wxpay, "refund-1", 30) == (200, partial)
    code, body = await refund(wxpay, "refund-1", 31)
    assert (code, body["code"]) == (400, "INVALID_REQUEST")

    assert await refund(wxpay, "refund-2", 71) == (
        400, {"code": "INVALID_REQUEST", "message": "退款金额超过订单可退金额"}
    )
    code, body = await refund(wxpay, "refund-2", 10, total=99)
    assert (code, body["code"]) == (400, "INVALID_REQUEST")
    _, after_partial = parse(await wxpay.query(out_trade_no="order-0001"))
    assert after_partial["trade_state"] == "SUCCESS"

    code, full = await refund(wxpay, "refund-2", 70, out_trade_no="",
                              transaction_id=paid["transaction_id"])
    assert (code, full["amount"]["refund"]) == (200, 70)
    _, after_full = parse(await wxpay.query(out_trade_no="order-0001"))
    assert after_full["trade_state"] == "REFUND"
    code, body = await refund(wxpay, "refund-3", 1)
    assert (code, body["message"]) == (400, "退款金额超过订单可退金额")

    assert parse(await wxpay.query_refund("refund-1")) == (200, partial)
    done = fake.pay.complete_refund("refund-1")
    assert done["status"] == "SUCCESS" and done["success_time"].endswith("+08:00")
    assert parse(await wxpay.query_refund("refund-1")) == (200, done)
    with pytest.raises(ValueError, match="already SUCCESS"):
        fake.pay.complete_refund("refund-1")
    code, body = parse(await wxpay.query_refund("refund-9"))
    assert (code, body["code"]) == (404, "RESOURCE_NOT_EXISTS")

    # A closed refund gives its amount back.
    assert fake.pay.complete_refund("refund-2", "CLOSED")["status"] == "CLOSED"
    _, reopened = parse(await wxpay.query(out_trade_no="order-0001"))
    assert reopened["trade_state"] == "SUCCESS"
    assert (await refund(wxpay, "refund-4", 70))[0] == 200
    assert fake.pay.refund_calls == 8


async def test_refund_needs_a_paid_order(wxpay: AsyncWeChatPay) -> None:
    await prepay(wxpay, "order-0001")
    code, body = await refund(wxpay, "refund-1", 10)
    assert (code, body["code"]) == (400, "INVALID_REQUEST")
    code, body = await refund(wxpay, "refund-1", 10, out_trade_no="order-9999")
    assert (code, body["code"]) == (404, "RESOURCE_NOT_EXISTS")


# ---------------------------------------------------------------- signatures


async def test_wrong_merchant_key_or_serial_is_refused(keys: PayKeys, fake: PayServer) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    async with make_client(keys, fake, private_pem=other_pem) as forger:
        code, body = await prepay(forger, "order-0001")
    assert (code, body) == (401, {"code": "SIGN_ERROR", "message": "错误的签名，验签失败"})
    async with make_client(keys, fake, serial="0" * 40) as wrong_serial:
        code, body = parse(await wrong_serial.query(out_trade_no="order-0001"))
    assert (code, body["code"]) == (401, "SIGN_ERROR")
    assert fake.pay.prepay_calls == fake.pay.query_calls == 0


def test_verify_request_refuses_stale_and_malformed(keys: PayKeys) -> None:
    pay = FakePay(keys)
    private_key = load_private_key(keys.merchant_private_pem)

    def authorization(timestamp: int) -> str:
        message = f"GET\n/v3/x\n{timestamp}\nNONCE\n\n"
        signature = rsa_sign(private_key, message)
        return (f'WECHATPAY2-SHA256-RSA2048 mchid="{keys.mchid}",nonce_str="NONCE",'
                f'signature="{signature}",timestamp="{timestamp}",'
                f'serial_no="{keys.merchant_serial_no}"')

    pay.verify_request("GET", "/v3/x", authorization(int(time.time())), b"")
    for header in (authorization(int(time.time()) - 301), None, "Bearer x", "WECHATPAY2-SHA256"):
        with pytest.raises(PayError, match="SIGN_ERROR"):
            pay.verify_request("GET", "/v3/x", header, b"")
    with pytest.raises(PayError, match="SIGN_ERROR"):
        pay.verify_request("GET", "/v3/y", authorization(int(time.time())), b"")


# ------------------------------------------------------------- notifications


async def test_notification_verifies_and_decrypts(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    await paid_order(wxpay, fake, "order-0001")
    headers, body = fake.pay.notification("order-0001")
    assert headers["Wechatpay-Serial"] == fake.pay.keys.platform_public_key_id
    result = wxpay.callback(headers, body)
    assert result is not None
    assert result["event_type"] == "TRANSACTION.SUCCESS"
    assert result["summary"] == "支付成功"
    assert result["id"].startswith("EV-")
    resource = result["resource"]
    assert resource["trade_state"] == "SUCCESS"
    assert resource["out_trade_no"] == "order-0001"
    assert resource["amount"]["total"] == 100
    assert resource["payer"] == {"openid": OPENID}
    _, query = parse(await wxpay.query(out_trade_no="order-0001"))
    assert resource == query

    again = wxpay.callback(*fake.pay.notification("order-0001"))
    assert again is not None and again["id"] != result["id"]
    copy = wxpay.callback(*fake.pay.notification("order-0001", copies_id=result["id"]))
    assert copy is not None and copy["id"] == result["id"]
    stamped, _ = fake.pay.notification("order-0001", timestamp=1_700_000_000)
    assert stamped["Wechatpay-Timestamp"] == "1700000000"


async def test_forged_and_altered_notifications_fail(
    wxpay: AsyncWeChatPay, fake: PayServer
) -> None:
    await paid_order(wxpay, fake, "order-0001")
    assert wxpay.callback(*fake.pay.notification("order-0001", forge=True)) is None
    cheap = {"amount": {"total": 1, "payer_total": 1, "currency": "CNY", "payer_currency": "CNY"}}
    altered = fake.pay.notification("order-0001", tamper=cheap, resign=False)
    assert wxpay.callback(*altered) is None
    with pytest.raises(ValueError, match="tamper"):
        fake.pay.notification("order-0001", resign=False)

    resigned = wxpay.callback(*fake.pay.notification("order-0001", tamper=cheap))
    assert resigned is not None
    assert resigned["resource"]["amount"]["total"] == 1
    other_merchant = wxpay.callback(*fake.pay.notification("order-0001", tamper={"mchid": "x"}))
    assert other_merchant is not None and other_merchant["resource"]["mchid"] == "x"

    await prepay(wxpay, "order-0002")
    with pytest.raises(ValueError, match="no paid order"):
        fake.pay.notification("order-0002")


async def test_refund_notification(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    paid = await paid_order(wxpay, fake, "order-0001")
    await refund(wxpay, "refund-1", 40)
    fake.pay.complete_refund("refund-1")
    result = wxpay.callback(*fake.pay.refund_notification("refund-1"))
    assert result is not None
    assert (result["event_type"], result["summary"]) == ("REFUND.SUCCESS", "退款成功")
    resource = result["resource"]
    assert resource["mchid"] == fake.pay.keys.mchid
    assert resource["transaction_id"] == paid["transaction_id"]
    assert resource["refund_status"] == "SUCCESS"
    assert resource["amount"] == {"total": 100, "refund": 40, "payer_total": 100,
                                  "payer_refund": 40}
    abnormal = wxpay.callback(*fake.pay.refund_notification("refund-1", status="ABNORMAL"))
    assert abnormal is not None and abnormal["event_type"] == "REFUND.ABNORMAL"
    assert "success_time" not in abnormal["resource"]
    assert wxpay.callback(*fake.pay.refund_notification("refund-1", forge=True)) is None


async def test_deliver_posts_to_notify_url(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    await paid_order(wxpay, fake, "order-0001")
    assert await fake.pay.deliver("order-0001") == 200
    fake.receiver.statuses.append(500)
    assert await fake.pay.deliver("order-0001", forge=True) == 500
    assert fake.pay.notifications_sent == 2
    (headers, body), (forged_headers, forged_body) = fake.receiver.received
    assert headers["Content-Type"] == "application/json"
    result = wxpay.callback(headers, body)
    assert result is not None and result["resource"]["out_trade_no"] == "order-0001"
    assert wxpay.callback(forged_headers, forged_body) is None

    await refund(wxpay, "refund-1", 100, notify_url=fake.receiver.url)
    fake.pay.complete_refund("refund-1")
    assert await fake.pay.deliver_refund("refund-1") == 200
    refund_result = wxpay.callback(*fake.receiver.received[-1])
    assert refund_result is not None and refund_result["event_type"] == "REFUND.SUCCESS"


async def test_auto_notify_retries(aiohttp_server: ServerFactory, keys: PayKeys) -> None:
    fake = await start_fake(aiohttp_server, keys, auto_notify=True)
    fake.pay.notify_retry_delays = (0.01, 0.01)
    fake.receiver.statuses.extend([500, 204])
    async with make_client(keys, fake) as client:
        await paid_order(client, fake, "order-0001")
        await fake.pay.wait_deliveries()
        assert len(fake.receiver.received) == 2
        first, second = (client.callback(*sent) for sent in fake.receiver.received)
        assert first is not None and second is not None
        assert first["id"] == second["id"]  # a retry re-sends the same notification

        await refund(client, "refund-1", 100, notify_url=fake.receiver.url)
        fake.pay.complete_refund("refund-1", "ABNORMAL")
        await fake.pay.wait_deliveries()
    result = client.callback(*fake.receiver.received[-1])
    assert result is not None and result["event_type"] == "REFUND.ABNORMAL"
    assert fake.pay.notifications_sent == 3


# ---------------------------------------------------------- scripted failures


async def test_scripted_failures(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    fake.pay.script_pay_failure("prepay")
    fake.pay.script_pay_failure("query", status=429, code="FREQUENCY_LIMITED", count=2)
    fake.pay.script_pay_failure("close", status=503)
    fake.pay.script_pay_failure("refund", status=500, code="SYSTEM_ERROR")

    code, body = await prepay(wxpay, "order-0001")
    assert (code, body["code"]) == (500, "SYSTEM_ERROR")
    assert (await prepay(wxpay, "order-0001"))[0] == 200
    for _ in range(2):
        code, body = parse(await wxpay.query(out_trade_no="order-0001"))
        assert (code, body["code"]) == (429, "FREQUENCY_LIMITED")
    assert parse(await wxpay.query(out_trade_no="order-0001"))[0] == 200
    assert parse(await wxpay.close("order-0001"))[0] == 503
    fake.pay.succeed("order-0001")
    assert (await refund(wxpay, "refund-1", 10))[0] == 500
    assert (await refund(wxpay, "refund-1", 10))[0] == 200
    assert fake.pay.failures_served == 5
    assert fake.pay.rules == []
    with pytest.raises(ValueError):
        fake.pay.script_pay_failure("bill")


# ------------------------------------------------------------ control routes


async def test_control_routes(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    await prepay(wxpay, "order-0001")
    async with aiohttp.ClientSession(fake.base_url) as http:
        async with http.post("/_fake/pay/orders/order-0001/succeed?notify=1") as resp:
            assert resp.status == 200
            paid = await resp.json()
        assert paid["transaction"]["trade_state"] == "SUCCESS"
        assert paid["notify_status"] == 200
        async with http.post("/_fake/pay/orders/order-0001/succeed") as resp:
            assert resp.status == 400
        async with http.get("/_fake/pay/orders") as resp:
            assert (await resp.json())["count"] == 1
        await refund(wxpay, "refund-1", 100)
        async with http.post("/_fake/pay/refunds/refund-1/complete?status=CLOSED") as resp:
            assert (await resp.json())["refund"]["status"] == "CLOSED"
        async with http.post("/_fake/pay/script", json={"kind": "query", "status": 500}) as resp:
            assert resp.status == 200
        assert parse(await wxpay.query(out_trade_no="order-0001"))[0] == 500
        async with http.get("/_fake/pay/keys/platform-public") as resp:
            assert await resp.text() == fake.pay.keys.platform_public_pem
            assert resp.headers["Wechatpay-Serial"] == fake.pay.keys.platform_public_key_id
        async with http.post("/_fake/reset") as resp:
            assert resp.status == 200
    assert fake.pay.orders == {} and fake.pay.prepay_calls == 0


async def test_control_clear_script(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    await prepay(wxpay, "order-0001")
    async with aiohttp.ClientSession(fake.base_url) as http:
        for rule in ({"kind": "query", "count": -1}, {"kind": "prepay", "status": 503}):
            async with http.post("/_fake/pay/script", json=rule) as resp:
                assert resp.status == 200
        assert parse(await wxpay.query(out_trade_no="order-0001"))[0] == 500
        async with http.delete("/_fake/pay/script") as resp:
            assert (resp.status, await resp.json()) == (200, {"rules": []})
    assert fake.pay.rules == []
    code, body = parse(await wxpay.query(out_trade_no="order-0001"))
    assert (code, body["trade_state"]) == (200, "NOTPAY")  # the order outlives the script
    assert (await prepay(wxpay, "order-0002"))[0] == 200
    assert (fake.pay.failures_served, len(fake.pay.orders)) == (1, 2)


async def notify(fake: PayServer, out_trade_no: str, body: Any = None) -> tuple[int, Any]:
    """POST /_fake/pay/orders/{out_trade_no}/notify (with a JSON body unless None)."""
    async with aiohttp.ClientSession(fake.base_url) as http:
        path = f"/_fake/pay/orders/{out_trade_no}/notify"
        async with http.post(path, json=body) if body is not None else http.post(path) as resp:
            return resp.status, await resp.json()


async def test_control_notify(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    await paid_order(wxpay, fake, "order-0001")
    code, answer = await notify(fake, "order-0001")
    assert code == 200
    assert answer["id"].startswith("EV-") and answer["notify_statuses"] == [200]
    (sent,) = fake.receiver.received
    result = wxpay.callback(*sent)
    assert result is not None and result["id"] == answer["id"]
    assert result["resource"]["out_trade_no"] == "order-0001"

    fake.receiver.statuses.extend([200, 500, 204])
    code, answer = await notify(fake, "order-0001", {"duplicate": 2})
    assert (code, answer["notify_statuses"]) == (200, [200, 500, 204])
    copies = [wxpay.callback(*sent) for sent in fake.receiver.received[1:]]
    assert len(copies) == 3
    assert all(copy is not None and copy["id"] == answer["id"] for copy in copies)
    assert answer["id"] != result["id"]
    assert fake.pay.notifications_sent == 4


async def test_control_notify_forged_and_tampered(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    await paid_order(wxpay, fake, "order-0001")
    cheap = {"amount": {"total": 1, "payer_total": 1, "currency": "CNY", "payer_currency": "CNY"}}
    for body, believed, total in (
        ({"forge": True}, False, None),
        ({"tamper": cheap}, True, 1),
        ({"tamper": cheap, "resign": False}, False, None),
        ({"forge": False, "tamper": {}, "resign": True, "duplicate": 0}, True, 100),
    ):
        code, answer = await notify(fake, "order-0001", body)
        assert (code, answer["notify_statuses"]) == (200, [200])
        result = wxpay.callback(*fake.receiver.received[-1])
        assert (result is not None) is believed, body
        if result is not None:
            assert result["resource"]["amount"]["total"] == total
    assert len(fake.receiver.received) == 4


@pytest.mark.parametrize(
    ("out_trade_no", "body"),
    [
        ("order-0001", [True]),
        ("order-0001", {"forge": 1}),
        ("order-0001", {"tamper": "amount"}),
        ("order-0001", {"duplicate": True}),
        ("order-0001", {"duplicate": -1}),
        ("order-0001", {"duplicate": 101}),
        ("order-0001", {"copies_id": "EV-1"}),
        ("order-0001", {"resign": False}),
        ("order-0002", None),
        ("order-9999", None),
    ],
)
async def test_control_notify_refuses(
    wxpay: AsyncWeChatPay, fake: PayServer, out_trade_no: str, body: Any
) -> None:
    await paid_order(wxpay, fake, "order-0001")
    await prepay(wxpay, "order-0002")
    code, answer = await notify(fake, out_trade_no, body)
    assert (code, answer["code"]) == (400, "INVALID_REQUEST")
    assert fake.receiver.received == [] and fake.pay.notifications_sent == 0


async def test_control_notify_unreachable(wxpay: AsyncWeChatPay, fake: PayServer) -> None:
    code, _ = await prepay(wxpay, "order-0001", notify_url="http://127.0.0.1:1/pay/notify")
    assert code == 200
    fake.pay.succeed("order-0001")
    code, answer = await notify(fake, "order-0001")
    assert (code, answer["code"]) == (502, "NOTIFY_FAILED")


# --------------------------------------------------------------------- keys


def test_pay_keys_save_load(keys: PayKeys, tmp_path: Path) -> None:
    assert len(keys.apiv3_key) == 32 and keys.apiv3_key.isascii()
    assert len(keys.merchant_serial_no) == 40 and keys.merchant_serial_no.isupper()
    assert keys.platform_public_key_id.startswith("PUB_KEY_ID_0114")
    directory = tmp_path / "pay"
    keys.save(directory)
    assert PayKeys.load(directory) == keys
    for name in ("merchant_private.pem", "platform_private.pem", "pay.json"):
        assert stat.S_IMODE(os.stat(directory / name).st_mode) == 0o600
    assert json.loads((directory / "pay.json").read_text())["apiv3_key"] == keys.apiv3_key
    assert PayKeys.load_or_create(directory) == keys
    renamed = PayKeys.load_or_create(directory, appid="wx-renamed")
    assert renamed.appid == "wx-renamed" and renamed.apiv3_key == keys.apiv3_key
    assert PayKeys.load(directory) == renamed
