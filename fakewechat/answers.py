"""JSON answers and request bodies of the fake's HTTP layer, in the two styles it speaks.

WeChat answers as ``json.dumps`` spaces it, with ``Content-Type: application/json``; WeChat Pay
answers compact JSON with ``charset=utf-8``. Both write Chinese as is.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

__all__ = ["answer_http_errors", "compact_json", "pay_answer", "read_json", "wechat_answer"]

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def compact_json(payload: JSON) -> bytes:
    """WeChat Pay's JSON, as in its answers and notification bodies: UTF-8, no spaces."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def wechat_answer(payload: JSON, status: int = 200) -> web.Response:
    """A JSON answer as the WeChat API writes it."""
    return web.Response(
        body=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        status=status,
        content_type="application/json",
    )


def pay_answer(payload: JSON, status: int = 200) -> web.Response:
    """A JSON answer as the WeChat Pay API writes it."""
    return web.Response(
        body=compact_json(payload), status=status, content_type="application/json",
        charset="utf-8",
    )


async def read_json(request: web.Request) -> object:
    """Parsed JSON body, or ``None`` when it is not valid JSON."""
    try:
        return json.loads(await request.read())
    except ValueError:
        return None


async def answer_http_errors(
    request: web.Request,
    handler: Handler,
    render: Callable[[web.HTTPException], web.StreamResponse],
) -> web.StreamResponse:
    """``handler``'s answer, or ``render(exc)`` for the HTTP error (404, 405, ...) it raised."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render(exc)
