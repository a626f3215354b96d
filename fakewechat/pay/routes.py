"""The HTTP layer of the pay API: the ``/v3/`` routes and their signing middleware."""

from __future__ import annotations

import secrets

from aiohttp import web

from fakewechat.answers import Handler, answer_http_errors, pay_answer, read_json
from fakewechat.pay import controls
from fakewechat.pay.errors import PayError
from fakewechat.pay.platform import PAY_KEY

__all__ = ["add_pay_routes", "pay_middleware"]


@web.middleware
async def pay_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """For ``/v3/``: check the merchant's signature, sign 2xx answers, JSON errors."""
    if not request.path.startswith("/v3/"):
        return await handler(request)
    pay = request.app[PAY_KEY]

    async def verified(request: web.Request) -> web.StreamResponse:
        pay.verify_request(
            request.method, request.raw_path, request.headers.get("Authorization"),
            await request.read(),
        )
        return await handler(request)

    response: web.StreamResponse
    try:
        response = await answer_http_errors(request, verified, _http_error)
    except PayError as exc:
        response = pay_answer(exc.body(), exc.status)
    if 200 <= response.status < 300:
        body = response.body if isinstance(response, web.Response) else None
        response.headers.update(pay.sign_response(body if isinstance(body, bytes) else b""))
    response.headers["Request-ID"] = secrets.token_hex(16).upper()
    return response


def _http_error(exc: web.HTTPException) -> web.Response:
    """An aiohttp HTTP error (404, 405, ...) as the pay API answers it."""
    code = "NOT_FOUND" if exc.status == 404 else "INVALID_REQUEST"
    return pay_answer({"code": code, "message": exc.reason or "error"}, exc.status)


async def _prepay(request: web.Request) -> web.Response:
    return pay_answer(request.app[PAY_KEY].prepay(await read_json(request)))


async def _query_out_trade_no(request: web.Request) -> web.Response:
    out_trade_no = request.match_info["out_trade_no"]
    pay = request.app[PAY_KEY]
    return pay_answer(pay.query(request.query.get("mchid"), out_trade_no=out_trade_no))


async def _query_transaction_id(request: web.Request) -> web.Response:
    transaction_id = request.match_info["transaction_id"]
    pay = request.app[PAY_KEY]
    return pay_answer(pay.query(request.query.get("mchid"), transaction_id=transaction_id))


async def _close(request: web.Request) -> web.Response:
    pay = request.app[PAY_KEY]
    pay.close_order(request.match_info["out_trade_no"], await read_json(request))
    return web.Response(status=204)


async def _refund(request: web.Request) -> web.Response:
    return pay_answer(request.app[PAY_KEY].refund(await read_json(request)))


async def _query_refund(request: web.Request) -> web.Response:
    return pay_answer(request.app[PAY_KEY].query_refund(request.match_info["out_refund_no"]))


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
            *controls.ROUTES,
        ]
    )
