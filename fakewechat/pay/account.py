"""A merchant's account at the fake pay platform, as the merchant's API calls see it.

Its orders and refunds, the v3 calls that make and read them (prepay, query, close, refund,
query a refund), the failures scripted for those calls and the call counters. What happens on
the platform's side (the user pays, a refund ends, notifications) is :class:`FakePay`'s.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

from fakewechat import failures
from fakewechat.pay import fields
from fakewechat.pay.clock import now
from fakewechat.pay.errors import PayError, order_not_exist, order_paid, param_error
from fakewechat.pay.orders import Order, Refund
from fakewechat.paykeys import PayKeys

__all__ = ["FAILURE_KINDS", "MerchantAccount", "PayFailureRule"]

JSON = dict[str, Any]

#: kinds of API call ``FakePay.script_pay_failure`` can make fail.
FAILURE_KINDS: Final = frozenset({"prepay", "query", "close", "refund"})

_OUT_TRADE_NO: Final = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
_OUT_REFUND_NO: Final = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")


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


class MerchantAccount:
    """In-memory orders, refunds, scripted failures and counters of one merchant."""

    def __init__(self, keys: PayKeys) -> None:
        self.keys = keys
        self.reset()

    # ---------------------------------------------------------------- control

    def reset(self) -> None:
        """Forget every order, refund, rule and counter."""
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
        failures.check_count(count)
        self.rules.append(PayFailureRule(kind, status, code, count))

    def clear_script(self) -> None:
        """Drop every scripted failure (orders, refunds and counters stay)."""
        self.rules.clear()

    # ------------------------------------------------------------------ API

    def prepay(self, body: object) -> JSON:
        """JSAPI prepay: ``{"prepay_id": ...}`` (the same one for a repeated identical order)."""
        self.prepay_calls += 1
        self._take_failure("prepay")
        request = fields.json_object(body, "")
        appid = fields.string(request, "appid", max_len=32)
        self._check_mchid(fields.string(request, "mchid", max_len=32))
        if appid != self.keys.appid:
            raise PayError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        description = fields.string(request, "description", max_len=127)
        out_trade_no = fields.string(request, "out_trade_no", pattern=_OUT_TRADE_NO)
        notify_url = fields.url(request, "notify_url")
        attach = fields.optional_string(request, "attach", max_len=128)
        time_expire = fields.optional_time(request, "time_expire")
        amount = fields.json_object(request.get("amount"), "amount")
        total = fields.fen(amount, "total", where="amount/")
        currency = fields.optional_string(amount, "currency", where="amount/", max_len=16)
        if currency not in (None, "CNY"):
            raise param_error("amount/currency", "仅支持CNY")
        payer = fields.json_object(request.get("payer"), "payer")
        openid = fields.string(payer, "openid", where="payer/")
        order = self.orders.get(out_trade_no)
        if order is not None:
            if order.paid:
                raise order_paid()
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
            prepay_id=f"wx{now():%d%H%M%S}{secrets.token_hex(13)}",
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
            raise order_not_exist()
        return order.transaction()

    def close_order(self, out_trade_no: str, body: object) -> None:
        """Close an unpaid order (closing a closed one again is fine)."""
        self.close_calls += 1
        self._take_failure("close")
        self._check_mchid(fields.json_object(body, "").get("mchid"))
        order = self.orders.get(out_trade_no)
        if order is None:
            raise order_not_exist()
        if order.paid:
            raise order_paid()
        order.trade_state = "CLOSED"

    def refund(self, body: object) -> JSON:
        """Refund (part of) a paid order: the refund, PROCESSING until ``complete_refund``.

        Repeating an out_refund_no with the same amount answers the same refund.
        """
        self.refund_calls += 1
        self._take_failure("refund")
        request = fields.json_object(body, "")
        out_refund_no = fields.string(request, "out_refund_no", pattern=_OUT_REFUND_NO)
        transaction_id = fields.optional_string(request, "transaction_id", max_len=32)
        out_trade_no = fields.optional_string(request, "out_trade_no", max_len=32)
        reason = fields.optional_string(request, "reason", max_len=80)
        notify_url = fields.url(request, "notify_url") if "notify_url" in request else None
        amount = fields.json_object(request.get("amount"), "amount")
        refund_amount = fields.fen(amount, "refund", where="amount/")
        total = fields.fen(amount, "total", where="amount/")
        if fields.string(amount, "currency", where="amount/", max_len=16) != "CNY":
            raise param_error("amount/currency", "仅支持CNY")
        if transaction_id is not None:
            order = self._by_transaction_id(transaction_id)
        elif out_trade_no is not None:
            order = self.orders.get(out_trade_no)
        else:
            raise param_error("out_trade_no", "transaction_id和out_trade_no必须二选一")
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
            create_time=now(),
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
            raise param_error("mchid", "此字段为必填项")
        if mchid != self.keys.mchid:
            raise PayError(400, "INVALID_REQUEST", "mchid与请求的商户号不匹配")

    def _take_failure(self, kind: str) -> None:
        rule = failures.take(self.rules, lambda rule: rule.kind == kind)
        if rule is not None:
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
