"""The records of the pay fake: orders and refunds, their states and the JSON the API shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from fakewechat.pay.clock import now, rfc3339

__all__ = ["REFUND_EVENTS", "TRADE_STATE_DESC", "Order", "Refund"]

JSON = dict[str, Any]

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
                success_time=rfc3339(self.success_time),
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
            "create_time": rfc3339(self.create_time),
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
            view["success_time"] = rfc3339(self.success_time)
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
            resource["success_time"] = rfc3339(self.success_time or now())
        return resource
