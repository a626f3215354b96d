"""Administration: staff accounts and liaison zones, zones, members, invite codes; the audit log
written with the change it describes; the list of sent notices."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from models.audit import AuditEntry
from models.org import Liaison, Member, Unit
from services import clock
from tests.integration.test_activities import generate
from tests.support import City, bearer, staff_login, wechat_login


async def _call(client: TestClient[Any, Any], method: str, path: str, token: str | None,
                expect: int = 200, **body: Any) -> Any:
    r = await client.request(method, "/api/v1" + path, headers=bearer(token) if token else {},
                             json=body if method not in ("GET",) else None)
    data = await r.json()
    assert r.status == expect, (method, path, data)
    return data


async def test_staff_accounts_and_the_zones_a_liaison_guides(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    z1, z2 = city.zones[0].id, city.zones[1].id
    made = await _call(client, "POST", "/staff", staff, expect=201, username="liaison7", name="联络员七",
                       phone="13800000007", role="liaison", zone_ids=[z1])
    assert made["zone_ids"] == [z1] and len(made["password"]) >= 12
    await _call(client, "POST", "/staff", staff, expect=409, username="liaison7", name="重名",
                phone="13800000008", role="liaison")
    r = await client.post("/api/v1/auth/login", json={"username": "liaison7", "password": made["password"]})
    token = (await r.json())["token"]
    await _call(client, "GET", "/staff", token, expect=403)                   # liaisons do not administer
    listed = await _call(client, "GET", "/staff", staff)
    assert {s["username"] for s in listed["items"]} >= {"staff", "liaison7"}
    assert all("password" not in s or s["password"] is None for s in listed["items"])
    moved = await _call(client, "PUT", f"/staff/{made['id']}/zones", staff, zone_ids=[z2])
    assert moved["zone_ids"] == [z2] and await Liaison.filter(member_id=made["id"]).count() == 1
    await _call(client, "GET", "/me", token, expect=401)                     # scope changed: log in again
    reset = await _call(client, "POST", f"/staff/{made['id']}/reset-password", staff)
    r = await client.post("/api/v1/auth/login", json={"username": "liaison7", "password": made["password"]})
    assert r.status == 401
    r = await client.post("/api/v1/auth/login", json={"username": "liaison7", "password": reset["password"]})
    token = (await r.json())["token"]
    assert (await _call(client, "GET", "/me", token))["liaison_zone_ids"] == [z2]
    disabled = await _call(client, "POST", f"/staff/{made['id']}/disable", staff)
    assert disabled["is_active"] is False
    await _call(client, "GET", "/me", token, expect=401)
    me = city.committee.id  # type: ignore[union-attr]
    await _call(client, "POST", f"/staff/{me}/disable", staff, expect=409)
    await _call(client, "POST", f"/staff/{city.admins[city.units[z1][0].id].id}/disable", staff, expect=404)
    actions = await AuditEntry.filter(target_id=made["id"]).order_by("id").values_list("action", flat=True)
    assert actions == ["staff.created", "staff.zones_changed", "staff.password_reset", "staff.disabled"]


async def test_zones_are_created_and_renamed(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    zone = await _call(client, "POST", "/zones", staff, expect=201, name="第十一网络区")
    await _call(client, "POST", "/zones", staff, expect=409, name="第十一网络区")
    renamed = await _call(client, "PATCH", f"/zones/{zone['id']}", staff, name="新区")
    assert renamed["name"] == "新区"
    await _call(client, "PATCH", f"/zones/{zone['id']}", staff, expect=409, name=city.zones[0].name)
    admin = await wechat_login(client, city.admins[city.units[city.zones[0].id][0].id].openid or "")
    await _call(client, "POST", "/zones", admin, expect=403, name="越权")


async def test_members_are_edited_by_their_unit_and_moved_or_promoted_by_staff(
        client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    z1, z2 = city.zones
    unit, other = city.units[z1.id][0], city.units[z2.id][0]
    admin = await wechat_login(client, city.admins[unit.id].openid or "")
    member = city.members[unit.id][0]
    member_token = await wechat_login(client, member.openid or "")
    edited = await _call(client, "PATCH", f"/members/{member.id}", admin, name="张书记", position="secretary")
    assert (edited["name"], edited["position"]) == ("张书记", "secretary")
    await _call(client, "GET", "/me", member_token)                          # an edit keeps the session
    await _call(client, "PATCH", f"/members/{member.id}", admin, expect=403, role="unit_admin")
    await _call(client, "PATCH", f"/members/{member.id}", admin, expect=403, unit_id=other.id)
    await _call(client, "PATCH", f"/members/{city.members[other.id][0].id}", admin, expect=403, name="别人")
    await _call(client, "PATCH", f"/members/{city.admins[unit.id].id}", admin, expect=409, is_active=False)
    taken = city.members[unit.id][1].phone
    await _call(client, "PATCH", f"/members/{member.id}", admin, expect=409, phone=taken)
    await _call(client, "PATCH", f"/members/{member.id}", admin, expect=422)  # nothing to change
    promoted = await _call(client, "PATCH", f"/members/{member.id}", staff, role="unit_admin")
    assert promoted["role"] == "unit_admin"
    await _call(client, "GET", "/me", member_token, expect=401)              # a role change: log in again
    moved = await _call(client, "PATCH", f"/members/{member.id}", staff, unit_id=other.id)
    assert moved["unit_id"] == other.id
    entries = await AuditEntry.filter(target_type="member", target_id=member.id).order_by("id")
    assert [e.action for e in entries] == ["member.updated", "member.role_changed", "member.moved"]
    assert entries[1].detail == {"before": {"role": "member"}, "after": {"role": "unit_admin"}}
    assert entries[0].actor_id == city.admins[unit.id].id and entries[0].zone_id == z1.id


async def test_an_invite_code_is_rotated_by_its_unit(client: TestClient[Any, Any], city: City) -> None:
    unit = city.units[city.zones[0].id][0]
    admin = await wechat_login(client, city.admins[unit.id].openid or "")
    before = unit.invite_code
    rotated = await _call(client, "POST", f"/units/{unit.id}/invite-code", admin)
    assert rotated["invite_code"] != before and (await Unit.get(id=unit.id)).invite_code == rotated["invite_code"]
    other = city.units[city.zones[1].id][0]
    await _call(client, "POST", f"/units/{other.id}/invite-code", admin, expect=403)


async def test_the_audit_log_is_written_with_the_change_and_scoped_to_the_reader(
        client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    await generate(client, staff)
    z1, z2 = city.zones[0].id, city.zones[1].id
    today = clock.now().astimezone(clock.SHANGHAI).date().isoformat()
    line = {"direction": "income", "category": "other_income", "amount_fen": 5_000,
            "description": "捐赠", "occurred_on": today}
    entry = await _call(client, "POST", f"/zones/{z1}/fund-entries", staff, expect=201, **line)
    await _call(client, "POST", f"/zones/{z2}/fund-entries", staff, expect=201, **line)
    # A refused change leaves no record: an expense the balance cannot cover.
    await _call(client, "POST", f"/zones/{z1}/fund-entries", staff, expect=409,
                **{**line, "direction": "expense", "category": "materials", "amount_fen": 9_999_999})
    await _call(client, "POST", f"/zones/{z1}/fund-entries/{entry['id']}/reverse", staff, expect=201,
                reason="记错")
    log = await _call(client, "GET", "/audit?action=fund_entry", staff)
    assert [(e["action"], e["zone_id"]) for e in log["items"]] == [
        ("fund_entry.reversed", z1), ("fund_entry.recorded", z2), ("fund_entry.recorded", z1)]
    assert log["items"][-1]["detail"]["amount_fen"] == 5_000 and log["items"][-1]["actor_id"] == city.committee.id  # type: ignore[union-attr]
    m = await Member.create(name="l", phone="13811119999", role="liaison", username="l-z2",
                            password_hash=(await Member.get(username="staff")).password_hash)
    await Liaison.create(member_id=m.id, zone_id=z2)
    liaison = await staff_login(client, "l-z2")
    seen = await _call(client, "GET", "/audit", liaison)
    assert {e["zone_id"] for e in seen["items"]} == {z2}
    admin = await wechat_login(client, city.admins[city.units[z1][0].id].openid or "")
    await _call(client, "GET", "/audit", admin, expect=403)
    page = await _call(client, "GET", "/audit?limit=1", staff)
    rest = await _call(client, "GET", f"/audit?limit=50&cursor={page['next_cursor']}", staff)
    assert page["items"][0]["id"] > rest["items"][0]["id"]


async def test_sent_notices_are_listed_for_who_sent_them(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    await generate(client, staff)
    from models.org import Rotation
    now = clock.now()
    duty = await Rotation.get(zone_id=city.zones[0].id, starts_at__lte=now, ends_at__gt=now)
    duty_token = await wechat_login(client, city.admins[duty.unit_id].openid or "")
    mine = await _call(client, "POST", "/notices", duty_token, expect=202, title="区内通知",
                       audience={"zone_ids": [city.zones[0].id]})
    theirs = await _call(client, "POST", "/notices", staff, expect=202, title="全市通知", audience={"all": True})
    assert [n["id"] for n in (await _call(client, "GET", "/notices", staff))["items"]] == [theirs["id"], mine["id"]]
    assert [n["id"] for n in (await _call(client, "GET", "/notices", duty_token))["items"]] == [mine["id"]]
    member = await wechat_login(client, city.members[city.units[city.zones[0].id][1].id][0].openid or "")
    await _call(client, "GET", "/notices", member, expect=403)


async def test_a_unit_admin_sets_a_console_password_and_logs_in_with_it(
        client: TestClient[Any, Any], city: City) -> None:
    from tests.integration.test_console import _login_form

    unit = city.units[city.zones[0].id][0]
    admin = await wechat_login(client, city.admins[unit.id].openid or "")
    member = await wechat_login(client, city.members[unit.id][0].openid or "")
    staff = await staff_login(client)
    body = {"username": "unit-admin-1", "password": "a-long-passphrase"}
    assert (await _call(client, "PUT", "/me/password", member, 403, **body))["code"] == "forbidden"
    assert (await _call(client, "PUT", "/me/password", staff, 403, **body))["code"] == "forbidden"
    short = await _call(client, "PUT", "/me/password", admin, 422, **{**body, "password": "short"})
    assert short["errors"][0]["loc"][-1] == "password"
    assert await _call(client, "PUT", "/me/password", admin, **body) == {"username": "unit-admin-1",
                                                                       "sessions_ended": False}
    # The same person by password now: the API's login and the console's.
    login = await _call(client, "POST", "/auth/login", None, **body)
    assert login["token"]
    csrf = await _login_form(client)
    resp = await client.post("/console/login", data={"csrf": csrf, **body}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert (await client.get(f"/console/units/{unit.id}")).status == 200
    # Changing it needs the current one, and ends every session (the mini-program's too).
    again = {"username": "unit-admin-1", "password": "another-passphrase"}
    r = await _call(client, "PUT", "/me/password", admin, 403, **again)
    assert r["code"] == "current_password_wrong"
    r = await _call(client, "PUT", "/me/password", admin, **{**again, "current_password": body["password"]})
    assert r["sessions_ended"] is True
    assert (await client.get("/api/v1/me", headers=bearer(admin))).status == 401
    other = city.units[city.zones[0].id][1]
    other_admin = await wechat_login(client, city.admins[other.id].openid or "")
    taken = await _call(client, "PUT", "/me/password", other_admin, 409, **again)
    assert taken["code"] == "username_taken"
    entries = await AuditEntry.filter(action="member.password_set").order_by("id")
    assert [(e.target_id, e.detail["changed"]) for e in entries] == [(city.admins[unit.id].id, False),
                                                                      (city.admins[unit.id].id, True)]
