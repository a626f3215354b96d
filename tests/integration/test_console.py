"""The web console without a browser: sessions, CSRF, the QR ticket login, and scope."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support import STAFF_PASSWORD, City, bearer, staff_login, wechat_login

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
TICKET = re.compile(r'data-ticket="([A-Za-z0-9_-]{32})"')


async def _login_form(client: TestClient[Any, Any]) -> str:
    resp = await client.get("/console/login")
    assert resp.status == 200
    match = CSRF.search(await resp.text())
    assert match
    return match.group(1)


async def staff_session(client: TestClient[Any, Any]) -> str:
    """Logs the client's browser in as the committee; returns the session's CSRF token."""
    csrf = await _login_form(client)
    resp = await client.post("/console/login", data={"csrf": csrf, "username": "staff",
                                                     "password": STAFF_PASSWORD},
                              allow_redirects=False)
    assert resp.status == 303, await resp.text()
    page = await client.get("/console/notices")
    match = CSRF.search(await page.text())
    assert match
    return match.group(1)


async def test_pages_need_a_session(client: TestClient[Any, Any], city: City) -> None:
    resp = await client.get("/console/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/login"
    resp = await client.get("/console/notices", allow_redirects=False, headers={"HX-Request": "true"})
    assert resp.status == 401 and resp.headers["HX-Redirect"] == "/console/login"


async def test_password_login_sets_a_strict_cookie_and_needs_the_form_token(
        client: TestClient[Any, Any], city: City) -> None:
    csrf = await _login_form(client)
    resp = await client.post("/console/login", data={"username": "staff", "password": STAFF_PASSWORD},
                             allow_redirects=False)
    assert resp.status == 403  # no double-submitted token
    resp = await client.post("/console/login", data={"csrf": csrf, "username": "staff",
                                                     "password": "wrong-password"})
    assert resp.status == 401
    assert 'data-field="password"' in await resp.text()
    resp = await client.post("/console/login", data={"csrf": csrf, "username": "staff",
                                                     "password": STAFF_PASSWORD},
                             allow_redirects=False)
    assert resp.status == 303
    cookie = resp.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith("zh_console="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Path=/console" in session
    resp = await client.get("/console/")
    assert resp.status == 200
    assert "本季度值班单位" in await resp.text()


async def test_every_form_needs_the_session_csrf_token(client: TestClient[Any, Any], city: City) -> None:
    csrf = await staff_session(client)
    body = {"title": "通知", "zone_ids": str(city.zones[0].id)}
    resp = await client.post("/console/notices", data=body, allow_redirects=False)
    assert resp.status == 403 and 'data-code="console_csrf"' in await resp.text()
    resp = await client.post("/console/notices", data={**body, "csrf": "forged"}, allow_redirects=False)
    assert resp.status == 403
    resp = await client.post("/console/notices", data={**body, "csrf": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/notices/")
    # htmx requests send it as a header instead
    resp = await client.post("/console/logout", headers={"X-CSRF-Token": csrf}, allow_redirects=False)
    assert resp.status == 303
    resp = await client.get("/console/", allow_redirects=False)
    assert resp.status == 303  # the session ended


async def test_a_form_shows_the_field_error(client: TestClient[Any, Any], city: City) -> None:
    csrf = await staff_session(client)
    resp = await client.post("/console/notices", data={"csrf": csrf, "title": "  ",
                                                       "zone_ids": str(city.zones[0].id)})
    assert resp.status == 422
    text = await resp.text()
    assert 'data-field="title"' in text and 'data-field="audience"' not in text
    resp = await client.post("/console/notices", data={"csrf": csrf, "title": "无人"})
    assert resp.status == 422
    assert 'data-field="audience"' in await resp.text() or "请指定受众" in await resp.text()


async def test_qr_login_confirmed_by_a_unit_admin_once(client: TestClient[Any, Any], city: City) -> None:
    resp = await client.get("/console/login")
    ticket = TICKET.search(await resp.text()).group(1)  # type: ignore[union-attr]
    unit = city.units[city.zones[0].id][1]
    member = await wechat_login(client, city.members[unit.id][0].openid or "")
    admin = await wechat_login(client, city.admins[unit.id].openid or "")
    confirm = f"/api/v1/console/tickets/{ticket}/confirm"
    resp = await client.post(confirm, headers=bearer(member))
    assert resp.status == 403 and (await resp.json())["code"] == "console_not_allowed"
    poll = await client.get(f"/console/login/tickets/{ticket}")
    assert "HX-Redirect" not in poll.headers
    resp = await client.post(confirm, headers=bearer(admin))
    assert resp.status == 200, await resp.text()
    resp = await client.post(confirm, headers=bearer(admin))
    assert resp.status == 410 and (await resp.json())["code"] == "console_ticket_invalid"
    # Only the browser that showed the ticket can claim it: another browser polls in vain.
    jar = client.session.cookie_jar
    saved = {c.key: c.value for c in jar}
    jar.clear()
    other = await client.get(f"/console/login/tickets/{ticket}")
    assert "HX-Redirect" not in other.headers
    jar.update_cookies(saved)
    poll = await client.get(f"/console/login/tickets/{ticket}")
    assert poll.headers.get("HX-Redirect") == "/console/"
    again = await client.get(f"/console/login/tickets/{ticket}")
    assert "HX-Redirect" not in again.headers and again.status == 286  # used once
    resp = await client.get(f"/console/units/{unit.id}")
    assert resp.status == 200 and city.members[unit.id][0].name in await resp.text()


async def test_a_unit_admin_sees_only_their_unit(client: TestClient[Any, Any], city: City) -> None:
    resp = await client.get("/console/login")
    ticket = TICKET.search(await resp.text()).group(1)  # type: ignore[union-attr]
    unit, other = city.units[city.zones[0].id][1], city.units[city.zones[1].id][0]
    admin = await wechat_login(client, city.admins[unit.id].openid or "")
    assert (await client.post(f"/api/v1/console/tickets/{ticket}/confirm", headers=bearer(admin))).status == 200
    assert (await client.get(f"/console/login/tickets/{ticket}")).headers.get("HX-Redirect")
    resp = await client.get(f"/console/units/{other.id}")
    assert resp.status == 403
    text = await resp.text()
    assert 'data-code="forbidden"' in text and city.members[other.id][0].name not in text
    resp = await client.get("/console/zones")
    assert other.name not in await resp.text()
    resp = await client.get("/console/audit")
    assert resp.status == 403  # staff only
    assert (await client.get("/console/evaluation")).status == 403
    for path in ("/console/", "/console/notices", "/console/activities", "/console/supervision",
                 "/console/funds"):
        assert (await client.get(path)).status == 200, path


async def test_administration_is_the_committees_and_shows_field_errors(
        client: TestClient[Any, Any], city: City) -> None:
    csrf = await staff_session(client)
    resp = await client.post("/console/admin/staff", data={
        "csrf": csrf, "username": "liaison-a", "name": "联络员甲", "phone": "not a phone",
        "role": "liaison", "zone_ids": str(city.zones[0].id)})
    assert resp.status == 422
    text = await resp.text()
    assert 'data-field="phone"' in text and 'data-field="username"' not in text
    resp = await client.post("/console/admin/staff", data={
        "csrf": csrf, "username": "liaison-a", "name": "联络员甲", "phone": "13900001111",
        "role": "liaison", "zone_ids": str(city.zones[0].id)})
    assert resp.status == 200
    text = await resp.text()
    password = re.search(r"初始密码：([A-Za-z0-9_-]+)", text)
    assert password
    resp = await client.post("/console/admin/staff", data={
        "csrf": csrf, "username": "liaison-a", "name": "重名", "phone": "13900001112", "role": "liaison"})
    assert resp.status == 409 and 'data-field="username"' in await resp.text()  # username_taken, as the API
    # the liaison signs in: no administration, the ledger of their zone, the audit log of it
    client.session.cookie_jar.clear()
    form = await _login_form(client)
    resp = await client.post("/console/login", data={"csrf": form, "username": "liaison-a",
                                                     "password": password.group(1)}, allow_redirects=False)
    assert resp.status == 303
    assert (await client.get("/console/admin")).status == 403
    resp = await client.get("/console/ledger")
    assert resp.status == 200 and "工作台账" in await resp.text()
    resp = await client.get(f"/console/ledger?zone_id={city.zones[1].id}")
    assert resp.status == 403  # not their zone
    resp = await client.get(f"/console/ledger.xlsx?zone_id={city.zones[0].id}")
    assert resp.status == 200 and resp.content_type.endswith("spreadsheetml.sheet")
    assert (await resp.read())[:2] == b"PK"
    resp = await client.get(f"/console/ledger.xlsx?zone_id={city.zones[1].id}")
    assert resp.status == 403
    assert (await client.get("/console/audit")).status == 200


async def test_a_subsidy_is_approved_by_another_member_of_the_committee(
        client: TestClient[Any, Any], city: City) -> None:
    from datetime import date

    from models.org import Member, Role
    from services.auth import hash_password
    from tests.support import staff_login

    zone = city.zones[0]
    await Member.create(name="审批人", phone="13800009999", role=Role.COMMITTEE, username="approver",
                        password_hash=hash_password(STAFF_PASSWORD))
    staff = await staff_login(client)
    resp = await client.post(f"/api/v1/zones/{zone.id}/fund-entries", headers=bearer(staff), json={
        "direction": "income", "category": "committee_subsidy", "amount_fen": 200_000,
        "description": "场地租金补助", "occurred_on": date.today().isoformat()})
    assert resp.status == 201, await resp.text()
    entry = (await resp.json())["id"]
    csrf = await staff_session(client)  # the requester: four eyes refuse them, on the page
    url = f"/console/zones/{zone.id}/funds/{entry}/approve"
    resp = await client.post(url, data={"csrf": csrf})
    assert resp.status == 403 and 'data-field="note"' in await resp.text()  # self_approval
    resp = await client.post(f"/console/zones/{zone.id}/funds/{entry}/reject", data={"csrf": csrf})
    assert resp.status == 422 and 'data-field="note"' in await resp.text()  # a rejection says why
    client.session.cookie_jar.clear()
    form = await _login_form(client)
    await client.post("/console/login", data={"csrf": form, "username": "approver",
                                               "password": STAFF_PASSWORD})
    page = await client.get(f"/console/zones/{zone.id}/funds")
    csrf = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
    resp = await client.post(url, data={"csrf": csrf, "note": "同意"})
    assert resp.status == 200
    text = await resp.text()
    assert 'id="done"' in text and "2,000.00" in text and 'id="pending"' not in text


async def test_a_unit_admin_edits_their_members_and_the_api_message_shows_beside_the_field(
        client: TestClient[Any, Any], city: City) -> None:
    resp = await client.get("/console/login")
    ticket = TICKET.search(await resp.text()).group(1)  # type: ignore[union-attr]
    unit = city.units[city.zones[0].id][1]
    admin = await wechat_login(client, city.admins[unit.id].openid or "")
    assert (await client.post(f"/api/v1/console/tickets/{ticket}/confirm", headers=bearer(admin))).status == 200
    assert (await client.get(f"/console/login/tickets/{ticket}")).headers.get("HX-Redirect")
    page = await client.get(f"/console/units/{unit.id}")
    csrf = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
    first, second = city.members[unit.id][0], city.members[unit.id][1]
    url = f"/console/units/{unit.id}/members/{first.id}"
    resp = await client.post(url, data={"csrf": csrf, "name": first.name, "phone": second.phone,
                                        "is_active": "1"})
    assert resp.status == 409 and 'data-field="phone"' in await resp.text()  # phone_taken
    resp = await client.post(url, data={"csrf": csrf, "name": "改名后", "phone": first.phone, "is_active": "1",
                                        "role": "unit_admin"})  # a role the unit admin cannot give: ignored
    assert resp.status == 200 and "改名后" in await resp.text()
    from models.org import Member, Role
    assert (await Member.get(id=first.id)).role is Role.MEMBER
    own = f"/console/units/{unit.id}/members/{city.admins[unit.id].id}"
    resp = await client.post(own, data={"csrf": csrf, "name": "admin", "phone": city.admins[unit.id].phone})
    assert resp.status == 409 and 'data-field="is_active"' in await resp.text()  # cannot deactivate oneself
    other = city.units[city.zones[1].id][0]
    resp = await client.post(f"/console/units/{other.id}/members/{city.members[other.id][0].id}",
                             data={"csrf": csrf, "name": "x", "phone": "13900000000", "is_active": "1"})
    assert resp.status == 403


# -- governance writing, zones, re-partitioning ---------------------------------------------------

async def admin_session(client: TestClient[Any, Any], member: Any) -> str:
    """Logs the client's browser in as `member` (a unit admin) by the QR ticket; returns the
    session's CSRF token."""
    client.session.cookie_jar.clear()
    resp = await client.get("/console/login")
    ticket = TICKET.search(await resp.text()).group(1)  # type: ignore[union-attr]
    token = await wechat_login(client, member.openid or "")
    assert (await client.post(f"/api/v1/console/tickets/{ticket}/confirm", headers=bearer(token))).status == 200
    assert (await client.get(f"/console/login/tickets/{ticket}")).headers.get("HX-Redirect")
    page = await client.get("/console/notices")
    return CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]


def _travel(*args: int) -> None:
    from datetime import datetime

    from services import clock
    clock.reset_travel()
    clock.travel(datetime(*args, tzinfo=clock.SHANGHAI) - clock.now())  # type: ignore[misc]


async def _rotations(city: City) -> None:
    from services import rotations
    for year in (2026, 2027):
        await rotations.generate_rotations(year=year)


async def test_the_committee_reorders_a_zones_duty_order(client: TestClient[Any, Any], city: City) -> None:
    from models.org import Rotation, Unit
    _travel(2026, 11, 10, 9)
    await _rotations(city)
    zone = city.zones[0]
    units = [u.id for u in await Unit.filter(zone_id=zone.id).order_by("duty_order", "id")]
    csrf = await staff_session(client)
    page = await client.get(f"/console/zones/{zone.id}")
    assert 'id="duty-order"' in await page.text()
    url = f"/console/zones/{zone.id}/duty-order"
    # a unit left out: the service's own refusal, beside the field
    form = [("csrf", csrf)] + [x for u in units[:-1] for x in (("unit", str(u)), (f"pos-{u}", "1"))]
    resp = await client.post(url, data=form)
    assert resp.status == 422 and 'data-field="unit_ids"' in await resp.text()
    resp = await client.post(url, data=[("csrf", csrf), ("unit", str(units[0])), (f"pos-{units[0]}", "x")])
    assert resp.status == 422 and 'data-field="unit_ids"' in await resp.text()
    new = list(reversed(units))
    form = [("csrf", csrf)] + [x for i, u in enumerate(new) for x in (("unit", str(u)), (f"pos-{u}", str(i + 1)))]
    resp = await client.post(url, data=form)
    assert resp.status == 200 and 'id="done"' in await resp.text()
    assert [u.id for u in await Unit.filter(zone_id=zone.id).order_by("duty_order")] == new
    later = await Rotation.filter(zone_id=zone.id, year=2027).order_by("quarter").values_list("unit_id", flat=True)
    current = await Rotation.get(zone_id=zone.id, year=2026, quarter=4)
    assert later[0] == new[(new.index(current.unit_id) + 1) % len(new)]  # continues after today's duty unit
    # a unit admin has no such form, and the address refuses them
    csrf = await admin_session(client, city.admins[units[0]])
    assert 'id="duty-order"' not in await (await client.get(f"/console/zones/{zone.id}")).text()
    resp = await client.post(url, data=form[1:] + [("csrf", csrf)])
    assert resp.status == 403
    assert [u.id for u in await Unit.filter(zone_id=zone.id).order_by("duty_order")] == new


async def test_the_committee_changes_the_duty_unit_for_the_rest_of_the_quarter(
        client: TestClient[Any, Any], city: City) -> None:
    from models.notices import InboxItem, Notice
    from models.org import Rotation, RotationChange, Unit
    _travel(2026, 11, 10, 9)
    await _rotations(city)
    zone = city.zones[0]
    current = await Rotation.get(zone_id=zone.id, year=2026, quarter=4)
    other = await Unit.filter(zone_id=zone.id).exclude(id=current.unit_id).order_by("id").first()
    outsider = await Unit.filter(zone_id=city.zones[1].id).first()
    assert other is not None and outsider is not None
    csrf = await staff_session(client)
    assert 'id="duty-change"' in await (await client.get(f"/console/zones/{zone.id}")).text()
    url = f"/console/zones/{zone.id}/duty-change"
    for data, field in (({"unit_id": str(other.id), "reason": " "}, "reason"),
                        ({"unit_id": "x", "reason": "原单位停工整顿"}, "unit_id"),
                        ({"unit_id": str(outsider.id), "reason": "原单位停工整顿"}, "unit_id"),
                        ({"unit_id": str(current.unit_id), "reason": "原单位停工整顿"}, "unit_id")):
        resp = await client.post(url, data={"csrf": csrf, **data})
        assert resp.status in (400, 409, 422) and f'data-field="{field}"' in await resp.text(), data
    assert await RotationChange.filter(zone_id=zone.id).count() == 0
    resp = await client.post(url, data={"csrf": csrf, "unit_id": str(other.id), "reason": "原单位停工整顿"})
    assert resp.status == 200 and 'id="done"' in await resp.text()
    change = await RotationChange.get(zone_id=zone.id)
    assert (change.from_unit_id, change.to_unit_id, change.reason) == (current.unit_id, other.id, "原单位停工整顿")
    now_on = await Rotation.filter(zone_id=zone.id, year=2026, quarter=4).order_by("-starts_at").first()
    assert now_on is not None and now_on.unit_id == other.id
    told = await Notice.get(topic="rotation.duty_now", ref_id=now_on.id)
    admins = await InboxItem.filter(notice_id=told.id).values_list("member_id", flat=True)
    assert city.admins[other.id].id in admins  # the new duty unit's admin, in the inbox (and pushed)
    # a unit admin has no such form, and the address refuses them
    csrf = await admin_session(client, city.admins[other.id])
    assert 'id="duty-change"' not in await (await client.get(f"/console/zones/{zone.id}")).text()
    resp = await client.post(url, data={"csrf": csrf, "unit_id": str(current.unit_id), "reason": "改回原单位"})
    assert resp.status == 403 and await RotationChange.filter(zone_id=zone.id).count() == 1


async def test_the_committee_proposes_and_applies_a_partition(client: TestClient[Any, Any]) -> None:
    from models.zoning import PartitionProposal
    from tests.integration.test_partitions import partition_city
    city, _ = await partition_city(client)
    csrf = await staff_session(client)
    resp = await client.get("/console/partitions")
    assert resp.status == 200 and "暂无方案" in await resp.text()
    resp = await client.post("/console/partitions", data={"csrf": csrf, "seed": "-1"})
    assert resp.status == 422 and 'data-field="seed"' in await resp.text()
    resp = await client.post("/console/partitions", data={"csrf": csrf, "seed": "3"})
    text = await resp.text()
    assert resp.status == 200 and 'id="done"' in text, text
    proposal = await PartitionProposal.get()
    assert f'id="proposal-{proposal.id}"' in text and "当前划分" in text and "本方案" in text
    apply = f"/console/partitions/{proposal.id}/apply"
    resp = await client.post(apply, data={"csrf": csrf, "from_quarter": "2026Q4"})  # started
    assert resp.status == 422 and f'data-field="{proposal.id}-from_quarter"' in await resp.text()
    resp = await client.post(apply, data={"csrf": csrf, "from_quarter": "Q1"})
    assert resp.status == 422 and f'data-field="{proposal.id}-from_quarter"' in await resp.text()
    resp = await client.post(apply, data={"csrf": csrf, "from_quarter": "2027Q1"})
    assert resp.status == 200 and "已实施" in await resp.text()
    assert (await PartitionProposal.get(id=proposal.id)).from_quarter == "2027Q1"
    resp = await client.post(apply, data={"csrf": csrf, "from_quarter": "2027Q2"})
    assert resp.status == 409  # partition_applied, as the API
    unit = city.units[city.zones[0].id][0]
    await admin_session(client, city.admins[unit.id])
    assert (await client.get("/console/partitions")).status == 403


async def test_the_duty_unit_writes_its_plan_and_the_committee_files_or_returns_it(
        client: TestClient[Any, Any], city: City) -> None:
    from models.org import Rotation
    _travel(2026, 10, 8, 9)
    await _rotations(city)
    zone = city.zones[0]
    rotation = await Rotation.get(zone_id=zone.id, year=2026, quarter=4)
    url = f"/console/rotations/{rotation.id}"
    csrf = await admin_session(client, city.admins[rotation.unit_id])
    page = await client.get(url)
    assert page.status == 200 and 'id="plan-form"' in await page.text()
    item = {"item-0-kind": "party_lesson", "item-0-title": "党课", "item-0-date": "2026-11-10"}
    resp = await client.post(url + "/plan", data={"csrf": csrf, "goals": " ", **item})
    assert resp.status == 422 and 'data-field="goals"' in await resp.text()
    resp = await client.post(url + "/plan", data={"csrf": csrf, "goals": "目标", "budget": "十元", **item})
    assert resp.status == 422 and 'data-field="budget"' in await resp.text()
    resp = await client.post(url + "/plan", data={"csrf": csrf, "goals": "抓好主题教育", "budget": "1200.50",
                                                  "submit": "1", **item})
    text = await resp.text()
    assert resp.status == 200 and "已提交" in text, text
    plan = await client.get(f"/api/v1/rotations/{rotation.id}/plan",
                            headers=bearer(await wechat_login(client, city.admins[rotation.unit_id].openid or "")))
    body = await plan.json()
    assert body["state"] == "submitted" and body["current"]["budget_fen"] == 120_050
    assert body["current"]["items"][0]["title"] == "党课"
    # another unit of the zone reads it, cannot decide
    other = next(u for u in city.units[zone.id] if u.id != rotation.unit_id)
    csrf = await admin_session(client, city.admins[other.id])
    assert (await client.get(url)).status == 200
    assert (await client.post(url + "/plan/decision", data={"csrf": csrf, "decision": "file"})).status == 403
    csrf = await staff_session(client)
    assert 'id="plan-decision"' in await (await client.get(url)).text()
    resp = await client.post(url + "/plan/decision", data={"csrf": csrf, "decision": "return", "comment": ""})
    assert resp.status == 422 and 'data-field="comment"' in await resp.text()
    resp = await client.post(url + "/plan/decision", data={"csrf": csrf, "decision": "return",
                                                           "comment": "请补充志愿服务"})
    assert resp.status == 200 and "已退回" in await resp.text()
    csrf = await admin_session(client, city.admins[rotation.unit_id])
    resp = await client.post(url + "/plan", data={"csrf": csrf, "goals": "抓好主题教育，补充志愿服务",
                                                  "submit": "1", **item})
    assert resp.status == 200
    csrf = await staff_session(client)
    resp = await client.post(url + "/plan/decision", data={"csrf": csrf, "decision": "file"})
    assert resp.status == 200 and "已备案" in await resp.text()
    resp = await client.post(url + "/plan/decision", data={"csrf": csrf, "decision": "file"})
    assert resp.status == 409 and 'data-field="decision"' in await resp.text()  # already filed


async def test_the_handover_is_confirmed_in_the_console(client: TestClient[Any, Any], city: City) -> None:
    from models.governance import Handover
    from models.org import Rotation
    _travel(2026, 10, 8, 9)
    await _rotations(city)
    rotation = await Rotation.get(zone_id=city.zones[0].id, year=2026, quarter=4)
    following = await Rotation.get(zone_id=city.zones[0].id, year=2027, quarter=1)
    url = f"/console/rotations/{rotation.id}"
    csrf = await admin_session(client, city.admins[rotation.unit_id])
    resp = await client.post(url + "/handover", data={"csrf": csrf, "note": "交接说明", "confirm": "1"})
    assert resp.status == 409 and 'data-field="handover"' in await resp.text()  # not open yet
    _travel(2026, 12, 15, 9)
    csrf = await admin_session(client, city.admins[rotation.unit_id])
    assert 'id="handover-form"' in await (await client.get(url)).text()
    resp = await client.post(url + "/handover", data={"csrf": csrf, "note": "交接说明", "confirm": "1"})
    assert resp.status == 200 and "交接已确认" in await resp.text()
    csrf = await admin_session(client, city.admins[following.unit_id])
    resp = await client.post(url + "/handover", data={"csrf": csrf, "plan": "下季度打算", "confirm": "1"})
    assert resp.status == 200
    row = await Handover.get(rotation_id=rotation.id)
    assert row.outgoing_note == "交接说明" and row.incoming_plan == "下季度打算" and row.closed_at


async def test_the_committee_schedules_a_meeting_comments_and_deploys(
        client: TestClient[Any, Any], city: City) -> None:
    from models.governance import Deployment, Meeting, MeetingZone
    _travel(2026, 12, 1, 9)
    await _rotations(city)
    csrf = await staff_session(client)
    form = {"csrf": csrf, "year": "2026", "quarter": "4", "title": "第四季度例会",
            "starts_at": "2026-12-20T09:00", "place": "工委会议室"}
    resp = await client.post("/console/meetings", data={**form, "title": ""})
    assert resp.status == 422 and 'data-field="title"' in await resp.text()
    resp = await client.post("/console/meetings", data=form, allow_redirects=False)
    assert resp.status == 303
    meeting = await Meeting.get()
    assert resp.headers["Location"] == f"/console/meetings/{meeting.id}"
    resp = await client.post("/console/meetings", data=form)
    assert resp.status == 409 and 'data-field="quarter"' in await resp.text()  # meeting_exists
    zone = city.zones[0]
    url = f"/console/meetings/{meeting.id}"
    resp = await client.post(f"{url}/zones/{zone.id}/comments", data={"csrf": csrf, "text": "工作扎实"})
    assert resp.status == 200 and "工作扎实" in await resp.text()
    assert (await MeetingZone.get(meeting_id=meeting.id, zone_id=zone.id)).comments == "工作扎实"
    resp = await client.post(f"{url}/deployments", data={"csrf": csrf, "title": "", "due_at": "2027-03-01T18:00"})
    assert resp.status == 422 and 'data-field="deploy-title"' in await resp.text()
    resp = await client.post(f"{url}/deployments", data={"csrf": csrf, "title": "开展志愿服务",
                                                         "due_at": "2027-03-01T18:00", "zone_ids": str(zone.id)})
    assert resp.status == 200 and "开展志愿服务" in await resp.text()
    assert (await Deployment.get()).zone_ids == [zone.id]
    resp = await client.post(f"{url}/close", data={"csrf": csrf, "minutes": "会议纪要"})
    assert resp.status == 200 and (await Meeting.get()).minutes == "会议纪要"
    # a unit admin who is not the duty unit reads no comment form and cannot write one
    unit = city.units[zone.id][0]
    csrf = await admin_session(client, city.admins[unit.id])
    resp = await client.post(f"{url}/zones/{zone.id}/comments", data={"csrf": csrf, "text": "x"})
    assert resp.status == 403


async def test_an_unknown_console_address_is_the_consoles_404(client: TestClient[Any, Any], city: City) -> None:
    resp = await client.get("/console/no-such-page")
    assert resp.status == 404 and 'data-code="not_found"' in await resp.text()
    await staff_session(client)
    resp = await client.get("/console/zones/1/nothing")
    text = await resp.text()
    assert resp.status == 404 and 'data-code="not_found"' in text and "退出" in text  # signed in: the header


# -- activities: edit, cancel, the record ---------------------------------------------------------

async def test_the_duty_unit_edits_records_and_cancels_an_activity(client: TestClient[Any, Any], city: City) -> None:
    from aiohttp import FormData

    from models.activities import Activity
    from models.records import ActivityRecord
    from tests.integration.test_governance import _activity, _quarter_city, shanghai
    from tests.integration.test_practices import PDF, PNG
    s = await _quarter_city(client, city, shanghai(2026, 12, 10, 9))
    activity = await _activity(s, s["rotation"], day=(2026, 12, 15))
    url = f"/console/activities/{activity.id}"
    duty = city.admins[s["rotation"].unit_id]
    csrf = await admin_session(client, duty)
    page = await client.get(url)
    assert 'id="edit-activity"' in await page.text() and 'id="record-form"' not in await page.text()  # not started
    edit = {"csrf": csrf, "title": "主题党日（改）", "place": "会议室", "starts_at": "2026-12-15T09:00",
            "ends_at": "2026-12-15T11:00", "description": ""}
    resp = await client.post(url + "/edit", data={**edit, "capacity": "0"})
    assert resp.status == 422 and 'data-field="edit-capacity"' in await resp.text()
    resp = await client.post(url + "/edit", data={**edit, "capacity": "30"})
    assert resp.status == 200 and 'id="done"' in await resp.text()
    changed = await Activity.get(id=activity.id)
    assert (changed.title, changed.capacity) == ("主题党日（改）", 30)

    def record_form(minutes: str, *files: tuple[str, bytes, str], keep: list[str] = ()) -> FormData:  # type: ignore[assignment]
        form = FormData()
        form.add_field("csrf", csrf)
        form.add_field("minutes", minutes)
        for url_ in keep:
            form.add_field("keep", url_)
        for name, content, kind in files:
            form.add_field("photo", content, filename=name, content_type=kind)
        return form

    resp = await client.post(url + "/record", data=record_form("纪要", ("合影.png", PNG, "image/png")))
    assert resp.status == 409 and 'data-field="record-_"' in await resp.text()  # record_window_closed: not started
    from tests.integration.test_governance import travel_to
    travel_to(shanghai(2026, 12, 15, 10))
    csrf = await admin_session(client, duty)
    assert 'id="record-form"' in await (await client.get(url)).text()
    resp = await client.post(url + "/record", data=record_form("纪要", ("纪要.pdf", PDF, "application/pdf")))
    assert resp.status == 422 and 'data-field="record-photos"' in await resp.text()  # not_an_image, as the API
    assert not await ActivityRecord.exists(activity_id=activity.id)
    resp = await client.post(url + "/record", data=record_form("学习了党章", ("合影.png", PNG, "image/png")))
    assert resp.status == 200 and 'id="done"' in await resp.text()
    record = await ActivityRecord.get(activity_id=activity.id)
    assert record.minutes == "学习了党章" and [p["name"] for p in record.photos] == ["合影.png"]
    kept = record.photos[0]["url"]
    # the photo opens in the console for the zone, with the session (no bearer token), not beyond
    photo = kept.replace("/api/v1/attachments/", "/console/attachments/")
    resp = await client.get(photo)
    assert resp.status == 200 and await resp.read() == PNG
    await admin_session(client, city.admins[city.units[city.zones[1].id][0].id])
    assert (await client.get(photo)).status == 404
    csrf = await admin_session(client, duty)
    resp = await client.post(url + "/record", data=record_form("学习了党章，补记", keep=[kept]))
    assert resp.status == 200
    record = await ActivityRecord.get(activity_id=activity.id)
    assert record.minutes == "学习了党章，补记" and [p["url"] for p in record.photos] == [kept]
    resp = await client.post(url + "/record", data=record_form("不留照片"))
    assert (await ActivityRecord.get(activity_id=activity.id)).photos == []
    # another unit of the zone: refused on each form
    other = await admin_session(client, city.admins[s["other_unit"]])
    resp = await client.post(url + "/cancel", data={"csrf": other, "reason": "不办了"})
    assert resp.status == 403
    csrf = await admin_session(client, duty)
    resp = await client.post(url + "/cancel", data={"csrf": csrf, "reason": ""})
    assert resp.status == 422 and 'data-field="cancel-reason"' in await resp.text()
    resp = await client.post(url + "/cancel", data={"csrf": csrf, "reason": "场地临时占用"})
    assert resp.status == 200 and 'id="cancelled"' in await resp.text()
    assert (await Activity.get(id=activity.id)).status.value == "cancelled"


# -- funds: drives, offline entries, reversal, refunds --------------------------------------------

async def test_the_committee_runs_a_drive_and_refunds_and_a_unit_records_cash(
        client: TestClient[Any, Any], city: City, fake_wechat: Any) -> None:
    from models.funds import Campaign, Contribution, Refund
    from tests.integration.test_funds import paid_order
    csrf = await staff_session(client)
    form = {"csrf": csrf, "title": "特殊党费", "kind": "special_dues", "target": "10000",
            "ends_at": "2030-01-01T00:00", "draft": "1"}
    resp = await client.post("/console/funds", data={**form, "kind": "zone_fund"})
    assert resp.status == 422 and 'data-field="_"' in await resp.text()  # the model's own rule, above the form
    resp = await client.post("/console/funds", data={**form, "target": "一万"})
    assert resp.status == 422 and 'data-field="target"' in await resp.text()
    resp = await client.post("/console/funds", data=form, allow_redirects=False)
    assert resp.status == 303
    drive = await Campaign.get()
    assert (drive.state.value, drive.target_fen) == ("draft", 1_000_000)
    url = f"/console/funds/{drive.id}"
    assert resp.headers["Location"] == url
    resp = await client.post(url + "/open", data={"csrf": csrf})
    assert resp.status == 200 and 'id="offline"' in await resp.text()
    resp = await client.post(url + "/open", data={"csrf": csrf})
    assert resp.status == 409 and 'data-field="state"' in await resp.text()  # no reopening, as the API
    # a member pays online; the committee refunds part of it, once for the same form
    member = city.members[city.units[city.zones[0].id][0].id][0]
    order = await paid_order(client, fake_wechat, await wechat_login(client, member.openid or ""), drive.id, 10_000)
    page = await (await client.get(url)).text()
    assert f'id="contribution-{order["contribution_id"]}"' in page
    idem = re.search(r'name="idem" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    refund = f"{url}/contributions/{order['contribution_id']}/refund"
    resp = await client.post(refund, data={"csrf": csrf, "idem": idem, "amount": "200", "reason": "多缴"})
    assert resp.status == 409 and f'data-field="{order["contribution_id"]}-amount"' in await resp.text()
    for _ in range(2):
        resp = await client.post(refund, data={"csrf": csrf, "idem": idem + "x", "amount": "40", "reason": "多缴"})
        assert resp.status == 200 and 'id="done"' in await resp.text()
    assert [r.amount_fen for r in await Refund.all()] == [4000]
    # a unit admin records cash for their unit, sees only their unit, corrects it by reversal
    unit = city.units[city.zones[1].id][0]
    csrf = await admin_session(client, city.admins[unit.id])
    page = await (await client.get(url)).text()
    assert f'id="contribution-{order["contribution_id"]}"' not in page and "/refund" not in page
    cash = {"csrf": csrf, "unit_id": str(unit.id), "amount": "50", "channel": "cash", "receipt_no": "R-001",
            "received_on": "2001-01-01"}
    resp = await client.post(url + "/offline", data={**cash, "received_on": "2099-01-01"})
    assert resp.status == 422 and 'data-field="offline-_"' in await resp.text()  # not in the future (model)
    resp = await client.post(url + "/offline", data={**cash, "received_on": ""})
    assert resp.status == 422 and 'data-field="offline-received_on"' in await resp.text()
    from services import clock
    cash["received_on"] = clock.now().astimezone(clock.SHANGHAI).date().isoformat()
    resp = await client.post(url + "/offline", data=cash)
    assert resp.status == 200, await resp.text()
    entry = await Contribution.get(receipt_no="R-001")
    assert (entry.amount_fen, entry.unit_id) == (5000, unit.id)
    resp = await client.post(url + "/offline", data={**cash, "amount": "60"})
    assert resp.status == 409 and 'data-field="offline-receipt_no"' in await resp.text()  # receipt_no_taken
    reverse = f"{url}/contributions/{entry.id}/reverse"
    resp = await client.post(reverse, data={"csrf": csrf, "reason": "录错金额"})
    assert resp.status == 200 and await Contribution.filter(amount_fen=-5000).count() == 1
    resp = await client.post(reverse, data={"csrf": csrf, "reason": "再冲"})
    assert resp.status == 409 and f'data-field="{entry.id}-reason"' in await resp.text()  # already_reversed
    other = city.units[city.zones[1].id][1]
    resp = await client.post(url + "/offline", data={**cash, "unit_id": str(other.id), "receipt_no": "R-2"})
    assert resp.status == 403  # another unit's money
    assert (await client.post(url + "/close", data={"csrf": csrf})).status == 403


# -- good practice ---------------------------------------------------------------------------------

async def test_a_unit_publishes_good_practice_the_committee_features_it(
        client: TestClient[Any, Any], city: City) -> None:
    from aiohttp import FormData

    from models.notices import Notice
    from models.practices import Practice, PracticeRead
    from tests.integration.test_practices import PDF, PNG
    unit = city.units[city.zones[0].id][0]
    csrf = await admin_session(client, city.admins[unit.id])

    def publish(title: str, *files: tuple[str, bytes, str]) -> FormData:
        form = FormData()
        for k, v in (("csrf", csrf), ("title", title), ("body", "每月一次主题党日，轮流主讲")):
            form.add_field(k, v)
        for name, content, kind in files:
            form.add_field("image", content, filename=name, content_type=kind)
        return form

    resp = await client.post("/console/practices", data=publish(" "))
    assert resp.status == 422 and 'data-field="title"' in await resp.text()
    resp = await client.post("/console/practices", data=publish("轮流主讲", ("a.pdf", PDF, "application/pdf")))
    assert resp.status == 422 and 'data-field="images"' in await resp.text()  # not_an_image, as the API
    assert not await Practice.exists()
    resp = await client.post("/console/practices", data=publish("轮流主讲", ("现场.png", PNG, "image/png")),
                             allow_redirects=False)
    assert resp.status == 303
    practice = await Practice.get()
    assert resp.headers["Location"] == f"/console/practices/{practice.id}"
    assert (practice.unit_id, [i["name"] for i in practice.images]) == (unit.id, ["现场.png"])
    assert (await client.post(f"/console/practices/{practice.id}/feature", data={"csrf": csrf})).status == 403
    csrf = await staff_session(client)
    for _ in range(2):
        resp = await client.get(f"/console/practices/{practice.id}")
        assert resp.status == 200 and "轮流主讲" in await resp.text()
    assert await PracticeRead.filter(practice_id=practice.id).count() == 1  # once per member
    resp = await client.post(f"/console/practices/{practice.id}/feature", data={"csrf": csrf})
    assert resp.status == 200 and 'id="featured"' in await resp.text()
    assert await Notice.filter(title__contains="轮流主讲").count() == 1
    resp = await client.post(f"/console/practices/{practice.id}/feature", data={"csrf": csrf})
    assert resp.status == 409 and 'data-field="feature"' in await resp.text()
    assert await Notice.filter(title__contains="轮流主讲").count() == 1
    text = await (await client.get("/console/practices?featured=1")).text()
    assert "轮流主讲" in text and "推介" in text


async def test_the_committee_edits_the_evaluation_rubric(client: TestClient[Any, Any], city: City) -> None:
    from models.governance import Rubric
    from services import clock, evaluation
    year = clock.quarter_of(clock.now())[0]
    metrics = list(evaluation.METRICS)
    csrf = await staff_session(client)
    page = await client.get(f"/console/evaluation?year={year}")
    assert 'id="rubric"' in await page.text()
    zero = {"csrf": csrf, "year": str(year), **{f"weight-{m}": "0" for m in metrics}}
    resp = await client.post("/console/evaluation/rubric", data=zero)
    assert resp.status == 422 and 'data-field="weights"' in await resp.text()  # at least one metric
    resp = await client.post("/console/evaluation/rubric", data={**zero, f"weight-{metrics[0]}": "101"})
    assert resp.status == 422 and 'data-field="weights"' in await resp.text()
    assert not await Rubric.exists(year=year)
    resp = await client.post("/console/evaluation/rubric",
                             data={**zero, f"weight-{metrics[0]}": "60", f"weight-{metrics[1]}": "40"})
    assert resp.status == 200 and 'id="done"' in await resp.text()
    stored = (await Rubric.get(year=year)).weights
    assert (stored[metrics[0]], stored[metrics[1]], sum(stored.values())) == (60, 40, 100)


async def test_a_liaison_may_not_edit_the_rubric(client: TestClient[Any, Any], city: City) -> None:
    from models.org import Liaison, Member, Role
    from services import clock, evaluation
    from services.auth import hash_password
    liaison = await Member.create(name="联络员乙", phone="13800007777", role=Role.LIAISON, username="liaison-b",
                                  password_hash=hash_password(STAFF_PASSWORD))
    await Liaison.create(member_id=liaison.id, zone_id=city.zones[0].id)
    form = await _login_form(client)
    resp = await client.post("/console/login", data={"csrf": form, "username": "liaison-b",
                                                     "password": STAFF_PASSWORD}, allow_redirects=False)
    assert resp.status == 303
    page = await client.get("/console/evaluation")
    text = await page.text()
    assert page.status == 200 and 'id="rubric"' not in text
    csrf = CSRF.search(text).group(1)  # type: ignore[union-attr]
    year = clock.quarter_of(clock.now())[0]
    metric = next(iter(evaluation.METRICS))
    resp = await client.post("/console/evaluation/rubric", data={"csrf": csrf, "year": str(year), f"weight-{metric}": "1"})
    assert resp.status == 403 and 'data-code="forbidden"' in await resp.text()  # the committee's alone


async def test_another_unit_of_the_zone_comments_on_the_draft(client: TestClient[Any, Any], city: City) -> None:
    from models.governance import PlanEvent
    from models.org import Rotation
    _travel(2026, 10, 8, 9)
    await _rotations(city)
    zone = city.zones[0]
    rotation = await Rotation.get(zone_id=zone.id, year=2026, quarter=4)
    url = f"/console/rotations/{rotation.id}"
    csrf = await admin_session(client, city.admins[rotation.unit_id])
    resp = await client.post(url + "/plan", data={"csrf": csrf, "goals": "抓好主题教育"})
    assert resp.status == 200 and "草拟中" in await resp.text()
    other = next(u for u in city.units[zone.id] if u.id != rotation.unit_id)
    csrf = await admin_session(client, city.admins[other.id])
    page = await (await client.get(url)).text()
    assert 'action="/console/rotations/%d/plan/comments"' % rotation.id in page and 'id="plan-form"' not in page
    resp = await client.post(url + "/plan/comments", data={"csrf": csrf, "body": " "})
    assert resp.status == 422 and 'data-field="body"' in await resp.text()
    resp = await client.post(url + "/plan", data={"csrf": csrf, "goals": "改别人的计划"})
    assert resp.status == 403  # only the duty unit writes it
    resp = await client.post(url + "/plan/comments", data={"csrf": csrf, "body": "建议增加志愿服务"})
    assert resp.status == 200 and "建议增加志愿服务" in await resp.text()
    assert await PlanEvent.filter(kind="commented", unit_id=other.id).count() == 1


async def test_a_unit_admin_sets_a_password_on_the_console_and_the_error_shows_beside_the_field(
        client: TestClient[Any, Any], city: City) -> None:
    unit = city.units[city.zones[0].id][0]
    csrf = await admin_session(client, city.admins[unit.id])
    assert (await client.get("/console/account")).status == 200
    resp = await client.post("/console/account", data={"csrf": csrf, "username": "u1-admin",
                                                       "password": "short"})
    assert resp.status == 422 and 'data-field="password"' in await resp.text()
    resp = await client.post("/console/account", data={"csrf": csrf, "username": "u1-admin",
                                                       "password": "a-long-passphrase"})
    assert resp.status == 200 and 'id="done"' in await resp.text()
    resp = await client.post("/console/account", data={"csrf": csrf, "username": "u1-admin",
                                                       "password": "another-passphrase"})
    assert resp.status == 403 and 'data-field="current_password"' in await resp.text()
    await staff_session(client)
    assert (await client.get("/console/account")).status == 403  # staff: the committee resets theirs


# -- long lists -------------------------------------------------------------------------------------

async def test_long_lists_page_back_and_forth(client: TestClient[Any, Any], city: City) -> None:
    """The audit log and a drive's contributions show their newest page, then older ones by
    `?before=`, with a way back; a cursor that is not an id is refused, not a 500."""
    from models.audit import AuditEntry
    from models.funds import Campaign, Channel, Contribution, ContributionStatus
    from services import clock
    csrf = await staff_session(client)
    await AuditEntry.bulk_create([AuditEntry(at=clock.now(), action="test.paged", target_type="test",
                                             target_id=n, detail={}) for n in range(130)])
    entries = await AuditEntry.all().order_by("-id").values_list("id", flat=True)
    page = await (await client.get("/console/audit")).text()
    older = re.search(r'<a href="([^"]+)" rel="next">', page)
    assert older and older.group(1) == f"/console/audit?before={entries[99]}" and "← 最新" not in page
    page = await (await client.get(older.group(1))).text()
    assert f"test #{130 - 101}" in page and "test #129<" not in page  # the 101st newest, not the newest
    assert 'rel="next"' not in page and '<a href="/console/audit">← 最新</a>' in page
    for bad in ("x", "-1", "1" * 13):
        resp = await client.get(f"/console/audit?before={bad}")
        assert resp.status == 400 and "翻页参数不正确" in await resp.text()

    form = {"csrf": csrf, "title": "捐款", "kind": "donation", "target": "", "ends_at": "2030-01-01T00:00"}
    assert (await client.post("/console/funds", data=form, allow_redirects=False)).status == 303
    drive = await Campaign.get()
    unit = city.units[city.zones[0].id][0]
    await Contribution.bulk_create([
        Contribution(campaign_id=drive.id, unit_id=unit.id, zone_id=unit.zone_id, channel=Channel.CASH,
                     status=ContributionStatus.PAID, amount_fen=100, receipt_no=f"R-{n}", paid_at=clock.now())
        for n in range(120)])
    ids = await Contribution.all().order_by("-id").values_list("id", flat=True)
    url = f"/console/funds/{drive.id}"
    page = await (await client.get(url)).text()
    assert page.count('id="contribution-') == 100 and f'id="contribution-{ids[0]}"' in page
    older = re.search(r'<a href="([^"]+)" rel="next">', page)
    assert older and older.group(1) == f"{url}?before={ids[99]}"
    page = await (await client.get(older.group(1))).text()
    assert page.count('id="contribution-') == 20 and f'id="contribution-{ids[100]}"' in page


async def test_supervision_narrows_to_one_zone(client: TestClient[Any, Any], city: City) -> None:
    """Staff narrow the supervision list to a zone they govern (?zone_id=, kept while paging);
    a unit admin has no zones to pick; a zone that is not an id is a 400 page, not a 500."""
    staff = await staff_login(client)
    first, second = city.zones[0], city.zones[1]
    for zone, title in ((first, "一区的事项"), (second, "二区的事项")):
        r = await client.post("/api/v1/supervision-items", headers=bearer(staff), json={
            "title": title, "due_at": "2030-01-01T00:00:00+08:00", "zone_ids": [zone.id]})
        assert r.status == 201, await r.text()
    await staff_session(client)
    page = await (await client.get("/console/supervision")).text()
    assert "一区的事项" in page and "二区的事项" in page and 'name="zone_id"' in page
    page = await (await client.get(f"/console/supervision?zone_id={first.id}")).text()
    assert "一区的事项" in page and "二区的事项" not in page
    assert f'<option value="{first.id}" selected>' in page
    for bad in ("x", "-1", "1" * 10):
        resp = await client.get(f"/console/supervision?zone_id={bad}")
        assert resp.status == 400 and "网络区参数不正确" in await resp.text()

    client.session.cookie_jar.clear()
    unit = city.units[first.id][0]
    await admin_session(client, city.admins[unit.id])
    page = await (await client.get("/console/supervision")).text()
    assert "一区的事项" in page and 'name="zone_id"' not in page
    page = await (await client.get(f"/console/supervision?zone_id={second.id}")).text()
    assert "二区的事项" not in page  # another zone's items stay out of sight


async def test_the_audit_log_narrows_to_a_kind_of_change_and_a_zone(
        client: TestClient[Any, Any], city: City) -> None:
    """The console's audit log filters as the API does: an action or its family (`?action=`),
    a zone (`?zone_id=`); the families on record are offered; a malformed action is a 400 page."""
    from models.audit import AuditEntry
    from services import clock
    first, second = city.zones[0], city.zones[1]
    await AuditEntry.bulk_create([
        AuditEntry(at=clock.now(), action="refund.requested", target_type="contribution", target_id=1,
                   zone_id=first.id, detail={}),
        AuditEntry(at=clock.now(), action="refund.success", target_type="contribution", target_id=2,
                   zone_id=second.id, detail={}),
        AuditEntry(at=clock.now(), action="member.role_changed", target_type="member", target_id=3,
                   zone_id=first.id, detail={})])
    await staff_session(client)
    page = await (await client.get("/console/audit")).text()
    assert '<option value="refund">' in page and '<option value="member">' in page
    page = await (await client.get("/console/audit?action=refund")).text()
    assert "contribution #1" in page and "contribution #2" in page and "member #3" not in page
    page = await (await client.get(f"/console/audit?action=refund&zone_id={first.id}")).text()
    assert "contribution #1" in page and "contribution #2" not in page
    page = await (await client.get("/console/audit?action=refund.success")).text()
    assert "contribution #2" in page and "contribution #1" not in page
    for bad in ("x y", "退款", "a" * 65):
        resp = await client.get("/console/audit", params={"action": bad})
        assert resp.status == 400 and "操作名称不正确" in await resp.text()
