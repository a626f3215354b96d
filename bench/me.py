"""Authenticated `GET /api/v1/me`: the token check and one Redis MGET (deny-list and session
generation); the member's facts and profile come from the API process's cache once warm (one
SQL row and one SQL join when not), for 64 demo members spread over the connections."""

from __future__ import annotations

import asyncio

from bench.figure import Context, Figure, Result, SetupFailed
from bench.loadgen import Request

LABEL = "GET /api/v1/me (token + one Redis MGET; member and profile cached per process)"
MEMBERS = 64


async def login(ctx: Context, openid: str) -> str:
    """A member token through the fake WeChat (`test-<openid>` logs in as openid)."""
    answer = await ctx.call("POST", "/auth/wechat", body={"code": f"test-{openid}"})
    return str(answer["token"])


async def run(ctx: Context) -> list[Result]:
    tokens = await asyncio.gather(*(login(ctx, f"demo-{i}") for i in range(1, MEMBERS + 1)))
    me = await ctx.call("GET", "/me", token=tokens[0])
    if not me.get("id") or not me.get("unit"):
        raise SetupFailed(f"GET /me answered without id or unit: {me}")
    requests = [Request.get(f"{ctx.api}/me", {"Authorization": f"Bearer {token}"})
                for token in tokens]
    return [await ctx.measure(LABEL, requests)]


FIGURE = Figure("me", run)
