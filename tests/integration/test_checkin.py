"""Check-in: every error path of the venue code, personal passes and the offline batch, attendance."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from models.activities import Activity, Checkin
from server.keys import PASS_SIGNER
from services import clock, passes
from tests.integration.test_activities import create
from tests.support import City, bearer, staff_login, wechat_login

VENUE = {"lat": 30.2741, "lng": 120.1551}  # a venue; 0.001 deg of latitude is about 111 m


async def _lesson(client: TestClient[Any, Any], city: City, **extra: Any) -> dict[str, Any]:
    staff = await staff_login(client)
    zone = city.zones[0]
    activity = await create(client, staff, zone_id=zone.id, starts_in=timedelta(hours=3), **extra)
    people = [m for u in city.units[zone.id] for m in city.members[u.id]]
    tokens = {}
    for m in people[:3]:
        tokens[m.id] = await wechat_login(client, m.openid or "")
        await client.post(f"/api/v1/activities/{activity['id']}/signup", headers=bearer(tokens[m.id]))
    return {"staff": staff, "activity": activity, "people": people, "tokens": tokens}


async def _code(client: TestClient[Any, Any], staff: str, aid: int) -> str:
    r = await client.get(f"/api/v1/activities/{aid}/checkin-code", headers=bearer(staff))
    body = await r.json()
    assert r.status == 200 and body["svg"].startswith("<svg")
    return str(body["token"])


async def _checkin(client: TestClient[Any, Any], token: str, aid: int, code: str,
                   **where: float) -> tuple[int, dict[str, Any]]:
    r = await client.post(f"/api/v1/activities/{aid}/checkin", json={"token": code, **where},
                          headers=bearer(token))
    return r.status, await r.json()


async def test_venue_code_happy_path_counts_once(client: TestClient[Any, Any], city: City) -> None:
    s = await _lesson(client, city)
    aid = s["activity"]["id"]
    clock.travel(timedelta(hours=2, minutes=45))  # check-in opens 30 min before the start
    code = await _code(client, s["staff"], aid)
    member_id, token = next(iter(s["tokens"].items()))
    status, first = await _checkin(client, token, aid, code)
    assert status == 200 and first["first_time"] is True and first["member_id"] == member_id
    status, again = await _checkin(client, token, aid, code)
    assert status == 200 and again["first_time"] is False
    assert await Checkin.filter(activity_id=aid).count() == 1
    assert (await Activity.get(id=aid)).checked_in == 1
    # The previous 30-second step is still accepted; the one before is not.
    clock.travel(timedelta(seconds=passes.STEP_S))
    other = list(s["tokens"].values())[1]
    assert (await _checkin(client, other, aid, code))[0] == 200
    clock.travel(timedelta(seconds=passes.STEP_S))
    third = list(s["tokens"].values())[2]
    status, body = await _checkin(client, third, aid, code)
    assert (status, body["code"]) == (409, "checkin_code_expired")


async def test_every_venue_code_error_has_its_own_code(client: TestClient[Any, Any], city: City) -> None:
    s = await _lesson(client, city)
    aid = s["activity"]["id"]
    token = next(iter(s["tokens"].values()))
    code = await _code(client, s["staff"], aid)
    status, body = await _checkin(client, token, aid, code)
    assert (status, body["code"]) == (409, "checkin_not_open")
    clock.travel(timedelta(hours=2, minutes=45))
    code = await _code(client, s["staff"], aid)
    act, step, mac = code.split(".")
    other = await create(client, s["staff"], zone_id=city.zones[0].id, starts_in=timedelta(minutes=10))
    other_code = await _code(client, s["staff"], other["id"])
    cases = {
        "checkin_code_invalid": ["garbage", f"{other['id']}.{step}.{mac}", other_code],
        "checkin_code_forged": [f"{act}.{step}.{'A' * len(mac)}", f"{act}.{int(step) + 5}.{mac}"],
    }
    for expected, codes in cases.items():
        for c in codes:
            status, body = await _checkin(client, token, aid, c)
            assert (status, body["code"]) == (409, expected), c
    clock.travel(timedelta(hours=3))  # past the end
    code_late = await _code(client, s["staff"], aid)
    status, body = await _checkin(client, token, aid, code_late)
    assert (status, body["code"]) == (409, "checkin_closed")


async def test_geofence_and_signup_rules(client: TestClient[Any, Any], city: City) -> None:
    s = await _lesson(client, city, radius_m=200, **VENUE)
    aid = s["activity"]["id"]
    clock.travel(timedelta(hours=2, minutes=45))
    code = await _code(client, s["staff"], aid)
    token = next(iter(s["tokens"].values()))
    status, body = await _checkin(client, token, aid, code)
    assert (status, body["code"]) == (409, "location_required")
    status, body = await _checkin(client, token, aid, code, lat=VENUE["lat"] + 0.01, lng=VENUE["lng"])
    assert (status, body["code"]) == (409, "too_far") and 1000 < body["distance_m"] < 1200
    status, _ = await _checkin(client, token, aid, code, lat=VENUE["lat"] + 0.001, lng=VENUE["lng"])
    assert status == 200
    stranger = await wechat_login(client, s["people"][5].openid or "")
    status, body = await _checkin(client, stranger, aid, code, **VENUE)
    assert (status, body["code"]) == (404, "not_signed_up")


async def test_walk_ins_are_counted_when_allowed(client: TestClient[Any, Any], city: City) -> None:
    s = await _lesson(client, city, walk_ins=True)
    aid = s["activity"]["id"]
    clock.travel(timedelta(hours=2, minutes=45))
    code = await _code(client, s["staff"], aid)
    walker = await wechat_login(client, s["people"][5].openid or "")
    status, body = await _checkin(client, walker, aid, code)
    assert status == 200 and body["walk_in"] is True
    attendance = await (await client.get(f"/api/v1/activities/{aid}/attendance",
                                         headers=bearer(s["staff"]))).json()
    assert (attendance["signed_up"], attendance["checked_in"], attendance["walk_ins"],
            attendance["absent"]) == (3, 1, 1, 3)


async def test_personal_pass_scans_live_and_offline(client: TestClient[Any, Any], city: City) -> None:
    s = await _lesson(client, city)
    aid = s["activity"]["id"]
    ids = list(s["tokens"])
    my_pass = await (await client.get("/api/v1/me/pass", headers=bearer(s["tokens"][ids[0]]))).json()
    key = await (await client.get("/api/v1/checkin/pass-key")).json()
    assert key == {"alg": "Ed25519", "public_key": my_pass["public_key"]}
    # Verifiable without the server: the public key alone checks the signature.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    _, payload, sig = my_pass["token"].split(".")
    Ed25519PublicKey.from_public_bytes(passes._unb64(key["public_key"])).verify(
        passes._unb64(sig), payload.encode())

    second = await (await client.get("/api/v1/me/pass", headers=bearer(s["tokens"][ids[1]]))).json()
    signer = client.app[PASS_SIGNER]
    expired = signer.issue(member_id=ids[2], unit_id=None, exp=int(clock.now().timestamp()) - 1)
    forged = my_pass["token"][:-4] + ("AAAA" if not my_pass["token"].endswith("AAAA") else "BBBB")
    clock.travel(timedelta(hours=2, minutes=45))
    scanned_at = clock.now().isoformat()
    scans = [
        {"pass_token": my_pass["token"], "nonce": "scan-0001", "scanned_at": scanned_at},
        {"pass_token": second["token"], "nonce": "scan-0002"},
        {"pass_token": forged, "nonce": "scan-0003"},
        {"pass_token": expired, "nonce": "scan-0004"},
        {"pass_token": "not-a-pass", "nonce": "scan-0005"},
    ]
    r = await client.post(f"/api/v1/activities/{aid}/pass-scans", json={"scans": scans},
                          headers=bearer(s["staff"]))
    results = (await r.json())["results"]
    assert [(x["status"], x.get("code")) for x in results] == [
        ("checked_in", None), ("checked_in", None), ("error", "pass_forged"),
        ("error", "pass_expired"), ("error", "pass_invalid")]
    # The same upload retried: the same nonces count once.
    r = await client.post(f"/api/v1/activities/{aid}/pass-scans", json={"scans": scans[:2]},
                          headers=bearer(s["staff"]))
    assert [x["status"] for x in (await r.json())["results"]] == ["duplicate", "duplicate"]
    # A nonce reused with another member's pass is a replay.
    r = await client.post(f"/api/v1/activities/{aid}/pass-scans", headers=bearer(s["staff"]),
                          json={"scans": [{"pass_token": second["token"], "nonce": "scan-0001"}]})
    assert (await r.json())["results"][0]["code"] == "scan_replayed"
    assert await Checkin.filter(activity_id=aid).count() == 2
    assert (await Activity.get(id=aid)).checked_in == 2
    # Members cannot scan passes; the organiser of another zone cannot either.
    r = await client.post(f"/api/v1/activities/{aid}/pass-scans", json={"scans": scans[:1]},
                          headers=bearer(s["tokens"][ids[0]]))
    assert r.status == 403


async def test_attendance_history_and_zone_figures(client: TestClient[Any, Any], city: City) -> None:
    s = await _lesson(client, city)
    aid = s["activity"]["id"]
    clock.travel(timedelta(hours=2, minutes=45))
    code = await _code(client, s["staff"], aid)
    first_id, first = next(iter(s["tokens"].items()))
    await _checkin(client, first, aid, code)
    att = await (await client.get(f"/api/v1/activities/{aid}/attendance", headers=bearer(s["staff"]))).json()
    assert (att["signed_up"], att["checked_in"], att["absent"]) == (3, 1, 2)
    assert att["attendance_rate"] == round(1 / 3, 4)
    assert sum(u["signed_up"] for u in att["by_unit"]) == 3
    assert first_id not in {m["member_id"] for m in att["absent_members"]}
    history = await (await client.get("/api/v1/me/activities", headers=bearer(first))).json()
    assert history["items"][0]["activity_id"] == aid and history["items"][0]["checked_in_at"]
    year, _ = clock.quarter_of(clock.now())
    zone_id = city.zones[0].id
    figures = await (await client.get(f"/api/v1/zones/{zone_id}/attendance?year={year}",
                                      headers=bearer(s["staff"]))).json()
    assert figures["attendee_times"] == 1 and figures["activities"] == 1
    member_view = await client.get(f"/api/v1/zones/{zone_id}/attendance?year={year}", headers=bearer(first))
    assert member_view.status == 403
