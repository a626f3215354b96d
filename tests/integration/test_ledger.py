"""Zone fund ledger over HTTP: the running balance and the years (opening balance carried over,
Asia/Shanghai year boundary), who may read and write, committee subsidies with four eyes,
reversals, the balance floor, Idempotency-Key replays, validation, `book_campaign`, and (on
PostgreSQL) the same rules under parallel requests, after a control that shows the load can
overdraw without the zone lock."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from tortoise.transactions import in_transaction

from models.funds import Campaign, CampaignKind
from models.ledger import EntryStatus, FundEntry
from models.notices import InboxItem
from models.org import Member, Role, Rotation
from services import clock, errors, fund_entries
from services import ledger as svc
from services.auth import hash_password
from tests.integration.test_activities import generate
from tests.support import (
    STAFF_PASSWORD,
    City,
    bearer,
    requires_postgres,
    staff_login,
    wechat_login,
)

SH = clock.SHANGHAI
INCOME_KEYS = ["duty_unit", "member_unit", "committee_subsidy", "campaign", "other_income"]
EXPENSE_KEYS = ["venue_rent", "materials", "event_costs", "other_expense"]


def today() -> str:
    return clock.now().astimezone(SH).date().isoformat()


def at(*args: int) -> datetime:
    """An Asia/Shanghai wall-clock instant."""
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


def travel_to(when: datetime) -> None:
    clock.reset_travel()
    clock.travel(when - clock.now())


def incomes(**fen: int) -> dict[str, int]:
    return {k: fen.get(k, 0) for k in INCOME_KEYS}


def expenses(**fen: int) -> dict[str, int]:
    return {k: fen.get(k, 0) for k in EXPENSE_KEYS}


async def _committee(client: TestClient[Any, Any], username: str) -> tuple[str, int]:
    """Another committee member: (token, member id)."""
    m = await Member.create(name=username, phone=f"1380000{len(username):04d}", role=Role.COMMITTEE,
                            username=username, password_hash=hash_password(STAFF_PASSWORD))
    return await staff_login(client, username), m.id


async def _setup(client: TestClient[Any, Any], city: City) -> dict[str, Any]:
    """Rotations generated; zone 1 with its duty unit now, another unit of zone 1, zone 2's duty
    unit, a member of each zone, tokens."""
    staff = await staff_login(client)
    await generate(client, staff)
    z1, z2 = city.zones
    now = clock.now()
    duty = await Rotation.get(zone_id=z1.id, starts_at__lte=now, ends_at__gt=now)
    far = await Rotation.get(zone_id=z2.id, starts_at__lte=now, ends_at__gt=now)
    other = next(u for u in city.units[z1.id] if u.id != duty.unit_id)
    assert city.committee is not None
    return {
        "staff": staff, "staff_id": city.committee.id, "z1": z1.id, "z2": z2.id,
        "rotation": duty, "duty_unit": duty.unit_id, "other_unit": other.id,
        "far_unit": far.unit_id, "duty_admin_id": city.admins[duty.unit_id].id,
        "duty": await wechat_login(client, city.admins[duty.unit_id].openid or ""),
        "other_admin": await wechat_login(client, city.admins[other.id].openid or ""),
        "far_duty": await wechat_login(client, city.admins[far.unit_id].openid or ""),
        "member": await wechat_login(client, city.members[other.id][0].openid or ""),
        "far_member": await wechat_login(client, city.members[far.unit_id][0].openid or ""),
    }


async def _drives(s: dict[str, Any], n: int) -> list[int]:
    """n zone-fund drives of zone 1 (the ledger line references its drive)."""
    return [(await Campaign.create(kind=CampaignKind.ZONE_FUND, title=f"募集{i}", fund_zone_id=s["z1"],
                                   ends_at=clock.now(), created_by_id=s["staff_id"])).id
            for i in range(n)]


async def _entry(client: TestClient[Any, Any], token: str, zone_id: int, *, expect: int = 201,
                 key: str | None = None, **body: Any) -> dict[str, Any]:
    payload = {"direction": "income", "category": "other_income", "amount_fen": 10_000,
               "description": "社会捐赠", "occurred_on": today(), **body}
    headers = {**bearer(token), **({"Idempotency-Key": key} if key is not None else {})}
    r = await client.post(f"/api/v1/zones/{zone_id}/fund-entries", json=payload, headers=headers)
    assert r.status == expect, await r.text()
    return dict(await r.json())


async def _expense(client: TestClient[Any, Any], token: str, zone_id: int, amount: int, *,
                   category: str = "venue_rent", expect: int = 201, **extra: Any) -> dict[str, Any]:
    return await _entry(client, token, zone_id, direction="expense", category=category,
                        amount_fen=amount, description="场地租赁费", expect=expect, **extra)


async def _post(client: TestClient[Any, Any], token: str, zone_id: int, entry_id: int, action: str,
                body: dict[str, Any], *, expect: int) -> dict[str, Any]:
    r = await client.post(f"/api/v1/zones/{zone_id}/fund-entries/{entry_id}/{action}", json=body,
                          headers=bearer(token))
    assert r.status == expect, await r.text()
    return dict(await r.json())


async def _ledger(client: TestClient[Any, Any], token: str, zone_id: int, *,
                  year: int | None = None, expect: int = 200) -> dict[str, Any]:
    query = f"?year={year}" if year is not None else ""
    r = await client.get(f"/api/v1/zones/{zone_id}/fund-ledger{query}", headers=bearer(token))
    assert r.status == expect, await r.text()
    return dict(await r.json())


def lines(book: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(category, amount, running balance) of each booked line, in booking order."""
    return [(e["category"], e["amount_fen"], e["balance_fen"]) for e in book["entries"]]


async def _inbox(topic: str, entry_id: int) -> list[int]:
    return sorted(await InboxItem.filter(notice__topic=topic, notice__ref_id=entry_id)
                  .values_list("member_id", flat=True))


# -- the running balance and the years -------------------------------------------------------------

async def test_running_balance_and_opening_balance_carried_into_the_next_year(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    staff, z1 = s["staff"], s["z1"]
    year = clock.now().astimezone(SH).year
    travel_to(at(year - 1, 6, 1, 10))
    await _entry(client, staff, z1, category="duty_unit", unit_id=s["duty_unit"],
                 amount_fen=500_000, description="轮值单位拨付", occurred_on=f"{year - 1}-05-30")
    await _expense(client, staff, z1, 120_000, occurred_on=f"{year - 1}-06-01")
    travel_to(at(year - 1, 12, 31, 23, 30))                 # the last half hour of last year
    await _expense(client, staff, z1, 30_000, category="materials")
    travel_to(at(year, 1, 1, 0, 30))                        # 16:30 UTC on 31 December: this year
    first = await _entry(client, staff, z1, category="member_unit", unit_id=s["other_unit"],
                         amount_fen=80_000, occurred_on=f"{year - 1}-12-31")
    clock.reset_travel()
    await _expense(client, s["duty"], z1, 50_000, category="event_costs")
    last = await _entry(client, s["duty"], z1, amount_fen=1_234)
    assert last["zone_balance_fen"] == 381_234
    assert (first["unit_id"], first["unit_name"]) == (
        s["other_unit"], next(u.name for u in city.units[z1] if u.id == s["other_unit"]))

    before = await _ledger(client, s["member"], z1, year=year - 1)
    assert (before["opening_balance_fen"], before["income_fen"], before["expense_fen"],
            before["closing_balance_fen"]) == (0, 500_000, 150_000, 350_000)
    assert lines(before) == [("duty_unit", 500_000, 500_000), ("venue_rent", 120_000, 380_000),
                             ("materials", 30_000, 350_000)]
    assert before["income_by_category"] == incomes(duty_unit=500_000)
    assert before["expense_by_category"] == expenses(venue_rent=120_000, materials=30_000)

    now = await _ledger(client, s["member"], z1)            # default: this year in Shanghai
    assert now["year"] == year and now["zone_name"] == "zone-1"
    assert (now["opening_balance_fen"], now["income_fen"], now["expense_fen"],
            now["closing_balance_fen"]) == (350_000, 81_234, 50_000, 381_234)
    assert lines(now) == [("member_unit", 80_000, 430_000), ("event_costs", 50_000, 380_000),
                          ("other_income", 1_234, 381_234)]
    assert [e["effect_fen"] for e in now["entries"]] == [80_000, -50_000, 1_234]
    assert now["income_by_category"] == incomes(member_unit=80_000, other_income=1_234)
    assert now["expense_by_category"] == expenses(event_costs=50_000)
    assert now == await _ledger(client, s["staff"], z1, year=year)
    empty = await _ledger(client, s["staff"], z1, year=year + 1)
    assert (empty["opening_balance_fen"], empty["closing_balance_fen"], empty["entries"]) == \
        (381_234, 381_234, [])

    r = await client.get(f"/api/v1/fund-ledger/summary?year={year}", headers=bearer(staff))
    assert r.status == 200, await r.text()
    summary = await r.json()
    by_zone = {z["zone_id"]: z for z in summary["zones"]}
    assert set(by_zone) == {z1, s["z2"]}
    assert (by_zone[z1]["opening_balance_fen"], by_zone[z1]["closing_balance_fen"]) == \
        (350_000, 381_234)
    assert by_zone[z1]["income_by_category"] == now["income_by_category"]
    assert by_zone[s["z2"]]["closing_balance_fen"] == 0
    assert by_zone[s["z2"]]["expense_by_category"] == expenses()
    assert summary["city"]["closing_balance_fen"] == 381_234
    assert summary["city"]["expense_by_category"] == expenses(event_costs=50_000)
    r = await client.get(f"/api/v1/fund-ledger/summary?year={year - 1}", headers=bearer(staff))
    assert (await r.json())["city"]["income_by_category"] == incomes(duty_unit=500_000)


async def test_occurred_on_is_checked_against_the_shanghai_date(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    year = clock.now().astimezone(SH).year
    travel_to(at(year, 3, 2, 1, 0))                         # UTC is still 1 March
    await _entry(client, s["staff"], s["z1"], occurred_on=f"{year}-03-02")
    r = await _entry(client, s["staff"], s["z1"], occurred_on=f"{year}-03-03", expect=422)
    assert [e["loc"] for e in r["errors"]] == [["body", "occurred_on"]]


# -- who may do what -----------------------------------------------------------------------------

async def test_who_may_read_and_write_a_zone_ledger(client: TestClient[Any, Any],
                                                    city: City) -> None:
    s = await _setup(client, city)
    z1, z2 = s["z1"], s["z2"]
    # Read: members of the zone and the committee.
    assert (await _ledger(client, s["member"], z1))["zone_id"] == z1
    assert (await _ledger(client, s["far_member"], z1, expect=403))["code"] == "not_zone_member"
    assert (await _ledger(client, s["far_duty"], z1, expect=403))["code"] == "not_zone_member"
    assert (await _ledger(client, s["staff"], z2))["closing_balance_fen"] == 0
    assert (await _ledger(client, s["staff"], 999_999, expect=404))["code"] == "zone_not_found"
    for token in (s["member"], s["duty"]):
        r = await client.get("/api/v1/fund-ledger/summary", headers=bearer(token))
        assert r.status == 403 and (await r.json())["code"] == "forbidden"
    # Write: the zone's duty unit in its quarter, the committee.
    made = await _entry(client, s["duty"], z1, amount_fen=20_000)
    assert made["status"] == "booked" and made["recorded_by_id"] == s["duty_admin_id"]
    assert (await _entry(client, s["far_duty"], z1, expect=403))["code"] == "not_on_duty"
    assert (await _entry(client, s["other_admin"], z1, expect=403))["code"] == "not_on_duty"
    assert (await _entry(client, s["member"], z1, expect=403))["code"] == "forbidden"
    assert (await _entry(client, s["staff"], 999_999, expect=404))["code"] == "zone_not_found"
    await _entry(client, s["staff"], z2, amount_fen=5_000)
    r = await _post(client, s["far_duty"], z1, made["id"], "reverse", {"reason": "录错"}, expect=403)
    assert r["code"] == "not_on_duty"
    # The same entry id under another zone's path is not found.
    r = await _post(client, s["staff"], z2, made["id"], "reverse", {"reason": "录错"}, expect=404)
    assert r["code"] == "fund_entry_not_found"
    # The quarter ends: the unit admin loses the power (unless on duty again right away).
    clock.travel(s["rotation"].ends_at - clock.now() + timedelta(hours=1))
    assert not await Rotation.filter(zone_id=z1, unit_id=s["duty_unit"], starts_at__lte=clock.now(),
                                     ends_at__gt=clock.now()).exists()
    assert (await _entry(client, s["duty"], z1, expect=403))["code"] == "not_on_duty"
    r = await _post(client, s["duty"], z1, made["id"], "reverse", {"reason": "录错"}, expect=403)
    assert r["code"] == "not_on_duty"
    assert (await _ledger(client, s["duty"], z1))["closing_balance_fen"] == 20_000  # still reads
    assert await FundEntry.filter(zone_id=z1).count() == 1


# -- committee subsidies ---------------------------------------------------------------------------

async def test_subsidy_waits_for_another_committee_member_then_books(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    z1, staff = s["z1"], s["staff"]
    other_staff, other_id = await _committee(client, "staff2")
    asked = await _entry(client, s["duty"], z1, category="committee_subsidy", amount_fen=200_000,
                         description="申请工委补助：党课场地租金")
    assert (asked["status"], asked["booked_at"], asked["zone_balance_fen"]) == ("pending", None, 0)
    own = await _entry(client, staff, z1, category="committee_subsidy", amount_fen=50_000,
                       description="工委补助：读书节")
    # The committee is asked; not the requester, who cannot approve their own request.
    assert await _inbox("ledger.subsidy_requested", asked["id"]) == sorted([s["staff_id"], other_id])
    assert await _inbox("ledger.subsidy_requested", own["id"]) == [other_id]
    book = await _ledger(client, s["member"], z1)
    assert [e["id"] for e in book["pending"]] == [asked["id"], own["id"]]
    assert (book["pending_fen"], book["pending_count"], book["closing_balance_fen"]) == \
        (250_000, 2, 0)
    assert book["entries"] == []
    # The member who asked cannot approve; a duty-unit admin cannot approve at all.
    r = await _post(client, staff, z1, own["id"], "approve", {}, expect=403)
    assert r["code"] == "self_approval"
    r = await _post(client, s["duty"], z1, asked["id"], "approve", {}, expect=403)
    assert r["code"] == "forbidden"
    ok = await _post(client, other_staff, z1, own["id"], "approve", {"note": "同意"}, expect=200)
    assert (ok["status"], ok["decided_by_id"], ok["decision_note"], ok["zone_balance_fen"]) == \
        ("booked", other_id, "同意", 50_000)
    ok = await _post(client, staff, z1, asked["id"], "approve", {}, expect=200)
    assert ok["zone_balance_fen"] == 250_000 and ok["booked_at"] is not None
    # Decided once: approving or rejecting again is refused, with who decided.
    r = await _post(client, other_staff, z1, asked["id"], "approve", {}, expect=409)
    assert (r["code"], r["status"], r["decided_by_id"]) == \
        ("already_decided", "booked", s["staff_id"])
    r = await _post(client, other_staff, z1, asked["id"], "reject", {"note": "不同意"}, expect=409)
    assert r["code"] == "already_decided"
    plain = await _entry(client, staff, z1)
    r = await _post(client, other_staff, z1, plain["id"], "approve", {}, expect=409)
    assert r["code"] == "not_a_subsidy"
    r = await _post(client, other_staff, z1, 999_999, "approve", {}, expect=404)
    assert r["code"] == "fund_entry_not_found"
    # Booked in approval order, in the balance; the duty unit's admins and the requester told.
    book = await _ledger(client, s["member"], z1)
    assert lines(book) == [("committee_subsidy", 50_000, 50_000),
                           ("committee_subsidy", 200_000, 250_000),
                           ("other_income", 10_000, 260_000)]
    assert book["pending"] == [] and book["income_by_category"]["committee_subsidy"] == 250_000
    # Committee money is reversed by the committee only, not by the duty unit that asked for it.
    r = await _post(client, s["duty"], z1, asked["id"], "reverse", {"reason": "不要了"}, expect=403)
    assert r["code"] == "forbidden"
    assert await _inbox("ledger.subsidy_approved", asked["id"]) == [s["duty_admin_id"]]
    assert await _inbox("ledger.subsidy_approved", own["id"]) == \
        sorted([s["duty_admin_id"], s["staff_id"]])


async def test_rejected_subsidy_books_nothing(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    z1 = s["z1"]
    other_staff, _ = await _committee(client, "staff2")
    asked = await _entry(client, s["duty"], z1, category="committee_subsidy", amount_fen=80_000)
    r = await _post(client, other_staff, z1, asked["id"], "reject", {}, expect=422)
    assert [e["loc"] for e in r["errors"]] == [["body", "note"]]
    r = await _post(client, other_staff, z1, asked["id"], "reverse", {"reason": "x"}, expect=409)
    assert (r["code"], r["status"]) == ("not_booked", "pending")
    no = await _post(client, other_staff, z1, asked["id"], "reject", {"note": "预算已用完"}, expect=200)
    assert (no["status"], no["booked_at"], no["decision_note"], no["zone_balance_fen"]) == \
        ("rejected", None, "预算已用完", 0)
    r = await _post(client, s["staff"], z1, asked["id"], "approve", {}, expect=409)
    assert (r["code"], r["status"]) == ("already_decided", "rejected")
    r = await _post(client, s["staff"], z1, asked["id"], "reverse", {"reason": "x"}, expect=409)
    assert r["code"] == "not_booked"
    book = await _ledger(client, s["member"], z1)
    assert [e["id"] for e in book["rejected"]] == [asked["id"]]
    assert (book["pending"], book["entries"], book["closing_balance_fen"]) == ([], [], 0)
    assert await _inbox("ledger.subsidy_rejected", asked["id"]) == [s["duty_admin_id"]]
    # The requester may withdraw their own request by rejecting it (it moves no money).
    own = await _entry(client, s["staff"], z1, category="committee_subsidy", amount_fen=1)
    await _post(client, s["staff"], z1, own["id"], "reject", {"note": "撤回"}, expect=200)


# -- reversals and the balance floor ---------------------------------------------------------------

async def test_reversal_writes_a_new_line_once(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    z1 = s["z1"]
    income = await _entry(client, s["staff"], z1, amount_fen=100_000)
    spent = await _expense(client, s["duty"], z1, 80_000)
    assert spent["zone_balance_fen"] == 20_000
    r = await _post(client, s["duty"], z1, income["id"], "reverse", {"reason": "重复录入"}, expect=409)
    assert (r["code"], r["balance_fen"], r["amount_fen"], r["shortfall_fen"]) == \
        ("insufficient_balance", 20_000, 100_000, 80_000)
    back = await _post(client, s["duty"], z1, spent["id"], "reverse", {"reason": "发票作废"},
                       expect=201)
    assert (back["direction"], back["category"], back["amount_fen"], back["effect_fen"],
            back["reverses_id"], back["status"], back["description"], back["zone_balance_fen"]) == \
        ("expense", "venue_rent", -80_000, 80_000, spent["id"], "booked", "发票作废", 100_000)
    r = await _post(client, s["staff"], z1, spent["id"], "reverse", {"reason": "再次"}, expect=409)
    assert (r["code"], r["reversed_by_id"]) == ("already_reversed", back["id"])
    r = await _post(client, s["staff"], z1, back["id"], "reverse", {"reason": "再次"}, expect=409)
    assert (r["code"], r["reverses_id"]) == ("reversal_not_reversible", spent["id"])
    gone = await _post(client, s["staff"], z1, income["id"], "reverse", {"reason": "重复"},
                       expect=201)
    assert gone["zone_balance_fen"] == 0
    book = await _ledger(client, s["member"], z1)
    assert lines(book) == [("other_income", 100_000, 100_000), ("venue_rent", 80_000, 20_000),
                           ("venue_rent", -80_000, 100_000), ("other_income", -100_000, 0)]
    links = [(e["id"], e["reverses_id"], e["reversed_by_id"]) for e in book["entries"]]
    assert links == [(income["id"], None, gone["id"]), (spent["id"], None, back["id"]),
                     (back["id"], spent["id"], None), (gone["id"], income["id"], None)]
    assert (book["income_fen"], book["expense_fen"], book["closing_balance_fen"]) == (0, 0, 0)
    assert book["expense_by_category"] == expenses()
    # The originals were never changed.
    original = await FundEntry.get(id=spent["id"])
    assert (original.amount_fen, original.status, original.reverses_id) == \
        (80_000, EntryStatus.BOOKED, None)


async def test_expenses_cannot_overdraw_the_booked_balance(client: TestClient[Any, Any],
                                                           city: City) -> None:
    s = await _setup(client, city)
    z1 = s["z1"]
    r = await _expense(client, s["duty"], z1, 1, expect=409)
    assert (r["code"], r["balance_fen"], r["amount_fen"]) == ("insufficient_balance", 0, 1)
    await _entry(client, s["duty"], z1, category="committee_subsidy", amount_fen=100_000)
    # A pending subsidy is not money yet.
    assert (await _expense(client, s["duty"], z1, 1, expect=409))["balance_fen"] == 0
    await _entry(client, s["duty"], z1, amount_fen=5_000)
    assert (await _expense(client, s["duty"], z1, 5_000))["zone_balance_fen"] == 0
    r = await _expense(client, s["staff"], z1, 1, expect=409)
    assert (r["balance_fen"], r["shortfall_fen"]) == (0, 1)
    assert await FundEntry.filter(zone_id=z1, direction="expense").count() == 1


# -- Idempotency-Key -----------------------------------------------------------------------------

async def test_idempotency_key_replays_and_refuses_misuse(client: TestClient[Any, Any],
                                                          city: City) -> None:
    s = await _setup(client, city)
    z1, z2 = s["z1"], s["z2"]
    first = await _entry(client, s["staff"], z1, key="receipt-2024-001", amount_fen=7_000)
    r = await client.post(f"/api/v1/zones/{z1}/fund-entries", headers={
        **bearer(s["staff"]), "Idempotency-Key": "receipt-2024-001"}, json={
        "direction": "income", "category": "other_income", "amount_fen": 7_000,
        "description": "社会捐赠", "occurred_on": today()})
    assert r.status == 200 and r.headers["Idempotent-Replayed"] == "true"
    again = await r.json()
    assert again["id"] == first["id"] and again["zone_balance_fen"] == 7_000
    r2 = await _entry(client, s["staff"], z1, key="receipt-2024-001", amount_fen=7_001, expect=409)
    assert (r2["code"], r2["entry_id"]) == ("idempotency_key_reused", first["id"])
    # Another person's request under the same key is not theirs to replay.
    r2 = await _entry(client, s["duty"], z1, key="receipt-2024-001", amount_fen=7_000, expect=409)
    assert r2["code"] == "idempotency_key_reused"
    # Keys are per zone.
    elsewhere = await _entry(client, s["staff"], z2, key="receipt-2024-001", amount_fen=7_000)
    assert elsewhere["id"] != first["id"]
    # An expense replays even when the balance could no longer pay it again.
    spent = await _expense(client, s["staff"], z1, 7_000, key="pay-1")
    replay = await _expense(client, s["staff"], z1, 7_000, key="pay-1", expect=200)
    assert (replay["id"], replay["zone_balance_fen"]) == (spent["id"], 0)
    # A replay of a refused request is refused again (nothing was stored under the key).
    for _ in range(2):
        refused = await _expense(client, s["staff"], z1, 1, key="pay-2", expect=409)
        assert refused["code"] == "insufficient_balance"
    for bad in ("k" * 65, "has space", ""):
        r2 = await _entry(client, s["staff"], z1, key=bad, expect=422)
        assert [e["loc"] for e in r2["errors"]] == [["header", "Idempotency-Key"]]
    assert await FundEntry.filter(zone_id=z1).count() == 2


# -- validation ----------------------------------------------------------------------------------

async def test_invalid_entries_answer_422_with_the_fields(client: TestClient[Any, Any],
                                                          city: City) -> None:
    s = await _setup(client, city)
    z1, staff = s["z1"], s["staff"]
    tomorrow = (clock.now().astimezone(SH).date() + timedelta(days=1)).isoformat()
    pdf = {"name": "发票.pdf", "url": "https://files.example.cn/i.pdf", "size": 1000,
           "content_type": "application/pdf"}
    cases: list[tuple[dict[str, Any], list[list[Any]]]] = [
        ({"direction": "income", "category": "venue_rent"}, [["body", "category"]]),
        ({"direction": "expense", "category": "other_income"}, [["body", "category"]]),
        ({"category": "campaign"}, [["body", "category"]]),
        ({"direction": "gift"}, [["body", "direction"]]),
        ({"amount_fen": 0}, [["body", "amount_fen"]]),
        ({"amount_fen": 10**10 + 1}, [["body", "amount_fen"]]),
        ({"amount_fen": "100"}, [["body", "amount_fen"]]),
        ({"amount_fen": 1.5}, [["body", "amount_fen"]]),
        ({"amount_fen": True}, [["body", "amount_fen"]]),
        ({"description": "   "}, [["body", "description"]]),
        ({"description": "x" * 201}, [["body", "description"]]),
        ({"description": "a\u0000b"}, [["body", "description"]]),
        ({"occurred_on": tomorrow}, [["body", "occurred_on"]]),
        ({"occurred_on": "2025/01/01"}, [["body", "occurred_on"]]),
        ({"occurred_on": 1_700_000_000}, [["body", "occurred_on"]]),
        ({"occurred_on": "1999-12-31"}, [["body", "occurred_on"]]),
        ({"category": "duty_unit"}, [["body", "unit_id"]]),
        ({"unit_id": s["other_unit"]}, [["body", "unit_id"]]),
        ({"attachments": [pdf] * 11}, [["body", "attachments"]]),
        ({"attachments": [{**pdf, "content_type": "text html"}]},
         [["body", "attachments", 0, "content_type"]]),
        ({"amount": 100}, [["body", "amount"]]),
        ({"amount_fen": 0, "description": ""}, [["body", "amount_fen"], ["body", "description"]]),
    ]
    for body, locs in cases:
        r = await _entry(client, staff, z1, expect=422, **body)
        assert r["code"] == "invalid_request", body
        assert [e["loc"] for e in r["errors"]] == locs, (body, r["errors"])
    r = await _entry(client, staff, z1, category="member_unit", unit_id=s["far_unit"], expect=400)
    assert r["code"] == "unit_not_in_zone"
    assert await FundEntry.all().count() == 0
    # What passes: a receipt on an expense, a unit's income naming the unit.
    await _entry(client, staff, z1, category="member_unit", unit_id=s["other_unit"], amount_fen=900)
    made = await _expense(client, staff, z1, 900, category="materials", attachments=[pdf])
    assert made["attachments"] == [pdf]
    for q in ("year=1999", "year=abc"):
        r2 = await client.get(f"/api/v1/zones/{z1}/fund-ledger?{q}", headers=bearer(staff))
        assert r2.status == 422 and (await r2.json())["errors"][0]["loc"] == ["query", "year"]
    r = await _post(client, staff, z1, made["id"], "reverse", {"reason": ""}, expect=422)
    assert [e["loc"] for e in r["errors"]] == [["body", "reason"]]
    r = await _post(client, staff, z1, made["id"], "reverse", {}, expect=422)
    assert [e["loc"] for e in r["errors"]] == [["body", "reason"]]


# -- book_campaign -------------------------------------------------------------------------------

async def test_book_campaign_books_each_drive_once(client: TestClient[Any, Any],
                                                   city: City) -> None:
    s = await _setup(client, city)
    z1 = s["z1"]
    d41, d42, d43, d44, d45 = await _drives(s, 5)
    async with in_transaction():
        line = await fund_entries.book_campaign(zone_id=z1, campaign_id=d41, amount_fen=123_456,
                                       title="读书节募集", recorded_by_id=s["staff_id"])
    assert line is not None
    assert (line.category.value, line.status, line.amount_fen, line.campaign_id) == \
        ("campaign", EntryStatus.BOOKED, 123_456, d41)
    async with in_transaction():
        again = await fund_entries.book_campaign(zone_id=z1, campaign_id=d41, amount_fen=999,
                                        title="读书节募集", recorded_by_id=s["staff_id"])
    assert again is not None and again.id == line.id and again.amount_fen == 123_456
    assert await fund_entries.book_campaign(zone_id=z1, campaign_id=d42, amount_fen=0, title="空",
                                   recorded_by_id=s["staff_id"]) is None
    # Inside the caller's transaction: if the caller rolls back, nothing was booked.
    with pytest.raises(RuntimeError):
        async with in_transaction():
            await fund_entries.book_campaign(zone_id=z1, campaign_id=d43, amount_fen=500, title="回滚",
                                    recorded_by_id=s["staff_id"])
            raise RuntimeError("the caller fails after booking")
    assert not await FundEntry.filter(campaign_id=d43).exists()
    with pytest.raises(errors.ZoneNotFound):
        await fund_entries.book_campaign(zone_id=999_999, campaign_id=d44, amount_fen=1, title="x",
                                recorded_by_id=s["staff_id"])
    with pytest.raises(ValueError):
        await fund_entries.book_campaign(zone_id=z1, campaign_id=d45, amount_fen=-1, title="x",
                                recorded_by_id=s["staff_id"])
    assert await FundEntry.filter(category="campaign").count() == 1
    book = await _ledger(client, s["member"], z1)
    assert book["income_by_category"] == incomes(campaign=123_456)
    assert lines(book) == [("campaign", 123_456, 123_456)]
    assert book["entries"][0]["campaign_id"] == d41


# -- under parallel load (PostgreSQL) -------------------------------------------------------------

async def _slow_balance(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the window between reading the balance and writing the line."""
    real = fund_entries.balance

    async def slow(zone_id: int) -> int:
        value = await real(zone_id)
        await asyncio.sleep(0.02)
        return value

    monkeypatch.setattr(fund_entries, "balance", slow)


async def _parallel_expenses(client: TestClient[Any, Any], s: dict[str, Any],
                             n: int) -> Counter[int]:
    """A balance of 50 000 fen, then n parallel expenses of 10 000: the statuses answered."""
    await _entry(client, s["staff"], s["z1"], amount_fen=50_000)
    payload = {"direction": "expense", "category": "event_costs", "amount_fen": 10_000,
               "description": "活动物料", "occurred_on": today()}
    url = f"/api/v1/zones/{s['z1']}/fund-entries"
    responses = await asyncio.gather(*(client.post(url, json=payload, headers=bearer(s["staff"]))
                                       for _ in range(n)))
    return Counter(r.status for r in responses)


@requires_postgres
async def test_control_without_the_zone_lock_parallel_expenses_overdraw(
        client: TestClient[Any, Any], city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    """The load below runs in parallel transactions: with the zone lock taken out it books more
    than the balance covers, so the next test can see an overdraft."""
    s = await _setup(client, city)
    await _slow_balance(monkeypatch)

    async def no_lock(zone_id: int) -> None:
        return None

    monkeypatch.setattr(fund_entries, "lock_zone", no_lock)
    statuses = await _parallel_expenses(client, s, 20)
    assert statuses[201] > 5, f"the control saw no overdraft: {statuses}"
    assert await svc.balance(s["z1"]) < 0


@requires_postgres
async def test_parallel_expenses_book_exactly_what_the_balance_covers(
        client: TestClient[Any, Any], city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    s = await _setup(client, city)
    await _slow_balance(monkeypatch)
    statuses = await _parallel_expenses(client, s, 20)
    assert statuses == {201: 5, 409: 15}
    assert await svc.balance(s["z1"]) == 0
    book = await _ledger(client, s["member"], s["z1"])
    assert [b for _, _, b in lines(book)] == [50_000, 40_000, 30_000, 20_000, 10_000, 0]


@requires_postgres
async def test_parallel_decisions_and_reversals_happen_once(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    z1 = s["z1"]
    deciders = [await _committee(client, f"staff{i}") for i in range(2, 6)]
    asked = await _entry(client, s["staff"], z1, category="committee_subsidy", amount_fen=300_000)
    url = f"/api/v1/zones/{z1}/fund-entries/{asked['id']}"
    rs = await asyncio.gather(*(client.post(f"{url}/approve", json={}, headers=bearer(t))
                                for t, _ in deciders))
    bodies = [await r.json() for r in rs]
    assert Counter(r.status for r in rs) == {200: 1, 409: 3}
    assert {b["code"] for b in bodies if "code" in b} == {"already_decided"}
    assert await svc.balance(z1) == 300_000
    assert await _inbox("ledger.subsidy_approved", asked["id"]) == \
        sorted([s["duty_admin_id"], s["staff_id"]])
    # An approval racing a rejection: one decision.
    second = await _entry(client, s["staff"], z1, category="committee_subsidy", amount_fen=1_000)
    url = f"/api/v1/zones/{z1}/fund-entries/{second['id']}"
    rs = await asyncio.gather(
        client.post(f"{url}/approve", json={}, headers=bearer(deciders[0][0])),
        client.post(f"{url}/reject", json={"note": "否"}, headers=bearer(deciders[1][0])))
    assert sorted(r.status for r in rs) == [200, 409]
    # Parallel reversals of one line: one reversing line.
    url = f"/api/v1/zones/{z1}/fund-entries/{asked['id']}/reverse"
    rs = await asyncio.gather(*(client.post(url, json={"reason": "多拨"}, headers=bearer(s["staff"]))
                                for _ in range(5)))
    assert Counter(r.status for r in rs) == {201: 1, 409: 4}
    assert await FundEntry.filter(reverses_id=asked["id"]).count() == 1
    # Parallel replays of one Idempotency-Key: one line.
    rs = await asyncio.gather(*(client.post(f"/api/v1/zones/{z1}/fund-entries", json={
        "direction": "income", "category": "other_income", "amount_fen": 300, "description": "捐赠",
        "occurred_on": today()}, headers={**bearer(s["staff"]), "Idempotency-Key": "same"})
        for _ in range(5)))
    assert Counter(r.status for r in rs) == {201: 1, 200: 4}
    assert await FundEntry.filter(idempotency_key="same").count() == 1


@requires_postgres
async def test_parallel_book_campaign_books_once(client: TestClient[Any, Any], city: City) -> None:
    s = await _setup(client, city)
    [drive] = await _drives(s, 1)

    async def close_drive() -> int:
        async with in_transaction():
            line = await fund_entries.book_campaign(zone_id=s["z1"], campaign_id=drive, amount_fen=88_800,
                                           title="专项募集", recorded_by_id=s["staff_id"])
            assert line is not None
            return line.id

    ids = await asyncio.gather(*(close_drive() for _ in range(8)))
    assert len(set(ids)) == 1
    assert await FundEntry.filter(campaign_id=drive).count() == 1
    assert await svc.balance(s["z1"]) == 88_800


def test_money_text_and_year_bounds() -> None:
    assert svc.yuan(12_345_678) == "123,456.78 元" and svc.yuan(-5) == "-0.05 元"
    start, end = svc.year_bounds(2026)
    assert (start.isoformat(), end.isoformat()) == ("2025-12-31T16:00:00+00:00",
                                                    "2026-12-31T16:00:00+00:00")
