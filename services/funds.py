"""Contribution drives: orders paid through WeChat Pay, offline entries, refunds and totals.

Every fen is counted once: an order becomes paid in one conditional UPDATE (pending or closed →
paid, amount equal) in the transaction that moves its unit's running totals, and the WeChat
transaction id is unique. Notifications only ever confirm what a verified, decrypted message
says; a lost one is made good by the reconcile job that queries WeChat Pay.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models.funds import (
    Campaign,
    CampaignKind,
    CampaignState,
    Channel,
    Contribution,
    ContributionStatus,
    Refund,
    RefundStatus,
)
from models.org import Member, Unit, Zone
from services import clock
from services.auth import Principal
from services.db import fetch_rows
from services.errors import (
    Forbidden,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidInput,
    NotFound,
    ServiceError,
    UnitNotFound,
    ZoneNotFound,
)
from services.pay import Notification, PayNotConfigured, PayRefused, PayUnavailable, WeChatPay

log = logging.getLogger("zonehub.funds")

RECHECK_EVERY = timedelta(minutes=5)
RETRY_SOON = timedelta(minutes=1)
RECONCILE_BATCH = 500
RECONCILE_IN_FLIGHT = 10
_OUT_TRADE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class CampaignNotFound(NotFound):
    code, default_message = "campaign_not_found", "找不到该募集活动"


class ContributionNotFound(NotFound):
    code, default_message = "contribution_not_found", "找不到该笔缴纳记录"


class CampaignNotOpen(ServiceError):
    code, http_status, default_message = "campaign_not_open", 409, "该募集活动未开放缴纳"


class NotInAudience(ServiceError):
    code, http_status, default_message = "not_in_audience", 403, "该募集活动不面向您所在的网络区"


class AmountOutOfRange(ServiceError):
    code, http_status, default_message = "amount_out_of_range", 422, "金额超出本次募集允许的范围"


class NoUnit(ServiceError):
    code, http_status, default_message = "no_unit", 403, "只有所属单位的党员可以缴纳"


class WeChatNotLinked(ServiceError):
    code, http_status, default_message = "wechat_not_linked", 403, "请先用微信登录并绑定后再支付"


class IdempotencyKeyRequired(ServiceError):
    code, http_status, default_message = ("idempotency_key_required", 400,
                                          "缺少 Idempotency-Key 请求头，无法保证不重复扣款")


class NotRefundable(ServiceError):
    code, http_status, default_message = "not_refundable", 409, "只有已支付的微信缴纳可以退款"


class RefundExceedsPaid(ServiceError):
    code, http_status, default_message = "refund_exceeds_paid", 409, "退款金额超过可退金额"


class CampaignBooked(ServiceError):
    code, http_status, default_message = ("campaign_booked", 409,
                                          "该募集款已记入网络区经费台账，不能再退款")


class ReceiptNoTaken(ServiceError):
    code, http_status, default_message = "receipt_no_taken", 409, "该收据号已登记过另一笔款项"


class NotReversible(ServiceError):
    code, http_status, default_message = "not_reversible", 409, "只有线下登记的款项可以冲销，且冲销记录不能再冲销"


class AlreadyReversed(ServiceError):
    code, http_status, default_message = "already_reversed", 409, "该笔款项已被冲销"


# -- campaigns ---------------------------------------------------------------------------------

async def create_campaign(principal: Principal, *, kind: CampaignKind, title: str, description: str,
                          target_fen: int | None, starts_at: datetime | None, ends_at: datetime,
                          zone_ids: list[int], fund_zone_id: int | None, min_amount_fen: int,
                          max_amount_fen: int, draft: bool) -> Campaign:
    wanted = set(zone_ids) | ({fund_zone_id} if fund_zone_id else set())
    if wanted and await Zone.filter(id__in=wanted).count() != len(wanted):
        raise ZoneNotFound()
    if kind is CampaignKind.ZONE_FUND and not zone_ids and fund_zone_id:
        zone_ids = [fund_zone_id]
    now = clock.now()
    return await Campaign.create(
        kind=kind, title=title, description=description, target_fen=target_fen,
        starts_at=starts_at, ends_at=ends_at, zone_ids=sorted(set(zone_ids)),
        fund_zone_id=fund_zone_id, min_amount_fen=min_amount_fen, max_amount_fen=max_amount_fen,
        created_by_id=principal.member_id, state=CampaignState.DRAFT if draft else CampaignState.OPEN,
        opened_at=None if draft else now)


def visible(principal: Principal, campaign: Campaign) -> bool:
    if principal.is_committee:
        return True
    if campaign.state is CampaignState.DRAFT:
        return False
    return not campaign.zone_ids or principal.zone_id in campaign.zone_ids or any(
        principal.governs(z) for z in campaign.zone_ids)


async def get_campaign(principal: Principal, campaign_id: int) -> Campaign:
    campaign = await Campaign.get_or_none(id=campaign_id)
    if campaign is None or not visible(principal, campaign):
        raise CampaignNotFound()
    return campaign


async def list_campaigns(principal: Principal, *, state: CampaignState | None, limit: int,
                         before_id: int | None) -> list[Campaign]:
    query = Campaign.all()
    if state is not None:
        query = query.filter(state=state)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    if not principal.is_committee:
        query = query.exclude(state=CampaignState.DRAFT)
    found: list[Campaign] = []
    # Audience filtering is per row (a JSON list); campaigns are few, so page in Python.
    async for campaign in query.order_by("-id"):
        if visible(principal, campaign):
            found.append(campaign)
            if len(found) == limit:
                break
    return found


_TRANSITIONS = {"open": ({CampaignState.DRAFT}, CampaignState.OPEN, "opened_at"),
                "close": ({CampaignState.DRAFT, CampaignState.OPEN}, CampaignState.CLOSED, "closed_at")}


async def change_state(campaign_id: int, action: str) -> Campaign:
    """draft → open, draft or open → closed, by one conditional UPDATE (no reopening)."""
    sources, target, stamp = _TRANSITIONS[action]
    changed = await Campaign.filter(id=campaign_id, state__in=list(sources)).update(
        state=target, **{stamp: clock.now()})
    campaign = await Campaign.get_or_none(id=campaign_id)
    if campaign is None:
        raise CampaignNotFound()
    if not changed:
        raise IllegalTransition(state=campaign.state.value)
    return campaign


# -- paying ------------------------------------------------------------------------------------

def new_out_trade_no() -> str:
    """'ZH' + Shanghai time to the second + 10 random characters: 24, WeChat allows 6..32."""
    stamp = clock.now().astimezone(clock.SHANGHAI).strftime("%y%m%d%H%M%S")
    return "ZH" + stamp + "".join(secrets.choice(_OUT_TRADE_ALPHABET) for _ in range(10))


def _check_can_pay(principal: Principal, campaign: Campaign, amount_fen: int) -> None:
    now = clock.now()
    if campaign.state is not CampaignState.OPEN or now >= campaign.ends_at or (
            campaign.starts_at is not None and now < campaign.starts_at):
        raise CampaignNotOpen(state=campaign.state.value)
    if principal.unit_id is None:
        raise NoUnit()
    if not campaign.min_amount_fen <= amount_fen <= campaign.max_amount_fen:
        raise AmountOutOfRange(min_amount_fen=campaign.min_amount_fen,
                               max_amount_fen=campaign.max_amount_fen)


@dataclass(slots=True)
class Order:
    contribution: Contribution
    pay_params: dict[str, str] | None
    replayed: bool


async def contribute(principal: Principal, pay: WeChatPay, *, campaign_id: int, amount_fen: int,
                     idempotency_key: str | None, order_ttl: timedelta,
                     first_check: timedelta) -> Order:
    """One order per (member, Idempotency-Key): a retry gets the same order and fresh
    wx.requestPayment parameters; the same key with another campaign or amount is refused."""
    if not idempotency_key:
        raise IdempotencyKeyRequired()
    existing = await Contribution.get_or_none(member_id=principal.member_id,
                                              idempotency_key=idempotency_key)
    replayed = existing is not None
    title: str | None = None
    if existing is None:
        campaign = await get_campaign(principal, campaign_id)
        _check_can_pay(principal, campaign, amount_fen)
        if not pay.configured:
            raise PayNotConfigured()  # before an order is written
        openid = await fetch_rows(_OPENID, principal.member_id)
        if not openid or not openid[0][0]:
            raise WeChatNotLinked()
        title = campaign.title
        try:
            existing = await Contribution.create(
                campaign_id=campaign.id, member_id=principal.member_id, unit_id=principal.unit_id,
                zone_id=principal.zone_id, channel=Channel.WECHAT,
                status=ContributionStatus.PENDING, amount_fen=amount_fen,
                idempotency_key=idempotency_key, out_trade_no=new_out_trade_no(),
                openid=openid[0][0], next_check_at=clock.now() + first_check)
        except IntegrityError:  # the same key raced in twice: the other request's order wins
            existing = await Contribution.get(member_id=principal.member_id,
                                              idempotency_key=idempotency_key)
            replayed = True
    if existing.campaign_id != campaign_id or existing.amount_fen != amount_fen:
        raise IdempotencyKeyReused(contribution_id=existing.id)
    if existing.status is not ContributionStatus.PENDING or clock.now() >= existing.created_at + order_ttl:
        return Order(existing, None, replayed)  # nothing left to pay with this order
    if existing.prepay_id is None:
        if title is None:
            title = (await Campaign.get(id=existing.campaign_id)).title
        assert existing.out_trade_no and existing.openid
        prepay_id = await pay.prepay(
            out_trade_no=existing.out_trade_no, amount_fen=existing.amount_fen,
            openid=existing.openid, description=title, expires_at=existing.created_at + order_ttl)
        await fetch_rows(_SET_PREPAY, prepay_id, existing.id)
        existing.prepay_id = prepay_id
    return Order(existing, pay.pay_params(existing.prepay_id), replayed)


_OPENID = "SELECT openid FROM member WHERE id = $1"
_SET_PREPAY = "UPDATE contribution SET prepay_id = $1 WHERE id = $2 AND prepay_id IS NULL"
_MARK_PAID = (
    "UPDATE contribution SET status = 'paid', transaction_id = $1, paid_at = $2, "
    "next_check_at = NULL WHERE out_trade_no = $3 AND channel = 'wechat' "
    "AND status IN ('pending', 'closed') AND amount_fen = $4 "
    "RETURNING campaign_id, unit_id, zone_id")
_ADD_ONLINE = (
    "INSERT INTO campaign_total (campaign_id, unit_id, zone_id, online_fen, online_count, "
    "offline_fen, offline_count, refunded_fen, refund_count) VALUES ($1, $2, $3, $4, 1, 0, 0, 0, 0) "
    "ON CONFLICT (campaign_id, unit_id) DO UPDATE SET "
    "online_fen = campaign_total.online_fen + excluded.online_fen, "
    "online_count = campaign_total.online_count + 1")
_ADD_OFFLINE = (
    "INSERT INTO campaign_total (campaign_id, unit_id, zone_id, online_fen, online_count, "
    "offline_fen, offline_count, refunded_fen, refund_count) VALUES ($1, $2, $3, 0, 0, $4, $5, 0, 0) "
    "ON CONFLICT (campaign_id, unit_id) DO UPDATE SET "
    "offline_fen = campaign_total.offline_fen + excluded.offline_fen, "
    "offline_count = campaign_total.offline_count + excluded.offline_count")


def _paid_time(resource: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(resource.get("success_time")))
    except ValueError:
        return clock.now()


async def apply_transaction(pay: WeChatPay, resource: dict[str, Any]) -> str:
    """Apply what WeChat Pay says of an order (from a verified notification or a query):
    'paid', 'duplicate', 'flagged', 'unknown_order' or 'ignored'. Safe to call any number of
    times, in any order, concurrently."""
    out_trade_no = str(resource.get("out_trade_no", ""))
    if resource.get("trade_state") not in ("SUCCESS", "REFUND"):
        return "ignored"
    transaction_id = str(resource.get("transaction_id", ""))
    amount = resource.get("amount") if isinstance(resource.get("amount"), dict) else {}
    total = amount.get("total")
    problems = []
    if resource.get("appid") != pay.appid:
        problems.append("appid_mismatch")
    if resource.get("mchid") != pay.mchid:
        problems.append("mchid_mismatch")
    if type(total) is not int or not transaction_id:
        problems.append("malformed")
    async with in_transaction():
        if not problems:
            rows = await fetch_rows(_MARK_PAID, transaction_id, _paid_time(resource), out_trade_no, total)
            if rows:
                campaign_id, unit_id, zone_id = rows[0]
                await fetch_rows(_ADD_ONLINE, campaign_id, unit_id, zone_id, total)
                return "paid"
        row = await Contribution.filter(out_trade_no=out_trade_no).values(
            "status", "amount_fen", "transaction_id")
        if not row:
            log.warning("payment for an unknown order %s (transaction %s)", out_trade_no, transaction_id)
            return "unknown_order"
        order = row[0]
        if order["transaction_id"] == transaction_id and not problems:
            return "duplicate"
        if order["status"] in (ContributionStatus.PENDING, ContributionStatus.CLOSED):
            reason = problems[0] if problems else "amount_mismatch"
            detail = {"reported_total": total, "expected_total": order["amount_fen"],
                      "transaction_id": transaction_id, "appid": resource.get("appid"),
                      "mchid": resource.get("mchid")}
            if await Contribution.filter(
                    out_trade_no=out_trade_no,
                    status__in=[ContributionStatus.PENDING, ContributionStatus.CLOSED]).update(
                    status=ContributionStatus.FLAGGED, flag_reason=reason, flag_detail=detail,
                    next_check_at=None):
                log.error("order %s flagged: %s %s", out_trade_no, reason, detail)
                return "flagged"
        log.warning("notification for order %s ignored (status %s)", out_trade_no, order["status"])
        return "ignored"


async def handle_notification(pay: WeChatPay, notification: Notification) -> str:
    if notification.event_type == "TRANSACTION.SUCCESS":
        return await apply_transaction(pay, notification.resource)
    log.info("payment notification %s of type %s ignored", notification.id, notification.event_type)
    return "ignored"


# -- reconcile: lost notifications, unpaid orders ----------------------------------------------

async def reconcile_order(pay: WeChatPay, contribution: Contribution, *, order_ttl: timedelta) -> str:
    """Ask WeChat Pay about one pending order; pay it, close it once expired, or look again later."""
    assert contribution.out_trade_no
    now = clock.now()
    expires_at = contribution.created_at + order_ttl
    try:
        found = await pay.query(contribution.out_trade_no)
        if found is not None and found.get("trade_state") in ("SUCCESS", "REFUND"):
            return await apply_transaction(pay, found)
        if now < expires_at:
            await _check_again(contribution.id, min(now + RECHECK_EVERY, expires_at))
            return "pending"
        # Expired: close it at WeChat Pay first, so it cannot be paid after we call it closed.
        outcome = "unknown" if found is None else await pay.close_order(contribution.out_trade_no)
    except (PayUnavailable, PayRefused) as exc:
        log.warning("reconcile %s: %s", contribution.out_trade_no, exc.to_dict())
        await _check_again(contribution.id, now + RETRY_SOON)
        return "error"
    if outcome == "paid":  # paid at the last moment: the next pass reads and applies it
        await _check_again(contribution.id, now)
        return "pending"
    closed = await Contribution.filter(id=contribution.id, status=ContributionStatus.PENDING).update(
        status=ContributionStatus.CLOSED, closed_at=now, next_check_at=None)
    return "closed" if closed else "changed"


async def _check_again(contribution_id: int, at: datetime) -> None:
    await Contribution.filter(id=contribution_id, status=ContributionStatus.PENDING).update(
        next_check_at=at, checks=F("checks") + 1)


async def reconcile_pending(pay: WeChatPay, *, order_ttl: timedelta,
                            limit: int = RECONCILE_BATCH) -> dict[str, int]:
    """Every pending order whose check is due, a few in flight at a time."""
    due = await Contribution.filter(status=ContributionStatus.PENDING, next_check_at__lte=clock.now()
                                    ).order_by("next_check_at").limit(limit)
    gate = asyncio.Semaphore(RECONCILE_IN_FLIGHT)
    counts: dict[str, int] = {}

    async def one(c: Contribution) -> None:
        async with gate:
            outcome = await reconcile_order(pay, c, order_ttl=order_ttl)
        counts[outcome] = counts.get(outcome, 0) + 1

    await asyncio.gather(*(one(c) for c in due))
    return counts


# -- totals ------------------------------------------------------------------------------------

_TOTALS = (
    "SELECT t.unit_id, u.name AS unit_name, t.zone_id, z.name AS zone_name, t.online_fen, "
    "t.online_count, t.offline_fen, t.offline_count, t.refunded_fen, t.refund_count "
    "FROM campaign_total t JOIN unit u ON u.id = t.unit_id LEFT JOIN zone z ON z.id = t.zone_id "
    "WHERE t.campaign_id = $1")


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


@dataclass(slots=True)
class Totals:
    campaign: Campaign
    all: Tally
    by_zone: list[dict[str, Any]]
    by_unit: list[dict[str, Any]]


async def totals(principal: Principal, campaign_id: int) -> Totals:
    """The drive's totals from its per-unit running rows (at most one row per unit)."""
    campaign = await get_campaign(principal, campaign_id)
    everything = Tally()
    zones: dict[int | None, tuple[str | None, Tally]] = {}
    units: list[dict[str, Any]] = []
    for (unit_id, unit_name, zone_id, zone_name, *money) in await fetch_rows(_TOTALS, campaign.id):
        tally = Tally(*money)
        everything.add(tally)
        zones.setdefault(zone_id, (zone_name, Tally()))[1].add(tally)
        units.append({"unit_id": unit_id, "unit_name": unit_name, "zone_id": zone_id, **tally.as_dict()})
    by_zone = [{"zone_id": zid, "zone_name": name, **tally.as_dict()} for zid, (name, tally) in zones.items()]
    return Totals(campaign, everything, _ranked(by_zone, "zone_name"), _ranked(units, "unit_name"))


def _ranked(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Highest total first; equal totals share a rank (1, 2, 2, 4)."""
    rows.sort(key=lambda r: (-r["total_fen"], -r["count"], r[name] or ""))
    rank = 0
    for i, row in enumerate(rows):
        if i == 0 or row["total_fen"] != rows[i - 1]["total_fen"]:
            rank = i + 1
        row["rank"] = rank
    return rows


# -- offline entries and their reversals -------------------------------------------------------

_LOCK_CAMPAIGN = "UPDATE campaign SET state = state WHERE id = $1 RETURNING settled_at"
_SETTLE = ("UPDATE campaign SET settled_at = $1 WHERE id = $2 AND settled_at IS NULL "
           "RETURNING id")


async def _lock_unbooked(campaign_id: int) -> None:
    """Serialise with settling a zone_fund drive into its ledger (a row lock on the campaign):
    once settled, its money is in the ledger and may not change here."""
    rows = await fetch_rows(_LOCK_CAMPAIGN, campaign_id)
    if rows and rows[0][0] is not None:
        raise CampaignBooked()


async def record_offline(principal: Principal, *, campaign_id: int, unit_id: int, amount_fen: int,
                         channel: Channel, receipt_no: str, payer_name: str, member_id: int | None,
                         received_on: date, note: str) -> tuple[Contribution, bool]:
    """Cash or a bank transfer a unit admin received; the receipt number makes a retry safe.
    Returns the entry and whether it already existed."""
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
                await _lock_unbooked(campaign_id)
                existing = await Contribution.create(
                    **same, zone_id=unit.zone_id, member_id=member_id, channel=channel,
                    status=ContributionStatus.PAID, amount_fen=amount_fen, paid_at=clock.now(),
                    payer_name=payer_name, received_on=received_on, note=note,
                    recorded_by_id=principal.member_id)
                await fetch_rows(_ADD_OFFLINE, campaign_id, unit_id, unit.zone_id, amount_fen, 1)
            return existing, False
        except IntegrityError:  # the same receipt raced in twice
            existing = await Contribution.get(**same)
    if existing.amount_fen != amount_fen or existing.channel is not channel:
        raise ReceiptNoTaken(contribution_id=existing.id)
    return existing, True


async def reverse_offline(principal: Principal, *, contribution_id: int, reason: str) -> Contribution:
    """A reversing entry (the negated amount) for an offline entry recorded in error; once."""
    original = await Contribution.get_or_none(id=contribution_id)
    if original is None or not _can_manage(principal, original):
        raise ContributionNotFound()
    if original.channel is Channel.WECHAT or original.reverses_id is not None:
        raise NotReversible()
    try:
        async with in_transaction():
            await _lock_unbooked(original.campaign_id)
            reversal = await Contribution.create(
                campaign_id=original.campaign_id, unit_id=original.unit_id, zone_id=original.zone_id,
                member_id=original.member_id, channel=original.channel,
                status=ContributionStatus.PAID, amount_fen=-original.amount_fen,
                paid_at=clock.now(), payer_name=original.payer_name, note=reason,
                recorded_by_id=principal.member_id, reverses_id=original.id)
            await fetch_rows(_ADD_OFFLINE, original.campaign_id, original.unit_id, original.zone_id,
                             -original.amount_fen, -1)
    except IntegrityError:
        raise AlreadyReversed() from None
    return reversal


def _can_manage(principal: Principal, c: Contribution) -> bool:
    return principal.is_committee or (principal.is_unit_admin and principal.unit_id == c.unit_id)


# -- refunds -----------------------------------------------------------------------------------

_RESERVE = (
    "UPDATE contribution SET refund_reserved_fen = refund_reserved_fen + $1 WHERE id = $2 "
    "AND status = 'paid' AND channel = 'wechat' "
    "AND amount_fen - refunded_fen - refund_reserved_fen >= $1 RETURNING out_trade_no")
_END_REFUND = (
    "UPDATE refund SET status = $1, refund_id = COALESCE(refund_id, $2), ended_at = $3, "
    "next_check_at = NULL WHERE out_refund_no = $4 AND status = ANY_OF "
    "RETURNING contribution_id, amount_fen")
_REFUNDED = (
    "UPDATE contribution SET refunded_fen = refunded_fen + $1, "
    "refund_reserved_fen = refund_reserved_fen - $1, "
    "status = CASE WHEN refunded_fen + $1 >= amount_fen THEN 'refunded' ELSE status END "
    "WHERE id = $2 RETURNING campaign_id, unit_id")
_RELEASE = "UPDATE contribution SET refund_reserved_fen = refund_reserved_fen - $1 WHERE id = $2"
_COUNT_REFUND = ("UPDATE campaign_total SET refunded_fen = refunded_fen + $1, "
                 "refund_count = refund_count + 1 WHERE campaign_id = $2 AND unit_id = $3")
_ENDINGS = {"SUCCESS": RefundStatus.SUCCESS, "CLOSED": RefundStatus.CLOSED,
            "ABNORMAL": RefundStatus.ABNORMAL}


async def request_refund(principal: Principal, pay: WeChatPay, *, contribution_id: int,
                         amount_fen: int, reason: str, idempotency_key: str | None) -> tuple[Refund, bool]:
    """Reserve the amount on the order (never more than was paid and not yet refunded), then
    ask WeChat Pay. A lost answer is made good by the refund reconcile job."""
    if not idempotency_key:
        raise IdempotencyKeyRequired()
    contribution = await Contribution.get_or_none(id=contribution_id)
    if contribution is None:
        raise ContributionNotFound()
    existing = await Refund.get_or_none(contribution_id=contribution_id, idempotency_key=idempotency_key)
    if existing is not None:
        if existing.amount_fen != amount_fen:
            raise IdempotencyKeyReused(refund_id=existing.id)
        return existing, True
    if contribution.channel is not Channel.WECHAT or contribution.status is not ContributionStatus.PAID:
        raise NotRefundable(status=contribution.status.value)
    try:
        async with in_transaction():
            await _lock_unbooked(contribution.campaign_id)
            if not await fetch_rows(_RESERVE, amount_fen, contribution_id):
                raise RefundExceedsPaid(refundable_fen=contribution.amount_fen - contribution.refunded_fen
                                        - contribution.refund_reserved_fen)
            refund = await Refund.create(
                contribution_id=contribution_id, out_refund_no=f"RF{contribution.out_trade_no}"
                f"{secrets.token_hex(3).upper()}", amount_fen=amount_fen, reason=reason,
                idempotency_key=idempotency_key, requested_by_id=principal.member_id,
                next_check_at=clock.now() + RETRY_SOON)
    except IntegrityError:  # the same key raced in twice
        refund = await Refund.get(contribution_id=contribution_id, idempotency_key=idempotency_key)
        if refund.amount_fen != amount_fen:
            raise IdempotencyKeyReused(refund_id=refund.id) from None
        return refund, True
    await _send_refund(pay, refund, contribution)
    await refund.refresh_from_db()
    return refund, False


async def _send_refund(pay: WeChatPay, refund: Refund, contribution: Contribution) -> None:
    assert contribution.out_trade_no
    try:
        answer = await pay.refund(out_refund_no=refund.out_refund_no,
                                  out_trade_no=contribution.out_trade_no, refund_fen=refund.amount_fen,
                                  total_fen=contribution.amount_fen, reason=refund.reason)
    except PayRefused:  # WeChat Pay said no: nothing will be refunded, free the amount
        await end_refund(refund.out_refund_no, RefundStatus.FAILED, None)
        raise
    except PayUnavailable:
        return  # the request may or may not have arrived: the reconcile job asks
    status = str(answer.get("status", "PROCESSING"))
    if status in _ENDINGS:
        await end_refund(refund.out_refund_no, _ENDINGS[status], answer.get("refund_id"))
    else:
        await Refund.filter(id=refund.id, refund_id__isnull=True).update(
            refund_id=answer.get("refund_id"), next_check_at=clock.now() + RECHECK_EVERY)


async def end_refund(out_refund_no: str, status: RefundStatus, refund_id: str | None) -> bool:
    """Move a refund to its end once; a success moves the order and its unit's totals."""
    from_states = "('processing', 'abnormal')" if status is not RefundStatus.ABNORMAL else "('processing')"
    async with in_transaction():
        rows = await fetch_rows(_END_REFUND.replace("= ANY_OF", f"IN {from_states}"),
                                status.value, refund_id, clock.now(), out_refund_no)
        if not rows:
            return False
        contribution_id, amount = rows[0]
        if status is RefundStatus.SUCCESS:
            campaign_id, unit_id = (await fetch_rows(_REFUNDED, amount, contribution_id))[0]
            await fetch_rows(_COUNT_REFUND, amount, campaign_id, unit_id)
        elif status is not RefundStatus.ABNORMAL:  # closed or refused: the money stays
            await fetch_rows(_RELEASE, amount, contribution_id)
    return True


async def handle_refund_notification(pay: WeChatPay, notification: Notification) -> str:
    resource = notification.resource
    out_refund_no = str(resource.get("out_refund_no", ""))
    refund = await Refund.get_or_none(out_refund_no=out_refund_no)
    amount = resource.get("amount") if isinstance(resource.get("amount"), dict) else {}
    if refund is None or resource.get("mchid") != pay.mchid or amount.get("refund") != refund.amount_fen:
        log.error("refund notification disagrees with our refund %s: %s", out_refund_no, resource)
        return "ignored"
    status = _ENDINGS.get(str(resource.get("refund_status")))
    if status is None:
        return "ignored"
    changed = await end_refund(out_refund_no, status, resource.get("refund_id"))
    return "refunded" if changed and status is RefundStatus.SUCCESS else ("changed" if changed else "duplicate")


async def reconcile_refunds(pay: WeChatPay, *, limit: int = RECONCILE_BATCH) -> dict[str, int]:
    """Refunds still processing whose check is due: ask WeChat Pay, re-send if it never heard."""
    counts: dict[str, int] = {}
    due = await Refund.filter(status=RefundStatus.PROCESSING, next_check_at__lte=clock.now()
                              ).select_related("contribution").limit(limit)
    for refund in due:
        try:
            found = await pay.query_refund(refund.out_refund_no)
            if found is None:
                await _send_refund(pay, refund, refund.contribution)
                outcome = "resent"
            elif str(found.get("status")) in _ENDINGS:
                await end_refund(refund.out_refund_no, _ENDINGS[str(found["status"])], found.get("refund_id"))
                outcome = "ended"
            else:
                await Refund.filter(id=refund.id).update(next_check_at=clock.now() + RECHECK_EVERY)
                outcome = "processing"
        except (PayUnavailable, PayRefused) as exc:
            log.warning("refund %s: %s", refund.out_refund_no, exc.to_dict())
            outcome = "error"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# -- reading contributions ---------------------------------------------------------------------

async def get_contribution(principal: Principal, contribution_id: int) -> Contribution:
    c = await Contribution.get_or_none(id=contribution_id).select_related("campaign")
    if c is None or not (c.member_id == principal.member_id or _can_manage(principal, c)):
        raise ContributionNotFound()
    return c


async def my_contributions(principal: Principal, *, limit: int, before_id: int | None,
                           include_unpaid: bool) -> list[Contribution]:
    """The caller's own receipts, newest first (paid and refunded; with unpaid orders on ask)."""
    query = Contribution.filter(member_id=principal.member_id)
    if not include_unpaid:
        query = query.filter(status__in=[ContributionStatus.PAID, ContributionStatus.REFUNDED])
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(limit).select_related("campaign")


async def campaign_contributions(principal: Principal, *, campaign_id: int, unit_id: int | None,
                                 status: ContributionStatus | None, limit: int,
                                 before_id: int | None) -> list[Contribution]:
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
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(limit).select_related("campaign")


# -- housekeeping ------------------------------------------------------------------------------

async def close_ended_campaigns() -> int:
    now = clock.now()
    return await Campaign.filter(state=CampaignState.OPEN, ends_at__lte=now).update(
        state=CampaignState.CLOSED, closed_at=now)


async def settle_zone_funds() -> list[int]:
    """Book each closed zone_fund drive into its zone ledger once no order of it can still
    change (none pending, no refund in flight), once. Returns the campaigns settled."""
    from services import ledger

    settled: list[int] = []
    candidates = await Campaign.filter(kind=CampaignKind.ZONE_FUND, state=CampaignState.CLOSED,
                                       fund_zone_id__isnull=False, settled_at__isnull=True)
    for campaign in candidates:
        if await Contribution.filter(campaign_id=campaign.id, status=ContributionStatus.PENDING).exists():
            continue
        if await Refund.filter(contribution__campaign_id=campaign.id,
                               status__in=[RefundStatus.PROCESSING, RefundStatus.ABNORMAL]).exists():
            continue
        async with in_transaction():
            # The conditional UPDATE both locks the drive and decides which run settles it.
            if not await fetch_rows(_SETTLE, clock.now(), campaign.id):
                continue
            net = sum(Tally(*row[4:]).total_fen for row in await fetch_rows(_TOTALS, campaign.id))
            assert campaign.fund_zone_id is not None
            await ledger.book_campaign(zone_id=campaign.fund_zone_id, campaign_id=campaign.id,
                                       amount_fen=net, title=campaign.title,
                                       recorded_by_id=campaign.created_by_id)
        settled.append(campaign.id)
    return settled
