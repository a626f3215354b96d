"""The fake WeChat server's state and logic: tokens, log-ins, subscribe messages, failures.

What the WeChat endpoints (see ``fakewechat.routes``) answer, as the real API does: errors
are ``{"errcode": N, "errmsg": "..."}`` bodies. The ``/_fake/`` controls (``fakewechat.controls``)
and tests drive it through the same methods.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from fakewechat import failures

__all__ = ["ERRMSG", "FAKE_KEY", "FailureRule", "FakeWeChat", "error"]

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
        failures.check_count(count)
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
        rule = failures.take(self.rules, lambda rule: rule.touser in (None, touser))
        if rule is None:
            return None
        self.failures_served += 1
        return rule.errcode


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


#: where an app keeps its FakeWeChat.
FAKE_KEY: Final = web.AppKey("fake_wechat", FakeWeChat)
