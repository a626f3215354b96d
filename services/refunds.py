"""Refunds of WeChat payments (committee): the amount is reserved on the order before WeChat
Pay is asked, so refunds never exceed what was paid, even when requested at once; totals move
when WeChat Pay reports the refund done (notification or query)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.funds import Channel, Contribution, ContributionStatus, Refund, RefundStatus
from services import audit, clock, totals_cache
from services.access import check_committee
from services.auth import Principal
from services.campaigns import lock_unbooked
from services.db import fetch_rows
from services.errors import (
    ContributionNotFound,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    NotificationRejected,
    NotRefundable,
    PayNotConfigured,
    PayRefused,
    PayUnavailable,
    RefundExceedsPaid,
)
from services.pay import Notification, WeChatPay
from services.payments import RECHECK_EVERY, RECONCILE_BATCH, RETRY_SOON
from services.views import View

log = logging.getLogger("zonehub.funds")


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
                         amount_fen: int, reason: str, idempotency_key: str | None) -> View:
    """Reserve the amount on the order (never more than was paid and not yet refunded), then
    ask WeChat Pay. A lost answer is made good by the refund reconcile job."""
    check_committee(principal)
    if not idempotency_key:
        raise IdempotencyKeyRequired()
    contribution = await Contribution.get_or_none(id=contribution_id)
    if contribution is None:
        raise ContributionNotFound()
    existing = await Refund.get_or_none(contribution_id=contribution_id, idempotency_key=idempotency_key)
    if existing is not None:
        if existing.amount_fen != amount_fen:
            raise IdempotencyKeyReused(refund_id=existing.id)
        return View(existing, replayed=True)
    if contribution.channel is not Channel.WECHAT or contribution.status is not ContributionStatus.PAID:
        raise NotRefundable(status=contribution.status.value)
    if not pay.configured:  # before anything is set aside: nothing could give it back
        raise PayNotConfigured()
    try:
        async with in_transaction():
            await lock_unbooked(contribution.campaign_id)
            if not await fetch_rows(_RESERVE, amount_fen, contribution_id):
                raise RefundExceedsPaid(refundable_fen=contribution.amount_fen - contribution.refunded_fen
                                        - contribution.refund_reserved_fen)
            refund = await Refund.create(
                contribution_id=contribution_id, out_refund_no=f"RF{contribution.out_trade_no}"
                f"{secrets.token_hex(3).upper()}", amount_fen=amount_fen, reason=reason,
                idempotency_key=idempotency_key, requested_by_id=principal.member_id,
                next_check_at=clock.now() + RETRY_SOON)
            await audit.record(principal, "refund.requested", "contribution", contribution_id,
                               zone_id=contribution.zone_id, refund_id=refund.id, amount_fen=amount_fen,
                               reason=reason)
    except IntegrityError:  # the same key raced in twice
        refund = await Refund.get(contribution_id=contribution_id, idempotency_key=idempotency_key)
        if refund.amount_fen != amount_fen:
            raise IdempotencyKeyReused(refund_id=refund.id) from None
        return View(refund, replayed=True)
    await _send_refund(pay, refund, contribution)
    await refund.refresh_from_db()
    return View(refund, replayed=False)


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
        await audit.record(None, f"refund.{status.value}", "contribution", contribution_id,
                           out_refund_no=out_refund_no, amount_fen=amount)
        if status is RefundStatus.SUCCESS:
            campaign_id, unit_id = (await fetch_rows(_REFUNDED, amount, contribution_id))[0]
            await fetch_rows(_COUNT_REFUND, amount, campaign_id, unit_id)
        elif status is not RefundStatus.ABNORMAL:  # closed or refused: the money stays
            await fetch_rows(_RELEASE, amount, contribution_id)
    if status is RefundStatus.SUCCESS:
        await totals_cache.moved([campaign_id])
    return True


async def receive_notification(pay: WeChatPay, headers: Mapping[str, str], body: bytes) -> str:
    """WeChat Pay's refund callback, verified like the payment one before anything is believed."""
    notification = pay.verify_notification(headers, body)
    if notification is None:
        log.warning("rejected an unverified refund notification")
        raise NotificationRejected()
    return await handle_refund_notification(pay, notification)


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
    """Refunds still processing whose check is due: ask WeChat Pay, re-send if it never heard
    (none while WeChat Pay is not configured)."""
    counts: dict[str, int] = {}
    if not pay.configured:
        return counts
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
