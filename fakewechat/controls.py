"""The ``/_fake/`` controls of the WeChat fake: messages sent, scripted failures, stats, reset.

They answer WeChat-style: ``{"errcode": 0, "errmsg": "ok"}``, or the data asked for; a bad
request is 400 with an ``errcode``. The pay controls live under ``/_fake/pay/``
(``fakewechat.pay.controls``).
"""

from __future__ import annotations

from aiohttp import web

from fakewechat.answers import read_json, wechat_answer
from fakewechat.pay import PAY_KEY
from fakewechat.wechat import FAKE_KEY, error

__all__ = ["ROUTES"]


async def _get_messages(request: web.Request) -> web.Response:
    messages = request.app[FAKE_KEY].messages_for(request.query.get("touser"))
    return wechat_answer({"messages": messages, "count": len(messages)})


async def _clear_messages(request: web.Request) -> web.Response:
    request.app[FAKE_KEY].messages.clear()
    return wechat_answer(error(0, "ok"))


async def _get_script(request: web.Request) -> web.Response:
    return wechat_answer({"rules": [rule.as_dict() for rule in request.app[FAKE_KEY].rules]})


async def _add_script(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        return wechat_answer(error(47001), status=400)
    errcode, count, touser = body.get("errcode"), body.get("count", 1), body.get("touser")
    if (
        type(errcode) is not int
        or type(count) is not int
        or (touser is not None and not isinstance(touser, str))
    ):
        return wechat_answer(error(47003, "errcode/count must be int, touser a string"), status=400)
    try:
        request.app[FAKE_KEY].script_failure(errcode, count, touser)
    except ValueError as exc:
        return wechat_answer(error(47003, str(exc)), status=400)
    return wechat_answer(error(0, "ok"))


async def _clear_script(request: web.Request) -> web.Response:
    request.app[FAKE_KEY].clear_script()
    return wechat_answer(error(0, "ok"))


async def _stats(request: web.Request) -> web.Response:
    return wechat_answer(request.app[FAKE_KEY].stats())


async def _expire_tokens(request: web.Request) -> web.Response:
    request.app[FAKE_KEY].expire_tokens()
    return wechat_answer(error(0, "ok"))


async def _reset(request: web.Request) -> web.Response:
    """Forget everything, WeChat and WeChat Pay alike."""
    request.app[FAKE_KEY].reset()
    request.app[PAY_KEY].reset()
    return wechat_answer(error(0, "ok"))


ROUTES = [
    web.get("/_fake/messages", _get_messages, allow_head=False),
    web.delete("/_fake/messages", _clear_messages),
    web.get("/_fake/script", _get_script, allow_head=False),
    web.post("/_fake/script", _add_script),
    web.delete("/_fake/script", _clear_script),
    web.get("/_fake/stats", _stats, allow_head=False),
    web.post("/_fake/expire-tokens", _expire_tokens),
    web.post("/_fake/reset", _reset),
]
