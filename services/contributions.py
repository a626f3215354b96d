"""Contributions: offline entries (cash, bank transfers) and their reversals, reading them, and
each drive's running totals per unit and zone.

Totals come from the per-unit running rows (`campaign_total`), moved in the transaction that
moves the money: one small query, whatever the number of payments; the route's answer is kept
in Redis until the drive's money or state moves again (services/totals_cache.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import redis.asyncio as aioredis
from tortoise.exceptions import IntegrityError
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from models.funds import CampaignState, CampaignTotal, Channel, Contribution, ContributionStatus
from models.org import Member, Unit
from services import audit, clock, totals_cache
from services.auth import Principal
from services.campaigns import get_campaign, lock_unbooked, visible_in
from services.db import fetch_rows
from services.errors import (
    AlreadyReversed,
    CampaignNotFound,
    CampaignNotOpen,
    ContributionNotFound,
    Forbidden,
    InvalidInput,
    NotInAudience,
    NotReversible,
    ReceiptNoTaken,
    UnitNotFound,
)
from services.pay import WeChatPay
from services.views import View

_ADD_OFFLINE = (
    "INSERT INTO campaign_total (campaign_id, unit_id, zone_id, online_fen, online_count, "
    "offline_fen, offline_count, refunded_fen, refund_count) VALUES ($1, $2, $3, 0, 0, $4, $5, 0, 0) "
    "ON CONFLICT (campaign_id, unit_id) DO UPDATE SET "
    "offline_fen = campaign_total.offline_fen + excluded.offline_fen, "
    "offline_count = campaign_total.offline_count + excluded.offline_count")


async def record_offline(principal: Principal, *, campaign_id: int, unit_id: int, amount_fen: int,
                         channel: Channel, receipt_no: str, payer_name: str, member_id: int | None,
                         received_on: date, note: str) -> View:
    """Cash or a bank transfer a unit admin received; the receipt number makes a retry safe
    (the standing entry, replayed)."""
    campaign = await get_campaign(principal, campaign_id)
    if campaign.state is CampaignState.DRAFT:
        raise CampaignNotOpen(state=campaign.state.value)
    if not principal.is_committee and principal.unit_id != unit_id:
        raise Forbidden()
    unit = await Unit.get_or_none(id=unit_id)
    if unit is None:
        raise UnitNotFound()
    if campaign.zone_ids and unit.zone_id not in campaign.zone_ids:
        raise NotInAudience()
    if member_id is not None and not await Member.filter(id=member_id, unit_id=unit_id).exists():
        raise InvalidInput(errors=[{"loc": ["body", "member_id"], "msg": "该党员不属于此单位",
                                    "type": "member_not_in_unit"}])
    same = {"campaign_id": campaign_id, "unit_id": unit_id, "receipt_no": receipt_no}
    existing = await Contribution.get_or_none(**same)
    if existing is None:
        try:
            async with in_transaction():
                await lock_unbooked(campaign_id)
                existing = await Contribution.create(
                    **same, zone_id=unit.zone_id, member_id=member_id, channel=channel,
                    status=ContributionStatus.PAID, amount_fen=amount_fen, paid_at=clock.now(),
                    payer_name=payer_name, received_on=received_on, note=note,
                    recorded_by_id=principal.member_id)
                await fetch_rows(_ADD_OFFLINE, campaign_id, unit_id, unit.zone_id, amount_fen, 1)
                await audit.record(principal, "contribution.recorded_offline", "contribution", existing.id,
                                   zone_id=unit.zone_id, campaign_id=campaign_id, unit_id=unit_id,
                                   amount_fen=amount_fen, channel=channel, receipt_no=receipt_no)
            await totals_cache.moved([campaign_id])
            return View(await _with_campaign(existing), replayed=False)
        except IntegrityError:  # the same receipt raced in twice
            existing = await Contribution.get(**same)
    if existing.amount_fen != amount_fen or existing.channel is not channel:
        raise ReceiptNoTaken(contribution_id=existing.id)
    return View(await _with_campaign(existing), replayed=True)


async def _with_campaign(c: Contribution) -> Contribution:
    await c.fetch_related("campaign")
    return c


async def reverse_offline(principal: Principal, *, contribution_id: int, reason: str) -> Contribution:
    """A reversing entry (the negated amount) for an offline entry recorded in error; once."""
    original = await Contribution.get_or_none(id=contribution_id)
    if original is None or not _can_manage(principal, original):
        raise ContributionNotFound()
    if original.channel is Channel.WECHAT or original.reverses_id is not None:
        raise NotReversible()
    try:
        async with in_transaction():
            await lock_unbooked(original.campaign_id)
            reversal = await Contribution.create(
                campaign_id=original.campaign_id, unit_id=original.unit_id, zone_id=original.zone_id,
                member_id=original.member_id, channel=original.channel,
                status=ContributionStatus.PAID, amount_fen=-original.amount_fen,
                paid_at=clock.now(), payer_name=original.payer_name, note=reason,
                recorded_by_id=principal.member_id, reverses_id=original.id)
            await fetch_rows(_ADD_OFFLINE, original.campaign_id, original.unit_id, original.zone_id,
                             -original.amount_fen, -1)
            await audit.record(principal, "contribution.reversed", "contribution", original.id,
                               zone_id=original.zone_id, reversal_id=reversal.id,
                               amount_fen=-original.amount_fen, reason=reason)
    except IntegrityError:
        raise AlreadyReversed() from None
    await totals_cache.moved([original.campaign_id])
    return await _with_campaign(reversal)


def _can_manage(principal: Principal, c: Contribution) -> bool:
    return principal.is_committee or (principal.is_unit_admin and principal.unit_id == c.unit_id)


async def get_contribution(principal: Principal, contribution_id: int, *,
                           pay: WeChatPay | None = None) -> Contribution:
    """One contribution, to its payer, its unit's admin and the committee. Given `pay`, a
    pending order is looked up at WeChat Pay first (for the moment after wx.requestPayment
    returns, in case the notification is late)."""
    from services.payments import reconcile_order

    c = await Contribution.get_or_none(id=contribution_id).select_related("campaign")
    if c is None or not (c.member_id == principal.member_id or _can_manage(principal, c)):
        raise ContributionNotFound()
    if pay is not None and c.status is ContributionStatus.PENDING and c.out_trade_no:
        await reconcile_order(pay, c)
        await c.refresh_from_db()
    return c


async def my_contributions(principal: Principal, *, limit: int, cursor: int | None,
                           include_unpaid: bool) -> list[Contribution]:
    """The caller's own receipts, newest first (paid and refunded; with unpaid orders on ask)."""
    query = Contribution.filter(member_id=principal.member_id)
    if not include_unpaid:
        query = query.filter(status__in=[ContributionStatus.PAID, ContributionStatus.REFUNDED])
    if cursor is not None:
        query = query.filter(id__lt=cursor)
    return await query.order_by("-id").limit(limit).select_related("campaign")


async def campaign_contributions(principal: Principal, *, campaign_id: int, unit_id: int | None,
                                 status: ContributionStatus | None, limit: int,
                                 cursor: int | None) -> list[Contribution]:
    """Committee: any unit. A unit admin: their own unit only."""
    await get_campaign(principal, campaign_id)
    if not principal.is_committee:
        if not principal.is_unit_admin or (unit_id is not None and unit_id != principal.unit_id):
            raise Forbidden()
        unit_id = principal.unit_id
    query = Contribution.filter(campaign_id=campaign_id)
    if unit_id is not None:
        query = query.filter(unit_id=unit_id)
    if status is not None:
        query = query.filter(status=status)
    if cursor is not None:
        query = query.filter(id__lt=cursor)
    return await query.order_by("-id").limit(limit).select_related("campaign")


_TOTAL_COLUMNS = (
    "t.unit_id, u.name AS unit_name, t.zone_id, z.name AS zone_name, t.online_fen, "
    "t.online_count, t.offline_fen, t.offline_count, t.refunded_fen, t.refund_count")
_TOTALS = (
    f"SELECT {_TOTAL_COLUMNS} "
    "FROM campaign_total t JOIN unit u ON u.id = t.unit_id LEFT JOIN zone z ON z.id = t.zone_id "
    "WHERE t.campaign_id = $1")
#: The drive (what `visible` and the answer need) and its per-unit running rows, one query:
#: the campaign by its key, its totals by the (campaign_id, unit_id) unique index.
_DRIVE_TOTALS = (
    f"SELECT c.title AS c_title, c.state AS c_state, c.target_fen AS c_target, "
    f"c.zone_ids AS c_zone_ids, {_TOTAL_COLUMNS} "
    "FROM campaign c LEFT JOIN campaign_total t ON t.campaign_id = c.id "
    "LEFT JOIN unit u ON u.id = t.unit_id LEFT JOIN zone z ON z.id = t.zone_id "
    "WHERE c.id = $1")


@dataclass(slots=True)
class Tally:
    """Money of one unit, one zone or the whole drive; `total_fen` is what stays in."""

    online_fen: int = 0
    online_count: int = 0
    offline_fen: int = 0
    offline_count: int = 0
    refunded_fen: int = 0
    refund_count: int = 0

    @property
    def total_fen(self) -> int:
        return self.online_fen + self.offline_fen - self.refunded_fen

    @property
    def count(self) -> int:
        return self.online_count + self.offline_count

    def add(self, other: Tally) -> None:
        self.online_fen += other.online_fen
        self.online_count += other.online_count
        self.offline_fen += other.offline_fen
        self.offline_count += other.offline_count
        self.refunded_fen += other.refunded_fen
        self.refund_count += other.refund_count

    def as_dict(self) -> dict[str, int]:
        return {"total_fen": self.total_fen, "count": self.count, "online_fen": self.online_fen,
                "online_count": self.online_count, "offline_fen": self.offline_fen,
                "offline_count": self.offline_count, "refunded_fen": self.refunded_fen,
                "refund_count": self.refund_count}


def _tally_rows(rows: list[Any]) -> tuple[Tally, list[dict[str, Any]], list[dict[str, Any]]]:
    """The drive's money overall, by zone and by unit (ranked), from its per-unit running rows
    (unit_id, unit_name, zone_id, zone_name, the six sums)."""
    everything = Tally()
    zones: dict[int | None, tuple[str | None, Tally]] = {}
    units: list[dict[str, Any]] = []
    for (unit_id, unit_name, zone_id, zone_name, *money) in rows:
        tally = Tally(*money)
        everything.add(tally)
        zones.setdefault(zone_id, (zone_name, Tally()))[1].add(tally)
        units.append({"unit_id": unit_id, "unit_name": unit_name, "zone_id": zone_id, **tally.as_dict()})
    by_zone = [{"zone_id": zid, "zone_name": name, **tally.as_dict()} for zid, (name, tally) in zones.items()]
    return everything, _ranked(by_zone, "zone_name"), _ranked(units, "unit_name")


async def _tallies(campaign_id: int) -> tuple[Tally, list[dict[str, Any]], list[dict[str, Any]]]:
    return _tally_rows(await fetch_rows(_TOTALS, campaign_id))


async def _drive(campaign_id: int) -> tuple[tuple[str, str, int | None], list[int], list[Any]]:
    """(title, state, target_fen) of a drive, its zones (empty: city-wide) and its per-unit
    running rows: one query, no ORM row. CampaignNotFound when there is no such drive."""
    rows = await fetch_rows(_DRIVE_TOTALS, campaign_id)
    if not rows:
        raise CampaignNotFound()
    title, state, target, zone_ids = rows[0][:4]
    if isinstance(zone_ids, (str, bytes)):  # JSON as text (asyncpg without a codec, SQLite)
        zone_ids = json.loads(zone_ids)
    money = [row[4:] for row in rows if row[4] is not None]  # the LEFT JOIN's empty row
    return (title, state, target), list(zone_ids or []), money


def _seen_by(principal: Principal, state: str, zone_ids: list[int]) -> None:
    """CampaignNotFound when the drive is not the caller's to see (as if it did not exist)."""
    if not visible_in(principal, CampaignState(state), zone_ids):
        raise CampaignNotFound()


async def _drive_tallies(principal: Principal, campaign_id: int
                         ) -> tuple[tuple[str, str, int | None], Tally, list[dict[str, Any]],
                                    list[dict[str, Any]]]:
    """(title, state, target_fen) of a drive the caller may see, and its tallies."""
    head, zone_ids, money = await _drive(campaign_id)
    _seen_by(principal, head[1], zone_ids)
    return head, *_tally_rows(money)


def _totals(campaign_id: int, head: tuple[str, str, int | None], money: list[Any]) -> dict[str, Any]:
    (title, state, target), (everything, by_zone, by_unit) = head, _tally_rows(money)
    return {"campaign_id": campaign_id, "title": title, "state": state,
            "target_fen": target, "progress": round(everything.total_fen / target, 4) if target else None,
            **everything.as_dict(), "by_zone": by_zone, "by_unit": by_unit}


async def totals(principal: Principal, campaign_id: int) -> dict[str, Any]:
    """Total, count, progress toward the target, by zone and by unit (ranked)."""
    head, zone_ids, money = await _drive(campaign_id)
    _seen_by(principal, head[1], zone_ids)
    return _totals(campaign_id, head, money)


async def totals_answer(principal: Principal, campaign_id: int, *, redis: aioredis.Redis,
                        render: Callable[[dict[str, Any]], str], read: list[Any] | None = None) -> str:
    """`totals` as the route answers it (`render`: the response model's JSON), kept in Redis
    until the drive's money or state moves (services/totals_cache.py); who may see the drive
    is checked on every read, kept or not. `read`: the values of `totals_cache.keys`, when the
    caller fetched them already."""
    version, kept = totals_cache.parse(read) if read is not None else \
        await totals_cache.read(redis, campaign_id)
    if kept is not None:
        state, zone_ids, answer = kept
        _seen_by(principal, state, zone_ids)
        return answer
    head, zone_ids, money = await _drive(campaign_id)
    _seen_by(principal, head[1], zone_ids)
    answer = render(_totals(campaign_id, head, money))
    await totals_cache.keep(redis, campaign_id, version, state=head[1], zone_ids=zone_ids, answer=answer)
    return answer


async def summaries(drives: list[Any]) -> dict[int, dict[str, Any]]:
    """Total, count and progress of each drive of a page the caller was shown (list_campaigns
    decided what they may see): one grouped query for the page, not one per drive."""
    ids = [c.id for c in drives]
    sums = {row[0]: Tally(*row[1:]) for row in await CampaignTotal.filter(campaign_id__in=ids)
            .group_by("campaign_id")
            .annotate(a=Sum("online_fen"), b=Sum("online_count"), c=Sum("offline_fen"),
                      d=Sum("offline_count"), e=Sum("refunded_fen"), f=Sum("refund_count"))
            .values_list("campaign_id", "a", "b", "c", "d", "e", "f")} if ids else {}
    out = {}
    for c in drives:
        money = sums.get(c.id, Tally())
        out[c.id] = {"campaign_id": c.id, "title": c.title, "state": c.state.value,
                     "target_fen": c.target_fen,
                     "progress": round(money.total_fen / c.target_fen, 4) if c.target_fen else None,
                     **money.as_dict()}
    return out


async def leaderboard(principal: Principal, campaign_id: int, *, by: str, limit: int) -> dict[str, Any]:
    """Units or zones ranked by what they gave (equal totals share a rank)."""
    _, _, by_zone, by_unit = await _drive_tallies(principal, campaign_id)
    name = "unit" if by == "unit" else "zone"
    rows = [{"rank": r["rank"], "id": r[f"{name}_id"], "name": r[f"{name}_name"],
             "zone_id": r["zone_id"], "total_fen": r["total_fen"], "count": r["count"]}
            for r in (by_unit if by == "unit" else by_zone)[:limit]]
    return {"campaign_id": campaign_id, "by": by, "rows": rows}


async def net_total(campaign_id: int) -> int:
    """What a drive raised, net of refunds and reversals (settling a zone_fund drive)."""
    return (await _tallies(campaign_id))[0].total_fen


def _ranked(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Highest total first; equal totals share a rank (1, 2, 2, 4)."""
    rows.sort(key=lambda r: (-r["total_fen"], -r["count"], r[name] or ""))
    rank = 0
    for i, row in enumerate(rows):
        if i == 0 or row["total_fen"] != rows[i - 1]["total_fen"]:
            rank = i + 1
        row["rank"] = rank
    return rows
