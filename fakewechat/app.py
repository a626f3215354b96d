"""A local fake of the WeChat server APIs, speaking their real wire format.

WeChat endpoints (same paths, parameters and JSON as https://api.weixin.qq.com):

* ``GET  /sns/jscode2session``           code2Session (``js_code="test-<openid>"`` logs in)
* ``GET  /cgi-bin/token``                 getAccessToken (a new token per call)
* ``POST /cgi-bin/stable_token``          getStableAccessToken
* ``POST /cgi-bin/message/subscribe/send`` subscribeMessage.send

Errors are HTTP 200 with ``{"errcode": N, "errmsg": "..."}`` like the real API.
Control endpoints for tests and demos live under ``/_fake/`` (see ``_add_routes``).

The same app serves a fake WeChat Pay API v3 under ``/v3/`` (see ``fakewechat.pay``); its
state is ``app[PAY_KEY]``, its controls live under ``/_fake/pay/``.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from fakewechat.pay import PAY_KEY, FakePay, add_pay_routes
from fakewechat.paykeys import DEFAULT_APPID, PayKeys

__all__ = ["FAKE_KEY", "ERRMSG", "FakeWeChat", "FailureRule", "create_app", "main", "run"]

JSON = dict[str, Any]

#: errmsg texts of the error codes the fake can answer.
ERRMSG: Final[Mapping[int, str]] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40013: "invalid appid",
    40029: "invalid code",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit",
    47001: "data format error",
    47003: "argument invalid!",
}

_OPENID_CODE: Final = re.compile(r"test-([A-Za-z0-9_-]{1,64})")
_MINIPROGRAM_STATES: Final = frozenset({"developer", "trial", "formal"})
_LANGS: Final = frozenset({"zh_CN", "en_US", "zh_HK", "zh_TW"})
#: msgids start above 2**32 like real ones do (catches int32 storage bugs).
_MSGID_BASE: Final = 5_000_000_000


def error(errcode: int, errmsg: str | None = None) -> JSON:
    """Return a WeChat error body."""
    return {"errcode": errcode, "errmsg": errmsg or ERRMSG.get(errcode, "scripted error")}


@dataclass(slots=True)
class FailureRule:
    """A scripted subscribe/send failure; ``remaining == -1`` means forever."""

    errcode: int
    remaining: int
    touser: str | None = None

    def as_dict(self) -> JSON:
        """JSON view of the rule."""
        return {"errcode": self.errcode, "count": self.remaining, "touser": self.touser}


class FakeWeChat:
    """In-memory state and logic of the fake WeChat server."""

    def __init__(
        self, *, appid: str | None = None, secret: str | None = None, token_ttl_s: int = 7200
    ) -> None:
        self.appid = appid
        self.secret = secret
        self.token_ttl_s = token_ttl_s
        self.reset()

    # ---------------------------------------------------------------- control

    def reset(self) -> None:
        """Forget every token, message, rule and counter."""
        self.tokens: dict[str, float] = {}
        self.stable_tokens: dict[str, str] = {}
        self.messages: list[JSON] = []
        self.rules: list[FailureRule] = []
        self.token_calls = 0
        self.stable_token_calls = 0
        self.jscode2session_calls = 0
        self.send_calls = 0
        self.failures_served = 0
        self._next_msgid = _MSGID_BASE

    def script_failure(self, errcode: int, count: int = 1, touser: str | None = None) -> None:
        """Make the next ``count`` matching sends (-1: all) answer ``errcode``."""
        if count == 0 or count < -1:
            raise ValueError("count must be a positive int or -1")
        self.rules.append(FailureRule(errcode, count, touser))

    def clear_script(self) -> None:
        """Drop every scripted failure."""
        self.rules.clear()

    def expire_tokens(self) -> None:
        """Make every issued access token expired (next use answers 42001)."""
        now = time.monotonic()
        for token in self.tokens:
            self.tokens[token] = now

    def messages_for(self, touser: str | None = None) -> list[JSON]:
        """Recorded messages, optionally only those sent to ``touser``."""
        if touser is None:
            return list(self.messages)
        return [m for m in self.messages if m["touser"] == touser]

    def stats(self) -> JSON:
        """Counters and message count."""
        return {
            "token_calls": self.token_calls,
            "stable_token_calls": self.stable_token_calls,
            "jscode2session_calls": self.jscode2session_calls,
            "send_calls": self.send_calls,
            "failures_served": self.failures_served,
            "messages": len(self.messages),
            "rules": len(self.rules),
            "tokens": len(self.tokens),
        }

    # ------------------------------------------------------------- WeChat API

    def check_app(self, appid: str | None, secret: str | None) -> JSON | None:
        """Validate appid/secret; an error body or None."""
        if not appid:
            return error(41002)
        if not secret:
            return error(41004)
        if self.appid is not None and appid != self.appid:
            return error(40013)
        if self.secret is not None and secret != self.secret:
            return error(40125)
        return None

    def jscode2session(self, params: Mapping[str, str]) -> JSON:
        """code2Session: ``test-<openid>`` codes log in as ``<openid>``."""
        self.jscode2session_calls += 1
        err = self.check_app(params.get("appid"), params.get("secret"))
        if err is not None:
            return err
        code = params.get("js_code")
        if not code:
            return error(41008)
        if params.get("grant_type") != "authorization_code":
            return error(40002)
        match = _OPENID_CODE.fullmatch(code)
        if match is None:
            return error(40029)
        session_key = base64.b64encode(os.urandom(16)).decode("ascii")
        return {"openid": match.group(1), "session_key": session_key}

    def token(self, params: Mapping[str, str]) -> JSON:
        """getAccessToken: a fresh token on every call."""
        self.token_calls += 1
        if params.get("grant_type") != "client_credential":
            return error(40002)
        err = self.check_app(params.get("appid"), params.get("secret"))
        if err is not None:
            return err
        return {"access_token": self._issue_token(), "expires_in": self.token_ttl_s}

    def stable_token(self, body: object) -> JSON:
        """getStableAccessToken: same token until expiry unless force_refresh."""
        self.stable_token_calls += 1
        if not isinstance(body, dict):
            return error(47001)
        if body.get("grant_type") != "client_credential":
            return error(40002)
        appid, secret = body.get("appid"), body.get("secret")
        if not isinstance(appid, str | None) or not isinstance(secret, str | None):
            return error(47001)
        err = self.check_app(appid, secret)
        if err is not None or appid is None:
            return err or error(41002)
        force = body.get("force_refresh", False)
        if not isinstance(force, bool):
            return error(47001)
        current = self.stable_tokens.get(appid)
        remaining = self._remaining(current) if current is not None else 0
        if force or remaining <= 0:
            current = self.stable_tokens[appid] = self._issue_token()
            remaining = self.token_ttl_s
        return {"access_token": current, "expires_in": remaining}

    def check_token(self, access_token: str | None) -> JSON | None:
        """Validate an access token; an error body or None."""
        if not access_token:
            return error(41001)
        expires_at = self.tokens.get(access_token)
        if expires_at is None:
            return error(40001)
        if expires_at <= time.monotonic():
            return error(42001)
        return None

    def subscribe_send(self, body: object) -> JSON:
        """subscribeMessage.send (token already checked): record or fail."""
        self.send_calls += 1
        if not isinstance(body, dict):
            return error(47001)
        invalid = _validate_send(body)
        if invalid is not None:
            return error(47003, invalid)
        touser: str = body["touser"]
        if self.rules:
            scripted = self._take_failure(touser)
            if scripted is not None:
                return error(scripted)
        msgid = self._next_msgid
        self._next_msgid += 1
        self.messages.append(
            {
                "touser": touser,
                "template_id": body["template_id"],
                "page": body.get("page"),
                "data": body["data"],
                "miniprogram_state": body.get("miniprogram_state"),
                "lang": body.get("lang"),
                "msgid": msgid,
                "received_at": time.time(),
            }
        )
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    # -------------------------------------------------------------- internals

    def _issue_token(self) -> str:
        token = secrets.token_urlsafe(60)
        self.tokens[token] = time.monotonic() + self.token_ttl_s
        return token

    def _remaining(self, token: str) -> int:
        return int(self.tokens.get(token, 0.0) - time.monotonic())

    def _take_failure(self, touser: str) -> int | None:
        for index, rule in enumerate(self.rules):
            if rule.touser is None or rule.touser == touser:
                if rule.remaining > 0:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        del self.rules[index]
                self.failures_served += 1
                return rule.errcode
        return None


def _validate_send(body: dict[str, Any]) -> str | None:
    """An errmsg if a subscribe/send body is invalid, else None."""
    touser, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
    if not touser or not isinstance(touser, str):
        return "argument invalid! touser is empty"
    if not template_id or not isinstance(template_id, str):
        return "argument invalid! template_id is empty"
    if not isinstance(data, dict) or not data:
        return "argument invalid! data is empty"
    for key, item in data.items():
        if not isinstance(item, dict) or "value" not in item:
            return f"argument invalid! data.{key}.value is empty"
    page = body.get("page")
    if page is not None and not isinstance(page, str):
        return "argument invalid! page invalid"
    state = body.get("miniprogram_state")
    if state is not None and state not in _MINIPROGRAM_STATES:
        return "argument invalid! miniprogram_state invalid"
    lang = body.get("lang")
    if lang is not None and lang not in _LANGS:
        return "argument invalid! lang invalid"
    return None


# ------------------------------------------------------------------- HTTP layer

FAKE_KEY: Final = web.AppKey("fake_wechat", FakeWeChat)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(payload: JSON, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        status=status,
        content_type="application/json",
    )


async def _read_json(request: web.Request) -> object:
    """Parsed JSON body, or ``None`` when it is not valid JSON."""
    try:
        return json.loads(await request.read())
    except ValueError:
        return None


async def _jscode2session(request: web.Request) -> web.Response:
    return _json(request.app[FAKE_KEY].jscode2session(request.query))


async def _token(request: web.Request) -> web.Response:
    return _json(request.app[FAKE_KEY].token(request.query))


async def _stable_token(request: web.Request) -> web.Response:
    return _json(request.app[FAKE_KEY].stable_token(await _read_json(request)))


async def _subscribe_send(request: web.Request) -> web.Response:
    fake = request.app[FAKE_KEY]
    err = fake.check_token(request.query.get("access_token"))
    if err is not None:
        return _json(err)
    return _json(fake.subscribe_send(await _read_json(request)))


async def _get_messages(request: web.Request) -> web.Response:
    messages = request.app[FAKE_KEY].messages_for(request.query.get("touser"))
    return _json({"messages": messages, "count": len(messages)})


async def _clear_messages(request: web.Request) -> web.Response:
    request.app[FAKE_KEY].messages.clear()
    return _json(error(0, "ok"))


async def _get_script(request: web.Request) -> web.Response:
    return _json({"rules": [rule.as_dict() for rule in request.app[FAKE_KEY].rules]})


async def _add_script(request: web.Request) -> web.Response:
    body = await _read_json(request)
    if not isinstance(body, dict):
        return _json(error(47001), status=400)
    errcode, count, touser = body.get("errcode"), body.get("count", 1), body.get("touser")
    if (
        type(errcode) is not int
        or type(count) is not int
        or (touser is not None and not isinstance(touser, str))
    ):
        return _json(error(47003, "errcode/count must be int, touser a string"), status=400)
    try:
        request.app[FAKE_KEY].script_failure(errcode, count, touser)
    except ValueError as exc:
        return _json(error(47003, str(exc)), status=400)
    return _json(error(0, "ok"))


async def _clear_script(request: web.Request) -> web.Response:
    request.app[FAKE_KEY].clear_script()
    return _json(error(0, "ok"))


async def _stats(request: web.Request) -> web.Response:
    return _json(request.app[FAKE_KEY].stats())


async def _expire_tokens(request: web.Request) -> web.Response:
    request.app[FAKE_KEY].expire_tokens()
    return _json(error(0, "ok"))


async def _reset(request: web.Request) -> web.Response:
    request.app[FAKE_KEY].reset()
    request.app[PAY_KEY].reset()
    return _json(error(0, "ok"))


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's HTTP errors (404, 405, ...) into WeChat-style JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        errmsg = "not found" if exc.status == 404 else (exc.reason or "error").lower()
        return _json({"errcode": exc.status, "errmsg": errmsg}, status=exc.status)


def _add_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get("/sns/jscode2session", _jscode2session, allow_head=False),
            web.get("/cgi-bin/token", _token, allow_head=False),
            web.post("/cgi-bin/stable_token", _stable_token),
            web.post("/cgi-bin/message/subscribe/send", _subscribe_send),
            web.get("/_fake/messages", _get_messages, allow_head=False),
            web.delete("/_fake/messages", _clear_messages),
            web.get("/_fake/script", _get_script, allow_head=False),
            web.post("/_fake/script", _add_script),
            web.delete("/_fake/script", _clear_script),
            web.get("/_fake/stats", _stats, allow_head=False),
            web.post("/_fake/expire-tokens", _expire_tokens),
            web.post("/_fake/reset", _reset),
        ]
    )


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
    _add_routes(app)
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
