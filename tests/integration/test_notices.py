"""Notices with a real arq worker on Redis and the fake WeChat over HTTP: fan-out, pushes,
failures, duplicates, receipts, chasing."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from fakewechat import FakeWeChat
from models.notices import InboxItem, Notice, NoticeBatch, PushStatus, SubscriptionGrant
from models.org import Member, Rotation
from server.keys import ARQ, WECHAT
from services import clock, delivery, notices
from services.settings import Settings
from tests.integration.test_activities import generate
from tests.support import City, bearer, run_workers, staff_login, wechat_login

TEMPLATE = "zonehub-notice"


async def grant_all(member_ids: list[int], n: int = 1) -> None:
    await SubscriptionGrant.bulk_create([SubscriptionGrant(member_id=m, template_id=TEMPLATE, available=n,
                                                           accepted_total=n) for m in member_ids])


async def send(client: TestClient[Any, Any], token: str, expect: int = 202, **body: Any) -> dict[str, Any]:
    body.setdefault("title", "关于开展主题教育的通知")
    body.setdefault("audience", {"all": True})
    r = await client.post("/api/v1/notices", json=body, headers=bearer(token))
    data = await r.json()
    assert r.status == expect, data
    return data


async def everyone(city: City | None = None) -> list[int]:
    return sorted(await Member.filter(unit_id__isnull=False).values_list("id", flat=True))


async def notice_to_granted_city(client: TestClient[Any, Any]) -> tuple[str, list[int], dict[str, Any]]:
    """A 40-member city whose members each granted one push, and a notice sent to all of them."""
    await City.build(zones=2, units_per_zone=4, members_per_unit=5)
    staff = await staff_login(client)
    members = await everyone()
    await grant_all(members)
    return staff, members, await send(client, staff)


async def test_audience_is_the_union_of_what_is_named(client: TestClient[Any, Any], city: City) -> None:
    z1, z2 = city.zones
    unit = city.units[z2.id][0]
    in_z1 = {m.id for u in city.units[z1.id] for m in [*city.members[u.id], city.admins[u.id]]}
    in_unit = {m.id for m in [*city.members[unit.id], city.admins[unit.id]]}
    admins = {a.id for a in city.admins.values()}
    assert set(await notices.resolve_audience({"zone_ids": [z1.id]})) == in_z1
    assert set(await notices.resolve_audience({"zone_ids": [z1.id], "unit_ids": [unit.id]})) == in_z1 | in_unit
    assert set(await notices.resolve_audience({"roles": ["unit_admin"]})) == admins
    assert set(await notices.resolve_audience({"all": True})) == set(await everyone(city))
    await Member.filter(id=min(in_z1)).update(is_active=False)
    assert min(in_z1) not in await notices.resolve_audience({"zone_ids": [z1.id]})


async def test_who_may_send_to_whom(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    await generate(client, staff)
    year, quarter = clock.quarter_of(clock.now())
    zone = city.zones[0]
    duty_unit = (await Rotation.get(zone_id=zone.id, year=year, quarter=quarter)).unit_id
    other_unit = next(u.id for u in city.units[zone.id] if u.id != duty_unit)
    duty = await wechat_login(client, city.admins[duty_unit].openid or "")
    admin = await wechat_login(client, city.admins[other_unit].openid or "")
    member = await wechat_login(client, city.members[other_unit][0].openid or "")
    await send(client, duty, audience={"zone_ids": [zone.id]})
    await send(client, duty, audience={"unit_ids": [other_unit]})
    assert (await send(client, duty, 403, audience={"zone_ids": [city.zones[1].id]}))["code"] == "audience_out_of_scope"
    assert (await send(client, duty, 403, audience={"all": True}))["code"] == "audience_out_of_scope"
    await send(client, admin, audience={"unit_ids": [other_unit]})
    assert (await send(client, admin, 403, audience={"zone_ids": [zone.id]}))["code"] == "not_on_duty"
    assert (await send(client, member, 403))["code"] == "forbidden"
    assert (await send(client, staff, 422, audience={}))["code"] == "invalid_request"
    assert (await send(client, staff, 422, ack_due_at=clock.now().isoformat()))["code"] == "invalid_request"


async def test_fan_out_push_and_stats_with_a_real_worker(client: TestClient[Any, Any], city: City,
                                                         settings: Settings, fake_wechat: FakeWeChat) -> None:
    staff = await staff_login(client)
    members = await everyone(city)
    granted = members[::2]
    await grant_all(granted)
    settings = settings.model_copy(update={"notice_batch_size": 7})
    sent = await send(client, staff, require_ack=True)
    assert sent["status"] == "queued"
    await run_workers(settings)
    notice = await Notice.get(id=sent["id"])
    assert notice.status.value == "delivered" and notice.recipients == len(members)
    assert await NoticeBatch.filter(notice_id=notice.id).count() == -(-len(members) // 7)
    rows = await InboxItem.filter(notice_id=notice.id).values_list("member_id", "push_status")
    assert sorted(m for m, _ in rows) == members                     # one row each
    assert Counter(s for _, s in rows) == {PushStatus.SENT: len(granted),
                                           PushStatus.NO_GRANT: len(members) - len(granted)}
    openids = dict(await Member.filter(id__in=granted).values_list("openid", "id"))
    assert sorted(m["touser"] for m in fake_wechat.messages) == sorted(openids)  # one push each
    assert await SubscriptionGrant.filter(available__gt=0).count() == 0          # grants consumed
    stats = await (await client.get(f"/api/v1/notices/{notice.id}/stats", headers=bearer(staff))).json()
    assert (stats["recipients"], stats["delivered"], stats["pushed"], stats["read"]) == (
        len(members), len(members), len(granted), 0)
    assert stats["seconds_to_deliver_all"] is not None and stats["share_delivered"] == 1.0
    assert sum(u["delivered"] for u in stats["by_unit"]) == len(members)

    # Duplicate jobs (another id, or a sweeper's late hand-over) change nothing.
    redis = client.app[ARQ]
    await redis.enqueue_job("plan_notice", notice.id, _job_id="dup-plan")
    for n in range(3):
        await redis.enqueue_job("deliver_notice_batch", notice.id, n, _job_id=f"dup-deliver-{n}")
        await redis.enqueue_job("push_notice_batch", notice.id, n, _job_id=f"dup-push-{n}")
    await run_workers(settings)
    assert await InboxItem.filter(notice_id=notice.id).count() == len(members)
    assert len(fake_wechat.messages) == len(granted)


async def test_inbox_read_ack_and_unit_sign(client: TestClient[Any, Any], city: City,
                                            settings: Settings) -> None:
    staff = await staff_login(client)
    unit = city.units[city.zones[0].id][0]
    first = await send(client, staff, title="一", audience={"unit_ids": [unit.id]})
    second = await send(client, staff, title="二", audience={"unit_ids": [unit.id]}, require_ack=True)
    await run_workers(settings)
    member = city.members[unit.id][0]
    token = await wechat_login(client, member.openid or "")
    page = await (await client.get("/api/v1/me/notices?limit=1", headers=bearer(token))).json()
    assert [i["title"] for i in page["items"]] == ["二"] and page["unread"] == 2 and page["next_cursor"]
    page2 = await (await client.get(f"/api/v1/me/notices?limit=1&cursor={page['next_cursor']}",
                                    headers=bearer(token))).json()
    assert [i["title"] for i in page2["items"]] == ["一"]
    r1 = await (await client.post(f"/api/v1/notices/{first['id']}/read", headers=bearer(token))).json()
    r2 = await (await client.post(f"/api/v1/notices/{first['id']}/read", headers=bearer(token))).json()
    assert r1["read_at"] == r2["read_at"] is not None                   # idempotent
    r = await client.post(f"/api/v1/notices/{first['id']}/ack", headers=bearer(token))
    assert r.status == 409 and (await r.json())["code"] == "ack_not_required"
    a1 = await (await client.post(f"/api/v1/notices/{second['id']}/ack", headers=bearer(token))).json()
    assert a1["acked_at"] and a1["read_at"]
    outsider = await wechat_login(client, city.members[city.units[city.zones[1].id][0].id][0].openid or "")
    r = await client.post(f"/api/v1/notices/{first['id']}/read", headers=bearer(outsider))
    assert r.status == 404 and (await r.json())["code"] == "notice_not_found"
    admin = await wechat_login(client, city.admins[unit.id].openid or "")
    s1 = await (await client.post(f"/api/v1/notices/{second['id']}/sign", headers=bearer(admin))).json()
    s2 = await (await client.post(f"/api/v1/notices/{second['id']}/sign", headers=bearer(admin))).json()
    assert s1 == s2 and s1["unit_id"] == unit.id
    stats = await (await client.get(f"/api/v1/notices/{second['id']}/stats", headers=bearer(admin))).json()
    assert stats["units_signed"] == 1 and stats["acked"] == 1
    assert {m["member_id"] for m in stats["my_unit_unread"]} == {
        m.id for m in [*city.members[unit.id], city.admins[unit.id]] if m.id != member.id}
    assert (await client.get(f"/api/v1/notices/{second['id']}/stats", headers=bearer(token))).status == 403


async def test_inbox_lists_newest_notice_first_whatever_the_delivery_order(
        client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    unit = city.units[city.zones[0].id][0]
    sent = [await send(client, staff, title=t, audience={"unit_ids": [unit.id]}) for t in "一二三"]
    for notice in reversed(sent):                 # a busy queue can deliver the newest notice first
        for batch_no in await delivery.plan(notice["id"], batch_size=500):
            await delivery.deliver_batch(notice["id"], batch_no)
    token = await wechat_login(client, city.members[unit.id][0].openid or "")
    titles, cursor = [], ""
    while True:
        page = await (await client.get(f"/api/v1/me/notices?limit=2{cursor}", headers=bearer(token))).json()
        titles += [i["title"] for i in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert titles == ["三", "二", "一"]


async def test_push_failures_43101_45009_and_minus_one(client: TestClient[Any, Any], city: City,
                                                       settings: Settings, fake_wechat: FakeWeChat) -> None:
    staff = await staff_login(client)
    unit = city.units[city.zones[0].id][0]
    people = city.members[unit.id]
    await grant_all([m.id for m in people])
    fake_wechat.script_failure(43101, touser=people[0].openid)
    fake_wechat.script_failure(45009, touser=people[1].openid)
    fake_wechat.script_failure(-1, count=2, touser=people[2].openid)      # retried, then sent
    sent = await send(client, staff, audience={"unit_ids": [unit.id]})
    await run_workers(settings)
    status = dict(await InboxItem.filter(notice_id=sent["id"]).values_list("member_id", "push_status"))
    errors = dict(await InboxItem.filter(notice_id=sent["id"]).values_list("member_id", "push_error"))
    assert status[people[0].id] is PushStatus.REFUSED and errors[people[0].id] == 43101
    assert status[people[1].id] is PushStatus.FAILED and errors[people[1].id] == 45009
    assert status[people[2].id] is PushStatus.SENT
    assert [m["touser"] for m in fake_wechat.messages] == [people[2].openid]
    # -1 forever: retries run out and the push is recorded as failed, once.
    fake_wechat.script_failure(-1, count=-1)
    await grant_all([city.admins[unit.id].id])
    again = await send(client, staff, audience={"unit_ids": [unit.id]})
    await run_workers(settings.model_copy(update={"push_retries": 1}))
    row = await InboxItem.get(notice_id=again["id"], member_id=city.admins[unit.id].id)
    assert row.push_status is PushStatus.FAILED and row.push_error == -1


async def test_rejected_access_token_is_refreshed_once_during_a_push(
        client: TestClient[Any, Any], city: City, settings: Settings, fake_wechat: FakeWeChat) -> None:
    staff = await staff_login(client)
    unit = city.units[city.zones[0].id][0]
    await grant_all([m.id for m in city.members[unit.id]])
    await client.app[WECHAT].access_token()
    fake_wechat.expire_tokens()
    sent = await send(client, staff, audience={"unit_ids": [unit.id]})
    await run_workers(settings)
    assert await InboxItem.filter(notice_id=sent["id"], push_status=PushStatus.SENT).count() == 3
    assert fake_wechat.stable_token_calls == 2


async def test_reminders_and_deadline_lists_once_with_two_workers(
        client: TestClient[Any, Any], city: City, settings: Settings, fake_wechat: FakeWeChat) -> None:
    staff = await staff_login(client)
    unit, other = city.units[city.zones[0].id][:2]
    people = [*city.members[unit.id], *city.members[other.id]]
    await grant_all([m.id for m in people], n=2)
    due = clock.now() + timedelta(hours=2)
    sent = await send(client, staff, audience={"unit_ids": [unit.id, other.id]}, require_ack=True,
                      ack_due_at=due.isoformat(), remind_after_s=3600)
    await run_workers(settings)
    token = await wechat_login(client, people[0].openid or "")
    await client.post(f"/api/v1/notices/{sent['id']}/ack", headers=bearer(token))
    pushes_before = len(fake_wechat.messages)
    redis = client.app[ARQ]
    clock.travel(timedelta(hours=1, minutes=1))
    for i in range(2):
        await redis.enqueue_job("chase_notices", _job_id=f"chase-a-{i}")
    await run_workers(settings, 2)
    reminded = await InboxItem.filter(notice_id=sent["id"], reminded_at__isnull=False).values_list("member_id", flat=True)
    waiting = {m.id for m in [*people, city.admins[unit.id], city.admins[other.id]]} - {people[0].id}
    assert set(reminded) == waiting
    assert len(fake_wechat.messages) - pushes_before == len(people) - 1   # admins had no grant
    clock.travel(timedelta(hours=1))
    for i in range(2):
        await redis.enqueue_job("chase_notices", _job_id=f"chase-b-{i}")
    await run_workers(settings, 2)
    lists = await Notice.filter(topic="notice.deadline_list")
    assert len(lists) == 2                                                # one per unit, once
    unit_list = await InboxItem.filter(notice__topic="notice.deadline_list",
                                       member_id=city.admins[unit.id].id).prefetch_related("notice")
    assert len(unit_list) == 1 and people[0].name not in unit_list[0].notice.body
    assert people[1].name in unit_list[0].notice.body
    assert len(fake_wechat.messages) - pushes_before == len(people) - 1   # no second reminder


async def test_a_reminder_days_late_is_not_sent(
        client: TestClient[Any, Any], city: City, settings: Settings, fake_wechat: FakeWeChat) -> None:
    """The jobs were stopped (or rows came from elsewhere): a member is not reminded of a notice
    days after the reminder was due, and the notice is not looked at again."""
    staff = await staff_login(client)
    unit = city.units[city.zones[0].id][0]
    await grant_all([m.id for m in city.members[unit.id]], n=4)  # two notices, one reminder
    sent = await send(client, staff, audience={"unit_ids": [unit.id]}, remind_after_s=3600)
    await run_workers(settings)
    pushes_before = len(fake_wechat.messages)
    clock.travel(timedelta(days=3))
    await client.app[ARQ].enqueue_job("chase_notices", _job_id="chase-late")
    await run_workers(settings)
    assert len(fake_wechat.messages) == pushes_before
    assert not await InboxItem.filter(notice_id=sent["id"], reminded_at__isnull=False).exists()
    assert (await Notice.get(id=sent["id"])).reminders_done_at is not None
    # How late is too late is the committee's setting: with four days, three days late is sent.
    clock.reset_travel()  # a notice's created_at is the database's clock, not the travelled one
    later = await send(client, staff, audience={"unit_ids": [unit.id]}, remind_after_s=3600)
    await run_workers(settings)
    pushes_before = len(fake_wechat.messages)
    clock.travel(timedelta(days=3))
    await client.app[ARQ].enqueue_job("chase_notices", _job_id="chase-late-allowed")
    await run_workers(settings.model_copy(update={"notice_remind_late_s": 4 * 24 * 3600}))
    assert len(fake_wechat.messages) == pushes_before + len(city.members[unit.id])
    assert not await InboxItem.filter(notice_id=later["id"], reminded_at__isnull=True).exists()


async def test_subscriptions_count_grants(client: TestClient[Any, Any], city: City) -> None:
    token = await wechat_login(client, city.members[city.units[city.zones[0].id][0].id][0].openid or "")
    for result, expected in [("accept", 1), ("accept", 2), ("reject", 2)]:
        r = await client.post("/api/v1/me/subscriptions", json={"template_id": TEMPLATE, "result": result},
                              headers=bearer(token))
        assert (await r.json())["available"] == expected
    r = await client.post("/api/v1/me/subscriptions", json={"template_id": TEMPLATE, "result": "maybe"},
                          headers=bearer(token))
    assert r.status == 422



async def test_under_a_low_push_rate_every_batch_finishes_within_the_job_timeout(
        client: TestClient[Any, Any], settings: Settings, fake_wechat: FakeWeChat) -> None:
    """48 members in batches of 10 at 600 pushes a minute (10 a second) take about 4 s to push.
    Run all five batches at once and they share the rate, so each needs about 4 s and every
    one of them passes a 2.5 s job timeout. Sized by the rate (a batch may take 1 s: one batch
    at a time), each finishes in about a second and the others wait in the queue, not in a job."""
    settings = settings.model_copy(update={"push_per_minute": 600, "push_batch_budget_s": 1,
                                           "notice_batch_size": 10})
    _, members, sent = await notice_to_granted_city(client)
    assert len(members) == 48
    await run_workers(settings, job_timeout=2.5)  # a job that timed out fails the run
    rows = await InboxItem.filter(notice_id=sent["id"]).values_list("push_status", flat=True)
    assert Counter(rows) == {PushStatus.SENT: len(members)}
    assert await NoticeBatch.filter(notice_id=sent["id"], pushed_at__isnull=True).count() == 0
    assert sorted(m["touser"] for m in fake_wechat.messages) == sorted(
        await Member.filter(id__in=members).values_list("openid", flat=True))
