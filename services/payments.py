"""Paying through WeChat Pay: orders, WeChat Pay's notifications, and reconciling what a lost
notification left open.

Every fen is counted once: an order becomes paid in one conditional UPDATE (pending or closed →
paid, amount equal) in the transaction that moves its unit's running totals, and the WeChat
transaction id is unique. Notifications only ever confirm what a verified, decrypted message
says; a lost one is made good by the reconcile job that queries WeChat Pay.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models.funds import Campaign, CampaignState, Channel, Contribution, ContributionStatus
from services import clock, totals_cache
from services.auth import Principal
from services.campaigns import get_campaign, visible_in
from services.db import fetch_rows
from services.errors import (
    AmountOutOfRange,
    CampaignNotFound,
    CampaignNotOpen,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    NotificationRejected,
    NoUnit,
    PayNotConfigured,
    PayRefused,
    PayUnavailable,
    WeChatNotLinked,
)
from services.pay import Notification, WeChatPay

log = logging.getLogger("zonehub.funds")

RECHECK_EVERY = timedelta(minutes=5)
RETRY_SOON = timedelta(minutes=1)
RECONCILE_BATCH = 500
RECONCILE_IN_FLIGHT = 10
_OUT_TRADE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_out_trade_no() -> str:
    """'ZH' + Shanghai time to the second + 10 random characters: 24, WeChat allows 6..32."""
    stamp = clock.now().astimezone(clock.SHANGHAI).strftime("%y%m%d%H%M%S")
    return "ZH" + stamp + "".join(secrets.choice(_OUT_TRADE_ALPHABET) for _ in range(10))


def _check_can_pay(principal: Principal, campaign: Campaign | _Drive, amount_fen: int) -> None:
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
    """An order and what the mini-program passes to wx.requestPayment (None once it can no
    longer be paid)."""

    contribution_id: int
    out_trade_no: str
    status: str
    amount_fen: int
    pay_params: dict[str, str] | None
    expires_at: datetime
    replayed: bool


def _order(c: Contribution | _Pending, pay_params: dict[str, str] | None, replayed: bool,
           order_ttl: timedelta) -> Order:
    assert c.out_trade_no
    return Order(c.id, c.out_trade_no, c.status.value, c.amount_fen, pay_params,
                 c.created_at + order_ttl, replayed)


async def contribute(principal: Principal, pay: WeChatPay, *, campaign_id: int, amount_fen: int,
                     idempotency_key: str | None) -> Order:
    """One order per (member, Idempotency-Key): a retry gets the same order and fresh
    wx.requestPayment parameters; the same key with another campaign or amount is refused."""
    if not idempotency_key:
        raise IdempotencyKeyRequired()
    if connections.get("default").capabilities.dialect == "postgres":
        return await _contribute_pg(principal, pay, campaign_id=campaign_id, amount_fen=amount_fen,
                                    idempotency_key=idempotency_key)
    order_ttl = timedelta(seconds=pay.settings.pay_order_ttl_s)
    first_check = timedelta(seconds=pay.settings.pay_query_after_s)
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
        return _order(existing, None, replayed, order_ttl)  # nothing left to pay with this order
    if existing.prepay_id is None:
        if title is None:
            title = (await Campaign.get(id=existing.campaign_id)).title
        assert existing.out_trade_no and existing.openid
        prepay_id = await pay.prepay(
            out_trade_no=existing.out_trade_no, amount_fen=existing.amount_fen,
            openid=existing.openid, description=title, expires_at=existing.created_at + order_ttl)
        await fetch_rows(_SET_PREPAY, prepay_id, existing.id)
        existing.prepay_id = prepay_id
    return _order(existing, pay.pay_params(existing.prepay_id), replayed, order_ttl)


#: PostgreSQL, what an order needs in one read: the member's openid, the drive (NULL columns
#: when there is none) and the order this Idempotency-Key already made (NULL when none).
_ORDER_COLUMNS = ("id", "campaign_id", "amount_fen", "status", "out_trade_no", "prepay_id", "openid",
                  "created_at")
_ORDER_CONTEXT = (
    "SELECT m.openid AS m_openid, c.id AS c_id, c.title AS c_title, c.state AS c_state, "
    "c.zone_ids AS c_zone_ids, c.starts_at AS c_starts, c.ends_at AS c_ends, "
    "c.min_amount_fen AS c_min, c.max_amount_fen AS c_max, "
    + ", ".join(f"o.{column} AS o_{column}" for column in _ORDER_COLUMNS)
    + " FROM member m LEFT JOIN campaign c ON c.id = $2 "
    "LEFT JOIN contribution o ON o.member_id = m.id AND o.idempotency_key = $3 WHERE m.id = $1")
_ORDER_BY_KEY = (f"SELECT {', '.join(_ORDER_COLUMNS)} FROM contribution "
                 "WHERE member_id = $1 AND idempotency_key = $2")
#: The order written in one statement; a key that raced in first wins (no row back).
_INSERT_ORDER = (
    "INSERT INTO contribution (campaign_id, member_id, unit_id, zone_id, channel, status, "
    "amount_fen, idempotency_key, out_trade_no, openid, next_check_at, created_at, checks, "
    "refunded_fen, refund_reserved_fen, flag_reason, payer_name, note) "
    "VALUES ($1, $2, $3, $4, 'wechat', 'pending', $5, $6, $7, $8, $9, $10, 0, 0, 0, '', '', '') "
    "ON CONFLICT (member_id, idempotency_key) DO NOTHING RETURNING id")


@dataclass(slots=True)
class _Pending:
    """The columns of an order that paying it reads (a Contribution without the ORM)."""

    id: int
    campaign_id: int
    amount_fen: int
    status: ContributionStatus
    out_trade_no: str | None
    prepay_id: str | None
    openid: str | None
    created_at: datetime


def _pending(row: Any) -> _Pending:
    return _Pending(row[0], row[1], row[2], ContributionStatus(row[3]), *row[4:8])


async def _contribute_pg(principal: Principal, pay: WeChatPay, *, campaign_id: int, amount_fen: int,
                         idempotency_key: str) -> Order:
    """`contribute` on PostgreSQL: one read (openid, drive, the key's order), one INSERT, then
    the prepay and its UPDATE; no ORM rows."""
    order_ttl = timedelta(seconds=pay.settings.pay_order_ttl_s)
    rows = await fetch_rows(_ORDER_CONTEXT, principal.member_id, campaign_id, idempotency_key)
    if not rows:
        raise WeChatNotLinked()  # the member is gone (as the openid read would say)
    openid, c_id, title, state, zone_ids, starts_at, ends_at, min_fen, max_fen = rows[0][:9]
    existing = _pending(rows[0][9:]) if rows[0][9] is not None else None
    replayed = existing is not None
    if existing is None:
        if c_id is None:
            raise CampaignNotFound()
        if isinstance(zone_ids, (str, bytes)):
            zone_ids = json.loads(zone_ids)
        if not visible_in(principal, CampaignState(state), zone_ids or []):
            raise CampaignNotFound()
        _check_can_pay(principal, _Drive(CampaignState(state), starts_at, ends_at, min_fen, max_fen),
                       amount_fen)
        if not pay.configured:
            raise PayNotConfigured()  # before an order is written
        if not openid:
            raise WeChatNotLinked()
        created_at = datetime.now(UTC)
        out_trade_no = new_out_trade_no()
        first_check = timedelta(seconds=pay.settings.pay_query_after_s)
        inserted = await fetch_rows(
            _INSERT_ORDER, c_id, principal.member_id, principal.unit_id, principal.zone_id, amount_fen,
            idempotency_key, out_trade_no, openid, clock.now() + first_check, created_at)
        if inserted:
            existing = _Pending(inserted[0][0], c_id, amount_fen, ContributionStatus.PENDING,
                                out_trade_no, None, openid, created_at)
        else:  # the same key raced in twice: the other request's order wins
            existing = _pending((await fetch_rows(_ORDER_BY_KEY, principal.member_id, idempotency_key))[0])
            replayed = True
    if existing.campaign_id != campaign_id or existing.amount_fen != amount_fen:
        raise IdempotencyKeyReused(contribution_id=existing.id)
    if existing.status is not ContributionStatus.PENDING or clock.now() >= existing.created_at + order_ttl:
        return _order(existing, None, replayed, order_ttl)  # nothing left to pay with this order
    if existing.prepay_id is None:
        assert existing.out_trade_no and existing.openid and title is not None
        prepay_id = await pay.prepay(
            out_trade_no=existing.out_trade_no, amount_fen=existing.amount_fen,
            openid=existing.openid, description=title, expires_at=existing.created_at + order_ttl)
        await fetch_rows(_SET_PREPAY, prepay_id, existing.id)
        existing.prepay_id = prepay_id
    return _order(existing, pay.pay_params(existing.prepay_id), replayed, order_ttl)


@dataclass(slots=True)
class _Drive:
    """What `_check_can_pay` reads of a drive."""

    state: CampaignState
    starts_at: datetime | None
    ends_at: datetime
    min_amount_fen: int
    max_amount_fen: int


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
_ADD_ONLINE_PAID = (
    "INSERT INTO campaign_total (campaign_id, unit_id, zone_id, online_fen, online_count, "
    "offline_fen, offline_count, refunded_fen, refund_count) "
    "SELECT campaign_id, unit_id, zone_id, $4, 1, 0, 0, 0, 0 FROM paid "
    "ON CONFLICT (campaign_id, unit_id) DO UPDATE SET "
    "online_fen = campaign_total.online_fen + excluded.online_fen, "
    "online_count = campaign_total.online_count + 1")


@lru_cache(maxsize=4)
def _pay_pg(mark_paid: str) -> str:
    """PostgreSQL: the order marked paid and its unit's running total moved, one statement
    (a data-modifying CTE: both or neither). Built from `_MARK_PAID` as it is when called.

    When it pays nothing (a duplicate, most often) the same statement answers the order as its
    snapshot saw it, so a duplicate costs one round trip: ('paid', NULL…) or ('seen', status,
    amount_fen, transaction_id); no row when there is no such order."""
    return (f"WITH paid AS ({mark_paid}), added AS ({_ADD_ONLINE_PAID}) "
            "SELECT 'paid' AS outcome, NULL AS o_status, NULL::bigint AS o_amount, "
            "NULL AS o_transaction, campaign_id AS o_campaign FROM paid UNION ALL "
            "SELECT 'seen', status, amount_fen, transaction_id, NULL FROM contribution "
            "WHERE out_trade_no = $3 AND NOT EXISTS (SELECT 1 FROM paid)")


_ORDER_STATE = "SELECT status, amount_fen, transaction_id FROM contribution WHERE out_trade_no = $1"


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
    seen: list[Any] | None = None
    if not problems:
        args = (transaction_id, _paid_time(resource), out_trade_no, total)
        if connections.get("default").capabilities.dialect == "postgres":
            rows = await fetch_rows(_pay_pg(_MARK_PAID), *args)  # one statement, its own transaction
            if rows and rows[0][0] == "paid":
                await totals_cache.moved([rows[0][4]])
                return "paid"
            if rows and rows[0][3] == transaction_id:  # paid by this transaction before: settled
                return "duplicate"
            seen = [row[1:4] for row in rows] or None  # no order, or one to look at afresh below
        else:
            async with in_transaction():
                rows = await fetch_rows(_MARK_PAID, *args)
                if rows:
                    campaign_id, unit_id, zone_id = rows[0]
                    await fetch_rows(_ADD_ONLINE, campaign_id, unit_id, zone_id, total)
            if rows:
                await totals_cache.moved([campaign_id])
                return "paid"
    # Not paid by this call: say why. Each write below is conditional on its own. (The
    # statement's snapshot may predate a concurrent delivery's commit: an order it saw unpaid
    # is read again.)
    if seen is None or seen[0][0] in (ContributionStatus.PENDING.value, ContributionStatus.CLOSED.value):
        seen = await fetch_rows(_ORDER_STATE, out_trade_no)
    if not seen:
        log.warning("payment for an unknown order %s (transaction %s)", out_trade_no, transaction_id)
        return "unknown_order"
    status, amount_fen, order_transaction = seen[0]
    order = {"status": ContributionStatus(status), "amount_fen": amount_fen,
             "transaction_id": order_transaction}
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


async def receive_notification(pay: WeChatPay, headers: Mapping[str, str], body: bytes) -> str:
    """WeChat Pay's payment callback: believe nothing before the signature, the timestamp and
    the decryption check out (else NotificationRejected: 401 FAIL, and WeChat Pay retries)."""
    notification = pay.verify_notification(headers, body)
    if notification is None:
        log.warning("rejected an unverified payment notification")
        raise NotificationRejected()
    outcome = await handle_notification(pay, notification)
    log.info("notification %s %s: %s", notification.id, notification.event_type, outcome)
    return outcome


async def handle_notification(pay: WeChatPay, notification: Notification) -> str:
    if notification.event_type == "TRANSACTION.SUCCESS":
        return await apply_transaction(pay, notification.resource)
    log.info("payment notification %s of type %s ignored", notification.id, notification.event_type)
    return "ignored"


# -- reconcile: lost notifications, unpaid orders ----------------------------------------------

async def reconcile_order(pay: WeChatPay, contribution: Contribution) -> str:
    """Ask WeChat Pay about one pending order; pay it, close it once expired, or look again later."""
    assert contribution.out_trade_no
    order_ttl = timedelta(seconds=pay.settings.pay_order_ttl_s)
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


async def reconcile_pending(pay: WeChatPay, *, limit: int = RECONCILE_BATCH) -> dict[str, int]:
    """Every pending order whose check is due, a few in flight at a time (none while WeChat Pay
    is not configured: there is nobody to ask, and the orders wait)."""
    if not pay.configured:
        return {}
    due = await Contribution.filter(status=ContributionStatus.PENDING, next_check_at__lte=clock.now()
                                    ).order_by("next_check_at").limit(limit)
    gate = asyncio.Semaphore(RECONCILE_IN_FLIGHT)
    counts: dict[str, int] = {}

    async def one(c: Contribution) -> None:
        async with gate:
            outcome = await reconcile_order(pay, c)
        counts[outcome] = counts.get(outcome, 0) + 1

    await asyncio.gather(*(one(c) for c in due))
    return counts
