"""FakePay: the fake WeChat Pay platform of one merchant, and where an app keeps it.

On top of the merchant's account (the API calls, :class:`MerchantAccount`), the platform's side:
the user pays an order, a refund ends, and the merchant is told by a signed, encrypted
notification, now or in the background with retries. It also checks the merchant's request
signatures and signs its answers.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence
from typing import Any, Final

from aiohttp import web

from fakewechat.pay import notifications
from fakewechat.pay.account import MerchantAccount
from fakewechat.pay.clock import now, rfc3339
from fakewechat.pay.delivery import Courier
from fakewechat.pay.orders import REFUND_EVENTS, TRADE_STATE_DESC
from fakewechat.pay.signatures import Signer
from fakewechat.paykeys import PayKeys

__all__ = ["PAY_KEY", "FakePay"]

JSON = dict[str, Any]


class FakePay(MerchantAccount):
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
        self.auto_notify = auto_notify
        self.notify_retry_delays = tuple(notify_retry_delays)
        self._signer = Signer(keys)
        self._courier = Courier()
        super().__init__(keys)

    def reset(self) -> None:
        """Forget every order, refund, rule and counter; cancel pending deliveries."""
        self._courier.cancel()
        super().reset()

    # ------------------------------------------------------------ the user

    def succeed(self, out_trade_no: str, *, payer_total: int | None = None) -> JSON:
        """The user pays the order (``payer_total`` defaults to the total): its transaction.

        With ``auto_notify`` the payment notification is delivered in the background.
        """
        order = self.orders.get(out_trade_no)
        if order is None:
            raise ValueError(f"no order {out_trade_no!r}")
        if order.trade_state != "NOTPAY":
            raise ValueError(f"order {out_trade_no!r} is {order.trade_state}")
        paid_at = now()
        if order.time_expire is not None and paid_at > order.time_expire:
            raise ValueError(f"order {out_trade_no!r} expired at {rfc3339(order.time_expire)}")
        if payer_total is not None and not 0 <= payer_total <= order.total:
            raise ValueError(f"payer_total must be within 0..{order.total}")
        order.trade_state = "SUCCESS"
        order.transaction_id = f"4200{secrets.randbelow(10**24):024d}"
        order.success_time = paid_at
        order.payer_total = order.total if payer_total is None else payer_total
        if self.auto_notify:
            self._courier.schedule(
                functools.partial(self.deliver, out_trade_no, copies_id=notifications.event_id()),
                self.notify_retry_delays,
            )
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
            refund.success_time = now()
        self._sync_refund_state(self.orders[refund.out_trade_no])
        if self.auto_notify and refund.notify_url is not None:
            self._courier.schedule(
                functools.partial(
                    self.deliver_refund, out_refund_no, status=status,
                    copies_id=notifications.event_id(),
                ),
                self.notify_retry_delays,
            )
        return refund.view()

    # ------------------------------------------------------- notifications

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
        return notifications.build(
            self._signer,
            event_type="TRANSACTION.SUCCESS",
            summary="支付成功",
            original_type="transaction",
            plaintext=plaintext,
            copies_id=copies_id,
            tamper=tamper or {},
            resign=resign,
            forge=forge,
            timestamp=timestamp,
        )

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
        return notifications.build(
            self._signer,
            event_type=event_type,
            summary=summary,
            original_type="refund",
            plaintext=refund.resource(self.keys.mchid, status),
            copies_id=copies_id,
            tamper={},
            resign=True,
            forge=forge,
            timestamp=None,
        )

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
        await self._courier.wait()

    async def aclose(self) -> None:
        """Cancel background deliveries and close the HTTP session."""
        await self._courier.aclose()

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> int:
        self.notifications_sent += 1
        return await self._courier.post(url, headers, body)

    # ------------------------------------------------------------ signatures

    def verify_request(
        self, method: str, path: str, authorization: str | None, body: bytes
    ) -> None:
        """Check the merchant's Authorization of a request; PayError 401 SIGN_ERROR if wrong.

        ``path`` is the raw path with its query string, as the merchant signed it.
        """
        self._signer.verify_request(method, path, authorization, body)

    def sign_response(self, body: bytes) -> dict[str, str]:
        """The ``Wechatpay-*`` headers signing an answer's body with the platform key."""
        return self._signer.headers(body)


#: where an app keeps its FakePay.
PAY_KEY: Final = web.AppKey("fake_pay", FakePay)
