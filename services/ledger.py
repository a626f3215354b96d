"""Each zone's fund ledger (党建网络区经费台账): its figures and how it reads.

Money is integer fen. A line is `pending` (a committee subsidy waiting for a second committee
member), `booked` or `rejected`. Booked lines are never updated or deleted: a correction is a new
booked line with the same direction and category and the negated amount, naming the line it
reverses. Balance = booked income - booked expense; no booking may take it below zero (every
booking holds the zone's row lock: services/fund_entries.py). Years are Asia/Shanghai calendar
years of `booked_at` (rejected lines: of `decided_at`).

Recording and reversing lines: services/fund_entries.py; deciding subsidies: services/subsidies.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

from tortoise import connections
from tortoise.expressions import Q
from tortoise.functions import Count, Sum
from tortoise.transactions import in_transaction

from models.ledger import Direction, EntryCategory, EntryStatus, FundEntry
from models.org import Unit, Zone
from services import clock
from services.access import check_committee
from services.auth import Principal
from services.db import fetch_rows, on_replica
from services.errors import EntryNotFound, NotZoneMember, ZoneNotFound
from services.views import View

C = EntryCategory
INCOME_CATEGORIES = (C.DUTY_UNIT, C.MEMBER_UNIT, C.COMMITTEE_SUBSIDY, C.CAMPAIGN, C.OTHER_INCOME)
EXPENSE_CATEGORIES = (C.VENUE_RENT, C.MATERIALS, C.EVENT_COSTS, C.OTHER_EXPENSE)
CATEGORIES: dict[Direction, tuple[EntryCategory, ...]] = {
    Direction.INCOME: INCOME_CATEGORIES, Direction.EXPENSE: EXPENSE_CATEGORIES}
DIRECTION_OF = {c: d for d, cs in CATEGORIES.items() for c in cs}
UNIT_CATEGORIES = (C.DUTY_UNIT, C.MEMBER_UNIT)  # paid by a unit of the zone: unit_id required
SYSTEM_CATEGORIES = (C.CAMPAIGN,)                # booked by the system, never by hand
MAX_AMOUNT_FEN = 10_000_000_000


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


def yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d} 元" if fen >= 0 else f"-{yuan(-fen)}"


_BALANCE_SQL = (
    "SELECT COALESCE(SUM(CASE WHEN direction = 'income' THEN amount_fen ELSE -amount_fen END), 0)"
    " AS balance_fen FROM fund_entry WHERE zone_id = $1 AND status = 'booked'")


async def balance(zone_id: int) -> int:
    """The zone's booked balance now (inside a booking: under the zone lock)."""
    rows = await fetch_rows(_BALANCE_SQL, zone_id)
    return int(rows[0][0] or 0)


@asynccontextmanager
async def snapshot() -> AsyncIterator[None]:
    """A read-only transaction whose queries all see one snapshot (PostgreSQL: REPEATABLE READ;
    SQLite: a read transaction in WAL mode)."""
    async with in_transaction():
        conn = connections.get("default")
        if conn.capabilities.dialect == "postgres":
            await conn.execute_script("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


# -- lines as the API shows them -----------------------------------------------------------------

async def get_or_raise(zone_id: int, entry_id: int) -> FundEntry:
    entry = await FundEntry.get_or_none(id=entry_id, zone_id=zone_id)
    if entry is None:
        raise EntryNotFound(zone_id=zone_id, entry_id=entry_id)
    return entry


async def views(entries: list[FundEntry], *, reversed_by: dict[int, int] | None = None,
                **extra: Any) -> list[View]:
    """Lines with what they show beside their columns: the balance effect, the paying unit's
    name and the line that reversed them (looked up unless given)."""
    ids = {e.unit_id for e in entries if e.unit_id is not None}
    names = dict(await Unit.filter(id__in=ids).values_list("id", "name")) if ids else {}
    if reversed_by is None:
        originals = [e.id for e in entries if e.status is EntryStatus.BOOKED and e.reverses_id is None]
        reversed_by = dict(await FundEntry.filter(reverses_id__in=originals)
                           .values_list("reverses_id", "id")) if originals else {}
    return [View(e, effect_fen=effect(e.direction, e.amount_fen),
                 unit_name=names.get(e.unit_id) if e.unit_id is not None else None,
                 reversed_by_id=reversed_by.get(e.id), **extra) for e in entries]


async def result(entry: FundEntry, *, replayed: bool = False) -> View:
    """A line just recorded, decided or reversed, with the zone's balance after it."""
    [view] = await views([entry], zone_balance_fen=await balance(entry.zone_id), replayed=replayed)
    return view


async def can_read_any(principal: Principal, entry_ids: list[int]) -> bool:
    """Whether the caller may read the ledger holding one of these lines (attachments' readers)."""
    zones = set(await FundEntry.filter(id__in=entry_ids).values_list("zone_id", flat=True))
    return any(principal.zone_id == z or principal.governs(z) for z in zones)


# -- a zone's year, and the city's ---------------------------------------------------------------

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


@on_replica
async def ledger(principal: Principal, *, zone_id: int, year: int | None) -> dict[str, Any]:
    """A zone's year: opening balance (every line booked before it), income and expense by
    category, closing balance, the booked lines in booking order with the running balance, the
    subsidies still pending (any year) and the lines rejected in the year. Members of the zone
    and staff governing it. Six queries in one snapshot, whatever the number of lines."""
    zone = await Zone.get_or_none(id=zone_id)
    if zone is None:
        raise ZoneNotFound(zone_id=zone_id)
    if not principal.governs(zone_id) and principal.zone_id != zone_id:
        raise NotZoneMember(zone_id=zone_id)
    year = year or this_year()
    start, end = year_bounds(year)
    totals = _empty_totals()
    async with snapshot():  # the totals and the lines agree even while lines are being booked
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
    for view in await views(booked, reversed_by=later):
        running += view.effect_fen
        lines.append(View(view, balance_fen=running))
    rest = await views(others, reversed_by={})
    return {"zone_id": zone.id, "zone_name": zone.name, "year": year, **totals, "entries": lines,
            "pending": [v for v in rest if v.status is EntryStatus.PENDING],
            "rejected": [v for v in rest if v.status is EntryStatus.REJECTED]}


@on_replica
async def summary(principal: Principal, *, year: int | None) -> dict[str, Any]:
    """Committee: every zone's year (opening, income and expense by category, closing, pending
    subsidies) and the city's totals: three queries, two in one snapshot."""
    check_committee(principal)
    return await year_totals(year or this_year())


async def year_totals(year: int) -> dict[str, Any]:
    """Every zone's fund year and the city's (`summary` without the caller's check)."""
    start, end = year_bounds(year)
    zones = {zid: {"zone_id": zid, "zone_name": name, **_empty_totals()}
             for zid, name in await Zone.all().order_by("id").values_list("id", "name")}
    city = _empty_totals()
    async with snapshot():
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
    return {"year": year, "zones": list(zones.values()), "city": city}
