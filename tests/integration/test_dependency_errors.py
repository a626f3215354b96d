"""A dependency failing mid-request answers 503 service_unavailable, never 500: the error
middleware's list, for the failure scripts/faults found (a pooled PostgreSQL connection caught
mid-query by the server going down raises asyncpg's InternalClientError)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.keys import SETTINGS
from server.middlewares import error_middleware
from services.settings import Settings


async def test_a_connection_broken_mid_query_is_503(
        aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], settings: Settings) -> None:
    async def broken(_: web.Request) -> web.Response:
        raise asyncpg.exceptions.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress")

    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS] = settings
    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app)
    r = await client.get("/broken")
    assert r.status == 503 and (await r.json())["code"] == "service_unavailable"
