"""What an outsider and a curious insider tried: attachments by hash, scopes beyond one's zone,
unlimited bind guesses, password spraying, and input the schema should never have let in."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient

from models.org import Liaison, Member, Role, Rotation
from services import clock
from services.auth import hash_password
from tests.support import STAFF_PASSWORD, City, bearer, run_workers, staff_login, wechat_login

PDF = b"%PDF-1.4\n" + b"0" * 64


async def _setup(client: TestClient[Any, Any], city: City) -> dict[str, Any]:
    """Rotations now; each zone's duty unit and a member of another unit; staff."""
    staff = await staff_login(client)
    year, _ = clock.quarter_of(clock.now())
    for y in (year, year + 1):
        r = await client.post("/api/v1/rotations/generate", json={"year": y}, headers=bearer(staff))
        assert r.status == 200
    now = clock.now()
    out: dict[str, Any] = {"staff": staff}
    for n, zone in enumerate(city.zones, start=1):
        duty = await Rotation.get(zone_id=zone.id, starts_at__lte=now, ends_at__gt=now)
        other = next(u for u in city.units[zone.id] if u.id != duty.unit_id)
        out[f"z{n}"] = zone.id
        out[f"rotation{n}"] = duty
        out[f"duty{n}"] = await wechat_login(client, city.admins[duty.unit_id].openid or "")
        out[f"member{n}"] = await wechat_login(client, city.members[other.id][0].openid or "")
        out[f"unit{n}"] = other.id
    return out


async def _upload(client: TestClient[Any, Any], token: str, content: bytes = PDF,
                  name: str = "会议纪要.pdf") -> dict[str, Any]:
    form = FormData()
    form.add_field("file", content, filename=name, content_type="application/pdf")
    r = await client.post("/api/v1/attachments", data=form, headers=bearer(token))
    assert r.status == 201, await r.text()
    return await r.json()


async def _liaison(client: TestClient[Any, Any], username: str, zone_ids: list[int]) -> str:
    m = await Member.create(name=username, phone="13811110000", role=Role.LIAISON, username=username,
                            password_hash=hash_password(STAFF_PASSWORD))
    for z in zone_ids:
        await Liaison.create(member_id=m.id, zone_id=z)
    return await staff_login(client, username)


# -- attachments belong to what they are attached to -------------------------------------------

async def test_a_notice_attachment_is_served_to_its_recipients_only(
        client: TestClient[Any, Any], city: City, settings: Any) -> None:
    s = await _setup(client, city)
    pdf = await _upload(client, s["duty2"], PDF + b"zone-2")
    r = await client.post("/api/v1/notices", headers=bearer(s["duty2"]), json={
        "title": "二区通知", "audience": {"zone_ids": [s["z2"]]}, "attachments": [pdf]})
    assert r.status == 202, await r.text()
    await run_workers(settings)
    mine = await client.get(pdf["url"], headers=bearer(s["member2"]))
    assert mine.status == 200 and await mine.read() == PDF + b"zone-2"
    assert mine.headers["X-Content-Type-Options"] == "nosniff"
    assert mine.headers["Content-Disposition"].startswith("attachment; filename*=UTF-8''")
    other = await client.get(pdf["url"], headers=bearer(s["member1"]))  # has the hash, not the notice
    assert other.status == 404 and (await other.json())["code"] == "attachment_not_found"
    assert (await client.get(pdf["url"], headers=bearer(s["staff"]))).status == 200


async def test_a_ledger_receipt_stays_in_its_zone_and_cannot_be_cited_elsewhere(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    receipt = await _upload(client, s["duty2"], PDF + b"receipt")
    line = {"direction": "income", "category": "other_income", "amount_fen": 500,
            "description": "捐赠", "occurred_on": clock.now().astimezone(clock.SHANGHAI).date().isoformat()}
    r = await client.post(f"/api/v1/zones/{s['z2']}/fund-entries", headers=bearer(s["duty2"]),
                          json={**line, "attachments": [receipt]})
    assert r.status == 201, await r.text()
    assert (await client.get(receipt["url"], headers=bearer(s["member2"]))).status == 200
    assert (await client.get(receipt["url"], headers=bearer(s["member1"]))).status == 404
    # Zone 1's duty unit knows the hash and cites it in its own ledger: refused.
    r = await client.post(f"/api/v1/zones/{s['z1']}/fund-entries", headers=bearer(s["duty1"]),
                          json={**line, "attachments": [receipt]})
    assert r.status == 403 and (await r.json())["code"] == "attachment_not_citable"


async def test_supervision_reports_take_uploaded_files(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    admin = city.admins[s["unit1"]]
    r = await client.post("/api/v1/supervision-items", headers=bearer(s["staff"]), json={
        "title": "整改", "due_at": (clock.now() + timedelta(days=3)).isoformat(),
        "unit_ids": [s["unit1"]]})
    item = await r.json()
    token = await wechat_login(client, admin.openid or "")
    report = await _upload(client, token, PDF + b"report")
    r = await client.post(f"/api/v1/supervision-items/{item['id']}/progress", headers=bearer(token),
                          json={"note": "已整改", "done": True, "attachments": [report]})
    assert r.status == 200, await r.text()
    assert (await client.get(report["url"], headers=bearer(s["staff"]))).status == 200
    assert (await client.get(report["url"], headers=bearer(s["duty2"]))).status == 404


# -- scopes ------------------------------------------------------------------------------------

async def test_a_duty_unit_addresses_only_its_zone_and_stays_in_its_quarter(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    rotation: Rotation = s["rotation1"]
    start = clock.now() + min(timedelta(hours=2), (rotation.ends_at - clock.now()) / 3)
    base = {"zone_id": s["z1"], "kind": "party_lesson", "title": "党课",
            "starts_at": start.isoformat(), "ends_at": (start + timedelta(minutes=30)).isoformat()}
    for audience in ({"all": True}, {"zone_ids": [s["z2"]]}, {"unit_ids": [s["unit2"]]},
                     {"roles": ["unit_admin"]}):
        r = await client.post("/api/v1/activities", headers=bearer(s["duty1"]),
                              json={**base, "audience": audience})
        assert r.status == 403 and (await r.json())["code"] == "audience_out_of_scope", audience
    r = await client.post("/api/v1/activities", headers=bearer(s["duty1"]), json=base)
    assert r.status == 201
    activity = await r.json()
    later = rotation.ends_at + timedelta(days=1)
    r = await client.patch(f"/api/v1/activities/{activity['id']}", headers=bearer(s["duty1"]),
                           json={"starts_at": later.isoformat(),
                                 "ends_at": (later + timedelta(hours=1)).isoformat()})
    assert r.status == 403 and (await r.json())["code"] == "outside_rotation"
    r = await client.patch(f"/api/v1/activities/{activity['id']}", headers=bearer(s["duty1"]),
                           json={"audience": {"all": True}})
    assert r.status == 403 and (await r.json())["code"] == "audience_out_of_scope"


async def test_another_zones_contest_hides_its_entries_and_results(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    start = clock.now() + timedelta(hours=1)
    r = await client.post("/api/v1/activities", headers=bearer(s["staff"]), json={
        "zone_id": s["z2"], "kind": "contest", "title": "演讲比赛",
        "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()})
    contest = await r.json()
    for path in ("", "/entries", "/results"):
        r = await client.get(f"/api/v1/activities/{contest['id']}{path}", headers=bearer(s["member1"]))
        assert r.status == 404 and (await r.json())["code"] == "activity_not_found", path
        assert (await client.get(f"/api/v1/activities/{contest['id']}{path}",
                                 headers=bearer(s["member2"]))).status == 200


async def test_a_liaison_acts_in_their_zones_only(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    mine, theirs = await _liaison(client, "liaison-z1", [s["z1"]]), await _liaison(client, "liaison-z2", [s["z2"]])
    today = clock.now().astimezone(clock.SHANGHAI).date().isoformat()
    r = await client.post(f"/api/v1/zones/{s['z1']}/fund-entries", headers=bearer(s["staff"]), json={
        "direction": "income", "category": "committee_subsidy", "amount_fen": 10_000,
        "description": "场地补助", "occurred_on": today})
    subsidy = await r.json()
    r = await client.post(f"/api/v1/zones/{s['z1']}/fund-entries/{subsidy['id']}/approve",
                          headers=bearer(theirs), json={})
    assert r.status == 403
    r = await client.post(f"/api/v1/zones/{s['z1']}/fund-entries/{subsidy['id']}/approve",
                          headers=bearer(mine), json={})
    assert r.status == 200 and (await r.json())["status"] == "booked"
    due = (clock.now() + timedelta(days=2)).isoformat()
    r = await client.post("/api/v1/supervision-items", headers=bearer(theirs),
                          json={"title": "越界", "due_at": due, "unit_ids": [s["unit1"]]})
    assert r.status == 403
    r = await client.post("/api/v1/supervision-items", headers=bearer(mine),
                          json={"title": "本区", "due_at": due, "zone_ids": [s["z1"]]})
    assert r.status == 201
    for path in ("/api/v1/rotations/generate", "/api/v1/campaigns"):  # committee-wide by design
        assert (await client.post(path, headers=bearer(mine), json={})).status == 403
    assert (await client.get(f"/api/v1/units/{s['unit2']}/members", headers=bearer(mine))).status == 403
    assert (await client.get(f"/api/v1/units/{s['unit1']}/members", headers=bearer(mine))).status == 200


# -- binding and passwords ---------------------------------------------------------------------

async def _ticket(client: TestClient[Any, Any], code: str) -> str:
    r = await client.post("/api/v1/auth/wechat", json={"code": code})
    assert r.status == 403
    return str((await r.json())["bind_ticket"])


async def test_bind_guesses_are_limited_per_wechat_account_across_tickets(
        client: TestClient[Any, Any], city: City) -> None:
    unit = city.units[city.zones[0].id][0]
    codes = []
    for attempt in range(12):  # a fresh login mints a fresh ticket each time
        ticket = await _ticket(client, "test-guesser")
        r = await client.post("/api/v1/auth/bind", json={
            "bind_ticket": ticket, "invite_code": unit.invite_code, "name": f"猜{attempt}",
            "phone": f"139000000{attempt:02d}"})
        codes.append((await r.json())["code"])
    assert codes[:10] == ["bind_mismatch"] * 10 and codes[10:] == ["rate_limited"] * 2


async def test_bind_guesses_are_limited_per_invite_code(client: TestClient[Any, Any], city: City,
                                                        settings: Any) -> None:
    unit = city.units[city.zones[0].id][0]
    limit = settings.bind_failures_per_invite_per_hour
    for n in range(limit):
        ticket = await _ticket(client, f"test-sybil-{n}")
        r = await client.post("/api/v1/auth/bind", json={
            "bind_ticket": ticket, "invite_code": unit.invite_code, "name": "某人", "phone": "13900009999"})
        assert (await r.json())["code"] == "bind_mismatch"
    ticket = await _ticket(client, "test-sybil-last")
    member = city.members[unit.id][0]
    await Member.filter(id=member.id).update(openid=None)
    r = await client.post("/api/v1/auth/bind", json={
        "bind_ticket": ticket, "invite_code": unit.invite_code, "name": member.name, "phone": member.phone})
    assert r.status == 429 and (await r.json())["code"] == "rate_limited"


async def test_password_spraying_is_limited_per_address(client: TestClient[Any, Any], city: City,
                                                        settings: Any) -> None:
    for n in range(settings.login_failures_per_address_per_minute):
        r = await client.post("/api/v1/auth/login", json={"username": f"user{n}", "password": "123456"})
        assert r.status == 401
    r = await client.post("/api/v1/auth/login", json={"username": "staff", "password": STAFF_PASSWORD})
    assert r.status == 429 and int(r.headers["Retry-After"]) >= 1


# -- strict input, one rule for every route ----------------------------------------------------

async def _post(client: TestClient[Any, Any], token: str, path: str, body: Any,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    r = await client.post(path, data=raw, headers={**bearer(token), "Content-Type": "application/json",
                                                   **(headers or {})})
    return r.status, await r.json()


async def test_types_are_strict_and_unknown_fields_refused(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    r = await client.post("/api/v1/campaigns", headers=bearer(s["staff"]), json={
        "title": "特殊党费", "kind": "special_dues", "ends_at": (clock.now() + timedelta(days=1)).isoformat()})
    campaign = await r.json()
    path = f"/api/v1/campaigns/{campaign['id']}/contributions"
    for amount in (True, "100", 1.5, 1e30):
        status, body = await _post(client, s["member1"], path, {"amount_fen": amount},
                                   {"Idempotency-Key": f"k-{amount!r}"})
        assert status == 422 and body["errors"][0]["loc"] == ["body", "amount_fen"], amount
        assert body["errors"][0]["msg"] == "应为整数"  # field messages in Chinese too
    # A whole number written with a fraction or an exponent is an integer (as JSON Schema says).
    for amount in ("2389.0", "1e3"):
        status, body = await _post(client, s["member1"], path, '{"amount_fen": %s}' % amount,
                                   {"Idempotency-Key": f"k-{amount}"})
        assert status == 201 and body["amount_fen"] == int(float(amount)), body
    # A business rule on one field answers the 422 shape too, pointing at the field.
    status, body = await _post(client, s["member1"], path, {"amount_fen": 10_000_001},
                               {"Idempotency-Key": "k-too-much"})
    assert (status, body["code"]) == (422, "amount_out_of_range")
    assert body["errors"] == [{"loc": ["body", "amount_fen"], "msg": body["message"],
                               "type": "amount_out_of_range"}]
    status, body = await _post(client, s["member1"], path, {"amount_fen": 100, "amout_fen": 1},
                               {"Idempotency-Key": "k-extra"})
    assert status == 422 and body["errors"][0]["loc"] == ["body", "amout_fen"]
    status, body = await _post(client, s["staff"], "/api/v1/notices", {
        "title": "x", "audience": {"all": True}, "require_ack": 1})
    assert status == 422 and body["errors"][0]["loc"] == ["body", "require_ack"]


async def test_control_characters_dates_and_depth_are_refused_before_any_service(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    status, body = await _post(client, s["staff"], "/api/v1/notices",
                               {"title": "a\u0000b", "audience": {"all": True}})
    assert (status, body["errors"][0]["loc"]) == (422, ["body", "title"])
    for when in ("0368-07-23T00:00:00+00:00", "9999-12-31T23:59:59+08:00",
                 "2026-12-01T09:00:00+08:05:43", "2026-12-01T09:00:00"):
        status, body = await _post(client, s["staff"], "/api/v1/supervision-items",
                                   {"title": "x", "due_at": when, "unit_ids": [s["unit1"]]})
        assert (status, body["errors"][0]["loc"]) == (422, ["body", "due_at"]), when
    deep = "[" * 1000 + "]" * 1000
    status, body = await _post(client, s["staff"], "/api/v1/notices", deep)
    assert (status, body["code"], body["errors"][0]["type"]) == (422, "invalid_request", "json_too_deep")
    r = await client.post("/api/v1/auth/wechat", data="{" + '"a":' * 0 + "[" * 5000 + "]" * 5000 + "}")
    assert r.status == 422  # unauthenticated too


async def test_null_for_a_required_field_in_a_patch_is_refused(client: TestClient[Any, Any],
                                                                city: City) -> None:
    s = await _setup(client, city)
    start = clock.now() + timedelta(days=1)
    r = await client.post("/api/v1/activities", headers=bearer(s["staff"]), json={
        "zone_id": s["z1"], "kind": "other", "title": "读书会", "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(), "capacity": 10})
    activity = await r.json()
    for field in ("title", "starts_at", "walk_ins", "audience"):
        r = await client.patch(f"/api/v1/activities/{activity['id']}", headers=bearer(s["staff"]),
                               json={field: None})
        assert r.status == 422 and (await r.json())["errors"][0]["loc"] == ["body", field], field
    r = await client.patch(f"/api/v1/activities/{activity['id']}", headers=bearer(s["staff"]),
                           json={"capacity": None})  # null lifts the limit: allowed
    assert r.status == 200 and (await r.json())["capacity"] is None


async def test_a_control_character_in_a_part_header_is_a_400(client: TestClient[Any, Any],
                                                             city: City) -> None:
    staff = await staff_login(client)
    for path in ("/api/v1/attachments", "/api/v1/org/import"):
        body = (b'--BB\r\nContent-Disposition: form-data; name="file"; filename="a\x01b.pdf"\r\n'
                b"Content-Type: application/pdf\r\n\r\n" + PDF + b"\r\n--BB--\r\n")
        r = await client.post(path, data=body, headers={
            **bearer(staff), "Content-Type": "multipart/form-data; boundary=BB"})
        assert r.status == 400 and (await r.json())["code"] == "multipart_invalid", path


async def test_a_request_aiohttp_cannot_parse_answers_our_json_error(client: TestClient[Any, Any]) -> None:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Probe: a\x00b\r\n\r\n")
    await writer.drain()
    head, _, body = (await reader.read()).partition(b"\r\n\r\n")
    writer.close()
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert lines[0].split()[1] == "400" and headers["content-type"].startswith("application/json")
    assert headers["x-request-id"] and json.loads(body)["code"] == "bad_request"


async def test_an_upload_without_a_content_type_is_typed_by_its_bytes(client: TestClient[Any, Any],
                                                                      city: City) -> None:
    s = await _setup(client, city)
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    for content, name, expected in ((png, "照片.png", "image/png"), (PDF, "纪要", "application/pdf")):
        body = (b'--BB\r\nContent-Disposition: form-data; name="file"; filename="'
                + name.encode() + b'"\r\n\r\n' + content + b"\r\n--BB--\r\n")
        r = await client.post("/api/v1/attachments", data=body, headers={
            **bearer(s["duty1"]), "Content-Type": "multipart/form-data; boundary=BB"})
        assert r.status == 201, await r.text()
        assert (await r.json())["content_type"] == expected
    body = (b'--BB\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
            b"plain text\r\n--BB--\r\n")
    r = await client.post("/api/v1/attachments", data=body, headers={
        **bearer(s["duty1"]), "Content-Type": "multipart/form-data; boundary=BB"})
    answer = await r.json()
    assert (r.status, answer["code"], answer["errors"][0]["loc"]) == (422, "attachment_rejected", ["body", "file"])


async def test_every_member_of_staff_sees_a_city_wide_activity(client: TestClient[Any, Any],
                                                                city: City) -> None:
    s = await _setup(client, city)
    start = clock.now() + timedelta(days=2)
    r = await client.post("/api/v1/activities", headers=bearer(s["staff"]), json={
        "zone_id": None, "kind": "party_lesson", "title": "全市党课", "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat()})
    activity = await r.json()
    liaison = await _liaison(client, "liaison-z2", [s["z2"]])
    r = await client.get(f"/api/v1/activities/{activity['id']}", headers=bearer(liaison))
    assert r.status == 200, await r.text()
    listed = await (await client.get("/api/v1/activities", headers=bearer(liaison))).json()
    assert activity["id"] in [a["id"] for a in listed["items"]]


async def test_a_zone_that_does_not_exist_is_a_404_before_any_scope(client: TestClient[Any, Any],
                                                                     city: City) -> None:
    s = await _setup(client, city)
    r = await client.get("/api/v1/zones/999999/fund-ledger", headers=bearer(s["member1"]))
    assert (r.status, (await r.json())["code"]) == (404, "zone_not_found")
