"""Each zone's fund ledger (党建网络区经费台账): income by source, expenses, the booked balance.

Money is integer fen. A line is `pending` (a committee subsidy waiting for a second committee
member), `booked` or `rejected`. Booked lines are never updated or deleted: a correction is a new
booked line with the same direction and category and the negated amount, naming the line it
reverses (`reverses_id` is unique, so a line is reversed at most once).

Balance = booked income - booked expense (a reversal's negative amount moves it back). No booking
may take it below zero. Every booking takes the zone lock first (PostgreSQL: the zone row
`FOR UPDATE` with a lock timeout that answers 409 busy; SQLite: a write to the zone row, so the
database write lock is held from the start, also across processes) and only then reads the
balance and stamps `booked_at`. Bookings of a zone are therefore serialised, booking order is
commit order, and the running balance the ledger shows is the one each check saw.

Years are Asia/Shanghai calendar years of `booked_at` (rejected lines: of `decided_at`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.functions import Count, Sum
from tortoise.transactions import in_transaction

from models.funds import Direction, EntryCategory, EntryStatus, FundEntry
from models.org import Member, Role, Unit, Zone
from services import clock, files, inbox
from services.access import check_duty_zone, check_governs, current_rotation
from services.auth import Principal
from services.db import fetch_rows
from services.errors import (
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    ServiceError,
    ZoneNotFound,
)
from services.org import UnitNotInZone

C = EntryCategory
INCOME_CATEGORIES = (C.DUTY_UNIT, C.MEMBER_UNIT, C.COMMITTEE_SUBSIDY, C.CAMPAIGN, C.OTHER_INCOME)
EXPENSE_CATEGORIES = (C.VENUE_RENT, C.MATERIALS, C.EVENT_COSTS, C.OTHER_EXPENSE)
CATEGORIES: dict[Direction, tuple[EntryCategory, ...]] = {
    Direction.INCOME: INCOME_CATEGORIES, Direction.EXPENSE: EXPENSE_CATEGORIES}
DIRECTION_OF = {c: d for d, cs in CATEGORIES.items() for c in cs}
UNIT_CATEGORIES = (C.DUTY_UNIT, C.MEMBER_UNIT)  # paid by a unit of the zone: unit_id required
SYSTEM_CATEGORIES = (C.CAMPAIGN,)                # booked by the system, never by hand
MAX_AMOUNT_FEN = 10_000_000_000
LOCK_TIMEOUT_MS = 5_000


class EntryNotFound(NotFound):
    code, default_message = "fund_entry_not_found", "找不到该经费记录"


class NotZoneMember(ServiceError):
    code, http_status, default_message = "not_zone_member", 403, "只能查看本网络区的经费台账"


class InsufficientBalance(ServiceError):
    code, http_status, default_message = "insufficient_balance", 409, "经费余额不足，不能入账"


class NotASubsidy(ServiceError):
    code, http_status, default_message = "not_a_subsidy", 409, "只有工委补助需要审批"


class AlreadyDecided(ServiceError):
    code, http_status, default_message = "already_decided", 409, "该补助申请已审批过"


class SelfApproval(ServiceError):
    code, http_status, default_message = "self_approval", 403, "不能审批本人提出的补助申请"


class NotBooked(ServiceError):
    code, http_status, default_message = "not_booked", 409, "只有已入账的记录可以冲销"


class ReversalNotReversible(ServiceError):
    code, http_status, default_message = "reversal_not_reversible", 409, "冲销记录本身不能再冲销"


class AlreadyReversed(ServiceError):
    code, http_status, default_message = "already_reversed", 409, "该记录已被冲销"


# -- figures -------------------------------------------------------------------------------------

def effect(direction: Direction | str, amount_fen: int) -> int:
    """What a booked line does to the balance: income adds its amount, expense takes it away."""
    return amount_fen if Direction(direction) is Direction.INCOME else -amount_fen


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """[1 January, next 1 January) of an Asia/Shanghai calendar year, in UTC."""
    return clock.quarter_bounds(year, 1)[0], clock.quarter_bounds(year, 4)[1]


def this_year() -> int:
    return clock.now().astimezone(clock.SHANGHAI).year


def today() -> date:
    return clock.now().astimezone(clock.SHANGHAI).date()


_BALANCE_SQL = (
    "SELECT COALESCE(SUM(CASE WHEN direction = 'income' THEN amount_fen ELSE -amount_fen END), 0)"
    " AS balance_fen FROM fund_entry WHERE zone_id = $1 AND status = 'booked'")


async def balance(zone_id: int) -> int:
    """The zone's booked balance now (inside a booking: under the zone lock)."""
    rows = await fetch_rows(_BALANCE_SQL, zone_id)
    return int(rows[0][0] or 0)


async def _lock_zone(zone_id: int, *, timeout: bool = True) -> str:
    """Take the zone's booking lock inside the current transaction; the zone's name. PostgreSQL:
    the zone row FOR UPDATE (waiting at most LOCK_TIMEOUT_MS, then 409 busy). SQLite: a no-op
    write to the zone row, which takes the database write lock now rather than at the insert."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        if timeout:
            await conn.execute_script(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
        rows = await fetch_rows("SELECT name AS zone_name FROM zone WHERE id = $1 FOR UPDATE",
                                zone_id)
    else:
        await fetch_rows("UPDATE zone SET name = name WHERE id = $1", zone_id)
        rows = await fetch_rows("SELECT name AS zone_name FROM zone WHERE id = $1", zone_id)
    if not rows:
        raise ZoneNotFound(zone_id=zone_id)
    return str(rows[0][0])


@asynccontextmanager
async def _snapshot() -> AsyncIterator[None]:
    """A read-only transaction whose queries all see one snapshot (PostgreSQL: REPEATABLE READ;
    SQLite: a read transaction in WAL mode, which the in-process lock also serialises)."""
    async with in_transaction():
        conn = connections.get("default")
        if conn.capabilities.dialect == "postgres":
            await conn.execute_script("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


async def _check_balance(zone_id: int, change_fen: int) -> int:
    """Raise InsufficientBalance when a booking of `change_fen` would take the balance below 0."""
    now_fen = await balance(zone_id)
    if now_fen + change_fen < 0:
        raise InsufficientBalance(balance_fen=now_fen, amount_fen=-change_fen,
                                  shortfall_fen=-(now_fen + change_fen))
    return now_fen + change_fen


async def can_read_any(principal: Principal, entry_ids: list[int]) -> bool:
    """Whether the caller may read the ledger holding one of these lines (attachments' readers)."""
    zones = set(await FundEntry.filter(id__in=entry_ids).values_list("zone_id", flat=True))
    return any(principal.zone_id == z or principal.governs(z) for z in zones)


# -- reading -------------------------------------------------------------------------------------

async def get_or_raise(zone_id: int, entry_id: int) -> FundEntry:
    entry = await FundEntry.get_or_none(id=entry_id, zone_id=zone_id)
    if entry is None:
        raise EntryNotFound(zone_id=zone_id, entry_id=entry_id)
    return entry


async def reversed_by(entries: list[FundEntry]) -> dict[int, int]:
    """original id -> id of the line that reversed it, for the given lines."""
    ids = [e.id for e in entries if e.status is EntryStatus.BOOKED and e.reverses_id is None]
    if not ids:
        return {}
    return dict(await FundEntry.filter(reverses_id__in=ids).values_list("reverses_id", "id"))


async def unit_names(entries: list[FundEntry]) -> dict[int, str]:
    ids = {e.unit_id for e in entries if e.unit_id is not None}
    return dict(await Unit.filter(id__in=ids).values_list("id", "name")) if ids else {}


def _empty_totals() -> dict[str, Any]:
    return {"opening_balance_fen": 0, "income_fen": 0, "expense_fen": 0, "closing_balance_fen": 0,
            "income_by_category": {c.value: 0 for c in INCOME_CATEGORIES},
            "expense_by_category": {c.value: 0 for c in EXPENSE_CATEGORIES},
            "pending_fen": 0, "pending_count": 0}


def _add(totals: dict[str, Any], category: str, before_fen: int, during_fen: int) -> None:
    """Fold one (category: booked before the year, booked in the year) row into the totals."""
    cat = EntryCategory(category)
    direction = DIRECTION_OF[cat]
    totals["opening_balance_fen"] += effect(direction, before_fen)
    if direction is Direction.INCOME:
        totals["income_by_category"][cat.value] += during_fen
        totals["income_fen"] += during_fen
    else:
        totals["expense_by_category"][cat.value] += during_fen
        totals["expense_fen"] += during_fen
    totals["closing_balance_fen"] = (totals["opening_balance_fen"] + totals["income_fen"]
                                     - totals["expense_fen"])


def _totals_query(start: datetime, end: datetime, **filters: Any) -> Any:
    """Booked amounts up to the end of the year, before and in it, one row per category (and
    whatever else the caller groups by): one aggregate query."""
    return FundEntry.filter(status=EntryStatus.BOOKED, booked_at__lt=end, **filters).annotate(
        before_fen=Sum("amount_fen", _filter=Q(booked_at__lt=start)),
        during_fen=Sum("amount_fen", _filter=Q(booked_at__gte=start)))


def _pending_query(**filters: Any) -> Any:
    return FundEntry.filter(status=EntryStatus.PENDING, **filters).annotate(
        n_pending=Count("id"), pending_sum=Sum("amount_fen"))


@dataclass
class Ledger:
    zone: Zone
    year: int
    totals: dict[str, Any]
    entries: list[tuple[FundEntry, int]]  # booked lines of the year with the balance after each
    pending: list[FundEntry]
    rejected: list[FundEntry]
    reversed_by: dict[int, int]
    unit_names: dict[int, str]


async def ledger(principal: Principal, *, zone_id: int, year: int | None) -> Ledger:
    """A zone's year: opening balance (every line booked before it), income and expense by
    category, closing balance, the booked lines in booking order with the running balance, the
    subsidies still pending (any year) and the lines rejected in the year. Members of the zone
    and the committee only. Six queries in one snapshot, whatever the number of lines."""
    if not principal.governs(zone_id) and principal.zone_id != zone_id:
        raise NotZoneMember(zone_id=zone_id)
    zone = await Zone.get_or_none(id=zone_id)
    if zone is None:
        raise ZoneNotFound(zone_id=zone_id)
    year = year or this_year()
    start, end = year_bounds(year)
    totals = _empty_totals()
    async with _snapshot():  # the totals and the lines agree even while lines are being booked
        for row in await _totals_query(start, end, zone_id=zone_id).group_by("category") \
                .values("category", "before_fen", "during_fen"):
            _add(totals, row["category"], int(row["before_fen"] or 0), int(row["during_fen"] or 0))
        for row in await _pending_query(zone_id=zone_id).group_by("zone_id") \
                .values("n_pending", "pending_sum"):
            totals["pending_count"] = row["n_pending"]
            totals["pending_fen"] = int(row["pending_sum"] or 0)
        booked = await FundEntry.filter(zone_id=zone_id, status=EntryStatus.BOOKED,
                                        booked_at__gte=start, booked_at__lt=end) \
            .order_by("booked_at", "id")
        others = await FundEntry.filter(
            Q(status=EntryStatus.PENDING)
            | Q(status=EntryStatus.REJECTED, decided_at__gte=start, decided_at__lt=end),
            zone_id=zone_id).order_by("id")
        # A reversal is booked after its original, so every reversal of this year's lines is
        # booked this year or later.
        later = dict(await FundEntry.filter(zone_id=zone_id, reverses_id__isnull=False,
                                            booked_at__gte=start).values_list("reverses_id", "id"))
    running, lines = totals["opening_balance_fen"], []
    for entry in booked:
        running += effect(entry.direction, entry.amount_fen)
        lines.append((entry, running))
    return Ledger(zone=zone, year=year, totals=totals, entries=lines,
                  pending=[e for e in others if e.status is EntryStatus.PENDING],
                  rejected=[e for e in others if e.status is EntryStatus.REJECTED],
                  reversed_by={e.id: later[e.id] for e in booked if e.id in later},
                  unit_names=await unit_names(booked + others))


async def summary(principal: Principal, *, year: int | None) -> tuple[int, list[dict[str, Any]],
                                                                      dict[str, Any]]:
    """Committee: every zone's year (opening, income and expense by category, closing, pending
    subsidies) and the city's totals: three queries, two in one snapshot."""
    if not principal.is_committee:
        raise Forbidden()
    year = year or this_year()
    start, end = year_bounds(year)
    zones = {zid: {"zone_id": zid, "zone_name": name, **_empty_totals()}
             for zid, name in await Zone.all().order_by("id").values_list("id", "name")}
    city = _empty_totals()
    async with _snapshot():
        totals = await _totals_query(start, end).group_by("zone_id", "category") \
            .values("zone_id", "category", "before_fen", "during_fen")
        pending = await _pending_query().group_by("zone_id") \
            .values("zone_id", "n_pending", "pending_sum")
    for row in totals:
        before, during = int(row["before_fen"] or 0), int(row["during_fen"] or 0)
        if row["zone_id"] in zones:
            _add(zones[row["zone_id"]], row["category"], before, during)
        _add(city, row["category"], before, during)
    for row in pending:
        fen = int(row["pending_sum"] or 0)
        if row["zone_id"] in zones:
            zones[row["zone_id"]].update(pending_count=row["n_pending"], pending_fen=fen)
        city["pending_count"] += row["n_pending"]
        city["pending_fen"] += fen
    return year, list(zones.values()), city


# -- recording -----------------------------------------------------------------------------------

@dataclass
class Recorded:
    entry: FundEntry
    created: bool          # False: an Idempotency-Key replay answered with the standing line
    balance_fen: int       # the zone's booked balance after the call


def _same_request(entry: FundEntry, wanted: dict[str, Any]) -> bool:
    return all(getattr(entry, k) == v for k, v in wanted.items())


async def record(principal: Principal, *, zone_id: int, direction: Direction,
                 category: EntryCategory, amount_fen: int, description: str, occurred_on: date,
                 unit_id: int | None, attachments: list[dict[str, Any]],
                 idempotency_key: str | None) -> Recorded:
    """The duty unit of the zone during its quarter, or the committee, records a line. Committee
    subsidies wait for a second committee member (pending); everything else is booked at once,
    an expense only if the balance covers it. The same Idempotency-Key with the same request
    answers the standing line; with another request, idempotency_key_reused."""
    await check_duty_zone(principal, zone_id)  # committee: any zone
    if category in SYSTEM_CATEGORIES or DIRECTION_OF[category] is not direction:
        raise InvalidInput(errors=[{
            "loc": ["body", "category"], "type": "value_error",
            "msg": f"类别 {category.value} 不能记为 {direction.value}"}])
    if occurred_on > today():
        raise InvalidInput(errors=[{
            "loc": ["body", "occurred_on"], "type": "value_error",
            "msg": "occurred_on 不能晚于今天（北京时间）"}])
    if (category in UNIT_CATEGORIES) != (unit_id is not None):
        raise InvalidInput(errors=[{"loc": ["body", "unit_id"], "type": "value_error",
                                    "msg": "只有 duty_unit 和 member_unit 收入须指定 unit_id"}])
    attachments = await files.resolve(principal, attachments)
    wanted: dict[str, Any] = {
        "direction": direction, "category": category, "amount_fen": amount_fen,
        "description": description, "occurred_on": occurred_on, "unit_id": unit_id,
        "attachments": attachments, "recorded_by_id": principal.member_id}
    status = EntryStatus.PENDING if category is C.COMMITTEE_SUBSIDY else EntryStatus.BOOKED
    try:
        async with in_transaction():
            await _lock_zone(zone_id)
            if idempotency_key is not None:
                standing = await FundEntry.get_or_none(zone_id=zone_id,
                                                       idempotency_key=idempotency_key)
                if standing is not None:
                    if not _same_request(standing, wanted):
                        raise IdempotencyKeyReused(entry_id=standing.id)
                    return Recorded(standing, False, await balance(zone_id))
            if unit_id is not None and not await Unit.exists(id=unit_id, zone_id=zone_id):
                raise UnitNotInZone(unit_id=unit_id, zone_id=zone_id)
            after = (await _check_balance(zone_id, effect(direction, amount_fen))
                     if status is EntryStatus.BOOKED else await balance(zone_id))
            now = clock.now()
            entry = await FundEntry.create(
                zone_id=zone_id, status=status, idempotency_key=idempotency_key,
                booked_at=now if status is EntryStatus.BOOKED else None, created_at=now, **wanted)
            await files.attach(attachments, ref_type="fund_entry", ref_id=entry.id)
            if status is EntryStatus.PENDING:
                await _ask_committee(entry)
            return Recorded(entry, True, after)
    except IntegrityError:
        # Only a racing request with the same key gets here (the zone lock serialises the rest).
        standing = (await FundEntry.get_or_none(zone_id=zone_id, idempotency_key=idempotency_key)
                    if idempotency_key is not None else None)
        if standing is None:
            raise
        if not _same_request(standing, wanted):
            raise IdempotencyKeyReused(entry_id=standing.id) from None
        return Recorded(standing, False, await balance(zone_id))


# -- deciding subsidies --------------------------------------------------------------------------

async def _pending_subsidy(zone_id: int, entry_id: int) -> FundEntry:
    entry = await get_or_raise(zone_id, entry_id)
    if entry.category is not C.COMMITTEE_SUBSIDY:
        raise NotASubsidy(entry_id=entry_id, category=entry.category.value)
    if entry.status is not EntryStatus.PENDING:
        raise AlreadyDecided(entry_id=entry_id, status=entry.status.value,
                             decided_by_id=entry.decided_by_id,
                             decided_at=clock.local_iso(entry.decided_at))
    return entry


async def _decide(entry: FundEntry, to: EntryStatus, changes: dict[str, Any]) -> FundEntry:
    """Conditional UPDATE from pending: of two deciders racing, exactly one moves it."""
    moved = await FundEntry.filter(id=entry.id, status=EntryStatus.PENDING) \
        .update(status=to, **changes)
    if not moved:
        await _pending_subsidy(entry.zone_id, entry.id)  # raises already_decided with who and when
    return await FundEntry.get(id=entry.id)


async def _ask_committee(entry: FundEntry) -> None:
    """Everyone who may approve it — the committee and the zone's liaisons, but not the
    requester — is told of a new subsidy request; inside the recording transaction."""
    approvers = await Member.filter(
        Q(role=Role.COMMITTEE) | Q(role=Role.LIAISON, liaisons__zone_id=entry.zone_id),
        is_active=True).exclude(id=entry.recorded_by_id).distinct().values_list("id", flat=True)
    await inbox.send_system(member_ids=approvers, topic="ledger.subsidy_requested",
                            title=f"经费补贴待审批：{_yuan(entry.amount_fen)}",
                            body=entry.description, ref_type="fund_entry", ref_id=entry.id)


async def _tell(entry: FundEntry, *, topic: str, title: str, body: str) -> None:
    """The zone's duty-unit admins and the requester; inside the deciding transaction."""
    rotation = await current_rotation(entry.zone_id)
    people = await inbox.unit_admin_ids([rotation.unit_id]) if rotation else []
    await inbox.send_system(member_ids=[*people, entry.recorded_by_id], topic=topic, title=title,
                            body=body, ref_type="fund_entry", ref_id=entry.id)


def _yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d} 元" if fen >= 0 else f"-{_yuan(-fen)}"


async def approve(principal: Principal, *, zone_id: int, entry_id: int, note: str) -> Recorded:
    """A committee member other than the requester approves a pending subsidy: it is booked now
    and the duty unit's admins and the requester are told, in one transaction. A liaison decides
    for their own zones only."""
    check_governs(principal, zone_id)
    async with in_transaction():
        await _lock_zone(zone_id)
        entry = await _pending_subsidy(zone_id, entry_id)
        if entry.recorded_by_id == principal.member_id:
            raise SelfApproval(entry_id=entry_id)
        now = clock.now()
        entry = await _decide(entry, EntryStatus.BOOKED, {
            "booked_at": now, "decided_at": now, "decided_by_id": principal.member_id,
            "decision_note": note})
        await _tell(entry, topic="ledger.subsidy_approved",
                    title=f"工委补助已批准：{_yuan(entry.amount_fen)}",
                    body=f"{entry.description}\n{note}".strip())
        return Recorded(entry, True, await balance(zone_id))


async def reject(principal: Principal, *, zone_id: int, entry_id: int, note: str) -> Recorded:
    """A committee member rejects a pending subsidy with a reason (the requester may withdraw
    their own request this way: rejecting moves no money)."""
    check_governs(principal, zone_id)
    async with in_transaction():
        entry = await _pending_subsidy(zone_id, entry_id)
        now = clock.now()
        entry = await _decide(entry, EntryStatus.REJECTED, {
            "decided_at": now, "decided_by_id": principal.member_id, "decision_note": note})
        await _tell(entry, topic="ledger.subsidy_rejected",
                    title=f"工委补助未获批准：{_yuan(entry.amount_fen)}",
                    body=f"{entry.description}\n{note}")
        return Recorded(entry, True, await balance(zone_id))


# -- reversing -----------------------------------------------------------------------------------

#: Lines only the committee may reverse: money it approved or the system booked.
COMMITTEE_MONEY = frozenset({EntryCategory.COMMITTEE_SUBSIDY, EntryCategory.CAMPAIGN})


async def reverse(principal: Principal, *, zone_id: int, entry_id: int, reason: str) -> Recorded:
    """The duty unit of the zone during its quarter, or the committee, reverses a booked line: a
    new booked line with the same direction and category and the negated amount. A line is
    reversed at most once, a reversal is not reversed, and reversing income must leave the
    balance at 0 or more."""
    await check_duty_zone(principal, zone_id)
    try:
        async with in_transaction():
            await _lock_zone(zone_id)
            original = await get_or_raise(zone_id, entry_id)
            if original.reverses_id is not None:
                raise ReversalNotReversible(entry_id=entry_id, reverses_id=original.reverses_id)
            if original.status is not EntryStatus.BOOKED:
                raise NotBooked(entry_id=entry_id, status=original.status.value)
            if original.category in COMMITTEE_MONEY and not principal.governs(zone_id):
                raise Forbidden("委员会补贴和募集款只能由委员会冲销")
            done = await FundEntry.filter(reverses_id=original.id).values_list("id", flat=True)
            if done:
                raise AlreadyReversed(entry_id=entry_id, reversed_by_id=done[0])
            after = await _check_balance(zone_id, -effect(original.direction, original.amount_fen))
            now = clock.now()
            entry = await FundEntry.create(
                zone_id=zone_id, direction=original.direction, category=original.category,
                status=EntryStatus.BOOKED, amount_fen=-original.amount_fen,
                unit_id=original.unit_id,
                description=reason, attachments=[], occurred_on=today(),
                recorded_by_id=principal.member_id, reverses_id=original.id, booked_at=now,
                created_at=now)
            return Recorded(entry, True, after)
    except IntegrityError:
        done = await FundEntry.filter(reverses_id=entry_id).values_list("id", flat=True)
        if not done:
            raise
        raise AlreadyReversed(entry_id=entry_id, reversed_by_id=done[0]) from None


# -- called by the funds code ----------------------------------------------------------------------

async def book_campaign(*, zone_id: int, campaign_id: int, amount_fen: int, title: str,
                        recorded_by_id: int) -> FundEntry | None:
    """Book a closed zone_fund drive's proceeds as one `campaign` income line of the zone; call it
    inside the transaction that closes the drive. Once per campaign: a second call (or a racing
    one) books nothing and returns the standing line, whatever its amount. 0 fen books nothing
    (None). Raises ZoneNotFound for an unknown zone and ValueError for a negative amount."""
    if amount_fen < 0 or amount_fen > MAX_AMOUNT_FEN:
        raise ValueError(f"campaign amount out of range: {amount_fen}")
    standing = await FundEntry.get_or_none(campaign_id=campaign_id)
    if standing is not None or amount_fen == 0:
        return standing
    try:
        async with in_transaction():  # a savepoint in the caller's transaction
            await _lock_zone(zone_id, timeout=False)  # the caller's lock timeout stays as it is
            standing = await FundEntry.get_or_none(campaign_id=campaign_id)
            if standing is not None:
                return standing
            now = clock.now()
            return await FundEntry.create(
                zone_id=zone_id, direction=Direction.INCOME, category=C.CAMPAIGN,
                status=EntryStatus.BOOKED, amount_fen=amount_fen, campaign_id=campaign_id,
                description=f"募集活动「{title}」所得"[:200], attachments=[], occurred_on=today(),
                recorded_by_id=recorded_by_id, booked_at=now, created_at=now)
    except IntegrityError:
        standing = await FundEntry.get_or_none(campaign_id=campaign_id)
        if standing is None:
            raise
        return standing
