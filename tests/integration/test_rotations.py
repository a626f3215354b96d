"""Rotations: generation across years, the current duty unit, duty powers at quarter boundaries."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from models.org import Rotation, RotationChange, Unit
from services import clock
from tests.support import City, bearer, staff_login, wechat_login


async def _generate(client: TestClient[Any, Any], token: str, year: int) -> dict[str, Any]:
    r = await client.post("/api/v1/rotations/generate", json={"year": year}, headers=bearer(token))
    assert r.status == 200, await r.text()
    return await r.json()


async def test_strongest_first_each_unit_once_per_round_continuing_across_years(
        client: TestClient[Any, Any]) -> None:
    city = await City.build(zones=2, units_per_zone=6)
    staff = await staff_login(client)
    year, _ = clock.quarter_of(clock.now())
    assert await _generate(client, staff, year) == {"year": year, "created": 8, "existing": 0}
    assert await _generate(client, staff, year + 1) == {"year": year + 1, "created": 8, "existing": 0}
    assert (await _generate(client, staff, year))["created"] == 0  # idempotent
    for zone in city.zones:
        units = await Unit.filter(zone_id=zone.id)
        by_strength = [u.id for u in sorted(units, key=lambda u: (-u.strength, u.id))]
        r = await client.get(f"/api/v1/zones/{zone.id}/rotations", headers=bearer(staff))
        served = [item["unit"]["id"] for item in (await r.json())["items"]]
        assert len(served) == 8
        assert served[0] == by_strength[0]                 # the strongest opens the first round
        assert served[:6] == by_strength                   # one round: every unit once
        assert served[6:] == by_strength[:2]               # the next round continues the order
        assert max(Counter(served[:6]).values()) == 1


async def test_year_filter_and_unknown_zone(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    year, _ = clock.quarter_of(clock.now())
    await _generate(client, staff, year)
    zone = city.zones[0]
    r = await client.get(f"/api/v1/zones/{zone.id}/rotations?year={year + 1}", headers=bearer(staff))
    assert (await r.json())["items"] == []
    r = await client.get("/api/v1/zones/999999/rotations", headers=bearer(staff))
    assert r.status == 404
    r = await client.get(f"/api/v1/zones/{zone.id}/rotations?year=abc", headers=bearer(staff))
    assert r.status == 422 and (await r.json())["errors"][0]["loc"] == ["query", "year"]


async def test_duty_powers_switch_at_the_quarter_boundary(client: TestClient[Any, Any],
                                                          city: City) -> None:
    staff = await staff_login(client)
    year, quarter = clock.quarter_of(clock.now())
    await _generate(client, staff, year)
    await _generate(client, staff, year + 1)
    zone = city.zones[0]
    current = await Rotation.get(zone_id=zone.id, year=year, quarter=quarter)
    following = await Rotation.filter(zone_id=zone.id, starts_at=current.ends_at).first()
    assert following is not None and following.unit_id != current.unit_id
    on_duty = city.admins[current.unit_id]
    next_duty = city.admins[following.unit_id]
    token_now = await wechat_login(client, on_duty.openid or "")
    token_next = await wechat_login(client, next_duty.openid or "")

    async def duty(token: str) -> bool:
        r = await client.get("/api/v1/me", headers=bearer(token))
        return bool((await r.json())["duty"]["on_duty"])

    clock.travel(current.ends_at - clock.now() - timedelta(seconds=1))
    assert await duty(token_now) and not await duty(token_next)   # last second of the quarter
    clock.travel(timedelta(seconds=1))
    assert not await duty(token_now) and await duty(token_next)   # first second of the next


async def test_zone_listing_shows_duty_unit_and_counts(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    year, quarter = clock.quarter_of(clock.now())
    await _generate(client, staff, year)
    member_token = await wechat_login(client, city.members[city.units[city.zones[0].id][0].id][0].openid or "")
    r = await client.get("/api/v1/zones", headers=bearer(member_token))
    items = (await r.json())["items"]
    assert [z["unit_count"] for z in items] == [4, 4]
    strongest = max(city.units[city.zones[0].id], key=lambda u: u.strength)
    # In quarter q of the first generated year the q-th unit of the order is on duty.
    order = sorted(city.units[city.zones[0].id], key=lambda u: (-u.strength, u.id))
    assert items[0]["duty_unit"]["id"] == order[(quarter - 1) % 4].id
    assert order[0].id == strongest.id
    detail = await (await client.get(f"/api/v1/zones/{city.zones[0].id}", headers=bearer(member_token))).json()
    assert len(detail["units"]) == 4 and detail["rotation"]["quarter"] == quarter


async def test_committee_changes_duty_mid_quarter_and_history_is_kept(
        client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    year, quarter = clock.quarter_of(clock.now())
    await _generate(client, staff, year)
    zone = city.zones[0]
    current = await Rotation.get(zone_id=zone.id, year=year, quarter=quarter)
    other = next(u for u in city.units[zone.id] if u.id != current.unit_id)
    r = await client.post(f"/api/v1/zones/{zone.id}/duty-change",
                          json={"unit_id": other.id, "reason": "原轮值单位承担专项任务"},
                          headers=bearer(staff))
    assert r.status == 200, await r.text()
    assert (await r.json())["unit"]["id"] == other.id
    rotations = await Rotation.filter(zone_id=zone.id, year=year, quarter=quarter).order_by("starts_at")
    assert [x.unit_id for x in rotations] == [current.unit_id, other.id]
    assert rotations[0].ends_at == rotations[1].starts_at
    change = await RotationChange.get(zone_id=zone.id)
    assert (change.from_unit_id, change.to_unit_id) == (current.unit_id, other.id)
    old_admin = await wechat_login(client, city.admins[current.unit_id].openid or "")
    me = await (await client.get("/api/v1/me", headers=bearer(old_admin))).json()
    assert me["duty"]["on_duty"] is False
    again = await client.post(f"/api/v1/zones/{zone.id}/duty-change",
                              json={"unit_id": other.id, "reason": "重复"}, headers=bearer(staff))
    assert (await again.json())["code"] == "already_on_duty"
    foreign = city.units[city.zones[1].id][0]
    r = await client.post(f"/api/v1/zones/{zone.id}/duty-change",
                          json={"unit_id": foreign.id, "reason": "不属于本区"}, headers=bearer(staff))
    assert (await r.json())["code"] == "unit_not_in_zone"


async def test_repartitioned_zone_starts_again_with_its_strongest(client: TestClient[Any, Any]) -> None:
    city = await City.build(zones=2, units_per_zone=3)
    staff = await staff_login(client)
    year, _ = clock.quarter_of(clock.now())
    await _generate(client, staff, year)
    # Move the whole of zone 2 into zone 1 (a re-partition), as the import would.
    z1, z2 = city.zones
    await Unit.filter(zone_id=z2.id).update(zone_id=z1.id, duty_order=None)
    await _generate(client, staff, year + 1)
    served = [r.unit_id for r in await Rotation.filter(zone_id=z1.id, year=year + 1).order_by("starts_at")]
    last_of_year = (await Rotation.filter(zone_id=z1.id, year=year).order_by("-starts_at").first())
    assert last_of_year is not None
    units = await Unit.filter(zone_id=z1.id)
    order = sorted(units, key=lambda u: (u.duty_order is None, u.duty_order, u.id))
    ids = [u.id for u in order]
    # The zone's old units keep their order; the newcomers join at the end, strongest first.
    assert ids[:3] == [u.id for u in sorted(city.units[z1.id], key=lambda u: (-u.strength, u.id))]
    assert ids[3:] == [u.id for u in sorted(city.units[z2.id], key=lambda u: (-u.strength, u.id))]
    assert served[0] == ids[(ids.index(last_of_year.unit_id) + 1) % len(ids)]
