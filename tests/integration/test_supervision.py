"""Supervision items: assignment, the state machine, urging with its limit, the escalation ladder
run by real arq workers on Redis while time moves, exactly once with two workers or a crash, the
role matrix, the timeline and the dashboard figures."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from models.notices import InboxItem
from models.org import Liaison, Member, Role, Rotation
from models.supervision import Assignment, EscalationEvent, Step
from services import clock
from services import escalation as svc
from services.settings import Settings
from tasks.worker import WorkerSettings
from tests.integration.test_activities import generate
from tests.support import City, bearer, staff_login, wechat_login

API = "/api/v1/supervision-items"
LADDER = [Step.REMIND, Step.OVERDUE, Step.LIAISON, Step.COMMITTEE]


def iso(at: datetime) -> str:
    return at.isoformat()


async def _setup(client: TestClient[Any, Any], city: City) -> dict[str, Any]:
    """Rotations generated; zone 1's duty unit now, one other unit of zone 1, tokens."""
    staff = await staff_login(client)
    await generate(client, staff)
    zone = city.zones[0]
    duty = await Rotation.get(zone_id=zone.id, starts_at__lte=clock.now(), ends_at__gt=clock.now())
    other = next(u for u in city.units[zone.id] if u.id != duty.unit_id)
    far = city.units[city.zones[1].id][0]
    return {
        "staff": staff, "zone": zone, "duty_rotation": duty, "duty_unit": duty.unit_id,
        "other_unit": other.id, "far_unit": far.id,
        "duty_admin": await wechat_login(client, city.admins[duty.unit_id].openid or ""),
        "other_admin": await wechat_login(client, city.admins[other.id].openid or ""),
        "far_admin": await wechat_login(client, city.admins[far.id].openid or ""),
        "member": await wechat_login(client, city.members[other.id][0].openid or ""),
    }


async def _create(client: TestClient[Any, Any], token: str, *, due_in: timedelta = timedelta(days=5),
                  expect: int = 201, **body: Any) -> dict[str, Any]:
    payload = {"title": "落实党建工作责任制自查", "detail": "按清单逐项自查并上传佐证材料",
               "due_at": iso(clock.now() + due_in), **body}
    r = await client.post(API, json=payload, headers=bearer(token))
    assert r.status == expect, await r.text()
    return dict(await r.json())


async def _progress(client: TestClient[Any, Any], token: str, item_id: int, *, done: bool = False,
                    expect: int = 200, **extra: Any) -> dict[str, Any]:
    r = await client.post(f"{API}/{item_id}/progress", json={"note": "已完成自查的一半", "done": done, **extra},
                          headers=bearer(token))
    assert r.status == expect, await r.text()
    return dict(await r.json())


async def _review(client: TestClient[Any, Any], token: str, item_id: int, unit_id: int, *,
                  accept: bool, comment: str = "", expect: int = 200) -> dict[str, Any]:
    r = await client.post(f"{API}/{item_id}/review", json={"unit_id": unit_id, "accept": accept,
                                                           "comment": comment}, headers=bearer(token))
    assert r.status == expect, await r.text()
    return dict(await r.json())


async def _inbox(topic: str, item_id: int) -> list[int]:
    """Member ids that received a message of this topic about this item (one entry per message)."""
    return sorted(await InboxItem.filter(notice__topic=topic, notice__ref_id=item_id)
                  .values_list("member_id", flat=True))


async def _run_workers(settings: Settings, *, workers: int = 1, jobs: int | None = None) -> list[Worker]:
    """Enqueue the escalation job `jobs` times (distinct ids) and run `workers` real arq workers in
    burst mode on Redis at once."""
    assert settings.redis_url
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    pool = await create_pool(redis_settings)
    try:
        for i in range(jobs or workers):
            await pool.enqueue_job("escalate_supervision", _job_id=f"escalate-{clock.now().timestamp()}-{i}",
                                   _queue_name=WorkerSettings.queue_name)
    finally:
        await pool.aclose()
    running = [Worker(functions=WorkerSettings.functions, on_startup=WorkerSettings.on_startup,
                      on_shutdown=WorkerSettings.on_shutdown, redis_settings=redis_settings,
                      queue_name=WorkerSettings.queue_name, burst=True, poll_delay=0.01,
                      ctx={"settings": settings}, handle_signals=False, max_jobs=5)
               for _ in range(workers)]
    await asyncio.gather(*(w.main() for w in running))
    for w in running:
        await w.close()
    assert sum(w.jobs_failed for w in running) == 0
    return running


async def _events(item_id: int) -> list[tuple[int, str]]:
    return [(u, s) for u, s in await EscalationEvent.filter(assignment__item_id=item_id)
            .order_by("fired_at", "id").values_list("assignment__unit_id", "step")]


# -- creation ------------------------------------------------------------------------------------

async def test_create_expands_zones_to_units_and_tells_their_admins(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    item = await _create(client, s["staff"], zone_ids=[s["zone"].id], unit_ids=[s["far_unit"]],
                         attachments=[{"name": "清单.pdf", "url": "https://files.example.cn/a.pdf",
                                       "size": 12345, "content_type": "application/pdf"}])
    expected = sorted([u.id for u in city.units[s["zone"].id]] + [s["far_unit"]])
    assert [a["unit_id"] for a in item["assignments"]] == expected
    assert {a["state"] for a in item["assignments"]} == {"open"}
    assert {a["next_step"] for a in item["assignments"]} == {"remind"}
    assert item["ladder"] == svc.DEFAULT_LADDER
    assert item["stats"]["assignments"] == len(expected) and item["stats"]["completion_share"] == 0
    assert await _inbox("supervision.assigned", item["id"]) == sorted(city.admins[u].id for u in expected)
    # A unit added to the zone later is not assigned: zones expand at creation.
    assert await Assignment.filter(item_id=item["id"]).count() == len(expected)


async def test_create_refusals_have_distinct_codes(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    r = await _create(client, s["staff"], unit_ids=[s["other_unit"]], due_in=-timedelta(minutes=1), expect=422)
    assert r["code"] == "invalid_request" and r["errors"][0]["loc"] == ["body", "due_at"]
    assert (await _create(client, s["staff"], unit_ids=[999_999], expect=404))["code"] == "unit_not_found"
    assert (await _create(client, s["staff"], zone_ids=[999_999], expect=404))["code"] == "zone_not_found"
    assert (await _create(client, s["staff"], expect=422))["code"] == "invalid_request"
    r = await _create(client, s["staff"], unit_ids=[s["other_unit"]], expect=422,
                      ladder={"liaison_after_h": 100, "committee_after_h": 50})
    assert r["errors"][0]["loc"][:2] == ["body", "ladder"]
    r = await _create(client, s["staff"], unit_ids=[s["other_unit"]], expect=422,
                      attachments=[{"name": "x", "url": "ftp://x", "size": 1, "content_type": "a/b"}])
    assert r["errors"][0]["loc"][:2] == ["body", "attachments"]
    too_many = [{"name": f"{i}.pdf", "url": "https://f.cn/x", "size": 1, "content_type": "application/pdf"}
                for i in range(11)]
    assert (await _create(client, s["staff"], unit_ids=[s["other_unit"]], attachments=too_many,
                          expect=422))["code"] == "invalid_request"
    for who in ("duty_admin", "member"):
        assert (await _create(client, s[who], unit_ids=[s["other_unit"]], expect=403))["code"] == "forbidden"


# -- states --------------------------------------------------------------------------------------

async def test_state_machine_and_illegal_transitions(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    item = await _create(client, s["staff"], unit_ids=[s["other_unit"]])
    iid, unit, admin, staff = item["id"], s["other_unit"], s["other_admin"], s["staff"]

    r = await _review(client, staff, iid, unit, accept=True, expect=409)
    assert r["code"] == "illegal_transition" and r["state"] == "open" and r["action"] == "accept"
    assert (await _progress(client, admin, iid))["state"] == "in_progress"
    assert (await _progress(client, admin, iid))["state"] == "in_progress"
    submitted = await _progress(client, admin, iid, done=True)
    assert submitted["state"] == "submitted" and submitted["next_step"] is None
    assert await _inbox("supervision.submitted", iid) == [city.committee.id]  # type: ignore[union-attr]
    r = await _progress(client, admin, iid, expect=409)
    assert r["code"] == "illegal_transition" and r["state"] == "submitted"
    r = await _review(client, staff, iid, unit, accept=False, comment="", expect=422)
    assert r["errors"][0]["loc"] == ["body", "comment"]
    returned = await _review(client, staff, iid, unit, accept=False, comment="佐证材料不全")
    assert returned["state"] == "returned" and returned["next_step"] == "remind"
    r = await _review(client, staff, iid, unit, accept=False, comment="再次退回", expect=409)
    assert r["code"] == "illegal_transition" and r["state"] == "returned"
    assert await _inbox("supervision.returned", iid) == [city.admins[unit].id]
    assert (await _progress(client, admin, iid))["state"] == "in_progress"
    await _progress(client, admin, iid, done=True)
    accepted = await _review(client, staff, iid, unit, accept=True, comment="好")
    assert accepted["state"] == "accepted" and accepted["accepted_at"] and accepted["next_step"] is None
    for done in (False, True):
        r = await _progress(client, admin, iid, done=done, expect=409)
        assert r["code"] == "illegal_transition" and r["state"] == "accepted"
    r = await client.post(f"{API}/{iid}/urge", json={"unit_id": unit}, headers=bearer(staff))
    assert r.status == 409 and (await r.json())["code"] == "illegal_transition"
    # Not assigned, unknown item.
    r = await client.post(f"{API}/{iid}/review", json={"unit_id": s["far_unit"], "accept": True},
                          headers=bearer(staff))
    assert r.status == 404 and (await r.json())["code"] == "not_assigned"
    r = await client.post(f"{API}/999999/review", json={"unit_id": unit, "accept": True},
                          headers=bearer(staff))
    assert r.status == 404 and (await r.json())["code"] == "supervision_item_not_found"


async def test_concurrent_submissions_move_the_state_once(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    item = await _create(client, s["staff"], unit_ids=[s["other_unit"]])
    answers = await asyncio.gather(*(client.post(
        f"{API}/{item['id']}/progress", json={"note": "完成", "done": True},
        headers=bearer(s["other_admin"])) for _ in range(5)))
    statuses = sorted(r.status for r in answers)
    assert statuses == [200] + [409] * 4, statuses
    detail = await (await client.get(f"{API}/{item['id']}", headers=bearer(s["staff"]))).json()
    assert [e["kind"] for e in detail["timeline"]] == ["submitted"]


# -- who may do what -----------------------------------------------------------------------------

async def test_role_matrix(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    item = await _create(client, s["staff"], unit_ids=[s["duty_unit"], s["other_unit"], s["far_unit"]])
    iid = item["id"]
    # A unit admin cannot report for another unit, nor for a unit that is not assigned.
    r = await client.post(f"{API}/{iid}/progress", json={"note": "代报", "unit_id": s["duty_unit"]},
                          headers=bearer(s["other_admin"]))
    assert r.status == 403 and (await r.json())["code"] == "forbidden"
    assert (await Assignment.get(item_id=iid, unit_id=s["duty_unit"])).state.value == "open"
    other_zone_unit = next(u for u in city.units[city.zones[1].id] if u.id != s["far_unit"])
    outsider = await wechat_login(client, city.admins[other_zone_unit.id].openid or "")
    r = await client.post(f"{API}/{iid}/progress", json={"note": "x"}, headers=bearer(outsider))
    assert r.status == 404 and (await r.json())["code"] == "not_assigned"
    # Committee staff do not report; members do nothing here.
    r = await client.post(f"{API}/{iid}/progress", json={"note": "x"}, headers=bearer(s["staff"]))
    assert r.status == 403
    for method, path, body in [("GET", API, None), ("GET", f"{API}/{iid}", None),
                               ("POST", f"{API}/{iid}/progress", {"note": "x"}),
                               ("POST", f"{API}/{iid}/urge", {"unit_id": s["other_unit"]})]:
        r = await client.request(method, path, json=body, headers=bearer(s["member"]))
        assert r.status == 403 and (await r.json())["code"] == "forbidden"
    # Review is the committee's.
    await _progress(client, s["other_admin"], iid, done=True)
    r = await client.post(f"{API}/{iid}/review", json={"unit_id": s["other_unit"], "accept": True},
                          headers=bearer(s["duty_admin"]))
    assert r.status == 403
    # A unit that is not on duty cannot urge; the duty unit cannot urge outside its zone.
    r = await client.post(f"{API}/{iid}/urge", json={"unit_id": s["duty_unit"]}, headers=bearer(s["other_admin"]))
    assert r.status == 403 and (await r.json())["code"] == "not_on_duty"
    r = await client.post(f"{API}/{iid}/urge", json={"unit_id": s["far_unit"]}, headers=bearer(s["duty_admin"]))
    assert r.status == 403 and (await r.json())["code"] == "not_on_duty"
    # The duty unit urges inside its zone during its quarter ...
    item2 = await _create(client, s["staff"], unit_ids=[s["other_unit"]], due_in=timedelta(days=200))
    r = await client.post(f"{API}/{item2['id']}/urge", json={"unit_id": s["other_unit"]},
                          headers=bearer(s["duty_admin"]))
    assert r.status == 201, await r.text()
    # ... and not after its quarter (unless it is on duty again right away).
    clock.travel(s["duty_rotation"].ends_at - clock.now() + timedelta(hours=13))
    still = await Rotation.filter(zone_id=s["zone"].id, unit_id=s["duty_unit"],
                                  starts_at__lte=clock.now(), ends_at__gt=clock.now()).exists()
    assert not still
    r = await client.post(f"{API}/{item2['id']}/urge", json={"unit_id": s["other_unit"]},
                          headers=bearer(s["duty_admin"]))
    assert r.status == 403 and (await r.json())["code"] == "not_on_duty"


async def test_who_sees_what(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    item = await _create(client, s["staff"], unit_ids=[s["duty_unit"], s["other_unit"], s["far_unit"]])
    hidden = await _create(client, s["staff"], unit_ids=[s["far_unit"]])

    async def units(token: str) -> dict[int, list[int]]:
        r = await client.get(API, headers=bearer(token))
        assert r.status == 200, await r.text()
        return {i["id"]: [a["unit_id"] for a in i["assignments"]] for i in (await r.json())["items"]}

    assert await units(s["staff"]) == {item["id"]: sorted([s["duty_unit"], s["other_unit"], s["far_unit"]]),
                                       hidden["id"]: [s["far_unit"]]}
    assert await units(s["other_admin"]) == {item["id"]: [s["other_unit"]]}
    assert await units(s["duty_admin"]) == {item["id"]: sorted([s["duty_unit"], s["other_unit"]])}
    r = await client.get(f"{API}/{hidden['id']}", headers=bearer(s["other_admin"]))
    assert r.status == 404 and (await r.json())["code"] == "supervision_item_not_found"
    r = await client.get(f"{API}/{item['id']}", headers=bearer(s["other_admin"]))
    assert [a["unit_id"] for a in (await r.json())["assignments"]] == [s["other_unit"]]
    # Pagination: newest first, a cursor to the next page.
    r = await client.get(f"{API}?limit=1", headers=bearer(s["staff"]))
    page = await r.json()
    assert [i["id"] for i in page["items"]] == [hidden["id"]] and page["next_cursor"] == hidden["id"]
    r = await client.get(f"{API}?limit=1&cursor={page['next_cursor']}", headers=bearer(s["staff"]))
    assert [i["id"] for i in (await r.json())["items"]] == [item["id"]]


# -- urging --------------------------------------------------------------------------------------

async def test_one_urge_per_unit_and_item_in_12_hours(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    item = await _create(client, s["staff"], unit_ids=[s["other_unit"], s["duty_unit"]],
                         due_in=timedelta(days=30))
    iid, unit = item["id"], s["other_unit"]
    r = await client.post(f"{API}/{iid}/urge", json={"unit_id": unit, "note": "请尽快上报"},
                          headers=bearer(s["duty_admin"]))
    assert r.status == 201
    first = await r.json()
    assert await _inbox("supervision.urged", iid) == [city.admins[unit].id]
    # A second urge within 12 h, from anyone, is refused with when the next is allowed.
    r = await client.post(f"{API}/{iid}/urge", json={"unit_id": unit}, headers=bearer(s["staff"]))
    assert r.status == 429
    body = await r.json()
    assert body["code"] == "urge_too_soon"
    assert datetime.fromisoformat(body["next_allowed_at"]) == datetime.fromisoformat(first["next_allowed_at"])
    assert 12 * 3600 - 60 <= int(r.headers["Retry-After"]) <= 12 * 3600 + 1
    # Another unit of the same item is urged independently.
    r = await client.post(f"{API}/{iid}/urge", json={"unit_id": s["duty_unit"]}, headers=bearer(s["staff"]))
    assert r.status == 201
    # Many at once: one passes.
    clock.travel(timedelta(hours=11, minutes=59))
    r = await client.post(f"{API}/{iid}/urge", json={"unit_id": unit}, headers=bearer(s["staff"]))
    assert r.status == 429
    clock.travel(timedelta(minutes=1, seconds=1))
    answers = await asyncio.gather(*(client.post(f"{API}/{iid}/urge", json={"unit_id": unit},
                                                 headers=bearer(s["staff"])) for _ in range(5)))
    assert sorted(a.status for a in answers) == [201] + [429] * 4
    assert await _inbox("supervision.urged", iid) == sorted([city.admins[unit].id] * 2 + [city.admins[s["duty_unit"]].id])
    a = await Assignment.get(item_id=iid, unit_id=unit)
    assert a.urge_count == 2


# -- the escalation ladder -----------------------------------------------------------------------

async def test_ladder_fires_every_step_once_in_order_and_submitting_stops_it(
        client: TestClient[Any, Any], city: City, settings: Settings) -> None:
    s = await _setup(client, city)
    liaison = await Member.create(name="挂点联络员", phone="13800000001", role=Role.COMMITTEE)
    await Liaison.create(member_id=liaison.id, zone_id=s["zone"].id)
    due_in = timedelta(days=4)
    item = await _create(client, s["staff"], unit_ids=[s["other_unit"], s["duty_unit"]], due_in=due_in)
    iid, due = item["id"], datetime.fromisoformat(item["due_at"])
    late, early = s["other_unit"], s["duty_unit"]
    committee = sorted(await Member.filter(role=Role.COMMITTEE).values_list("id", flat=True))

    await _run_workers(settings)
    assert await _events(iid) == []  # nothing is due yet

    clock.travel(due - timedelta(hours=48) - clock.now() + timedelta(minutes=1))
    await _run_workers(settings)
    assert sorted(await _events(iid)) == sorted([(early, "remind"), (late, "remind")])
    assert await _inbox("supervision.remind", iid) == sorted([city.admins[late].id, city.admins[early].id])
    await _run_workers(settings)  # again: nothing new
    assert len(await _events(iid)) == 2

    # The early unit submits: its ladder stops.
    await _progress(client, s["duty_admin"], iid, done=True)

    clock.travel(due - clock.now() + timedelta(minutes=1))
    duty_now = await Rotation.get(zone_id=s["zone"].id, starts_at__lte=clock.now(), ends_at__gt=clock.now())
    await _run_workers(settings)
    assert (await _events(iid))[2:] == [(late, "overdue")]
    # The late unit's admins and the duty unit's admins, once each.
    assert await _inbox("supervision.overdue", iid) == sorted(
        {city.admins[late].id, city.admins[duty_now.unit_id].id})
    assert await _inbox("supervision.liaison", iid) == []

    clock.travel(timedelta(hours=24))
    await _run_workers(settings)
    assert (await _events(iid))[3:] == [(late, "liaison")]
    assert await _inbox("supervision.liaison", iid) == [liaison.id]
    assert await _inbox("supervision.committee", iid) == []

    clock.travel(timedelta(hours=48))
    await _run_workers(settings, workers=2)
    events = await EscalationEvent.filter(assignment__item_id=iid).order_by("fired_at", "id")
    assert [(e.step.value) for e in events] == ["remind", "remind", "overdue", "liaison", "committee"]
    assert [e.fired_at for e in events] == sorted(e.fired_at for e in events)
    assert all(e.fired_at >= e.due_at for e in events)
    assert await _inbox("supervision.committee", iid) == committee
    late_row = await Assignment.get(item_id=iid, unit_id=late)
    assert late_row.escalation_level == 4 and late_row.next_step is None and late_row.next_step_at is None
    clock.travel(timedelta(days=30))
    await _run_workers(settings)
    assert len(await _events(iid)) == 5
    # The timeline shows it in order.
    detail = await (await client.get(f"{API}/{iid}", headers=bearer(s["staff"]))).json()
    assert [(e["kind"], e.get("step")) for e in detail["timeline"]] == [
        ("escalation", "remind"), ("escalation", "remind"), ("submitted", None),
        ("escalation", "overdue"), ("escalation", "liaison"), ("escalation", "committee")]
    late_out = next(a for a in detail["assignments"] if a["unit_id"] == late)
    assert late_out["overdue"] is True and late_out["escalation"] == "committee"


async def test_returning_rearms_the_ladder_at_the_first_step_not_fired(
        client: TestClient[Any, Any], city: City, settings: Settings) -> None:
    s = await _setup(client, city)
    item = await _create(client, s["staff"], unit_ids=[s["other_unit"]], due_in=timedelta(days=3))
    iid, due = item["id"], datetime.fromisoformat(item["due_at"])
    clock.travel(due - timedelta(hours=47) - clock.now())
    await _run_workers(settings)
    await _progress(client, s["other_admin"], iid, done=True)
    clock.travel(timedelta(hours=47, minutes=1))  # past the due time, submitted: nothing fires
    await _run_workers(settings)
    assert [st for _, st in await _events(iid)] == ["remind"]
    returned = await _review(client, s["staff"], iid, s["other_unit"], accept=False, comment="材料不全")
    assert returned["next_step"] == "overdue"  # the reminder fired already and is not repeated
    await _run_workers(settings)
    assert [st for _, st in await _events(iid)] == ["remind", "overdue"]


async def test_due_soon_skips_the_reminder_and_ladder_overrides_apply(
        client: TestClient[Any, Any], city: City, settings: Settings) -> None:
    s = await _setup(client, city)
    soon = await _create(client, s["staff"], unit_ids=[s["other_unit"]], due_in=timedelta(hours=10))
    assert soon["assignments"][0]["next_step"] == "overdue"
    custom = await _create(client, s["staff"], unit_ids=[s["other_unit"]], due_in=timedelta(days=5),
                           ladder={"remind_before_h": 0, "liaison_after_h": 2, "committee_after_h": 4})
    assert custom["ladder"] == {"remind_before_h": 0, "liaison_after_h": 2, "committee_after_h": 4}
    assert custom["assignments"][0]["next_step"] == "overdue"
    clock.travel(datetime.fromisoformat(custom["due_at"]) - clock.now() + timedelta(hours=4, minutes=1))
    await _run_workers(settings)
    assert [st for _, st in await _events(custom["id"])] == ["overdue", "liaison", "committee"]
    assert [st for _, st in await _events(soon["id"])] == ["overdue", "liaison", "committee"]


async def test_two_workers_scanning_at_once_fire_each_step_once(
        client: TestClient[Any, Any], city: City, settings: Settings) -> None:
    """Every step of every assignment is due at once; two workers (and four jobs) race for them.
    Without the unique (assignment, step) row a step would fire twice (on PostgreSQL the second
    worker's insert goes through instead of waiting on the first one's row)."""
    s = await _setup(client, city)
    await Liaison.create(member_id=city.committee.id, zone_id=s["zone"].id)  # type: ignore[union-attr]
    items = [await _create(client, s["staff"], zone_ids=[z.id for z in city.zones], due_in=timedelta(days=3))
             for _ in range(3)]
    units = sum(len(us) for us in city.units.values())
    clock.travel(timedelta(days=3 + 3, hours=1))
    await _run_workers(settings, workers=2, jobs=4)
    steps = await EscalationEvent.all().values_list("assignment_id", "step")
    assert len(steps) == len(set(steps)) == len(items) * units * 4
    for item in items:
        # Each unit admin got one reminder and one overdue message per item, never two.
        assert await _inbox("supervision.remind", item["id"]) == sorted(
            city.admins[u.id].id for us in city.units.values() for u in us)
        assert city.committee.id in await _inbox("supervision.committee", item["id"])  # type: ignore[union-attr]
    assert await Assignment.filter(next_step__isnull=False).count() == 0


async def test_a_crash_while_firing_leaves_the_step_due_and_it_fires_once_later(
        client: TestClient[Any, Any], city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    s = await _setup(client, city)
    item = await _create(client, s["staff"], unit_ids=[s["other_unit"]], due_in=timedelta(days=3))
    clock.travel(timedelta(days=1, hours=1))  # the reminder is due
    real = svc.inbox.send_system

    async def crash(**kwargs: Any) -> None:
        raise RuntimeError("worker died while sending")

    monkeypatch.setattr(svc.inbox, "send_system", crash)
    with pytest.raises(RuntimeError):
        await svc.run_escalations()
    assert await _events(item["id"]) == []  # rolled back: not recorded, not sent
    assert (await Assignment.get(item_id=item["id"])).next_step is Step.REMIND
    monkeypatch.setattr(svc.inbox, "send_system", real)
    assert (await svc.run_escalations()).fired == 1
    assert (await svc.run_escalations()).fired == 0
    assert [st for _, st in await _events(item["id"])] == ["remind"]
    assert await _inbox("supervision.remind", item["id"]) == [city.admins[s["other_unit"]].id]


async def test_the_scan_is_one_indexed_range_query(client: TestClient[Any, Any], city: City) -> None:
    from tortoise.transactions import in_transaction

    from services.db import fetch_rows

    async with in_transaction() as conn:
        postgres = conn.capabilities.dialect == "postgres"
        if postgres:  # the table is empty: ask what the planner could use, not what is cheapest
            await conn.execute_script("SET LOCAL enable_seqscan = off")
        rows = await fetch_rows(("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + svc.DUE_SQL,
                                clock.now(), svc.SCAN_BATCH)
    plan = " ".join(str(v) for r in rows for v in r)
    assert "next_step_at" in plan and "index" in plan.lower(), plan


# -- dashboard -----------------------------------------------------------------------------------

async def test_dashboard_figures_per_item_zone_and_unit(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    zone1 = [u.id for u in city.units[s["zone"].id]]
    item = await _create(client, s["staff"], unit_ids=zone1 + [s["far_unit"]], due_in=timedelta(hours=48))
    iid = item["id"]
    on_time_unit, late_unit = zone1[0], zone1[1]
    tokens = {u: await wechat_login(client, city.admins[u].openid or "") for u in (on_time_unit, late_unit)}
    clock.travel(timedelta(hours=10))
    await _progress(client, tokens[on_time_unit], iid, done=True)
    clock.travel(timedelta(hours=10))
    await _review(client, s["staff"], iid, on_time_unit, accept=True)            # 20 h, on time
    clock.travel(timedelta(hours=30))
    await _progress(client, tokens[late_unit], iid, done=True)                   # 50 h: late
    clock.travel(timedelta(hours=2))
    await _review(client, s["staff"], iid, late_unit, accept=True)               # 52 h
    r = await client.get(API, headers=bearer(s["staff"]))
    body = await r.json()
    stats = body["items"][0]["stats"]
    assert stats["assignments"] == 5 and stats["accepted"] == 2
    assert stats["completion_share"] == 0.4 and stats["on_time_share"] == 0.5
    assert stats["mean_hours_to_accept"] == pytest.approx(36, abs=0.02)
    by_zone = {z["zone_id"]: z for z in body["dashboard"]["by_zone"]}
    assert by_zone[s["zone"].id]["completion_share"] == 0.5
    assert by_zone[city.zones[1].id]["completion_share"] == 0 and by_zone[city.zones[1].id]["mean_hours_to_accept"] is None
    by_unit = {u["unit_id"]: u for u in body["dashboard"]["by_unit"]}
    assert by_unit[on_time_unit]["on_time_share"] == 1 and by_unit[late_unit]["on_time_share"] == 0
    assert by_unit[late_unit]["mean_hours_to_accept"] == pytest.approx(52, abs=0.02)
    assert body["dashboard"]["overall"]["accepted"] == 2
    # A unit admin's figures cover their own unit only.
    r = await client.get(API, headers=bearer(tokens[late_unit]))
    mine = (await r.json())["dashboard"]
    assert [u["unit_id"] for u in mine["by_unit"]] == [late_unit]
    assert mine["overall"]["assignments"] == 1
