"""Signed, expiring tokens (HMAC-SHA256 over compact JSON): session tokens and other signed values."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any


class BadSignature(Exception):
    """Forged, malformed or for another purpose."""


class Expired(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive_key(secret: str, purpose: str) -> bytes:
    """One key per purpose, so a token of one kind never verifies as another."""
    return hmac.new(secret.encode(), f"zonehub/{purpose}".encode(), hashlib.sha256).digest()


def sign(key: bytes, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}"


def verify(key: bytes, token: str, *, now: float | None = None) -> dict[str, Any]:
    """Return the payload of a token signed with `key`; check `exp` when present."""
    body, sep, mac = token.partition(".")
    if not sep or not body or not mac or len(token) > 4096:
        raise BadSignature("malformed")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, mac):
        raise BadSignature("bad signature")
    try:
        payload = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        raise BadSignature("malformed payload") from None
    if not isinstance(payload, dict):
        raise BadSignature("malformed payload")
    exp = payload.get("exp")
    if exp is not None and (now if now is not None else time.time()) >= exp:
        raise Expired("expired")
    return payload
