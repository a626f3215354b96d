"""A local fake of the WeChat Pay API v3 (mini-program JSAPI payments and refunds).

Endpoints (same paths, JSON and signatures as https://api.mch.weixin.qq.com):

* ``POST /v3/pay/transactions/jsapi``                          JSAPI prepay
* ``GET  /v3/pay/transactions/out-trade-no/{out_trade_no}``    query by out_trade_no (``?mchid=``)
* ``GET  /v3/pay/transactions/id/{transaction_id}``            query by transaction_id (``?mchid=``)
* ``POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close``  close (204)
* ``POST /v3/refund/domestic/refunds``                         refund
* ``GET  /v3/refund/domestic/refunds/{out_refund_no}``         query a refund

Every request must carry the merchant's ``WECHATPAY2-SHA256-RSA2048`` Authorization, every 2xx
answer is signed with the platform key in public-key mode (``Wechatpay-*`` headers), errors are
4xx/5xx ``{"code": "...", "message": "..."}``. Payment and refund notifications are built and
POSTed to the merchant's notify_url by :class:`FakePay` (tests) or by the ``/_fake/pay/``
control routes (demos; see ``add_pay_routes``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import logging
import re
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fakewechat.paykeys import PayKeys

__all__ = [
    "FAILURE_KINDS",
    "PAY_KEY",
    "SIGNATURE_TYPE",
    "FakePay",
    "Order",
    "PayError",
    "PayFailureRule",
    "Refund",
    "add_pay_routes",
    "pay_middleware",
]

JSON = dict[str, Any]

log = logging.getLogger(__name__)

#: Beijing time: every time in the API is RFC3339 with ``+08:00``.
CST: Final = timezone(timedelta(hours=8))
SIGNATURE_TYPE: Final = "WECHATPAY2-SHA256-RSA2048"
#: kinds of API call ``FakePay.script_pay_failure`` can make fail.
FAILURE_KINDS: Final = frozenset({"prepay", "query", "close", "refund"})
TRADE_STATE_DESC: Final = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "CLOSED": "订单已关闭",
    "REFUND": "订单发生过退款",
}
#: refund status -> (notification event_type, summary).
REFUND_EVENTS: Final = {
    "SUCCESS": ("REFUND.SUCCESS", "退款成功"),
    "ABNORMAL": ("REFUND.ABNORMAL", "退款异常"),
    "CLOSED": ("REFUND.CLOSED", "退款关闭"),
}
USER_RECEIVED_ACCOUNT: Final = "支付用户零钱"

_AUTH_PARAM: Final = re.compile(r'(\w+)="([^"]*)"')
_AUTH_FIELDS: Final = frozenset({"mchid", "nonce_str", "signature", "timestamp", "serial_no"})
_OUT_TRADE_NO: Final = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
_OUT_REFUND_NO: Final = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
#: requests signed further than this from now are refused (like WeChat's 5 minutes).
_MAX_CLOCK_SKEW_S: Final = 300
_NOTIFY_OK: Final = frozenset({200, 204})
_NOTIFY_TIMEOUT: Final = aiohttp.ClientTimeout(total=10)
_NONCE_ALPHABET: Final = string.ascii_uppercase + string.digits


class PayError(Exception):
    """An error answer of the pay API: HTTP status and ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> JSON:
        """The JSON error body."""
        return {"code": self.code, "message": self.message}


def _param_error(field: str, problem: str) -> PayError:
    return PayError(400, "PARAM_ERROR", f"输入源“/body/{field}”映射到字段校验失败：{problem}")


def _sign_error(message: str) -> PayError:
    return PayError(401, "SIGN_ERROR", message)


def _order_not_exist() -> PayError:
    return PayError(404, "ORDER_NOT_EXIST", "订单不存在")


def _order_paid() -> PayError:
    return PayError(400, "ORDERPAID", "该订单已支付")


@dataclass(slots=True)
class PayFailureRule:
    """A scripted failure of the next ``remaining`` calls of ``kind`` (-1: forever)."""

    kind: str
    status: int
    code: str
    remaining: int

    def as_dict(self) -> JSON:
        """JSON view of the rule."""
        return {"kind": self.kind, "status": self.status, "code": self.code,
                "count": self.remaining}


@dataclass(slots=True)
class Order:
    """A JSAPI order, from prepay on."""

    appid: str
    mchid: str
    out_trade_no: str
    description: str
    notify_url: str
    total: int
    openid: str
    prepay_id: str
    attach: str | None = None
    time_expire: datetime | None = None
    #: NOTPAY, SUCCESS, CLOSED or REFUND (fully refunded).
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: datetime | None = None
    payer_total: int | None = None

    @property
    def paid(self) -> bool:
        """Whether the user has paid (a transaction_id exists)."""
        return self.transaction_id is not None

    def transaction(self) -> JSON:
        """The transaction object the query API answers (payment fields once paid)."""
        view: JSON = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "trade_state": self.trade_state,
            "trade_state_desc": TRADE_STATE_DESC[self.trade_state],
            "attach": self.attach or "",
            "amount": {"total": self.total, "currency": "CNY", "payer_currency": "CNY"},
        }
        if self.success_time is not None:
            view.update(
                transaction_id=self.transaction_id,
                trade_type="JSAPI",
                bank_type="OTHERS",
                success_time=_rfc3339(self.success_time),
                payer={"openid": self.openid},
            )
            view["amount"]["payer_total"] = self.payer_total
        return view


@dataclass(slots=True)
class Refund:
    """A refund of (part of) a paid order."""

    refund_id: str
    out_refund_no: str
    out_trade_no: str
    transaction_id: str
    refund: int
    total: int
    payer_total: int
    create_time: datetime
    reason: str | None = None
    notify_url: str | None = None
    #: PROCESSING, then SUCCESS, ABNORMAL or CLOSED (see ``FakePay.complete_refund``).
    status: str = "PROCESSING"
    success_time: datetime | None = None

    @property
    def payer_refund(self) -> int:
        """The part of the refund going back to the user (pro rata of what they paid)."""
        return self.refund * self.payer_total // self.total

    def view(self) -> JSON:
        """The refund object the refund and query-refund APIs answer."""
        view: JSON = {
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "transaction_id": self.transaction_id,
            "out_trade_no": self.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": USER_RECEIVED_ACCOUNT,
            "create_time": _rfc3339(self.create_time),
            "status": self.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": self.total,
                "refund": self.refund,
                "payer_total": self.payer_total,
                "payer_refund": self.payer_refund,
                "settlement_total": self.total,
                "settlement_refund": self.refund,
                "discount_refund": self.refund - self.payer_refund,
                "currency": "CNY",
            },
        }
        if self.success_time is not None:
            view["success_time"] = _rfc3339(self.success_time)
        return view

    def resource(self, mchid: str, status: str) -> JSON:
        """The plaintext of a refund notification (of merchant ``mchid``) saying ``status``."""
        resource: JSON = {
            "mchid": mchid,
            "out_trade_no": self.out_trade_no,
            "transaction_id": self.transaction_id,
            "out_refund_no": self.out_refund_no,
            "refund_id": self.refund_id,
            "refund_status": status,
            "user_received_account": USER_RECEIVED_ACCOUNT,
            "amount": {
                "total": self.total,
                "refund": self.refund,
                "payer_total": self.payer_total,
                "payer_refund": self.payer_refund,
            },
        }
        if status == "SUCCESS":
            resource["success_time"] = _rfc3339(self.success_time or _now())
        return resource


class FakePay:
    """In-memory state and logic of the fake WeChat Pay API v3 of one merchant.

    ``auto_notify``: deliver notifications in the background when orders are paid and refunds
    complete, retrying after each of ``notify_retry_delays`` seconds until answered 200/204.
    """

    def __init__(
        self,
        keys: PayKeys,
        *,
        auto_notify: bool = False,
        notify_retry_delays: Sequence[float] = (1.0, 2.0, 4.0, 8.0),
    ) -> None:
        self.keys = keys
        self.auto_notify = auto_notify
        self.notify_retry_delays = tuple(notify_retry_delays)
        self._merchant_key = _load_public(keys.merchant_public_pem)
        self._platform_key = _load_private(keys.platform_private_pem)
        self._forger_key: rsa.RSAPrivateKey | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.reset()

    # ---------------------------------------------------------------- control

    def reset(self) -> None:
        """Forget every order, refund, rule and counter; cancel pending deliveries."""
        for task in self._tasks:
            task.cancel()
        self.orders: dict[str, Order] = {}
        self.refunds: dict[str, Refund] = {}
        self.rules: list[PayFailureRule] = []
        self.prepay_calls = 0
        self.query_calls = 0
        self.close_calls = 0
        self.refund_calls = 0
        self.notifications_sent = 0
        self.failures_served = 0

    def stats(self) -> JSON:
        """Counters, order and refund counts."""
        return {
            "prepay_calls": self.prepay_calls,
            "query_calls": self.query_calls,
            "close_calls": self.close_calls,
            "refund_calls": self.refund_calls,
            "notifications_sent": self.notifications_sent,
            "failures_served": self.failures_served,
            "orders": len(self.orders),
            "refunds": len(self.refunds),
            "rules": len(self.rules),
        }

    def script_pay_failure(
        self, kind: str, status: int = 500, code: str = "SYSTEM_ERROR", count: int = 1
    ) -> None:
        """Make the next ``count`` (-1: all) calls of ``kind`` answer ``status``/``code``.

        Kinds: ``prepay``, ``query`` (transaction and refund queries), ``close``, ``refund``.
        """
        if kind not in FAILURE_KINDS:
            raise ValueError(f"kind must be one of {sorted(FAILURE_KINDS)}")
        if not 400 <= status <= 599:
            raise ValueError("status must be a 4xx or 5xx")
        if count == 0 or count < -1:
            raise ValueError("count must be a positive int or -1")
        self.rules.append(PayFailureRule(kind, status, code, count))

    def succeed(self, out_trade_no: str, *, payer_total: int | None = None) -> JSON:
        """The user pays the order (``payer_total`` defaults to the total): its transaction.

        With ``auto_notify`` the payment notification is delivered in the background.
        """
        order = self.orders.get(out_trade_no)
        if order is None:
            raise ValueError(f"no order {out_trade_no!r}")
        if order.trade_state != "NOTPAY":
            raise ValueError(f"order {out_trade_no!r} is {order.trade_state}")
        now = _now()
        if order.time_expire is not None and now > order.time_expire:
            raise ValueError(f"order {out_trade_no!r} expired at {_rfc3339(order.time_expire)}")
        if payer_total is not None and not 0 <= payer_total <= order.total:
            raise ValueError(f"payer_total must be within 0..{order.total}")
        order.trade_state = "SUCCESS"
        order.transaction_id = f"4200{secrets.randbelow(10**24):024d}"
        order.success_time = now
        order.payer_total = order.total if payer_total is None else payer_total
        if self.auto_notify:
            self._schedule(functools.partial(self.deliver, out_trade_no, copies_id=_event_id()))
        return order.transaction()

    def complete_refund(self, out_refund_no: str, status: str = "SUCCESS") -> JSON:
        """Move a PROCESSING refund to ``status`` (SUCCESS, ABNORMAL or CLOSED): its view.

        A CLOSED refund makes its amount refundable again. With ``auto_notify`` the refund
        notification is delivered in the background (when the refund has a notify_url).
        """
        refund = self.refunds.get(out_refund_no)
        if refund is None:
            raise ValueError(f"no refund {out_refund_no!r}")
        if status not in REFUND_EVENTS:
            raise ValueError(f"status must be one of {sorted(REFUND_EVENTS)}")
        if refund.status != "PROCESSING":
            raise ValueError(f"refund {out_refund_no!r} is already {refund.status}")
        refund.status = status
        if status == "SUCCESS":
            refund.success_time = _now()
        self._sync_refund_state(self.orders[refund.out_trade_no])
        if self.auto_notify and refund.notify_url is not None:
            self._schedule(
                functools.partial(
                    self.deliver_refund, out_refund_no, status=status, copies_id=_event_id()
                )
            )
        return refund.view()

    def notification(
        self,
        out_trade_no: str,
        *,
        copies_id: str | None = None,
        tamper: JSON | None = None,
        resign: bool = True,
        forge: bool = False,
        timestamp: int | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body of the TRANSACTION.SUCCESS notification of a paid order.

        ``copies_id``: reuse that notification id (a re-delivered copy), else a new one.
        ``tamper``: fields replacing those of the plaintext transaction; with ``resign`` the
        tampered content is validly encrypted and signed (WeChat itself said it), without,
        the body is altered after signing (the signature no longer matches).
        ``forge``: signed by a key that is not the platform's. ``timestamp``: the
        ``Wechatpay-Timestamp`` (default now).
        """
        order = self.orders.get(out_trade_no)
        if order is None or not order.paid:
            raise ValueError(f"no paid order {out_trade_no!r}")
        if not resign and not tamper:
            raise ValueError("resign=False alters the body after signing: give tamper")
        plaintext = order.transaction()
        plaintext.update(trade_state="SUCCESS", trade_state_desc=TRADE_STATE_DESC["SUCCESS"])
        signed, body = self._notification_bodies(
            event_id=copies_id,
            event_type="TRANSACTION.SUCCESS",
            summary="支付成功",
            original_type="transaction",
            plaintext=plaintext,
            tamper=tamper or {},
            resign=resign,
        )
        return self._notification_headers(signed, forge=forge, timestamp=timestamp), body

    def refund_notification(
        self,
        out_refund_no: str,
        *,
        status: str = "SUCCESS",
        copies_id: str | None = None,
        forge: bool = False,
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body of the REFUND.<status> notification of a refund.

        ``copies_id`` and ``forge`` as for :meth:`notification`.
        """
        refund = self.refunds.get(out_refund_no)
        if refund is None:
            raise ValueError(f"no refund {out_refund_no!r}")
        if status not in REFUND_EVENTS:
            raise ValueError(f"status must be one of {sorted(REFUND_EVENTS)}")
        event_type, summary = REFUND_EVENTS[status]
        signed, body = self._notification_bodies(
            event_id=copies_id,
            event_type=event_type,
            summary=summary,
            original_type="refund",
            plaintext=refund.resource(self.keys.mchid, status),
            tamper={},
            resign=True,
        )
        return self._notification_headers(signed, forge=forge, timestamp=None), body

    async def deliver(self, out_trade_no: str, **options: Any) -> int:
        """POST :meth:`notification` (``options`` passed on) to the order's notify_url.

        Returns the HTTP status the merchant answered (200 and 204 mean accepted).
        """
        headers, body = self.notification(out_trade_no, **options)
        return await self._post(self.orders[out_trade_no].notify_url, headers, body)

    async def deliver_refund(self, out_refund_no: str, **options: Any) -> int:
        """POST :meth:`refund_notification` (``options`` passed on) to the refund's notify_url.

        Returns the HTTP status the merchant answered.
        """
        headers, body = self.refund_notification(out_refund_no, **options)
        notify_url = self.refunds[out_refund_no].notify_url
        if notify_url is None:
            raise ValueError(f"refund {out_refund_no!r} has no notify_url")
        return await self._post(notify_url, headers, body)

    async def wait_deliveries(self) -> None:
        """Wait until every background delivery (``auto_notify``) has finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel background deliveries and close the HTTP session."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------ signatures

    def verify_request(
        self, method: str, path: str, authorization: str | None, body: bytes
    ) -> None:
        """Check the merchant's Authorization of a request; PayError 401 SIGN_ERROR if wrong.

        ``path`` is the raw path with its query string, as the merchant signed it.
        """
        scheme, _, params_text = (authorization or "").partition(" ")
        params = dict(_AUTH_PARAM.findall(params_text))
        if scheme != SIGNATURE_TYPE or not params.keys() >= _AUTH_FIELDS:
            raise _sign_error("Http头Authorization值格式错误，请参考签名规则")
        if params["mchid"] != self.keys.mchid:
            raise _sign_error("Authorization中的商户号不存在或与商户不匹配")
        if params["serial_no"].upper() != self.keys.merchant_serial_no:
            raise _sign_error("商户证书序列号有误，请核实后再试")
        timestamp = params["timestamp"]
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > _MAX_CLOCK_SKEW_S:
            raise _sign_error("Authorization中的时间戳与当前时间相差过大")
        message = f"{method}\n{path}\n{timestamp}\n{params['nonce_str']}\n".encode() + body + b"\n"
        if not _verify(self._merchant_key, message, params["signature"]):
            raise _sign_error("错误的签名，验签失败")

    def sign_response(self, body: bytes) -> dict[str, str]:
        """The ``Wechatpay-*`` headers signing an answer's body with the platform key."""
        return self._signature_headers(self._platform_key, body, timestamp=None)

    # ------------------------------------------------------------------ API

    def prepay(self, body: object) -> JSON:
        """JSAPI prepay: ``{"prepay_id": ...}`` (the same one for a repeated identical order)."""
        self.prepay_calls += 1
        self._take_failure("prepay")
        request = _object(body, "")
        appid = _str(request, "appid", max_len=32)
        self._check_mchid(_str(request, "mchid", max_len=32))
        if appid != self.keys.appid:
            raise PayError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        description = _str(request, "description", max_len=127)
        out_trade_no = _str(request, "out_trade_no", pattern=_OUT_TRADE_NO)
        notify_url = _url(request, "notify_url")
        attach = _opt_str(request, "attach", max_len=128)
        time_expire = _opt_time(request, "time_expire")
        amount = _object(request.get("amount"), "amount")
        total = _int(amount, "total", where="amount/")
        currency = _opt_str(amount, "currency", where="amount/", max_len=16)
        if currency not in (None, "CNY"):
            raise _param_error("amount/currency", "仅支持CNY")
        openid = _str(_object(request.get("payer"), "payer"), "openid", where="payer/")
        order = self.orders.get(out_trade_no)
        if order is not None:
            if order.paid:
                raise _order_paid()
            if order.trade_state == "CLOSED":
                raise PayError(400, "ORDER_CLOSED", "订单已关闭")
            if (order.total, order.openid) != (total, openid):
                raise PayError(400, "OUT_TRADE_NO_USED", "商户订单号重复")
            return {"prepay_id": order.prepay_id}
        order = Order(
            appid=appid,
            mchid=self.keys.mchid,
            out_trade_no=out_trade_no,
            description=description,
            notify_url=notify_url,
            total=total,
            openid=openid,
            prepay_id=f"wx{_now():%d%H%M%S}{secrets.token_hex(13)}",
            attach=attach,
            time_expire=time_expire,
        )
        self.orders[out_trade_no] = order
        return {"prepay_id": order.prepay_id}

    def query(
        self,
        mchid: str | None,
        *,
        out_trade_no: str | None = None,
        transaction_id: str | None = None,
    ) -> JSON:
        """The transaction of an order, by ``out_trade_no`` or ``transaction_id``."""
        self.query_calls += 1
        self._take_failure("query")
        self._check_mchid(mchid)
        if out_trade_no is not None:
            order = self.orders.get(out_trade_no)
        else:
            order = self._by_transaction_id(transaction_id)
        if order is None:
            raise _order_not_exist()
        return order.transaction()

    def close_order(self, out_trade_no: str, body: object) -> None:
        """Close an unpaid order (closing a closed one again is fine)."""
        self.close_calls += 1
        self._take_failure("close")
        self._check_mchid(_object(body, "").get("mchid"))
        order = self.orders.get(out_trade_no)
        if order is None:
            raise _order_not_exist()
        if order.paid:
            raise _order_paid()
        order.trade_state = "CLOSED"

    def refund(self, body: object) -> JSON:
        """Refund (part of) a paid order: the refund, PROCESSING until ``complete_refund``.

        Repeating an out_refund_no with the same amount answers the same refund.
        """
        self.refund_calls += 1
        self._take_failure("refund")
        request = _object(body, "")
        out_refund_no = _str(request, "out_refund_no", pattern=_OUT_REFUND_NO)
        transaction_id = _opt_str(request, "transaction_id", max_len=32)
        out_trade_no = _opt_str(request, "out_trade_no", max_len=32)
        reason = _opt_str(request, "reason", max_len=80)
        notify_url = _url(request, "notify_url") if "notify_url" in request else None
        amount = _object(request.get("amount"), "amount")
        refund_amount = _int(amount, "refund", where="amount/")
        total = _int(amount, "total", where="amount/")
        if _str(amount, "currency", where="amount/", max_len=16) != "CNY":
            raise _param_error("amount/currency", "仅支持CNY")
        if transaction_id is not None:
            order = self._by_transaction_id(transaction_id)
        elif out_trade_no is not None:
            order = self.orders.get(out_trade_no)
        else:
            raise _param_error("out_trade_no", "transaction_id和out_trade_no必须二选一")
        if order is None:
            raise PayError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if order.transaction_id is None or order.payer_total is None:
            raise PayError(400, "INVALID_REQUEST", "订单未支付，无法退款")
        existing = self.refunds.get(out_refund_no)
        if existing is not None:
            if (existing.out_trade_no, existing.refund) != (order.out_trade_no, refund_amount):
                raise PayError(400, "INVALID_REQUEST", "商户退款单号已被使用，且退款信息不一致")
            return existing.view()
        if total != order.total:
            raise PayError(400, "INVALID_REQUEST", "订单金额与原订单金额不一致")
        if refund_amount > self._refundable(order):
            raise PayError(400, "INVALID_REQUEST", "退款金额超过订单可退金额")
        refund = Refund(
            refund_id=f"50{secrets.randbelow(10**27):027d}",
            out_refund_no=out_refund_no,
            out_trade_no=order.out_trade_no,
            transaction_id=order.transaction_id,
            refund=refund_amount,
            total=order.total,
            payer_total=order.payer_total,
            create_time=_now(),
            reason=reason,
            notify_url=notify_url,
        )
        self.refunds[out_refund_no] = refund
        self._sync_refund_state(order)
        return refund.view()

    def query_refund(self, out_refund_no: str) -> JSON:
        """A refund by out_refund_no."""
        self.query_calls += 1
        self._take_failure("query")
        refund = self.refunds.get(out_refund_no)
        if refund is None:
            raise PayError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return refund.view()

    # -------------------------------------------------------------- internals

    def _check_mchid(self, mchid: object) -> None:
        if not isinstance(mchid, str) or not mchid:
            raise _param_error("mchid", "此字段为必填项")
        if mchid != self.keys.mchid:
            raise PayError(400, "INVALID_REQUEST", "mchid与请求的商户号不匹配")

    def _take_failure(self, kind: str) -> None:
        for index, rule in enumerate(self.rules):
            if rule.kind == kind:
                if rule.remaining > 0:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        del self.rules[index]
                self.failures_served += 1
                raise PayError(rule.status, rule.code, "scripted failure")

    def _by_transaction_id(self, transaction_id: str | None) -> Order | None:
        return next((o for o in self.orders.values() if o.transaction_id == transaction_id), None)

    def _refundable(self, order: Order) -> int:
        """What is left to refund: CLOSED refunds give their amount back."""
        refunded = sum(
            r.refund
            for r in self.refunds.values()
            if r.out_trade_no == order.out_trade_no and r.status != "CLOSED"
        )
        return order.total - refunded

    def _sync_refund_state(self, order: Order) -> None:
        order.trade_state = "REFUND" if self._refundable(order) == 0 else "SUCCESS"

    def _notification_bodies(
        self,
        *,
        event_id: str | None,
        event_type: str,
        summary: str,
        original_type: str,
        plaintext: JSON,
        tamper: JSON,
        resign: bool,
    ) -> tuple[bytes, bytes]:
        """(body to sign, body to send) of a notification encrypting ``plaintext``."""
        envelope = {
            "id": event_id or _event_id(),
            "create_time": _rfc3339(_now()),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
        }
        nonce = _nonce(12)
        aes = AESGCM(self.keys.apiv3_key.encode("ascii"))

        def body_of(content: JSON) -> bytes:
            ciphertext = aes.encrypt(nonce.encode(), _dumps(content), original_type.encode())
            resource = {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
                "associated_data": original_type,
                "nonce": nonce,
            }
            return _dumps({**envelope, "resource": resource})

        sent = body_of({**plaintext, **tamper})
        return (sent if resign else body_of(plaintext)), sent

    def _notification_headers(
        self, signed: bytes, *, forge: bool, timestamp: int | None
    ) -> dict[str, str]:
        key = self._forger() if forge else self._platform_key
        headers = self._signature_headers(key, signed, timestamp=timestamp)
        headers["Content-Type"] = "application/json"
        return headers

    def _signature_headers(
        self, key: rsa.RSAPrivateKey, body: bytes, *, timestamp: int | None
    ) -> dict[str, str]:
        """Wechatpay-* headers: ``key`` signs the timestamp, nonce and body, each + newline."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = _nonce(32)
        message = f"{stamp}\n{nonce}\n".encode() + body + b"\n"
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return {
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": base64.b64encode(signature).decode("ascii"),
            "Wechatpay-Serial": self.keys.platform_public_key_id,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }

    def _forger(self) -> rsa.RSAPrivateKey:
        """A key that is not the platform's, made on first use."""
        if self._forger_key is None:
            self._forger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._forger_key

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> int:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=_NOTIFY_TIMEOUT)
        self.notifications_sent += 1
        async with self._session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    def _schedule(self, send: Callable[[], Awaitable[int]]) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver_with_retries(send))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_with_retries(self, send: Callable[[], Awaitable[int]]) -> None:
        """Send until answered 200/204, waiting each retry delay in between (then give up)."""
        outcome = ""
        for delay in (0.0, *self.notify_retry_delays):
            await asyncio.sleep(delay)
            try:
                status = await send()
            except (TimeoutError, aiohttp.ClientError) as exc:
                outcome = repr(exc)
                continue
            if status in _NOTIFY_OK:
                return
            outcome = f"HTTP {status}"
        tries = 1 + len(self.notify_retry_delays)
        log.warning("notification not accepted after %d tries: %s", tries, outcome)


# ------------------------------------------------------------------ helpers


def _now() -> datetime:
    return datetime.now(CST).replace(microsecond=0)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(CST).isoformat(timespec="seconds")


def _nonce(length: int) -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


def _event_id() -> str:
    return f"EV-{_now():%Y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"


def _dumps(payload: JSON) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _load_public(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError("not an RSA public key")
    return key


def _load_private(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("not an RSA private key")
    return key


def _verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(),
                   hashes.SHA256())
    except (binascii.Error, InvalidSignature):
        return False
    return True


# Request field validation: PayError 400 PARAM_ERROR naming the field.


def _object(value: object, field: str) -> JSON:
    if not isinstance(value, dict):
        raise _param_error(field, "必须是JSON对象")
    return value


def _str(
    obj: JSON,
    key: str,
    *,
    where: str = "",
    max_len: int = 128,
    pattern: re.Pattern[str] | None = None,
) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise _param_error(where + key, "此字段为必填项，须为非空字符串")
    if len(value) > max_len:
        raise _param_error(where + key, f"长度不能超过{max_len}")
    if pattern is not None and pattern.fullmatch(value) is None:
        raise _param_error(where + key, "格式错误")
    return value


def _opt_str(obj: JSON, key: str, *, where: str = "", max_len: int = 128) -> str | None:
    return None if obj.get(key) is None else _str(obj, key, where=where, max_len=max_len)


def _int(obj: JSON, key: str, *, where: str = "") -> int:
    value = obj.get(key)
    if type(value) is not int or value < 1:
        raise _param_error(where + key, "须为大于0的整数（单位：分）")
    return value


def _url(obj: JSON, key: str) -> str:
    value = _str(obj, key, max_len=255)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _param_error(key, "须为http(s)地址")
    return value


def _opt_time(obj: JSON, key: str) -> datetime | None:
    value = _opt_str(obj, key, max_len=64)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _param_error(key, "须为RFC3339时间，如2018-06-08T10:34:56+08:00")
    return moment


# ------------------------------------------------------------------ HTTP layer

PAY_KEY: Final = web.AppKey("fake_pay", FakePay)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(payload: JSON, status: int = 200) -> web.Response:
    return web.Response(
        body=_dumps(payload), status=status, content_type="application/json", charset="utf-8"
    )


def _error(exc: PayError) -> web.Response:
    return _json(exc.body(), status=exc.status)


async def _read_json(request: web.Request) -> object:
    """Parsed JSON body, or ``None`` when it is not valid JSON."""
    try:
        return json.loads(await request.read())
    except ValueError:
        return None


@web.middleware
async def pay_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """For ``/v3/``: check the merchant's signature, sign 2xx answers, JSON errors."""
    if not request.path.startswith("/v3/"):
        return await handler(request)
    pay = request.app[PAY_KEY]
    response: web.StreamResponse
    try:
        pay.verify_request(
            request.method, request.raw_path, request.headers.get("Authorization"),
            await request.read(),
        )
        response = await handler(request)
    except PayError as exc:
        response = _error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = "NOT_FOUND" if exc.status == 404 else "INVALID_REQUEST"
        response = _error(PayError(exc.status, code, exc.reason or "error"))
    if 200 <= response.status < 300:
        body = response.body if isinstance(response, web.Response) else None
        response.headers.update(pay.sign_response(body if isinstance(body, bytes) else b""))
    response.headers["Request-ID"] = secrets.token_hex(16).upper()
    return response


async def _prepay(request: web.Request) -> web.Response:
    return _json(request.app[PAY_KEY].prepay(await _read_json(request)))


async def _query_out_trade_no(request: web.Request) -> web.Response:
    out_trade_no = request.match_info["out_trade_no"]
    pay = request.app[PAY_KEY]
    return _json(pay.query(request.query.get("mchid"), out_trade_no=out_trade_no))


async def _query_transaction_id(request: web.Request) -> web.Response:
    transaction_id = request.match_info["transaction_id"]
    pay = request.app[PAY_KEY]
    return _json(pay.query(request.query.get("mchid"), transaction_id=transaction_id))


async def _close(request: web.Request) -> web.Response:
    pay = request.app[PAY_KEY]
    pay.close_order(request.match_info["out_trade_no"], await _read_json(request))
    return web.Response(status=204)


async def _refund(request: web.Request) -> web.Response:
    return _json(request.app[PAY_KEY].refund(await _read_json(request)))


async def _query_refund(request: web.Request) -> web.Response:
    return _json(request.app[PAY_KEY].query_refund(request.match_info["out_refund_no"]))


def _control_error(message: str, status: int = 400, code: str = "INVALID_REQUEST") -> web.Response:
    return _error(PayError(status, code, message))


async def _notify_with(send: Callable[[], Awaitable[int]]) -> JSON | web.Response:
    """``{"notify_status": N}`` of a delivery, or a 502 answer when it could not be made."""
    try:
        return {"notify_status": await send()}
    except (TimeoutError, aiohttp.ClientError) as exc:
        return _control_error(f"notification not delivered: {exc!r}", 502, "NOTIFY_FAILED")


async def _control_succeed(request: web.Request) -> web.Response:
    """Pay an order; ``?payer_total=N``, ``?notify=1`` delivers the notification now."""
    pay = request.app[PAY_KEY]
    out_trade_no = request.match_info["out_trade_no"]
    payer_total = request.query.get("payer_total")
    if payer_total is not None and not payer_total.isdigit():
        return _control_error("payer_total must be an int")
    try:
        result: JSON = {
            "transaction": pay.succeed(
                out_trade_no, payer_total=None if payer_total is None else int(payer_total)
            )
        }
    except ValueError as exc:
        return _control_error(str(exc))
    if request.query.get("notify") == "1" and not pay.auto_notify:
        delivery = await _notify_with(functools.partial(pay.deliver, out_trade_no))
        if isinstance(delivery, web.Response):
            return delivery
        result.update(delivery)
    return _json(result)


async def _control_complete_refund(request: web.Request) -> web.Response:
    """Complete a refund; ``?status=SUCCESS|ABNORMAL|CLOSED``, ``?notify=1`` notifies now."""
    pay = request.app[PAY_KEY]
    out_refund_no = request.match_info["out_refund_no"]
    status = request.query.get("status", "SUCCESS")
    try:
        result: JSON = {"refund": pay.complete_refund(out_refund_no, status)}
    except ValueError as exc:
        return _control_error(str(exc))
    notify_url = pay.refunds[out_refund_no].notify_url
    if request.query.get("notify") == "1" and not pay.auto_notify and notify_url is not None:
        delivery = await _notify_with(
            functools.partial(pay.deliver_refund, out_refund_no, status=status)
        )
        if isinstance(delivery, web.Response):
            return delivery
        result.update(delivery)
    return _json(result)


async def _control_orders(request: web.Request) -> web.Response:
    orders = [order.transaction() for order in request.app[PAY_KEY].orders.values()]
    return _json({"orders": orders, "count": len(orders)})


async def _control_refunds(request: web.Request) -> web.Response:
    refunds = [refund.view() for refund in request.app[PAY_KEY].refunds.values()]
    return _json({"refunds": refunds, "count": len(refunds)})


async def _control_script(request: web.Request) -> web.Response:
    """Script failures: ``{"kind": "prepay", "status": 500, "code": "...", "count": 1}``."""
    body = await _read_json(request)
    if not isinstance(body, dict):
        return _control_error("body must be a JSON object")
    kind, status = body.get("kind"), body.get("status", 500)
    code, count = body.get("code", "SYSTEM_ERROR"), body.get("count", 1)
    if (
        not isinstance(kind, str)
        or not isinstance(code, str)
        or type(status) is not int
        or type(count) is not int
    ):
        return _control_error("kind/code must be strings, status/count ints")
    try:
        request.app[PAY_KEY].script_pay_failure(kind, status, code, count)
    except ValueError as exc:
        return _control_error(str(exc))
    return _json({"rules": [rule.as_dict() for rule in request.app[PAY_KEY].rules]})


async def _control_stats(request: web.Request) -> web.Response:
    return _json(request.app[PAY_KEY].stats())


async def _control_platform_public(request: web.Request) -> web.Response:
    """The platform public key (PEM); its id in the ``Wechatpay-Serial`` header."""
    keys = request.app[PAY_KEY].keys
    return web.Response(
        text=keys.platform_public_pem,
        content_type="application/x-pem-file",
        headers={"Wechatpay-Serial": keys.platform_public_key_id},
    )


async def _close_pay(app: web.Application) -> None:
    await app[PAY_KEY].aclose()


def add_pay_routes(app: web.Application) -> None:
    """Add the pay API, its signing middleware, the ``/_fake/pay/`` controls and the cleanup.

    ``app[PAY_KEY]`` must hold the :class:`FakePay` before the app serves.
    """
    app.middlewares.append(pay_middleware)
    app.on_cleanup.append(_close_pay)
    app.router.add_routes(
        [
            web.post("/v3/pay/transactions/jsapi", _prepay),
            web.get("/v3/pay/transactions/out-trade-no/{out_trade_no}", _query_out_trade_no,
                    allow_head=False),
            web.get("/v3/pay/transactions/id/{transaction_id}", _query_transaction_id,
                    allow_head=False),
            web.post("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", _close),
            web.post("/v3/refund/domestic/refunds", _refund),
            web.get("/v3/refund/domestic/refunds/{out_refund_no}", _query_refund,
                    allow_head=False),
            web.get("/_fake/pay/orders", _control_orders, allow_head=False),
            web.post("/_fake/pay/orders/{out_trade_no}/succeed", _control_succeed),
            web.get("/_fake/pay/refunds", _control_refunds, allow_head=False),
            web.post("/_fake/pay/refunds/{out_refund_no}/complete", _control_complete_refund),
            web.post("/_fake/pay/script", _control_script),
            web.get("/_fake/pay/stats", _control_stats, allow_head=False),
            web.get("/_fake/pay/keys/platform-public", _control_platform_public,
                    allow_head=False),
        ]
    )
