"""Lines of a zone's fund ledger: recorded by the duty unit or staff, reversed (never edited),
and the closed zone_fund drives booked by the worker.

Every booking takes the zone's row lock first (services/locks.py) and only then reads the
balance and stamps `booked_at`: bookings of a zone are serialised, booking order is commit
order, and the running balance the ledger shows is the one each check saw. No booking may take
the balance below zero.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.funds import (
    Campaign,
    CampaignKind,
    CampaignState,
    Contribution,
    ContributionStatus,
    Refund,
    RefundStatus,
)
from models.ledger import Direction, EntryCategory, EntryStatus, FundEntry
from models.org import Unit
from services import audit, clock, files
from services.access import check_duty_zone
from services.auth import Principal
from services.db import fetch_rows
from services.errors import (
    AlreadyReversed,
    Forbidden,
    IdempotencyKeyReused,
    InsufficientBalance,
    InvalidInput,
    NotBooked,
    NotYourQuarter,
    ReversalNotReversible,
    UnitNotInZone,
    ZoneNotFound,
)
from services.ledger import (
    DIRECTION_OF,
    MAX_AMOUNT_FEN,
    SYSTEM_CATEGORIES,
    UNIT_CATEGORIES,
    balance,
    effect,
    get_or_raise,
    result,
    today,
)
from services.locks import lock_row
from services.views import View

#: Lines only staff governing the zone may reverse: money the committee approved or the system booked.
COMMITTEE_MONEY = frozenset({EntryCategory.COMMITTEE_SUBSIDY, EntryCategory.CAMPAIGN})


async def lock_zone(zone_id: int) -> None:
    """The zone's booking lock, inside the current transaction."""
    if not await lock_row("zone", zone_id):
        raise ZoneNotFound(zone_id=zone_id)


async def check_balance(zone_id: int, change_fen: int) -> int:
    """Raise InsufficientBalance when a booking of `change_fen` would take the balance below 0."""
    now_fen = await balance(zone_id)
    if now_fen + change_fen < 0:
        raise InsufficientBalance(balance_fen=now_fen, amount_fen=-change_fen,
                                  shortfall_fen=-(now_fen + change_fen))
    return now_fen + change_fen


def _check_line(category: EntryCategory, direction: Direction, occurred_on: date,
                unit_id: int | None) -> None:
    if category in SYSTEM_CATEGORIES or DIRECTION_OF[category] is not direction:
        raise InvalidInput(errors=[{"loc": ["body", "category"], "type": "value_error",
                                    "msg": f"类别 {category.value} 不能记为 {direction.value}"}])
    if occurred_on > today():
        raise InvalidInput(errors=[{"loc": ["body", "occurred_on"], "type": "value_error",
                                    "msg": "occurred_on 不能晚于今天（北京时间）"}])
    if (category in UNIT_CATEGORIES) != (unit_id is not None):
        raise InvalidInput(errors=[{"loc": ["body", "unit_id"], "type": "value_error",
                                    "msg": "只有 duty_unit 和 member_unit 收入须指定 unit_id"}])


def _same_request(entry: FundEntry, wanted: dict[str, Any]) -> bool:
    return all(getattr(entry, k) == v for k, v in wanted.items())


async def _standing(zone_id: int, key: str | None, wanted: dict[str, Any]) -> FundEntry | None:
    """The line an Idempotency-Key already made: the same request answers it again; another
    request with that key is refused."""
    if key is None:
        return None
    standing = await FundEntry.get_or_none(zone_id=zone_id, idempotency_key=key)
    if standing is not None and not _same_request(standing, wanted):
        raise IdempotencyKeyReused(entry_id=standing.id)
    return standing


async def record(principal: Principal, *, zone_id: int, direction: Direction,
                 category: EntryCategory, amount_fen: int, description: str, occurred_on: date,
                 unit_id: int | None, attachments: list[dict[str, Any]],
                 idempotency_key: str | None) -> View:
    """The duty unit of the zone during its quarter, or staff governing it, record a line.
    Committee subsidies wait for a second committee member (pending); everything else is booked
    at once, an expense only if the balance covers it."""
    from services.subsidies import ask_approvers

    await check_duty_zone(principal, zone_id)
    _check_line(category, direction, occurred_on, unit_id)
    attachments = await files.resolve(principal, attachments)
    wanted: dict[str, Any] = {
        "direction": direction, "category": category, "amount_fen": amount_fen,
        "description": description, "occurred_on": occurred_on, "unit_id": unit_id,
        "attachments": attachments, "recorded_by_id": principal.member_id}
    status = EntryStatus.PENDING if category is EntryCategory.COMMITTEE_SUBSIDY else EntryStatus.BOOKED
    try:
        async with in_transaction():
            await lock_zone(zone_id)
            if standing := await _standing(zone_id, idempotency_key, wanted):
                return await result(standing, replayed=True)
            if unit_id is not None and not await Unit.exists(id=unit_id, zone_id=zone_id):
                raise UnitNotInZone(unit_id=unit_id, zone_id=zone_id)
            if status is EntryStatus.BOOKED:
                await check_balance(zone_id, effect(direction, amount_fen))
            now = clock.now()
            entry = await FundEntry.create(
                zone_id=zone_id, status=status, idempotency_key=idempotency_key,
                booked_at=now if status is EntryStatus.BOOKED else None, created_at=now, **wanted)
            await files.attach(attachments, ref_type="fund_entry", ref_id=entry.id)
            await audit.record(principal, "fund_entry.recorded", "fund_entry", entry.id, zone_id=zone_id,
                               direction=direction, category=category, amount_fen=amount_fen,
                               status=status, unit_id=unit_id)
            if status is EntryStatus.PENDING:
                await ask_approvers(entry)
            return await result(entry)
    except IntegrityError:
        # Only a racing request with the same key gets here (the zone lock serialises the rest).
        standing = await _standing(zone_id, idempotency_key, wanted)
        if standing is None:
            raise
        return await result(standing, replayed=True)


async def reverse(principal: Principal, *, zone_id: int, entry_id: int, reason: str) -> View:
    """The duty unit of the zone during its quarter, or staff governing it, reverse a booked
    line: a new booked line with the same direction and category and the negated amount. A line
    is reversed at most once, a reversal is not reversed, and reversing income must leave the
    balance at 0 or more. A duty unit reverses only lines booked in its own rotation."""
    duty = await check_duty_zone(principal, zone_id)
    try:
        async with in_transaction():
            await lock_zone(zone_id)
            original = await get_or_raise(zone_id, entry_id)
            if duty is not None and (original.booked_at is None or original.booked_at < duty.starts_at):
                raise NotYourQuarter(entry_id=entry_id)
            if original.reverses_id is not None:
                raise ReversalNotReversible(entry_id=entry_id, reverses_id=original.reverses_id)
            if original.status is not EntryStatus.BOOKED:
                raise NotBooked(entry_id=entry_id, status=original.status.value)
            if original.category in COMMITTEE_MONEY and not principal.governs(zone_id):
                raise Forbidden("工委补助和募集款只能由机关工委冲销")
            done = await FundEntry.filter(reverses_id=original.id).values_list("id", flat=True)
            if done:
                raise AlreadyReversed(entry_id=entry_id, reversed_by_id=done[0])
            await check_balance(zone_id, -effect(original.direction, original.amount_fen))
            now = clock.now()
            entry = await FundEntry.create(
                zone_id=zone_id, direction=original.direction, category=original.category,
                status=EntryStatus.BOOKED, amount_fen=-original.amount_fen,
                unit_id=original.unit_id, description=reason, attachments=[],
                occurred_on=today(), recorded_by_id=principal.member_id,
                reverses_id=original.id, booked_at=now, created_at=now)
            await audit.record(principal, "fund_entry.reversed", "fund_entry", original.id, zone_id=zone_id,
                               reversal_id=entry.id, amount_fen=-original.amount_fen, reason=reason)
            return await result(entry)
    except IntegrityError:
        raise AlreadyReversed(entry_id=entry_id) from None


# -- closed zone_fund drives ---------------------------------------------------------------------

async def book_campaign(*, zone_id: int, campaign_id: int, amount_fen: int, title: str,
                        recorded_by_id: int) -> FundEntry | None:
    """Book a closed zone_fund drive's proceeds as one `campaign` income line of the zone. Once
    per campaign: a second call (or a racing one) books nothing and returns the standing line.
    0 fen books nothing (None)."""
    if not 0 <= amount_fen <= MAX_AMOUNT_FEN:
        raise ValueError(f"campaign amount out of range: {amount_fen}")
    standing = await FundEntry.get_or_none(campaign_id=campaign_id)
    if standing is not None or amount_fen == 0:
        return standing
    try:
        async with in_transaction():  # a savepoint inside the settling transaction
            await lock_zone(zone_id)
            standing = await FundEntry.get_or_none(campaign_id=campaign_id)
            if standing is not None:
                return standing
            now = clock.now()
            return await FundEntry.create(
                zone_id=zone_id, direction=Direction.INCOME, category=EntryCategory.CAMPAIGN,
                status=EntryStatus.BOOKED, amount_fen=amount_fen, campaign_id=campaign_id,
                description=f"募集活动「{title}」所得"[:200], attachments=[], occurred_on=today(),
                recorded_by_id=recorded_by_id, booked_at=now, created_at=now)
    except IntegrityError:
        standing = await FundEntry.get_or_none(campaign_id=campaign_id)
        if standing is None:
            raise
        return standing


_SETTLE = "UPDATE campaign SET settled_at = $1 WHERE id = $2 AND settled_at IS NULL RETURNING id"


async def settle_zone_funds() -> list[int]:
    """Book each closed zone_fund drive into its zone ledger once no order of it can still
    change (none pending, no refund in flight), once. Returns the campaigns settled. Locks in
    the one order: the zone, then the drive."""
    from services.contributions import net_total

    settled: list[int] = []
    candidates = await Campaign.filter(kind=CampaignKind.ZONE_FUND, state=CampaignState.CLOSED,
                                       fund_zone_id__isnull=False, settled_at__isnull=True)
    for campaign in candidates:
        if await Contribution.filter(campaign_id=campaign.id, status=ContributionStatus.PENDING).exists():
            continue
        if await Refund.filter(contribution__campaign_id=campaign.id,
                               status__in=[RefundStatus.PROCESSING, RefundStatus.ABNORMAL]).exists():
            continue
        assert campaign.fund_zone_id is not None
        async with in_transaction():
            await lock_zone(campaign.fund_zone_id)
            await lock_row("campaign", campaign.id)
            # The conditional UPDATE decides which run settles it.
            if not await fetch_rows(_SETTLE, clock.now(), campaign.id):
                continue
            await book_campaign(zone_id=campaign.fund_zone_id, campaign_id=campaign.id,
                                amount_fen=await net_total(campaign.id), title=campaign.title,
                                recorded_by_id=campaign.created_by_id)
        settled.append(campaign.id)
    return settled
