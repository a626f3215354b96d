"""Routes: contribution drives, paying through WeChat Pay, its callbacks, offline entries,
refunds, totals and receipts."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from aiohttp import web

from models.funds import (
    Campaign,
    CampaignKind,
    CampaignState,
    Channel,
    Contribution,
    ContributionStatus,
    Refund,
)
from server.keys import PAY, SETTINGS
from server.routing import Access, Replayed, Router, idempotency_key, path_int
from server.schemas.funds import (
    CampaignIn,
    CampaignOut,
    CampaignsOut,
    CampaignsQuery,
    ContributeIn,
    ContributionOut,
    ContributionQuery,
    ContributionsOut,
    ContributionsQuery,
    LeaderboardOut,
    LeaderboardQuery,
    MyContributionsQuery,
    OfflineIn,
    OrderOut,
    RefundIn,
    RefundOut,
    ReverseIn,
    TotalsOut,
)
from services import funds as svc
from services.auth import Principal
from services.errors import Forbidden
from services.pay import NotificationRejected, PayNotConfigured, PayRefused, PayUnavailable

log = logging.getLogger("zonehub.funds")
router = Router()
TAGS = ["funds"]
CAMPAIGN = r"/campaigns/{campaign_id:\d{1,9}}"
CONTRIBUTION = r"/contributions/{contribution_id:\d{1,9}}"


def campaign_out(c: Campaign) -> dict[str, Any]:
    return {"id": c.id, "kind": c.kind.value, "state": c.state.value, "title": c.title,
            "description": c.description, "target_fen": c.target_fen, "zone_ids": c.zone_ids,
            "fund_zone_id": c.fund_zone_id, "min_amount_fen": c.min_amount_fen,
            "max_amount_fen": c.max_amount_fen, "starts_at": c.starts_at, "ends_at": c.ends_at,
            "created_at": c.created_at, "opened_at": c.opened_at, "closed_at": c.closed_at}


def contribution_out(c: Contribution) -> dict[str, Any]:
    return {"id": c.id, "campaign_id": c.campaign_id, "campaign_title": c.campaign.title,
            "channel": c.channel.value, "status": c.status.value, "amount_fen": c.amount_fen,
            "refunded_fen": c.refunded_fen, "member_id": c.member_id, "unit_id": c.unit_id,
            "zone_id": c.zone_id, "out_trade_no": c.out_trade_no, "transaction_id": c.transaction_id,
            "receipt_no": c.receipt_no, "payer_name": c.payer_name, "received_on": c.received_on,
            "note": c.note, "reverses_id": c.reverses_id, "flag_reason": c.flag_reason,
            "paid_at": c.paid_at, "created_at": c.created_at}


def refund_out(r: Refund) -> dict[str, Any]:
    return {"id": r.id, "contribution_id": r.contribution_id, "out_refund_no": r.out_refund_no,
            "refund_id": r.refund_id, "amount_fen": r.amount_fen, "reason": r.reason,
            "status": r.status.value, "created_at": r.created_at, "ended_at": r.ended_at}


def _page(rows: list[Any], limit: int) -> int | None:
    return rows[-1].id if len(rows) == limit else None


# -- campaigns ---------------------------------------------------------------------------------

@router.route("POST", "/campaigns", access=Access.COMMITTEE, body=CampaignIn, response=CampaignOut,
              status=201, tags=TAGS, errors=[svc.ZoneNotFound],
              summary="Start a contribution drive (open at once unless draft: true)")
async def create_campaign(request: web.Request, *, principal: Principal, body: CampaignIn) -> dict[str, Any]:
    """kind: special_dues, donation or zone_fund (whose proceeds are booked into `fund_zone_id`'s
    ledger once the drive is closed and no order can change). `zone_ids` limits the audience."""
    campaign = await svc.create_campaign(
        principal, kind=CampaignKind(body.kind), title=body.title, description=body.description,
        target_fen=body.target_fen, starts_at=body.starts_at, ends_at=body.ends_at,
        zone_ids=body.zone_ids, fund_zone_id=body.fund_zone_id, min_amount_fen=body.min_amount_fen,
        max_amount_fen=body.max_amount_fen, draft=body.draft)
    return campaign_out(campaign)


@router.route("GET", "/campaigns", access=Access.MEMBER, query=CampaignsQuery, response=CampaignsOut,
              tags=TAGS, summary="Drives the caller may see (the committee also sees drafts)")
async def list_campaigns(request: web.Request, *, principal: Principal,
                         query: CampaignsQuery) -> dict[str, Any]:
    rows = await svc.list_campaigns(principal, state=CampaignState(query.state) if query.state else None,
                                    limit=query.limit, before_id=query.before_id)
    return {"campaigns": [campaign_out(c) for c in rows], "next_cursor": _page(rows, query.limit)}


@router.route("GET", CAMPAIGN, access=Access.MEMBER, response=CampaignOut, tags=TAGS,
              errors=[svc.CampaignNotFound], summary="One drive")
async def get_campaign(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return campaign_out(await svc.get_campaign(principal, path_int(request, "campaign_id")))


@router.route("POST", CAMPAIGN + "/open", access=Access.COMMITTEE, response=CampaignOut, tags=TAGS,
              errors=[svc.CampaignNotFound, svc.IllegalTransition], summary="Open a draft drive")
async def open_campaign(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return campaign_out(await svc.change_state(path_int(request, "campaign_id"), "open"))


@router.route("POST", CAMPAIGN + "/close", access=Access.COMMITTEE, response=CampaignOut, tags=TAGS,
              errors=[svc.CampaignNotFound, svc.IllegalTransition],
              summary="Close a drive: no new orders; orders already made may still be paid until they expire")
async def close_campaign(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return campaign_out(await svc.change_state(path_int(request, "campaign_id"), "close"))


@router.route("GET", CAMPAIGN + "/totals", access=Access.MEMBER, response=TotalsOut, tags=TAGS,
              errors=[svc.CampaignNotFound],
              summary="Total, count, by zone and by unit (ranked), consistent with the paid orders")
async def get_totals(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    t = await svc.totals(principal, path_int(request, "campaign_id"))
    target = t.campaign.target_fen
    return {"campaign_id": t.campaign.id, "title": t.campaign.title, "state": t.campaign.state.value,
            "target_fen": target, "progress": round(t.all.total_fen / target, 4) if target else None,
            **t.all.as_dict(), "by_zone": t.by_zone, "by_unit": t.by_unit}


@router.route("GET", CAMPAIGN + "/leaderboard", access=Access.MEMBER, query=LeaderboardQuery,
              response=LeaderboardOut, tags=TAGS, errors=[svc.CampaignNotFound],
              summary="Units or zones ranked by what they gave (equal totals share a rank)")
async def leaderboard(request: web.Request, *, principal: Principal,
                      query: LeaderboardQuery) -> dict[str, Any]:
    t = await svc.totals(principal, path_int(request, "campaign_id"))
    source = t.by_unit if query.by == "unit" else t.by_zone
    name = "unit" if query.by == "unit" else "zone"
    rows = [{"rank": r["rank"], "id": r[f"{name}_id"], "name": r[f"{name}_name"],
             "zone_id": r["zone_id"], "total_fen": r["total_fen"], "count": r["count"]}
            for r in source[:query.limit]]
    return {"campaign_id": t.campaign.id, "by": query.by, "rows": rows}


# -- paying ------------------------------------------------------------------------------------

@router.route("POST", CAMPAIGN + "/contributions", access=Access.MEMBER, body=ContributeIn,
              response=OrderOut, status=201, tags=TAGS,
              errors=[svc.CampaignNotFound, svc.CampaignNotOpen, svc.AmountOutOfRange, svc.NoUnit,
                      svc.WeChatNotLinked, svc.IdempotencyKeyRequired, svc.IdempotencyKeyReused, PayNotConfigured,
                      PayUnavailable, PayRefused],
              idempotency="required",
              summary="Make an order (Idempotency-Key header required) and get wx.requestPayment parameters")
async def contribute(request: web.Request, *, principal: Principal, body: ContributeIn) -> Any:
    """The same Idempotency-Key again returns the same order (200) with fresh parameters while it
    can be paid; with another amount or drive it answers 409 idempotency_key_reused. The order
    counts once WeChat Pay's verified notification (or a query) says it is paid."""
    settings = request.app[SETTINGS]
    ttl = timedelta(seconds=settings.pay_order_ttl_s)
    order = await svc.contribute(
        principal, request.app[PAY], campaign_id=path_int(request, "campaign_id"),
        amount_fen=body.amount_fen, idempotency_key=idempotency_key(request), order_ttl=ttl,
        first_check=timedelta(seconds=settings.pay_query_after_s))
    c = order.contribution
    assert c.out_trade_no
    out = {"contribution_id": c.id, "out_trade_no": c.out_trade_no, "status": c.status.value,
           "amount_fen": c.amount_fen, "pay_params": order.pay_params, "expires_at": c.created_at + ttl}
    return Replayed(out) if order.replayed else out


async def _notified(request: web.Request, handle: Any) -> web.Response:
    """WeChat Pay's callbacks: believe nothing before the signature and the decryption check
    out; answer 204 when handled (duplicates too), 401 FAIL when not verified."""
    pay = request.app[PAY]
    body = await request.read()
    notification = pay.verify_notification(request.headers, body)
    if notification is None:
        log.warning("rejected an unverified payment notification from %s", request.remote)
        raise NotificationRejected()
    outcome = await handle(pay, notification)
    log.info("notification %s %s: %s", notification.id, notification.event_type, outcome)
    return web.Response(status=204)


@router.route("POST", "/pay/wechat/notify", access=Access.ANYONE, tags=TAGS, status=204,
              errors=[NotificationRejected],
              summary="WeChat Pay payment notification (verified before anything is believed)")
async def pay_notify(request: web.Request) -> web.Response:
    """Signature (platform public key), timestamp within 5 minutes, AES-256-GCM decryption, then
    app id, merchant id and amount against the order: a mismatch is flagged, not counted."""
    return await _notified(request, svc.handle_notification)


@router.route("POST", "/pay/wechat/refund-notify", access=Access.ANYONE, tags=TAGS, status=204,
              errors=[NotificationRejected],
              summary="WeChat Pay refund notification (verified before anything is believed)")
async def refund_notify(request: web.Request) -> web.Response:
    return await _notified(request, svc.handle_refund_notification)


# -- reading contributions ---------------------------------------------------------------------

@router.route("GET", "/me/contributions", access=Access.MEMBER, query=MyContributionsQuery,
              response=ContributionsOut, tags=TAGS, summary="My receipts, newest first")
async def my_contributions(request: web.Request, *, principal: Principal,
                           query: MyContributionsQuery) -> dict[str, Any]:
    rows = await svc.my_contributions(principal, limit=query.limit, before_id=query.before_id,
                                      include_unpaid=query.include_unpaid)
    return {"contributions": [contribution_out(c) for c in rows], "next_cursor": _page(rows, query.limit)}


@router.route("GET", CAMPAIGN + "/contributions", access=Access.UNIT_ADMIN, query=ContributionsQuery,
              response=ContributionsOut, tags=TAGS, errors=[svc.CampaignNotFound, Forbidden],
              summary="A drive's contributions: the committee's, or a unit admin's own unit")
async def campaign_contributions(request: web.Request, *, principal: Principal,
                                 query: ContributionsQuery) -> dict[str, Any]:
    rows = await svc.campaign_contributions(
        principal, campaign_id=path_int(request, "campaign_id"), unit_id=query.unit_id,
        status=ContributionStatus(query.status) if query.status else None, limit=query.limit,
        before_id=query.before_id)
    return {"contributions": [contribution_out(c) for c in rows], "next_cursor": _page(rows, query.limit)}


@router.route("GET", CONTRIBUTION, access=Access.MEMBER, query=ContributionQuery,
              response=ContributionOut, tags=TAGS, errors=[svc.ContributionNotFound],
              summary="One contribution (its payer, its unit admin, the committee)")
async def get_contribution(request: web.Request, *, principal: Principal,
                           query: ContributionQuery) -> dict[str, Any]:
    """With refresh=true a pending order is looked up at WeChat Pay first (for the moment after
    wx.requestPayment returns, in case the notification is late)."""
    c = await svc.get_contribution(principal, path_int(request, "contribution_id"))
    if query.refresh and c.status is ContributionStatus.PENDING and c.out_trade_no:
        ttl = timedelta(seconds=request.app[SETTINGS].pay_order_ttl_s)
        await svc.reconcile_order(request.app[PAY], c, order_ttl=ttl)
        c = await svc.get_contribution(principal, c.id)
    return contribution_out(c)


# -- offline entries, reversals, refunds -------------------------------------------------------

@router.route("POST", CAMPAIGN + "/offline-contributions", access=Access.UNIT_ADMIN, body=OfflineIn,
              response=ContributionOut, status=201, tags=TAGS,
              errors=[svc.CampaignNotFound, svc.CampaignNotOpen, svc.UnitNotFound, svc.NotInAudience,
                      svc.ReceiptNoTaken, svc.CampaignBooked, Forbidden],
              replays=True,
              summary="Record cash or a bank transfer with its receipt number (the unit's admin; committee)")
async def record_offline(request: web.Request, *, principal: Principal, body: OfflineIn) -> Any:
    """The receipt number is the idempotency key within the unit and drive: the same receipt again
    with the same amount returns the entry (200); with another amount, 409 receipt_no_taken."""
    c, replayed = await svc.record_offline(
        principal, campaign_id=path_int(request, "campaign_id"), unit_id=body.unit_id,
        amount_fen=body.amount_fen, channel=Channel(body.channel), receipt_no=body.receipt_no,
        payer_name=body.payer_name, member_id=body.member_id, received_on=body.received_on,
        note=body.note)
    await c.fetch_related("campaign")
    return Replayed(contribution_out(c)) if replayed else contribution_out(c)


@router.route("POST", CONTRIBUTION + "/reverse", access=Access.UNIT_ADMIN, body=ReverseIn,
              response=ContributionOut, status=201, tags=TAGS,
              errors=[svc.ContributionNotFound, svc.NotReversible, svc.AlreadyReversed, svc.CampaignBooked],
              summary="Correct an offline entry by a reversing entry (nothing is edited or deleted)")
async def reverse(request: web.Request, *, principal: Principal, body: ReverseIn) -> dict[str, Any]:
    c = await svc.reverse_offline(principal, contribution_id=path_int(request, "contribution_id"),
                                  reason=body.reason)
    await c.fetch_related("campaign")
    return contribution_out(c)


@router.route("POST", CONTRIBUTION + "/refunds", access=Access.COMMITTEE, body=RefundIn,
              response=RefundOut, status=201, tags=TAGS,
              errors=[svc.ContributionNotFound, svc.NotRefundable, svc.RefundExceedsPaid,
                      svc.IdempotencyKeyRequired, svc.IdempotencyKeyReused, svc.CampaignBooked,
                      PayRefused, PayNotConfigured],
              idempotency="required",
              summary="Refund (part of) a WeChat payment; Idempotency-Key header required (committee)")
async def refund(request: web.Request, *, principal: Principal, body: RefundIn) -> Any:
    """The amount is reserved on the order first, so refunds never exceed what was paid, even
    when requested concurrently. The totals move when WeChat Pay reports the refund done."""
    r, replayed = await svc.request_refund(
        principal, request.app[PAY], contribution_id=path_int(request, "contribution_id"),
        amount_fen=body.amount_fen, reason=body.reason, idempotency_key=idempotency_key(request))
    return Replayed(refund_out(r)) if replayed else refund_out(r)
