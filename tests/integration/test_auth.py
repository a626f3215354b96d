"""WeChat login and binding through wechatpy to the fake server over HTTP; staff login; tokens."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp.test_utils import TestClient

from fakewechat import FakeWeChat
from models.org import Member, Role
from server.keys import AUTH, WECHAT
from services.auth import set_role
from tests.support import STAFF_PASSWORD, City, bearer, staff_login, wechat_login


async def test_bound_openid_logs_in_and_sees_me(client: TestClient[Any, Any], city: City,
                                                fake_wechat: FakeWeChat) -> None:
    unit = city.units[city.zones[0].id][0]
    member = city.members[unit.id][0]
    resp = await client.post("/api/v1/auth/wechat", json={"code": f"test-{member.openid}"})
    assert resp.status == 200
    body = await resp.json()
    assert body["member"]["id"] == member.id
    assert fake_wechat.jscode2session_calls == 1  # wechatpy really called the fake over HTTP
    me = await client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status == 200
    data = await me.json()
    assert data["unit"]["id"] == unit.id and data["zone"]["id"] == city.zones[0].id
    assert data["roles"] == ["member"] and data["duty"]["on_duty"] is False


async def test_invalid_code_is_a_clear_error(client: TestClient[Any, Any], city: City) -> None:
    resp = await client.post("/api/v1/auth/wechat", json={"code": "not-a-test-code"})
    assert resp.status == 400
    assert (await resp.json())["code"] == "wechat_code_invalid"


async def test_unknown_openid_binds_once_with_invite_code(client: TestClient[Any, Any],
                                                          city: City) -> None:
    unit = city.units[city.zones[1].id][2]
    newcomer = await Member.create(unit_id=unit.id, name="新党员", phone="13912345678")
    resp = await client.post("/api/v1/auth/wechat", json={"code": "test-newphone"})
    assert resp.status == 403
    body = await resp.json()
    assert body["code"] == "not_bound"
    ticket = body["bind_ticket"]

    wrong = await client.post("/api/v1/auth/bind", json={
        "bind_ticket": ticket, "invite_code": unit.invite_code, "name": "新党员", "phone": "13900000000"})
    assert (await wrong.json())["code"] == "bind_mismatch"  # one answer, whichever part is wrong
    bad_code = await client.post("/api/v1/auth/bind", json={
        "bind_ticket": ticket, "invite_code": "NOPE1234", "name": "新党员", "phone": "13912345678"})
    assert (await bad_code.json())["code"] == "bind_mismatch"

    ok = await client.post("/api/v1/auth/bind", json={
        "bind_ticket": ticket, "invite_code": unit.invite_code, "name": "新党员", "phone": "13912345678"})
    assert ok.status == 200, await ok.text()
    assert (await ok.json())["member"]["id"] == newcomer.id
    assert (await Member.get(id=newcomer.id)).openid == "newphone"

    again = await client.post("/api/v1/auth/bind", json={
        "bind_ticket": ticket, "invite_code": unit.invite_code, "name": "新党员", "phone": "13912345678"})
    assert (await again.json())["code"] == "bind_ticket_invalid"  # one-time
    # From now on the same WeChat account logs straight in.
    assert (await wechat_login(client, "newphone"))


async def test_bind_refuses_a_member_bound_to_another_wechat(client: TestClient[Any, Any],
                                                              city: City) -> None:
    member = city.members[city.units[city.zones[0].id][0].id][0]
    unit = city.units[city.zones[0].id][0]
    resp = await client.post("/api/v1/auth/wechat", json={"code": "test-intruder"})
    ticket = (await resp.json())["bind_ticket"]
    resp = await client.post("/api/v1/auth/bind", json={
        "bind_ticket": ticket, "invite_code": unit.invite_code, "name": member.name,
        "phone": member.phone})
    assert resp.status == 409
    assert (await resp.json())["code"] == "already_bound"


async def test_bind_ticket_gives_up_after_five_attempts(client: TestClient[Any, Any],
                                                        city: City) -> None:
    resp = await client.post("/api/v1/auth/wechat", json={"code": "test-guesser"})
    ticket = (await resp.json())["bind_ticket"]
    codes = []
    for i in range(6):
        r = await client.post("/api/v1/auth/bind", json={
            "bind_ticket": ticket, "invite_code": f"GUESS{i:03d}", "name": "x", "phone": "13900000009"})
        codes.append((await r.json())["code"])
    assert codes[:5] == ["bind_mismatch"] * 5 and codes[5] == "bind_ticket_invalid"


async def test_staff_password_login_and_rate_limit(client: TestClient[Any, Any], city: City) -> None:
    token = await staff_login(client)
    me = await (await client.get("/api/v1/me", headers=bearer(token))).json()
    assert me["roles"] == ["committee"] and me["unit"] is None
    for _ in range(5):
        r = await client.post("/api/v1/auth/login", json={"username": "staff", "password": "wrong"})
        assert r.status == 401 and (await r.json())["code"] == "login_failed"
    r = await client.post("/api/v1/auth/login", json={"username": "staff", "password": STAFF_PASSWORD})
    assert r.status == 429
    body = await r.json()
    assert body["code"] == "rate_limited" and 0 < body["retry_after_s"] <= 60
    assert r.headers["Retry-After"] == str(body["retry_after_s"])


async def test_unknown_user_fails_like_a_wrong_password(client: TestClient[Any, Any], city: City) -> None:
    r = await client.post("/api/v1/auth/login", json={"username": "ghost", "password": "x"})
    assert r.status == 401 and (await r.json())["code"] == "login_failed"


async def test_logout_revokes_that_token_only(client: TestClient[Any, Any], city: City) -> None:
    first = await staff_login(client)
    second = await staff_login(client)
    assert (await client.post("/api/v1/auth/logout", headers=bearer(first))).status == 200
    assert (await client.get("/api/v1/me", headers=bearer(first))).status == 401
    assert (await client.get("/api/v1/me", headers=bearer(second))).status == 200


async def test_role_change_revokes_every_token(client: TestClient[Any, Any], city: City) -> None:
    admin = city.admins[city.units[city.zones[0].id][0].id]
    token = await wechat_login(client, admin.openid or "")
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200
    await set_role(member_id=admin.id, role=Role.MEMBER)
    r = await client.get("/api/v1/me", headers=bearer(token))
    assert r.status == 401 and (await r.json())["code"] == "token_invalid"


async def test_forged_expired_and_missing_tokens(client: TestClient[Any, Any], city: City) -> None:
    token = await staff_login(client)
    body, _, mac = token.partition(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    for headers, code in [({}, "not_authenticated"), (bearer("garbage"), "token_invalid"),
                          (bearer(forged), "token_invalid"), ({"Authorization": "Basic abc"}, "not_authenticated")]:
        r = await client.get("/api/v1/me", headers=headers)
        assert r.status == 401 and (await r.json())["code"] == code
    auth = client.app[AUTH]
    auth.settings = auth.settings.model_copy(update={"staff_token_ttl_s": -1})
    expired = await staff_login(client)
    assert (await client.get("/api/v1/me", headers=bearer(expired))).status == 401


async def _race_for_token(client: TestClient[Any, Any], callers: int) -> set[str]:
    wechat = client.app[WECHAT]
    wechat.client.session.delete(wechat.client.access_token_key)
    return set(await asyncio.gather(*(wechat.access_token() for _ in range(callers))))


async def test_control_without_the_lock_concurrent_callers_fetch_twice(
        client: TestClient[Any, Any], fake_wechat: FakeWeChat, monkeypatch: Any) -> None:
    """Control: proves the next test can see a double refresh when the lock is gone."""
    wechat = client.app[WECHAT]
    monkeypatch.setattr(wechat.client, "_redis", type("NoLock", (), {
        "lock": staticmethod(lambda *a, **k: contextlib.nullcontext())})())
    for _ in range(3):
        await _race_for_token(client, 30)
    assert fake_wechat.stable_token_calls > 3


async def test_access_token_is_fetched_once_for_concurrent_callers(
        client: TestClient[Any, Any], fake_wechat: FakeWeChat) -> None:
    for round_no in range(1, 4):
        assert len(await _race_for_token(client, 30)) == 1
        assert fake_wechat.stable_token_calls == round_no  # the Redis lock let one refresh through


async def test_rejected_access_token_is_refreshed_once_and_the_call_retried(
        client: TestClient[Any, Any], fake_wechat: FakeWeChat) -> None:
    wechat = client.app[WECHAT]
    await wechat.access_token()
    fake_wechat.expire_tokens()
    await asyncio.to_thread(wechat.client.wxa.send_subscribe_message, "someone", "tpl",
                            {"thing1": {"value": "hi"}})
    assert fake_wechat.stable_token_calls == 2
    assert [m["touser"] for m in fake_wechat.messages] == ["someone"]


async def test_another_app_instance_sees_a_role_change_and_a_logout_at_once(
        client: TestClient[Any, Any], city: City, settings: Any,
        aiohttp_client: Any) -> None:
    """Each app instance (process) keeps its members' facts and /me for a few seconds; a role
    change moves the session generation on in Redis, which every instance reads with the
    revocation check: the other instance refuses the old token at its next request and
    answers the new role under a new one, with no wait."""
    from server.app import create_app

    other = await aiohttp_client(create_app(settings, validate_responses=True))
    unit = city.units[city.zones[0].id][0]
    member = city.members[unit.id][0]
    token = await wechat_login(client, member.openid or "")
    assert (await (await other.get("/api/v1/me", headers=bearer(token))).json())["roles"] == ["member"]
    assert (await other.get("/api/v1/me", headers=bearer(token))).status == 200   # from its cache

    staff = await staff_login(client)
    r = await client.patch(f"/api/v1/members/{member.id}", json={"role": "unit_admin"},
                           headers=bearer(staff))
    assert r.status == 200, await r.text()
    r = await other.get("/api/v1/me", headers=bearer(token))
    assert r.status == 401 and (await r.json())["code"] == "token_invalid"
    fresh = await wechat_login(client, member.openid or "")
    me = await (await other.get("/api/v1/me", headers=bearer(fresh))).json()
    assert me["roles"] == ["member", "unit_admin"]

    assert (await client.post("/api/v1/auth/logout", headers=bearer(fresh))).status == 200
    r = await other.get("/api/v1/me", headers=bearer(fresh))
    assert r.status == 401 and (await r.json())["code"] == "token_invalid"


async def test_a_rename_shows_in_me_of_another_app_instance_at_once(
        client: TestClient[Any, Any], city: City, settings: Any, aiohttp_client: Any) -> None:
    from server.app import create_app

    other = await aiohttp_client(create_app(settings, validate_responses=True))
    unit = city.units[city.zones[0].id][0]
    member = city.members[unit.id][0]
    token = await wechat_login(client, member.openid or "")
    assert (await (await other.get("/api/v1/me", headers=bearer(token))).json())["name"] == member.name
    staff = await staff_login(client)
    r = await client.patch(f"/api/v1/members/{member.id}", json={"name": "改名后"},
                           headers=bearer(staff))
    assert r.status == 200, await r.text()
    assert (await (await other.get("/api/v1/me", headers=bearer(token))).json())["name"] == "改名后"
