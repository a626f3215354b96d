"""The HTTP layer of the WeChat API: its routes, answering as ``api.weixin.qq.com`` does."""

from __future__ import annotations

from aiohttp import web

from fakewechat.answers import read_json, wechat_answer
from fakewechat.wechat import FAKE_KEY

__all__ = ["ROUTES"]


async def _jscode2session(request: web.Request) -> web.Response:
    return wechat_answer(request.app[FAKE_KEY].jscode2session(request.query))


async def _token(request: web.Request) -> web.Response:
    return wechat_answer(request.app[FAKE_KEY].token(request.query))


async def _stable_token(request: web.Request) -> web.Response:
    return wechat_answer(request.app[FAKE_KEY].stable_token(await read_json(request)))


async def _subscribe_send(request: web.Request) -> web.Response:
    fake = request.app[FAKE_KEY]
    err = fake.check_token(request.query.get("access_token"))
    if err is not None:
        return wechat_answer(err)
    return wechat_answer(fake.subscribe_send(await read_json(request)))


ROUTES = [
    web.get("/sns/jscode2session", _jscode2session, allow_head=False),
    web.get("/cgi-bin/token", _token, allow_head=False),
    web.post("/cgi-bin/stable_token", _stable_token),
    web.post("/cgi-bin/message/subscribe/send", _subscribe_send),
]
