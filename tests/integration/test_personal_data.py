"""Personal data (个人信息保护法): phone numbers masked outside the member, their unit admin and
the committee; check-in coordinates dropped after their retention; inbox rows of old notices
archived with their figures kept; a member's data exported and erased, money records kept."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from models.activities import Activity, Checkin, CheckinMethod
from models.audit import AuditEntry
from models.funds import Campaign, CampaignKind, Channel, Contribution, ContributionStatus
from models.notices import InboxItem, Notice, NoticeTally
from models.org import Liaison, Member, Role
from server.keys import ARQ
from services import clock
from services.auth import hash_password
from services.settings import Settings
from tests.integration.test_activities import create
from tests.integration.test_notices import send
from tests.support import STAFF_PASSWORD, City, bearer, run_workers, staff_login, wechat_login

MASKED = "138****"


async def _liaison(client: TestClient[Any, Any], zone_id: int) -> tuple[str, Member]:
    m = await Member.create(name="联络员", phone="13855556666", role=Role.LIAISON, username="liaison-pd",
                            password_hash=hash_password(STAFF_PASSWORD))
    await Liaison.create(member_id=m.id, zone_id=zone_id)
    return await staff_login(client, "liaison-pd"), m


def _masked(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


async def test_phones_are_whole_only_for_the_member_their_unit_admin_and_the_committee(
        client: TestClient[Any, Any], city: City) -> None:
    zone = city.zones[0].id
    unit = city.units[zone][0]
    member = city.members[unit.id][0]
    member.phone = "13812345678"
    await member.save()
    staff = await staff_login(client)
    liaison, liaison_row = await _liaison(client, zone)
    admin = await wechat_login(client, city.admins[unit.id].openid or "")
    other_admin = await wechat_login(client, city.admins[city.units[zone][1].id].openid or "")
    own = await wechat_login(client, member.openid or "")

    me = await (await client.get("/api/v1/me", headers=bearer(own))).json()
    assert me["phone"] == "13812345678"

    async def roster(token: str) -> str:
        r = await client.get(f"/api/v1/units/{unit.id}/members", headers=bearer(token))
        assert r.status == 200
        return next(m["phone"] for m in (await r.json())["items"] if m["id"] == member.id)

    assert await roster(admin) == "13812345678"
    assert await roster(staff) == "13812345678"
    assert await roster(liaison) == "138****5678"

    async def patched(token: str) -> str:
        r = await client.patch(f"/api/v1/members/{member.id}", headers=bearer(token),
                               json={"position": "member"})
        assert r.status == 200
        return (await r.json())["phone"]

    assert await patched(liaison) == "138****5678"
    assert await patched(admin) == "13812345678"

    async def zone_liaison_phone(token: str) -> str:
        detail = await (await client.get(f"/api/v1/zones/{zone}", headers=bearer(token))).json()
        return next(x["phone"] for x in detail["liaisons"] if x["id"] == liaison_row.id)

    assert await zone_liaison_phone(own) == _masked(liaison_row.phone)
    assert await zone_liaison_phone(other_admin) == _masked(liaison_row.phone)
    assert await zone_liaison_phone(liaison) == liaison_row.phone
    assert await zone_liaison_phone(staff) == liaison_row.phone

    # the audit log of a phone change: whole for the committee, masked for the zone's liaison
    r = await client.patch(f"/api/v1/members/{member.id}", headers=bearer(admin), json={"phone": "13987654321"})
    assert r.status == 200

    async def audited(token: str) -> dict[str, Any]:
        log = await (await client.get(f"/api/v1/audit?target_type=member&target_id={member.id}",
                                      headers=bearer(token))).json()
        return next(e["detail"] for e in log["items"] if "phone" in e["detail"].get("after", {}))

    assert (await audited(staff))["after"]["phone"] == "13987654321"
    seen = await audited(liaison)
    assert seen["before"]["phone"] == "138****5678" and seen["after"]["phone"] == "139****4321"


async def test_check_in_coordinates_are_dropped_after_their_retention(
        client: TestClient[Any, Any], city: City, settings: Settings) -> None:
    unit = city.units[city.zones[0].id][0]
    now = clock.now()
    staff = await staff_login(client)
    activity = await Activity.get(id=(await create(client, staff, zone_id=city.zones[0].id))["id"])
    old, recent = city.members[unit.id][0], city.members[unit.id][1]
    for member, days in ((old, 31), (recent, 29)):
        await Checkin.create(activity_id=activity.id, member_id=member.id, unit_id=unit.id,
                             method=CheckinMethod.VENUE_CODE, checked_in_at=now - timedelta(days=days),
                             lat=22.54, lng=114.06)
    settings = settings.model_copy(update={"checkin_coordinates_retention_days": 30})
    await client.app[ARQ].enqueue_job("drop_checkin_coordinates")
    await run_workers(settings)
    rows = dict(await Checkin.filter(activity_id=activity.id).values_list("member_id", "lat"))
    assert rows == {old.id: None, recent.id: 22.54}      # the check-in stays, its place is gone
    assert await Checkin.filter(member_id=old.id, lng__isnull=True).exists()


async def test_old_notices_inbox_rows_are_archived_and_their_figures_survive(
        client: TestClient[Any, Any], city: City, settings: Settings) -> None:
    staff = await staff_login(client)
    unit = city.units[city.zones[0].id][0]
    sent = await send(client, staff, title="旧通知", require_ack=True)
    fresh = await send(client, staff, title="新通知", audience={"unit_ids": [unit.id]})
    await run_workers(settings)
    member = city.members[unit.id][0]
    token = await wechat_login(client, member.openid or "")
    assert (await client.post(f"/api/v1/notices/{sent['id']}/ack", headers=bearer(token))).status == 200
    admin = await wechat_login(client, city.admins[unit.id].openid or "")

    async def figures(notice_id: int, who: str) -> dict[str, Any]:
        stats = await (await client.get(f"/api/v1/notices/{notice_id}/stats", headers=bearer(who))).json()
        return {k: stats[k] for k in ("recipients", "delivered", "read", "acked", "pushes", "by_unit")}

    before = await figures(sent["id"], staff)
    before_unit = await figures(sent["id"], admin)
    listed_before = await (await client.get("/api/v1/notices", headers=bearer(staff))).json()
    rows = await InboxItem.filter(notice_id=sent["id"]).count()
    assert rows > 0 and before["acked"] == 1

    # a year and a day later, only the old notice is archived (the fresh one was sent "now")
    await Notice.filter(id=sent["id"]).update(created_at=clock.now() - timedelta(days=366))
    for _ in range(2):  # twice: the second run finds nothing to do
        await client.app[ARQ].enqueue_job("archive_inboxes")
        await run_workers(settings)
    assert await InboxItem.filter(notice_id=sent["id"]).count() == 0
    assert await InboxItem.filter(notice_id=fresh["id"]).count() > 0
    assert sum(t.delivered for t in await NoticeTally.filter(notice_id=sent["id"])) == rows
    assert (await Notice.get(id=sent["id"])).archived_at is not None
    assert await figures(sent["id"], staff) == before
    assert await figures(sent["id"], admin) == before_unit
    listed = await (await client.get("/api/v1/notices", headers=bearer(staff))).json()
    assert [(n["id"], n["read"], n["acked"]) for n in listed["items"]] == \
        [(n["id"], n["read"], n["acked"]) for n in listed_before["items"]]


async def test_a_member_exports_their_data_and_the_committee_erases_it_keeping_money(
        client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    unit = city.units[city.zones[0].id][0]
    member, neighbour = city.members[unit.id][0], city.members[unit.id][1]
    own = await wechat_login(client, member.openid or "")
    other = await wechat_login(client, neighbour.openid or "")
    admin = await wechat_login(client, city.admins[unit.id].openid or "")
    campaign = await Campaign.create(kind=CampaignKind.SPECIAL_DUES, title="党费", ends_at=clock.now() + timedelta(days=3),
                                     created_by_id=city.committee.id)
    paid = await Contribution.create(campaign_id=campaign.id, member_id=member.id, unit_id=unit.id,
                                     zone_id=city.zones[0].id, channel=Channel.WECHAT,
                                     status=ContributionStatus.PAID, amount_fen=2000, payer_name=member.name,
                                     out_trade_no="ZH-PD-1", paid_at=clock.now())

    r = await client.get(f"/api/v1/members/{member.id}/export", headers=bearer(own))
    assert r.status == 200
    data = await r.json()
    assert data["member"]["phone"] == member.phone and data["member"]["name"] == member.name
    assert [c["amount_fen"] for c in data["contributions"]] == [2000]
    for token in (other, admin):
        r = await client.get(f"/api/v1/members/{member.id}/export", headers=bearer(token))
        assert r.status == 403 and (await r.json())["code"] == "forbidden"
    assert (await client.get(f"/api/v1/members/{member.id}/export", headers=bearer(staff))).status == 200
    r = await client.get("/api/v1/members/999999/export", headers=bearer(staff))
    assert r.status == 404 and (await r.json())["code"] == "member_not_found"
    assert await AuditEntry.filter(action="member.exported", target_id=member.id).count() == 2

    r = await client.post(f"/api/v1/members/{member.id}/erase", headers=bearer(admin))
    assert r.status == 403
    r = await client.post(f"/api/v1/members/{member.id}/erase", headers=bearer(staff))
    assert r.status == 200
    erased = await r.json()
    assert "contributions" in erased["kept"]
    again = await (await client.post(f"/api/v1/members/{member.id}/erase", headers=bearer(staff))).json()
    assert again == erased                                     # erasing again changes nothing
    row = await Member.get(id=member.id)
    assert (row.name, row.openid, row.is_active) == ("已注销成员", None, False)
    assert row.phone == f"erased-{member.id}" and row.username is None
    assert (await client.get("/api/v1/me", headers=bearer(own))).status == 401   # sessions ended
    kept = await Contribution.get(id=paid.id)
    assert (kept.member_id, kept.amount_fen, kept.status, kept.out_trade_no) == (
        member.id, 2000, ContributionStatus.PAID, "ZH-PD-1")
    assert await AuditEntry.filter(action="member.erased", target_id=member.id).count() == 1
    r = await client.post(f"/api/v1/members/{city.committee.id}/erase", headers=bearer(staff))
    assert r.status == 409 and (await r.json())["code"] == "cannot_change_self"
