"""A local fake of the WeChat server APIs, speaking their real wire format.

WeChat endpoints (same paths, parameters and JSON as https://api.weixin.qq.com):

* ``GET  /sns/jscode2session``           code2Session (``js_code="test-<openid>"`` logs in)
* ``GET  /cgi-bin/token``                 getAccessToken (a new token per call)
* ``POST /cgi-bin/stable_token``          getStableAccessToken
* ``POST /cgi-bin/message/subscribe/send`` subscribeMessage.send

Errors are HTTP 200 with ``{"errcode": N, "errmsg": "..."}`` like the real API.
Control endpoints for tests and demos live under ``/_fake/`` (see ``fakewechat.controls``).

The same app serves a fake WeChat Pay API v3 under ``/v3/`` (see ``fakewechat.pay``); its
state is ``app[PAY_KEY]``, its controls live under ``/_fake/pay/``.

This module builds and runs the app (``python -m fakewechat.app``); the WeChat fake's state is
in ``fakewechat.wechat``, its routes in ``fakewechat.routes`` and ``fakewechat.controls``.
"""

from __future__ import annotations

import argparse
import functools

from aiohttp import web

from fakewechat import controls, routes
from fakewechat.answers import Handler, answer_http_errors, wechat_answer
from fakewechat.pay import PAY_KEY, FakePay, add_pay_routes
from fakewechat.paykeys import DEFAULT_APPID, PayKeys
from fakewechat.wechat import ERRMSG, FAKE_KEY, FailureRule, FakeWeChat

__all__ = ["ERRMSG", "FAKE_KEY", "FailureRule", "FakeWeChat", "create_app", "main", "run"]


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's HTTP errors (404, 405, ...) into WeChat-style JSON."""
    return await answer_http_errors(request, handler, _http_error)


def _http_error(exc: web.HTTPException) -> web.Response:
    errmsg = "not found" if exc.status == 404 else (exc.reason or "error").lower()
    return wechat_answer({"errcode": exc.status, "errmsg": errmsg}, status=exc.status)


@functools.cache
def _default_pay_keys(appid: str) -> PayKeys:
    """Pay keys generated once per process and appid (RSA key generation is slow-ish)."""
    return PayKeys.generate(appid=appid)


def create_app(
    *,
    appid: str | None = None,
    secret: str | None = None,
    token_ttl_s: int = 7200,
    pay_keys: PayKeys | None = None,
    auto_notify: bool = False,
) -> web.Application:
    """Build the fake WeChat aiohttp app; its state is ``app[FAKE_KEY]``, ``app[PAY_KEY]``.

    Without ``pay_keys`` the pay API uses keys generated for this process (``app[PAY_KEY].keys``).
    ``auto_notify``: paid orders and completed refunds notify the merchant in the background.
    """
    app = web.Application(middlewares=[_json_errors])
    app[FAKE_KEY] = FakeWeChat(appid=appid, secret=secret, token_ttl_s=token_ttl_s)
    keys = pay_keys or _default_pay_keys(appid or DEFAULT_APPID)
    app[PAY_KEY] = FakePay(keys, auto_notify=auto_notify)
    app.router.add_routes([*routes.ROUTES, *controls.ROUTES])
    add_pay_routes(app)
    return app


def run(
    host: str = "127.0.0.1",
    port: int = 8081,
    *,
    appid: str | None = None,
    secret: str | None = None,
    pay_keys: PayKeys | None = None,
    auto_notify: bool = False,
) -> None:
    """Serve the fake until interrupted."""
    app = create_app(appid=appid, secret=secret, pay_keys=pay_keys, auto_notify=auto_notify)
    web.run_app(app, host=host, port=port, access_log=None, shutdown_timeout=1.0)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point.

    ``[--host H] [--port P] [--appid A] [--secret S] [--pay-keys DIR] [--auto-notify]``
    """
    parser = argparse.ArgumentParser(description="Local fake of the WeChat server APIs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--appid")
    parser.add_argument("--secret")
    parser.add_argument(
        "--pay-keys",
        metavar="DIR",
        help="WeChat Pay keys directory (created with new keys if absent) the merchant shares",
    )
    parser.add_argument(
        "--auto-notify",
        action="store_true",
        help="deliver pay/refund notifications when orders are paid and refunds complete",
    )
    args = parser.parse_args(argv)
    pay_keys = None
    if args.pay_keys is not None:
        pay_keys = PayKeys.load_or_create(args.pay_keys, appid=args.appid)
    run(
        args.host,
        args.port,
        appid=args.appid,
        secret=args.secret,
        pay_keys=pay_keys,
        auto_notify=args.auto_notify,
    )


if __name__ == "__main__":
    main()
