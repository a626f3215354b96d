"""The ``/_fake/pay/`` controls: pay orders, end refunds, notify, script failures, look inside.

Their errors are pay-style JSON, ``{"code": "INVALID_REQUEST", "message": "..."}`` with 400 (or
502 ``NOTIFY_FAILED`` when a notification could not be delivered).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp
from aiohttp import web

from fakewechat.answers import pay_answer, read_json
from fakewechat.pay import notifications
from fakewechat.pay.platform import PAY_KEY

__all__ = ["ROUTES"]

JSON = dict[str, Any]

#: the body of ``POST /_fake/pay/orders/{out_trade_no}/notify``: each field and its JSON type.
_NOTIFY_OPTIONS: Final = {"forge": bool, "tamper": dict, "resign": bool, "duplicate": int}
_MAX_DUPLICATES: Final = 100


def _control_error(message: str, status: int = 400, code: str = "INVALID_REQUEST") -> web.Response:
    return pay_answer({"code": code, "message": message}, status)


async def _delivered(
    send: Callable[[], Awaitable[int]], times: int = 1
) -> list[int] | web.Response:
    """What the merchant answered ``times`` deliveries made one after another (a status
    each), or a 502 answer when one could not be made."""
    statuses = []
    try:
        for _ in range(times):
            statuses.append(await send())
    except (TimeoutError, aiohttp.ClientError) as exc:
        return _control_error(f"notification not delivered: {exc!r}", 502, "NOTIFY_FAILED")
    return statuses


async def _succeed(request: web.Request) -> web.Response:
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
        delivery = await _delivered(functools.partial(pay.deliver, out_trade_no))
        if isinstance(delivery, web.Response):
            return delivery
        result["notify_status"] = delivery[0]
    return pay_answer(result)


async def _notify(request: web.Request) -> web.Response:
    """Deliver a paid order's notification now, one after another with ``duplicate``.

    Optional body: ``{"forge": true}`` (signed by a key that is not the platform's),
    ``{"tamper": {...}}`` (fields replacing the transaction's, validly signed; with
    ``"resign": false`` put in after signing), ``{"duplicate": n}`` (n more copies, same id).
    Answers ``{"id": "EV-...", "notify_statuses": [...]}``, a status per delivery.
    """
    pay = request.app[PAY_KEY]
    options = await read_json(request) if request.body_exists else {}
    if not isinstance(options, dict):
        return _control_error("body must be a JSON object")
    unknown = options.keys() - _NOTIFY_OPTIONS.keys()
    if unknown:
        return _control_error(f"unknown fields {sorted(unknown)}: give {list(_NOTIFY_OPTIONS)}")
    if any(type(options[name]) is not kind for name, kind in _NOTIFY_OPTIONS.items()
           if name in options):
        return _control_error("forge/resign must be booleans, tamper an object, duplicate an int")
    duplicate = options.pop("duplicate", 0)
    if not 0 <= duplicate <= _MAX_DUPLICATES:
        return _control_error(f"duplicate must be within 0..{_MAX_DUPLICATES}")
    copies_id = notifications.event_id()
    send = functools.partial(
        pay.deliver, request.match_info["out_trade_no"], copies_id=copies_id, **options
    )
    try:
        delivery = await _delivered(send, times=1 + duplicate)
    except ValueError as exc:  # not a paid order, or resign=false without tamper
        return _control_error(str(exc))
    if isinstance(delivery, web.Response):
        return delivery
    return pay_answer({"id": copies_id, "notify_statuses": delivery})


async def _complete_refund(request: web.Request) -> web.Response:
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
        delivery = await _delivered(
            functools.partial(pay.deliver_refund, out_refund_no, status=status)
        )
        if isinstance(delivery, web.Response):
            return delivery
        result["notify_status"] = delivery[0]
    return pay_answer(result)


async def _orders(request: web.Request) -> web.Response:
    orders = [order.transaction() for order in request.app[PAY_KEY].orders.values()]
    return pay_answer({"orders": orders, "count": len(orders)})


async def _refunds(request: web.Request) -> web.Response:
    refunds = [refund.view() for refund in request.app[PAY_KEY].refunds.values()]
    return pay_answer({"refunds": refunds, "count": len(refunds)})


async def _script(request: web.Request) -> web.Response:
    """Script failures: ``{"kind": "prepay", "status": 500, "code": "...", "count": 1}``."""
    body = await read_json(request)
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
    return pay_answer({"rules": [rule.as_dict() for rule in request.app[PAY_KEY].rules]})


async def _clear_script(request: web.Request) -> web.Response:
    """Drop every scripted failure; orders, refunds and counters stay."""
    request.app[PAY_KEY].clear_script()
    return pay_answer({"rules": []})


async def _stats(request: web.Request) -> web.Response:
    return pay_answer(request.app[PAY_KEY].stats())


async def _platform_public(request: web.Request) -> web.Response:
    """The platform public key (PEM); its id in the ``Wechatpay-Serial`` header."""
    keys = request.app[PAY_KEY].keys
    return web.Response(
        text=keys.platform_public_pem,
        content_type="application/x-pem-file",
        headers={"Wechatpay-Serial": keys.platform_public_key_id},
    )


ROUTES = [
    web.get("/_fake/pay/orders", _orders, allow_head=False),
    web.post("/_fake/pay/orders/{out_trade_no}/succeed", _succeed),
    web.post("/_fake/pay/orders/{out_trade_no}/notify", _notify),
    web.get("/_fake/pay/refunds", _refunds, allow_head=False),
    web.post("/_fake/pay/refunds/{out_refund_no}/complete", _complete_refund),
    web.post("/_fake/pay/script", _script),
    web.delete("/_fake/pay/script", _clear_script),
    web.get("/_fake/pay/stats", _stats, allow_head=False),
    web.get("/_fake/pay/keys/platform-public", _platform_public, allow_head=False),
]
