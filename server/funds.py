"""Routes: contribution drives, paying through WeChat Pay, its callbacks, offline entries,
refunds, totals and receipts."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from models.funds import CampaignKind, CampaignState, Channel, ContributionStatus
from server.keys import PAY, REDIS
from server.routing import Access, Router, idempotency_key, path_int
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
from services import campaigns, contributions, errors, payments, refunds, totals_cache
from services.auth import Principal

log = logging.getLogger("zonehub.funds")
router = Router()
TAGS = ["funds"]
CAMPAIGN = r"/campaigns/{campaign_id:\d{1,9}}"
CONTRIBUTION = r"/contributions/{contribution_id:\d{1,9}}"


def _page(rows: list[Any], limit: int) -> dict[str, Any]:
    return {"items": rows, "next_cursor": rows[-1].id if len(rows) == limit else None}


# -- campaigns ---------------------------------------------------------------------------------

@router.route("POST", "/campaigns", access=Access.COMMITTEE, body=CampaignIn, response=CampaignOut,
              status=201, tags=TAGS, errors=[errors.ZoneNotFound],
              summary="Start a contribution drive (open at once unless draft: true)")
async def create_campaign(request: web.Request, *, principal: Principal, body: CampaignIn) -> Any:
    """kind: special_dues, donation or zone_fund (whose proceeds are booked into `fund_zone_id`'s
    ledger once the drive is closed and no order can change). `zone_ids` limits the audience."""
    return await campaigns.create_campaign(
        principal, kind=CampaignKind(body.kind), title=body.title, description=body.description,
        target_fen=body.target_fen, starts_at=body.starts_at, ends_at=body.ends_at,
        zone_ids=body.zone_ids, fund_zone_id=body.fund_zone_id, min_amount_fen=body.min_amount_fen,
        max_amount_fen=body.max_amount_fen, draft=body.draft)


@router.route("GET", "/campaigns", access=Access.MEMBER, query=CampaignsQuery, response=CampaignsOut,
              tags=TAGS, summary="Drives the caller may see (the committee also sees drafts)")
async def list_campaigns(request: web.Request, *, principal: Principal, query: CampaignsQuery) -> Any:
    rows = await campaigns.list_campaigns(
        principal, state=CampaignState(query.state) if query.state else None, limit=query.limit,
        cursor=query.cursor)
    return _page(rows, query.limit)


@router.route("GET", CAMPAIGN, access=Access.MEMBER, response=CampaignOut, tags=TAGS,
              errors=[errors.CampaignNotFound], summary="One drive")
async def get_campaign(request: web.Request, *, principal: Principal) -> Any:
    return await campaigns.get_campaign(principal, path_int(request, "campaign_id"))


@router.route("POST", CAMPAIGN + "/open", access=Access.COMMITTEE, response=CampaignOut, tags=TAGS,
              errors=[errors.CampaignNotFound, errors.IllegalTransition], summary="Open a draft drive")
async def open_campaign(request: web.Request, *, principal: Principal) -> Any:
    return await campaigns.change_state(principal, path_int(request, "campaign_id"), "open")


@router.route("POST", CAMPAIGN + "/close", access=Access.COMMITTEE, response=CampaignOut, tags=TAGS,
              errors=[errors.CampaignNotFound, errors.IllegalTransition],
              summary="Close a drive: no new orders; orders already made may still be paid until they expire")
async def close_campaign(request: web.Request, *, principal: Principal) -> Any:
    return await campaigns.change_state(principal, path_int(request, "campaign_id"), "close")


@router.route("GET", CAMPAIGN + "/totals", access=Access.MEMBER, response=TotalsOut, tags=TAGS,
              errors=[errors.CampaignNotFound],
              reads=lambda request: totals_cache.keys(path_int(request, "campaign_id")),
              summary="Total, count, by zone and by unit (ranked), consistent with the paid orders")
async def get_totals(request: web.Request, *, principal: Principal, read: list[Any]) -> Any:
    """The answer is kept in Redis until the drive's money or state moves: a reader of a busy
    drive's page costs the one Redis read that checks the token (it fetches the kept answer
    too); who may see the drive is checked every time."""
    answer = await contributions.totals_answer(principal, path_int(request, "campaign_id"),
                                               redis=request.app[REDIS], render=_render_totals,
                                               read=read)
    return web.Response(text=answer, content_type="application/json")


_TOTALS = TypeAdapter(TotalsOut)


def _render_totals(totals: dict[str, Any]) -> str:
    return _TOTALS.dump_json(_TOTALS.validate_python(totals)).decode()


@router.route("GET", CAMPAIGN + "/leaderboard", access=Access.MEMBER, query=LeaderboardQuery,
              response=LeaderboardOut, tags=TAGS, errors=[errors.CampaignNotFound],
              summary="Units or zones ranked by what they gave (equal totals share a rank)")
async def leaderboard(request: web.Request, *, principal: Principal, query: LeaderboardQuery) -> Any:
    return await contributions.leaderboard(principal, path_int(request, "campaign_id"),
                                           by=query.by, limit=query.limit)


# -- paying ------------------------------------------------------------------------------------

@router.route("POST", CAMPAIGN + "/contributions", access=Access.MEMBER, body=ContributeIn,
              response=OrderOut, status=201, tags=TAGS,
              errors=[errors.CampaignNotFound, errors.CampaignNotOpen, errors.AmountOutOfRange,
                      errors.NoUnit, errors.WeChatNotLinked, errors.IdempotencyKeyRequired,
                      errors.IdempotencyKeyReused, errors.PayNotConfigured, errors.PayUnavailable,
                      errors.PayRefused],
              idempotency="required",
              summary="Make an order (Idempotency-Key header required) and get wx.requestPayment parameters")
async def contribute(request: web.Request, *, principal: Principal, body: ContributeIn) -> Any:
    """The same Idempotency-Key again returns the same order (200) with fresh parameters while it
    can be paid; with another amount or drive it answers 409 idempotency_key_reused. The order
    counts once WeChat Pay's verified notification (or a query) says it is paid."""
    return await payments.contribute(principal, request.app[PAY],
                                     campaign_id=path_int(request, "campaign_id"),
                                     amount_fen=body.amount_fen,
                                     idempotency_key=idempotency_key(request))


@router.route("POST", "/pay/wechat/notify", access=Access.ANYONE, tags=TAGS, status=204,
              errors=[errors.NotificationRejected],
              summary="WeChat Pay payment notification (verified before anything is believed)")
async def pay_notify(request: web.Request) -> web.Response:
    """Signature (platform public key), timestamp within 5 minutes, AES-256-GCM decryption, then
    app id, merchant id and amount against the order: a mismatch is flagged, not counted. 204
    when handled (duplicates too); 401 `FAIL` when not verified."""
    await payments.receive_notification(request.app[PAY], request.headers, await request.read())
    return web.Response(status=204)


@router.route("POST", "/pay/wechat/refund-notify", access=Access.ANYONE, tags=TAGS, status=204,
              errors=[errors.NotificationRejected],
              summary="WeChat Pay refund notification (verified before anything is believed)")
async def refund_notify(request: web.Request) -> web.Response:
    await refunds.receive_notification(request.app[PAY], request.headers, await request.read())
    return web.Response(status=204)


# -- reading contributions ---------------------------------------------------------------------

@router.route("GET", "/me/contributions", access=Access.MEMBER, query=MyContributionsQuery,
              response=ContributionsOut, tags=TAGS, summary="My receipts, newest first")
async def my_contributions(request: web.Request, *, principal: Principal,
                           query: MyContributionsQuery) -> Any:
    rows = await contributions.my_contributions(principal, limit=query.limit, cursor=query.cursor,
                                                include_unpaid=query.include_unpaid)
    return _page(rows, query.limit)


@router.route("GET", CAMPAIGN + "/contributions", access=Access.UNIT_ADMIN, query=ContributionsQuery,
              response=ContributionsOut, tags=TAGS, errors=[errors.CampaignNotFound],
              summary="A drive's contributions: the committee's, or a unit admin's own unit")
async def campaign_contributions(request: web.Request, *, principal: Principal,
                                 query: ContributionsQuery) -> Any:
    rows = await contributions.campaign_contributions(
        principal, campaign_id=path_int(request, "campaign_id"), unit_id=query.unit_id,
        status=ContributionStatus(query.status) if query.status else None, limit=query.limit,
        cursor=query.cursor)
    return _page(rows, query.limit)


@router.route("GET", CONTRIBUTION, access=Access.MEMBER, query=ContributionQuery,
              response=ContributionOut, tags=TAGS, errors=[errors.ContributionNotFound],
              summary="One contribution (its payer, its unit admin, the committee)")
async def get_contribution(request: web.Request, *, principal: Principal,
                           query: ContributionQuery) -> Any:
    """With refresh=true a pending order is looked up at WeChat Pay first (for the moment after
    wx.requestPayment returns, in case the notification is late)."""
    return await contributions.get_contribution(
        principal, path_int(request, "contribution_id"),
        pay=request.app[PAY] if query.refresh else None)


# -- offline entries, reversals, refunds -------------------------------------------------------

@router.route("POST", CAMPAIGN + "/offline-contributions", access=Access.UNIT_ADMIN, body=OfflineIn,
              response=ContributionOut, status=201, tags=TAGS,
              errors=[errors.CampaignNotFound, errors.CampaignNotOpen, errors.UnitNotFound,
                      errors.NotInAudience, errors.ReceiptNoTaken, errors.CampaignBooked,
                      errors.InvalidInput, errors.Busy],
              replays=True,
              summary="Record cash or a bank transfer with its receipt number (the unit's admin; committee)")
async def record_offline(request: web.Request, *, principal: Principal, body: OfflineIn) -> Any:
    """The receipt number is the idempotency key within the unit and drive: the same receipt again
    with the same amount returns the entry (200); with another amount, 409 receipt_no_taken."""
    return await contributions.record_offline(
        principal, campaign_id=path_int(request, "campaign_id"), unit_id=body.unit_id,
        amount_fen=body.amount_fen, channel=Channel(body.channel), receipt_no=body.receipt_no,
        payer_name=body.payer_name, member_id=body.member_id, received_on=body.received_on,
        note=body.note)


@router.route("POST", CONTRIBUTION + "/reverse", access=Access.UNIT_ADMIN, body=ReverseIn,
              response=ContributionOut, status=201, tags=TAGS,
              errors=[errors.ContributionNotFound, errors.NotReversible, errors.AlreadyReversed,
                      errors.CampaignBooked, errors.Busy],
              summary="Correct an offline entry by a reversing entry (nothing is edited or deleted)")
async def reverse(request: web.Request, *, principal: Principal, body: ReverseIn) -> Any:
    return await contributions.reverse_offline(
        principal, contribution_id=path_int(request, "contribution_id"), reason=body.reason)


@router.route("POST", CONTRIBUTION + "/refunds", access=Access.COMMITTEE, body=RefundIn,
              response=RefundOut, status=201, tags=TAGS,
              errors=[errors.ContributionNotFound, errors.NotRefundable, errors.RefundExceedsPaid,
                      errors.IdempotencyKeyRequired, errors.IdempotencyKeyReused,
                      errors.CampaignBooked, errors.PayRefused, errors.PayNotConfigured, errors.Busy],
              idempotency="required",
              summary="Refund (part of) a WeChat payment; Idempotency-Key header required (committee)")
async def refund(request: web.Request, *, principal: Principal, body: RefundIn) -> Any:
    """The amount is reserved on the order first, so refunds never exceed what was paid, even
    when requested concurrently. The totals move when WeChat Pay reports the refund done."""
    return await refunds.request_refund(
        principal, request.app[PAY], contribution_id=path_int(request, "contribution_id"),
        amount_fen=body.amount_fen, reason=body.reason, idempotency_key=idempotency_key(request))
