"""Contests: entries, zone preliminaries that advance their top N, the committee's final."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from models.org import Rotation
from services import clock
from tests.integration.test_activities import create, generate
from tests.support import City, bearer, staff_login, wechat_login


async def test_preliminaries_then_final(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    await generate(client, staff)
    contest = await create(client, staff, zone_id=None, kind="contest", title="演讲比赛")
    cid = contest["id"]
    year, quarter = clock.quarter_of(clock.now())
    entries: dict[int, list[int]] = {}
    for zone in city.zones:
        entries[zone.id] = []
        for unit in city.units[zone.id][:3]:
            member = city.members[unit.id][0]
            token = await wechat_login(client, member.openid or "")
            r = await client.post(f"/api/v1/activities/{cid}/entries", json={"title": f"作品{member.id}"},
                                  headers=bearer(token))
            assert r.status == 201, await r.text()
            entries[zone.id].append((await r.json())["id"])
            again = await client.post(f"/api/v1/activities/{cid}/entries", json={"title": "再来"},
                                      headers=bearer(token))
            assert (await again.json())["code"] == "already_entered"
        # A unit admin enters for the unit.
        admin = await wechat_login(client, city.admins[city.units[zone.id][3].id].openid or "")
        r = await client.post(f"/api/v1/activities/{cid}/entries", json={"title": "单位作品", "as_unit": True},
                              headers=bearer(admin))
        assert r.status == 201 and (await r.json())["member_id"] is None
        entries[zone.id].append((await r.json())["id"])

    r = await client.post(f"/api/v1/activities/{cid}/rounds/final", headers=bearer(staff),
                          json={"scores": [{"entry_id": entries[city.zones[0].id][0], "score": 1}]})
    assert (await r.json())["code"] == "preliminaries_open"

    for zone in city.zones:
        duty = await Rotation.get(zone_id=zone.id, year=year, quarter=quarter)
        duty_token = await wechat_login(client, city.admins[duty.unit_id].openid or "")
        ids = entries[zone.id]
        scores = [{"entry_id": e, "score": s} for e, s in zip(ids, [70, 95, 95, 60], strict=True)]
        # Every entry must be scored exactly once.
        r = await client.post(f"/api/v1/activities/{cid}/rounds/preliminary", headers=bearer(duty_token),
                              json={"zone_id": zone.id, "advance_top": 2, "scores": scores[:3]})
        assert r.status == 422
        other = next(z for z in city.zones if z.id != zone.id)
        r = await client.post(f"/api/v1/activities/{cid}/rounds/preliminary", headers=bearer(duty_token),
                              json={"zone_id": other.id, "advance_top": 2, "scores": scores})
        assert r.status == 403 and (await r.json())["code"] == "not_on_duty"
        r = await client.post(f"/api/v1/activities/{cid}/rounds/preliminary", headers=bearer(duty_token),
                              json={"zone_id": zone.id, "advance_top": 2, "scores": scores})
        assert r.status == 200, await r.text()
        r = await client.post(f"/api/v1/activities/{cid}/rounds/preliminary", headers=bearer(duty_token),
                              json={"zone_id": zone.id, "advance_top": 2, "scores": scores})
        assert (await r.json())["code"] == "round_closed"

    listing = (await (await client.get(f"/api/v1/activities/{cid}/entries", headers=bearer(staff))).json())["items"]
    finalists = [e["id"] for e in listing if e["advanced"]]
    assert len(finalists) == 4  # ties at 95 share rank 1; top 2 per zone
    assert {e["preliminary_rank"] for e in listing if e["advanced"]} == {1}
    r = await client.post(f"/api/v1/activities/{cid}/rounds/final", headers=bearer(staff),
                          json={"scores": [{"entry_id": e, "score": 90 - i} for i, e in enumerate(finalists)]})
    assert r.status == 200
    results = await (await client.get(f"/api/v1/activities/{cid}/results", headers=bearer(staff))).json()
    kinds = [r["kind"] for r in results["rounds"]]
    assert kinds == ["preliminary", "preliminary", "final"]
    final = results["rounds"][-1]["ranking"]
    assert [e["final_rank"] for e in final] == [1, 2, 3, 4] and final[0]["id"] == finalists[0]
    member = await wechat_login(client, city.members[city.units[city.zones[0].id][0].id][0].openid or "")
    r = await client.post(f"/api/v1/activities/{cid}/rounds/final", headers=bearer(member),
                          json={"scores": [{"entry_id": finalists[0], "score": 1}]})
    assert r.status == 403
    late = await client.post(f"/api/v1/activities/{cid}/entries", json={"title": "迟到"}, headers=bearer(member))
    assert (await late.json())["code"] == "round_closed"  # checked before any earlier entry


async def test_entries_need_a_contest(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    lesson = await create(client, staff, zone_id=city.zones[0].id)
    member = await wechat_login(client, city.members[city.units[city.zones[0].id][0].id][0].openid or "")
    r = await client.post(f"/api/v1/activities/{lesson['id']}/entries", json={"title": "x"}, headers=bearer(member))
    assert r.status == 409 and (await r.json())["code"] == "not_a_contest"


async def test_no_entry_after_the_final_even_from_a_zone_without_a_preliminary(
        client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    await generate(client, staff)
    cid = (await create(client, staff, zone_id=None, kind="contest", title="演讲比赛"))["id"]
    year, quarter = clock.quarter_of(clock.now())
    z1, z2 = city.zones
    member = await wechat_login(client, city.members[city.units[z1.id][0].id][0].openid or "")
    r = await client.post(f"/api/v1/activities/{cid}/entries", json={"title": "作品"}, headers=bearer(member))
    entry = (await r.json())["id"]
    duty = await Rotation.get(zone_id=z1.id, year=year, quarter=quarter)
    duty_token = await wechat_login(client, city.admins[duty.unit_id].openid or "")
    r = await client.post(f"/api/v1/activities/{cid}/rounds/preliminary", headers=bearer(duty_token),
                          json={"zone_id": z1.id, "advance_top": 1, "scores": [{"entry_id": entry, "score": 9}]})
    assert r.status == 200, await r.text()
    r = await client.post(f"/api/v1/activities/{cid}/rounds/final", headers=bearer(staff),
                          json={"scores": [{"entry_id": entry, "score": 9}]})
    assert r.status == 200, await r.text()          # zone 2 had no entries: no preliminary to wait for
    late = await wechat_login(client, city.members[city.units[z2.id][0].id][0].openid or "")
    r = await client.post(f"/api/v1/activities/{cid}/entries", json={"title": "迟到"}, headers=bearer(late))
    assert r.status == 409 and (await r.json())["code"] == "round_closed"
