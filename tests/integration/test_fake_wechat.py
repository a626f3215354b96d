"""Tests of the local fake WeChat server (fakewechat), incl. the real wechatpy client."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fakewechat import FAKE_KEY, FakeWeChat, create_app

APPID = "wx-test-appid"
SECRET = "test-secret"

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> TestClient[Any, Any]:
    """HTTP client of a fake configured with APPID/SECRET."""
    return await aiohttp_client(create_app(appid=APPID, secret=SECRET))


def fake_of(client: TestClient[Any, Any]) -> FakeWeChat:
    """The in-process state behind ``client``."""
    return client.app[FAKE_KEY]  # type: ignore[index]


async def get_json(client: TestClient[Any, Any], path: str, **params: str) -> dict[str, Any]:
    resp = await client.get(path, params=params)
    assert resp.status == 200
    assert resp.content_type == "application/json"
    body: dict[str, Any] = await resp.json()
    return body


async def post_json(
    client: TestClient[Any, Any], path: str, body: Any, **params: str
) -> dict[str, Any]:
    resp = await client.post(path, json=body, params=params)
    assert resp.content_type == "application/json"
    result: dict[str, Any] = await resp.json()
    return result


async def new_token(client: TestClient[Any, Any]) -> str:
    body = await get_json(
        client, "/cgi-bin/token", grant_type="client_credential", appid=APPID, secret=SECRET
    )
    token: str = body["access_token"]
    return token


async def send(
    client: TestClient[Any, Any], token: str, touser: str = "abc", **extra: Any
) -> dict[str, Any]:
    body = {"touser": touser, "template_id": "tpl1", "data": {"thing1": {"value": "x"}}, **extra}
    return await post_json(client, "/cgi-bin/message/subscribe/send", body, access_token=token)


def session_params(code: str, appid: str = APPID, secret: str = SECRET) -> dict[str, str]:
    return {"appid": appid, "secret": secret, "js_code": code, "grant_type": "authorization_code"}


# ----------------------------------------------------------------- jscode2session


async def test_jscode2session_good_code(client: TestClient[Any, Any]) -> None:
    body = await get_json(client, "/sns/jscode2session", **session_params("test-o_Ab-9"))
    assert body["openid"] == "o_Ab-9"
    assert "errcode" not in body
    assert len(body["session_key"]) == 24
    assert len(base64.b64decode(body["session_key"])) == 16
    assert fake_of(client).jscode2session_calls == 1


@pytest.mark.parametrize("code", ["abc", "test-", "test-a b", "test-" + "x" * 65, "xtest-abc"])
async def test_jscode2session_bad_code(client: TestClient[Any, Any], code: str) -> None:
    body = await get_json(client, "/sns/jscode2session", **session_params(code))
    assert body == {"errcode": 40029, "errmsg": "invalid code"}


async def test_jscode2session_wrong_appid_and_secret(client: TestClient[Any, Any]) -> None:
    wrong_appid = await get_json(
        client, "/sns/jscode2session", **session_params("test-abc", appid="wx-other")
    )
    assert wrong_appid == {"errcode": 40013, "errmsg": "invalid appid"}
    wrong_secret = await get_json(
        client, "/sns/jscode2session", **session_params("test-abc", secret="nope")
    )
    assert wrong_secret == {"errcode": 40125, "errmsg": "invalid appsecret"}


async def test_jscode2session_missing_code(client: TestClient[Any, Any]) -> None:
    params = session_params("")
    del params["js_code"]
    body = await get_json(client, "/sns/jscode2session", **params)
    assert body == {"errcode": 41008, "errmsg": "missing code"}


async def test_any_appid_accepted_when_not_configured(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app())
    body = await get_json(
        client, "/sns/jscode2session", **session_params("test-abc", appid="wx-any", secret="s")
    )
    assert body["openid"] == "abc"


# ------------------------------------------------------------------------ tokens


async def test_token_is_new_per_call(client: TestClient[Any, Any]) -> None:
    first = await get_json(
        client, "/cgi-bin/token", grant_type="client_credential", appid=APPID, secret=SECRET
    )
    second_token = await new_token(client)
    assert first["expires_in"] == 7200
    assert len(first["access_token"]) >= 64
    assert first["access_token"] != second_token
    assert fake_of(client).token_calls == 2


async def test_token_rejects_wrong_secret(client: TestClient[Any, Any]) -> None:
    body = await get_json(
        client, "/cgi-bin/token", grant_type="client_credential", appid=APPID, secret="x"
    )
    assert body == {"errcode": 40125, "errmsg": "invalid appsecret"}


async def test_stable_token_same_unless_forced(client: TestClient[Any, Any]) -> None:
    req = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    first = await post_json(client, "/cgi-bin/stable_token", req)
    again = await post_json(client, "/cgi-bin/stable_token", {**req, "force_refresh": False})
    forced = await post_json(client, "/cgi-bin/stable_token", {**req, "force_refresh": True})
    after = await post_json(client, "/cgi-bin/stable_token", req)
    assert len(first["access_token"]) >= 64
    assert 0 < first["expires_in"] <= 7200
    assert again["access_token"] == first["access_token"]
    assert 0 < again["expires_in"] <= first["expires_in"]
    assert forced["access_token"] != first["access_token"]
    assert forced["expires_in"] == 7200
    assert after["access_token"] == forced["access_token"]
    stats = await get_json(client, "/_fake/stats")
    assert stats["stable_token_calls"] == 4
    assert stats["token_calls"] == 0
    # The previous stable token stays usable after a forced refresh.
    assert (await send(client, first["access_token"]))["errcode"] == 0


async def test_stable_token_bad_json(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/cgi-bin/stable_token", data=b"{not json")
    assert resp.status == 200
    assert await resp.json() == {"errcode": 47001, "errmsg": "data format error"}


# ------------------------------------------------------------ subscribe/send


async def test_send_records_message(client: TestClient[Any, Any]) -> None:
    token = await new_token(client)
    body = await send(client, token, page="pages/index?x=1", miniprogram_state="trial")
    assert body["errcode"] == 0 and body["errmsg"] == "ok"
    assert isinstance(body["msgid"], int)
    (message,) = fake_of(client).messages
    assert message["touser"] == "abc"
    assert message["template_id"] == "tpl1"
    assert message["page"] == "pages/index?x=1"
    assert message["data"] == {"thing1": {"value": "x"}}
    assert message["msgid"] == body["msgid"]
    listed = await get_json(client, "/_fake/messages")
    assert listed["count"] == 1 and listed["messages"][0]["msgid"] == body["msgid"]


async def test_send_unknown_token(client: TestClient[Any, Any]) -> None:
    body = await send(client, "not-a-token")
    assert body == {
        "errcode": 40001,
        "errmsg": "invalid credential, access_token is invalid or not latest",
    }
    assert fake_of(client).messages == []


async def test_send_expired_token(client: TestClient[Any, Any]) -> None:
    token = await new_token(client)
    assert (await send(client, token))["errcode"] == 0
    resp = await client.post("/_fake/expire-tokens")
    assert resp.status == 200
    assert await send(client, token) == {"errcode": 42001, "errmsg": "access_token expired"}
    assert len(fake_of(client).messages) == 1
    assert (await send(client, await new_token(client)))["errcode"] == 0


async def test_send_missing_fields(client: TestClient[Any, Any]) -> None:
    token = await new_token(client)
    for body in ({"template_id": "tpl1", "data": {}}, {"touser": "abc", "data": {}}):
        result = await post_json(
            client, "/cgi-bin/message/subscribe/send", body, access_token=token
        )
        assert result["errcode"] == 47003
        assert result["errmsg"].startswith("argument invalid!")
    assert fake_of(client).messages == []


async def test_scripted_refusal_applies_once_to_one_openid(client: TestClient[Any, Any]) -> None:
    token = await new_token(client)
    resp = await client.post("/_fake/script", json={"errcode": 43101, "touser": "abc"})
    assert resp.status == 200
    assert (await send(client, token, touser="other"))["errcode"] == 0
    refused = await send(client, token, touser="abc")
    assert refused == {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
    assert (await send(client, token, touser="abc"))["errcode"] == 0
    assert [m["touser"] for m in fake_of(client).messages] == ["other", "abc"]
    only_abc = await get_json(client, "/_fake/messages", touser="abc")
    assert only_abc["count"] == 1


async def test_scripted_system_error_twice(client: TestClient[Any, Any]) -> None:
    token = await new_token(client)
    fake_of(client).script_failure(-1, count=2)
    results = [(await send(client, token, touser=f"u{i}"))["errcode"] for i in range(3)]
    assert results == [-1, -1, 0]
    assert [m["touser"] for m in fake_of(client).messages] == ["u2"]
    assert fake_of(client).rules == []


async def test_scripted_forever_until_cleared(client: TestClient[Any, Any]) -> None:
    token = await new_token(client)
    await client.post("/_fake/script", json={"errcode": 45009, "count": -1})
    for _ in range(3):
        assert (await send(client, token))["errcode"] == 45009
    await client.delete("/_fake/script")
    assert (await send(client, token))["errcode"] == 0


async def test_script_rejects_bad_rule(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/_fake/script", json={"errcode": "x"})
    assert resp.status == 400
    resp = await client.post("/_fake/script", json={"errcode": -1, "count": 0})
    assert resp.status == 400
    assert fake_of(client).rules == []


# ------------------------------------------------------------------- control


async def test_clear_messages_and_reset(client: TestClient[Any, Any]) -> None:
    token = await new_token(client)
    await send(client, token)
    await client.delete("/_fake/messages")
    assert (await get_json(client, "/_fake/messages"))["count"] == 0
    await send(client, token)
    fake_of(client).script_failure(-1)
    await client.post("/_fake/reset")
    stats = await get_json(client, "/_fake/stats")
    assert stats["messages"] == 0 and stats["token_calls"] == 0 and stats["rules"] == 0
    assert (await send(client, token))["errcode"] == 40001


async def test_unknown_path_is_json_404(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/cgi-bin/nope")
    assert resp.status == 404
    assert resp.content_type == "application/json"
    assert await resp.json() == {"errcode": 404, "errmsg": "not found"}


# ------------------------------------------------- end to end with real wechatpy


async def test_real_wechatpy_client_over_http(aiohttp_server: ServerFactory) -> None:
    from wechatpy import WeChatClient
    from wechatpy.exceptions import WeChatClientException

    app = create_app(appid=APPID, secret=SECRET)
    server = await aiohttp_server(app)
    base = f"http://{server.host}:{server.port}"

    class FakeClient(WeChatClient):  # type: ignore[misc]
        def fetch_access_token(self) -> dict[str, Any]:
            params = {"grant_type": "client_credential", "appid": self.appid,
                      "secret": self.secret}
            result: dict[str, Any] = self._fetch_access_token(
                url=f"{base}/cgi-bin/token", params=params
            )
            return result

    client = FakeClient(APPID, SECRET, timeout=5)
    client._http.trust_env = False  # never route 127.0.0.1 through an env proxy
    client.API_BASE_URL = f"{base}/cgi-bin/"
    client.wxa.API_BASE_URL = f"{base}/"

    session = await asyncio.to_thread(client.wxa.code_to_session, "test-abc")
    assert session["openid"] == "abc"

    with pytest.raises(WeChatClientException) as excinfo:
        await asyncio.to_thread(client.wxa.code_to_session, "bogus")
    assert excinfo.value.errcode == 40029

    result = await asyncio.to_thread(
        client.wxa.send_subscribe_message, "abc", "tpl1", {"thing1": {"value": "x"}}
    )
    assert result["errcode"] == 0
    fake = app[FAKE_KEY]
    (message,) = fake.messages
    assert message["touser"] == "abc" and message["template_id"] == "tpl1"
    assert message["data"] == {"thing1": {"value": "x"}}
    assert message["msgid"] == result["msgid"]
    assert fake.token_calls == 1  # token fetched once and reused

    # After the fake expires every token, wechatpy refetches and retries (42001).
    fake.expire_tokens()
    await asyncio.to_thread(
        client.wxa.send_subscribe_message, "abc", "tpl1", {"thing1": {"value": "y"}}
    )
    assert fake.token_calls == 2
    assert len(fake.messages) == 2
