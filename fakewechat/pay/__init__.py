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

The modules, by what they serve:

* ``orders``         Order and Refund records, their states and JSON views (``clock``: the times)
* ``account``        a merchant's orders, refunds, scripted failures, counters and the API calls
* ``platform``       FakePay: the user pays, refunds end, notifications go out; ``PAY_KEY``
* ``signatures``     request verification and answer signing
* ``notifications``  notification bodies, AES-256-GCM encrypted and signed
* ``delivery``       POSTing notifications, in the background with retries
* ``fields``         request field parsers; ``errors``: the API's error answers
* ``routes``         the ``/v3/`` routes and their middleware; ``controls``: ``/_fake/pay/``
"""

from fakewechat.pay.account import FAILURE_KINDS, PayFailureRule
from fakewechat.pay.clock import CST
from fakewechat.pay.errors import PayError
from fakewechat.pay.orders import Order, Refund
from fakewechat.pay.platform import PAY_KEY, FakePay
from fakewechat.pay.routes import add_pay_routes, pay_middleware
from fakewechat.pay.signatures import SIGNATURE_TYPE

__all__ = [
    "CST",
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
