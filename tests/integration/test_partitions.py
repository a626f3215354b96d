"""Re-partitioning through the API: propose from the database (the solver in its own process),
read, apply from a future quarter — rotations regenerate from that quarter for the new zones,
earlier rotations and today's zones stay — units move at the boundary (the cron job), once."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from aiohttp.test_utils import TestClient

from models.audit import AuditEntry
from models.org import Rotation, Unit
from services import clock, zoning
from services.partition import UnitInfo
from tasks.rotations import move_partitioned_units
from tests.support import City, bearer, staff_login, wechat_login

NATURES = ["党政机关", "事业单位", "国有企业", "金融机构"]
DISTRICTS = ["东城区", "西城区", "南城区"]


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=clock.SHANGHAI)  # type: ignore[misc]


def travel_to(when: datetime) -> None:
    clock.reset_travel()
    clock.travel(when - clock.now())


async def partition_city(client: TestClient[Any, Any], zones: int = 3) -> tuple[City, str]:
    """`zones` zones of 8 units with varied members, strength, natures and districts, in
    November 2026, with the rotations of 2026 and 2027."""
    travel_to(shanghai(2026, 11, 10, 9))
    city = await City.build(zones=zones, units_per_zone=8, members_per_unit=1)
    for i, unit in enumerate(await Unit.all().order_by("id")):
        await Unit.filter(id=unit.id).update(member_count=20 + (i * 37) % 60, strength=50 + (i * 13) % 45,
                                             nature=NATURES[i % 4], district=DISTRICTS[i % 3])
    staff = await staff_login(client)
    for year in (2026, 2027):
        r = await client.post("/api/v1/rotations/generate", json={"year": year}, headers=bearer(staff))
        assert r.status == 200
    return city, staff


async def call(client: TestClient[Any, Any], method: str, path: str, token: str,
               body: Any = None, expect: int = 200) -> Any:
    r = await client.request(method, "/api/v1" + path, json=body, headers=bearer(token))
    data = await r.json()
    assert r.status == expect, (method, path, r.status, data)
    return data


def zone_units(proposal: dict[str, Any]) -> dict[int, list[int]]:
    return {z["zone_id"]: [u["id"] for u in z["units"]] for z in proposal["zones"]}


async def rotations_of(*, before: datetime | None = None,
                       since: datetime | None = None) -> list[tuple[int, int, int, int, int]]:
    qs = Rotation.all()
    if before is not None:
        qs = qs.filter(starts_at__lt=before)
    if since is not None:
        qs = qs.filter(starts_at__gte=since)
    return sorted(await qs.values_list("id", "zone_id", "unit_id", "year", "quarter"))


async def test_propose_apply_from_a_future_quarter_and_move_at_its_boundary(
        client: TestClient[Any, Any]) -> None:
    city, staff = await partition_city(client)
    unit_ids = sorted(u.id for us in city.units.values() for u in us)
    today = {u.id: u.zone_id for u in await Unit.all()}

    p = await call(client, "POST", "/partitions", staff, {"seed": 3}, expect=201)
    assert (p["status"], p["stale"], p["zone_count"], p["from_quarter"]) == ("pending", False, 3, None)
    # Every unit in exactly one zone, every zone 8-10; each zone takes over an existing one.
    placed = [u for us in zone_units(p).values() for u in us]
    assert sorted(placed) == unit_ids
    assert all(8 <= len(us) <= 10 for us in zone_units(p).values())
    assert sorted(zone_units(p)) == sorted(z.id for z in city.zones)
    m = p["measures"]
    assert m["today"]["new_pair_share"] == 0.0 and m["proposal"]["new_pair_share"] > 0.5
    assert m["proposal"]["objective"] < m["random"]["objective"] < m["today"]["objective"]
    assert p["zones"][0]["units"][0]["from_zone_id"] == today[p["zones"][0]["units"][0]["id"]]

    listed = await call(client, "GET", "/partitions", staff)
    assert [(x["id"], x["status"]) for x in listed["items"]] == [(p["id"], "pending")]
    assert await call(client, "GET", f"/partitions/{p['id']}", staff) == p

    # Only a quarter that has not started.
    for started in ("2026Q4", "2026Q1", "2025Q4"):
        r = await call(client, "POST", f"/partitions/{p['id']}/apply", staff,
                       {"from_quarter": started}, expect=422)
        assert r["code"] == "quarter_started"

    boundary = clock.quarter_bounds(2027, 2)[0]
    history_before = await rotations_of(before=boundary)
    applied = await call(client, "POST", f"/partitions/{p['id']}/apply", staff, {"from_quarter": "2027Q2"})
    assert (applied["status"], applied["from_quarter"], applied["moved_at"]) == ("applied", "2027Q2", None)
    new_zones = zone_units(applied)  # now in the new duty order
    assert sorted(u for us in new_zones.values() for u in us) == unit_ids

    # History stands: rotations before the quarter, and today's zones, until the boundary.
    assert await rotations_of(before=boundary) == history_before
    assert {u.id: u.zone_id for u in await Unit.all()} == today
    # From the quarter: each zone's duty units are its new units, in its new order, continuing.
    later = await rotations_of(since=boundary)
    assert sorted({(y, q) for _, _, _, y, q in later}) == [(2027, 2), (2027, 3), (2027, 4)]
    for zone_id, order in new_zones.items():
        duty = [u for _, z, u, _, _ in sorted(later, key=lambda r: (r[3], r[4])) if z == zone_id]
        assert len(duty) == 3 and all(u in order for u in duty)
        start = order.index(duty[0])
        assert duty == [order[(start + i) % len(order)] for i in range(3)]
        staying = [u for u in order if today[u] == zone_id]
        assert order[:len(staying)] == staying  # stayers first, newcomers after them
    [entry] = await AuditEntry.filter(action="partition.applied")
    assert entry.target_id == p["id"] and entry.detail["from_quarter"] == "2027Q2"

    again = await call(client, "POST", f"/partitions/{p['id']}/apply", staff,
                       {"from_quarter": "2027Q3"}, expect=409)
    assert again["code"] == "partition_applied"
    # Generating meanwhile leaves the new zones' quarters alone.
    assert (await call(client, "POST", "/rotations/generate", staff, {"year": 2027}))["created"] == 0

    # Before the boundary the job moves nothing; at it, every unit once.
    travel_to(shanghai(2027, 3, 31, 23, 59))
    assert await zoning.move_due() == 0
    travel_to(shanghai(2027, 4, 1, 0, 1))
    assert await move_partitioned_units({}) == 1
    assert await zoning.move_due() == 0
    units = {u.id: u for u in await Unit.all()}
    for zone_id, order in new_zones.items():
        assert [units[u].zone_id for u in order] == [zone_id] * len(order)
        assert [units[u].duty_order for u in order] == list(range(len(order)))
    assert await rotations_of(before=boundary) == history_before
    assert await AuditEntry.filter(action="partition.moved", target_id=p["id"]).count() == 1

    # The new duty unit holds duty powers in its new zone now.
    zone_id, order = next(iter(new_zones.items()))
    now = await Rotation.get(zone_id=zone_id, starts_at=boundary)
    token = await wechat_login(client, city.admins[now.unit_id].openid or "")
    me = await call(client, "GET", "/me", token)
    assert me["zone"]["id"] == zone_id and me["duty"]["on_duty"] is True

    # The next proposal knows both partitions as history, and this one is applied.
    infos = await zoning.read_units()
    history = await zoning.read_history(infos)
    old_pairs = {frozenset((a, b)) for a in today for b in today if a < b and today[a] == today[b]}
    assert old_pairs <= history
    assert frozenset(order[:2]) in history


async def test_stale_pending_and_refusals(client: TestClient[Any, Any]) -> None:
    city, staff = await partition_city(client)
    a = await call(client, "POST", "/partitions", staff, {"seed": 1}, expect=201)
    b = await call(client, "POST", "/partitions", staff, {"seed": 2, "time_budget_s": 5}, expect=201)
    assert b["stale"] is False

    r = await call(client, "POST", "/partitions", staff, {"zones": 4}, expect=422)  # 24 units, 4 zones
    assert r["code"] == "partition_infeasible" and r["zones"] == 4
    assert (await call(client, "GET", "/partitions/999", staff, expect=404))["code"] == "partition_not_found"
    r = await call(client, "POST", "/partitions/999/apply", staff, {"from_quarter": "2027Q1"}, expect=404)
    assert r["code"] == "partition_not_found"
    r = await call(client, "POST", f"/partitions/{a['id']}/apply", staff, {"from_quarter": "2027Q5"}, expect=422)
    assert r["code"] == "invalid_request"

    await call(client, "POST", f"/partitions/{a['id']}/apply", staff, {"from_quarter": "2027Q1"})
    r = await call(client, "POST", f"/partitions/{b['id']}/apply", staff, {"from_quarter": "2027Q2"}, expect=409)
    assert r["code"] == "partition_pending" and r["partition_id"] == a["id"]

    travel_to(shanghai(2027, 1, 1, 0, 0, 30))
    assert await zoning.move_due() == 1
    b = await call(client, "GET", f"/partitions/{b['id']}", staff)
    assert b["stale"] is True  # units moved since it was proposed
    r = await call(client, "POST", f"/partitions/{b['id']}/apply", staff, {"from_quarter": "2027Q3"}, expect=409)
    assert r["code"] == "partition_stale"

    # A unit added since a proposal makes it stale too.
    c = await call(client, "POST", "/partitions", staff, {"seed": 4}, expect=201)
    await Unit.create(name="新单位", zone_id=city.zones[0].id, invite_code="NEWUNIT1")
    r = await call(client, "POST", f"/partitions/{c['id']}/apply", staff, {"from_quarter": "2027Q3"}, expect=409)
    assert r["code"] == "partition_stale"


async def test_reordering_a_zone_before_the_boundary_leaves_the_new_zones_rotations(
        client: TestClient[Any, Any]) -> None:
    city, staff = await partition_city(client, zones=2)  # 16 units: two zones of 8
    p = await call(client, "POST", "/partitions", staff, {"seed": 5}, expect=201)
    await call(client, "POST", f"/partitions/{p['id']}/apply", staff, {"from_quarter": "2027Q3"})
    boundary = clock.quarter_bounds(2027, 3)[0]
    after = await rotations_of(since=boundary)
    zone = city.zones[0]
    order = [u.id for u in reversed(city.units[zone.id])]
    await call(client, "PUT", f"/zones/{zone.id}/duty-order", staff, {"unit_ids": order})
    assert await rotations_of(since=boundary) == after  # the new zones' quarters stand
    now = await Rotation.get(zone_id=zone.id, year=2026, quarter=4)
    i = order.index(now.unit_id)
    follow = [await Rotation.get(zone_id=zone.id, year=2027, quarter=q) for q in (1, 2)]
    assert [r.unit_id for r in follow] == [order[(i + 1) % 8], order[(i + 2) % 8]]


async def test_units_added_after_applying_are_placed_at_the_boundary(client: TestClient[Any, Any]) -> None:
    """A unit added between applying and the boundary is not in the proposal: it keeps a zone that
    lives on, and one in a zone the proposal empties (or in none) joins its district's new zone."""
    city, staff = await partition_city(client, zones=5)  # 40 units: four zones of 10 are proposed
    p = await call(client, "POST", "/partitions", staff, {"seed": 7, "zones": 4}, expect=201)
    applied = await call(client, "POST", f"/partitions/{p['id']}/apply", staff, {"from_quarter": "2027Q1"})
    kept = set(zone_units(applied))
    [emptied] = {z.id for z in city.zones} - kept
    south = set(await Unit.filter(district="南城区").values_list("id", flat=True))
    district_zone = Counter(z for z, us in zone_units(applied).items() for u in us
                            if u in south).most_common(1)[0][0]
    stays = await Unit.create(name="新单位甲", zone_id=min(kept), invite_code="NEWUNITA",
                              district="东城区", duty_order=0)
    orphan = await Unit.create(name="新单位乙", zone_id=emptied, invite_code="NEWUNITB", district="南城区")
    nowhere = await Unit.create(name="新单位丙", zone_id=None, invite_code="NEWUNITC", member_count=5)
    travel_to(shanghai(2027, 1, 1, 0, 0, 30))
    assert await zoning.move_due() == 1
    placed = {u.id: u for u in await Unit.filter(id__in=[stays.id, orphan.id, nowhere.id])}
    assert placed[stays.id].zone_id == min(kept)  # at the end of its zone's duty order
    assert placed[stays.id].duty_order == len(zone_units(applied)[min(kept)])
    assert placed[orphan.id].zone_id == district_zone
    assert placed[nowhere.id].zone_id in kept
    assert not await Unit.filter(zone_id=emptied).exists()
    [entry] = await AuditEntry.filter(action="partition.moved", target_id=p["id"])
    assert entry.detail["placed"] == {str(orphan.id): district_zone,
                                      str(nowhere.id): placed[nowhere.id].zone_id}


def test_zones_are_matched_by_largest_overlap() -> None:
    current = {1: 10, 2: 10, 3: 10, 4: 20, 5: 20, 6: 30}
    # index 0 holds most of zone 20's units, index 1 most of zone 10's; index 2 is new.
    assert zoning.match_zones({4: 0, 5: 0, 1: 0, 2: 1, 3: 1, 6: 2}, current, 3) == [20, 10, 30]
    assert zoning.match_zones({1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 1}, current, 3) == [10, 20, None]
    assert Counter(zoning.basis_of([UnitInfo(1, 1, 1.0, "a", "b", 10)]).values()) == {10: 1}


async def test_a_member_sees_the_new_zone_in_me_as_soon_as_the_units_move(
        client: TestClient[Any, Any]) -> None:
    """/me is cached per process (services/auth.py): the move at the boundary must reach it."""
    city, staff = await partition_city(client)
    p = await call(client, "POST", "/partitions", staff, {"seed": 3}, expect=201)
    moving = next(u for z in p["zones"] for u in z["units"] if u["from_zone_id"] != z["zone_id"])
    target = next(z["zone_id"] for z in p["zones"] if moving in z["units"])
    member = city.members[moving["id"]][0]
    token = await wechat_login(client, member.openid or "")
    await call(client, "POST", f"/partitions/{p['id']}/apply", staff, {"from_quarter": "2027Q1"})
    travel_to(shanghai(2027, 1, 1, 0, 0, 30))  # the boundary, before the job's run
    assert (await call(client, "GET", "/me", token))["zone"]["id"] == moving["from_zone_id"]
    assert await zoning.move_due() == 1
    assert (await call(client, "GET", "/me", token))["zone"]["id"] == target
