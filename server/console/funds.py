"""Console pages: contribution drives — start, open and close one (the committee), its
contributions, offline entries and their reversal (a unit's admin, the committee), refunds of
WeChat payments (the committee). Each form is parsed by the API's model and calls its service."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from models.funds import CampaignKind, Channel
from server.console.web import (
    FormErrors,
    before,
    int_or_none,
    local_instant,
    next_cursor,
    page,
    pager,
    parse,
    refusals,
    render,
    yuan_to_fen,
)
from server.keys import PAY
from server.schemas.funds import CampaignIn, OfflineIn, RefundIn, ReverseIn
from services import campaigns, clock, contributions, org, refunds
from services.console import Session

routes = web.RouteTableDef()
DRIVES_PAGE = 50
CONTRIBUTIONS_PAGE = 100
DRIVE_KINDS = {"special_dues": "特殊党费", "donation": "捐款", "zone_fund": "网络区经费"}
STATES = {"draft": "草稿", "open": "进行中", "closed": "已结束"}
CHANNELS = {"wechat": "微信支付", "cash": "现金", "bank_transfer": "银行转账"}
STATUSES = {"pending": "待支付", "paid": "已到账", "closed": "已关闭", "flagged": "异常", "refunded": "已退款"}


def _id(request: web.Request, name: str) -> int:
    return int(request.match_info[name])


def _money(text: str) -> int | str | None:
    """A yuan amount as fen for the model (empty: none given)."""
    return None if not text.strip() else yuan_to_fen(text)


# -- the list of drives, and starting one -----------------------------------------------------------

async def _funds(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                 form: dict[str, Any] | None = None, status: int = 200) -> web.StreamResponse:
    drives = await campaigns.list_campaigns(session.principal, state=None, limit=DRIVES_PAGE,
                                            cursor=before(request))
    totals = await contributions.summaries(drives)
    zones = await org.list_zones() if session.principal.is_committee else []
    return render(request, "funds.html", session, status=status, drives=drives, totals=totals,
                  pages=pager(request, next_cursor(drives, DRIVES_PAGE)),
                  zones=zones, kinds=DRIVE_KINDS, errors=errors or {}, form=form or {})


@routes.get("/console/funds")
@page
async def funds_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _funds(request, session)


@routes.post("/console/funds")
@page
async def create_drive(request: web.Request, session: Session) -> web.StreamResponse:
    """As POST /campaigns: open at once unless kept as a draft."""
    form = await request.post()
    raw = {k: str(form.get(k, "")) for k in ("title", "kind", "target", "ends_at", "description",
                                             "fund_zone_id")}
    zone_ids = [int_or_none(str(z)) for z in form.getall("zone_ids", []) if str(z).strip()]
    data: dict[str, Any] = {"title": raw["title"], "kind": raw["kind"], "target_fen": _money(raw["target"]),
                            "ends_at": local_instant(raw["ends_at"]), "description": raw["description"],
                            "zone_ids": zone_ids, "fund_zone_id": int_or_none(raw["fund_zone_id"]),
                            "draft": form.get("draft") == "1"}
    try:
        body = parse(CampaignIn, data)
        with refusals(fields={"zone_not_found": "zone_ids"}):
            made = await campaigns.create_campaign(
                session.principal, kind=CampaignKind(body.kind), title=body.title,
                description=body.description, target_fen=body.target_fen, starts_at=body.starts_at,
                ends_at=body.ends_at, zone_ids=body.zone_ids, fund_zone_id=body.fund_zone_id,
                min_amount_fen=body.min_amount_fen, max_amount_fen=body.max_amount_fen, draft=body.draft)
    except FormErrors as exc:
        fields = {("target" if k == "target_fen" else k): v for k, v in exc.fields.items()}
        return await _funds(request, session, errors=fields, form=raw, status=exc.status)
    raise web.HTTPSeeOther(f"/console/funds/{made.id}")


# -- one drive ---------------------------------------------------------------------------------------

async def _drive(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                 done: str = "", form: dict[str, Any] | None = None, status: int = 200) -> web.StreamResponse:
    principal = session.principal
    campaign_id = _id(request, "campaign_id")
    totals = await contributions.totals(principal, campaign_id)
    rows: list[Any] = []
    units: list[Any] = []
    if principal.is_committee or principal.is_unit_admin:
        rows = await contributions.campaign_contributions(principal, campaign_id=campaign_id, unit_id=None,
                                                          status=None, limit=CONTRIBUTIONS_PAGE,
                                                          cursor=before(request))
        units = await org.list_units(principal)  # a unit admin: their own
    names = await org.unit_names({r.unit_id for r in rows})
    return render(request, "drive.html", session, status=status, totals=totals, rows=rows, units=units,
                  unit_names=names, pages=pager(request, next_cursor(rows, CONTRIBUTIONS_PAGE)),
                  channels=CHANNELS, statuses=STATUSES, states=STATES, errors=errors or {}, done=done,
                  form=form or {}, today=clock.now().astimezone(clock.SHANGHAI).date().isoformat(),
                  idem=secrets.token_urlsafe(16))


@routes.get(r"/console/funds/{campaign_id:\d{1,9}}")
@page
async def drive_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _drive(request, session)


@routes.post(r"/console/funds/{campaign_id:\d{1,9}}/{action:open|close}")
@page
async def change_state(request: web.Request, session: Session) -> web.StreamResponse:
    """As POST /campaigns/{id}/open and /close (no reopening)."""
    action = request.match_info["action"]
    try:
        with refusals(fields={"illegal_transition": "state"}):
            await campaigns.change_state(session.principal, _id(request, "campaign_id"), action)
    except FormErrors as exc:
        return await _drive(request, session, errors=exc.fields, status=exc.status)
    return await _drive(request, session, done="募集已开始" if action == "open" else "募集已结束")


@routes.post(r"/console/funds/{campaign_id:\d{1,9}}/offline")
@page
async def record_offline(request: web.Request, session: Session) -> web.StreamResponse:
    """As POST /campaigns/{id}/offline-contributions: cash or a transfer with its receipt number
    (the same receipt again with the same amount is the same entry)."""
    form = await request.post()
    raw = {k: str(form.get(k, "")) for k in ("unit_id", "amount", "channel", "receipt_no", "payer_name",
                                             "received_on", "note")}
    data: dict[str, Any] = {"unit_id": int_or_none(raw["unit_id"]), "amount_fen": _money(raw["amount"]),
                            "channel": raw["channel"], "receipt_no": raw["receipt_no"],
                            "payer_name": raw["payer_name"], "received_on": raw["received_on"].strip() or None,
                            "note": raw["note"]}
    try:
        body = parse(OfflineIn, data)
        with refusals(fields={"receipt_no_taken": "receipt_no", "unit_not_found": "unit_id",
                              "not_in_audience": "unit_id", "campaign_not_open": "_",
                              "campaign_booked": "_"}):
            await contributions.record_offline(
                session.principal, campaign_id=_id(request, "campaign_id"), unit_id=body.unit_id,
                amount_fen=body.amount_fen, channel=Channel(body.channel), receipt_no=body.receipt_no,
                payer_name=body.payer_name, member_id=body.member_id, received_on=body.received_on,
                note=body.note)
    except FormErrors as exc:
        fields = {("amount" if k == "amount_fen" else k): v for k, v in exc.fields.items()}
        return await _drive(request, session, errors={f"offline-{k}": v for k, v in fields.items()},
                            form=raw, status=exc.status)
    return await _drive(request, session, done="线下款项已登记")


@routes.post(r"/console/funds/{campaign_id:\d{1,9}}/contributions/{contribution_id:\d{1,9}}/reverse")
@page
async def reverse(request: web.Request, session: Session) -> web.StreamResponse:
    """As POST /contributions/{id}/reverse: an offline entry corrected by a reversing entry."""
    form = await request.post()
    contribution_id = _id(request, "contribution_id")
    try:
        body = parse(ReverseIn, {"reason": str(form.get("reason", ""))})
        with refusals(fields={"not_reversible": "reason", "already_reversed": "reason",
                              "campaign_booked": "reason"}):
            await contributions.reverse_offline(session.principal, contribution_id=contribution_id,
                                                reason=body.reason)
    except FormErrors as exc:
        return await _drive(request, session, status=exc.status,
                            errors={f"{contribution_id}-{k}": v for k, v in exc.fields.items()})
    return await _drive(request, session, done="已冲正")


@routes.post(r"/console/funds/{campaign_id:\d{1,9}}/contributions/{contribution_id:\d{1,9}}/refund")
@page
async def refund(request: web.Request, session: Session) -> web.StreamResponse:
    """As POST /contributions/{id}/refunds; the form's own key (made when the page was drawn) is
    the idempotency key, so sending the same form twice refunds once."""
    form = await request.post()
    contribution_id = _id(request, "contribution_id")
    try:
        body = parse(RefundIn, {"amount_fen": _money(str(form.get("amount", ""))),
                                "reason": str(form.get("reason", ""))})
        with refusals(fields={"refund_exceeds_paid": "amount_fen", "not_refundable": "amount_fen",
                              "idempotency_key_reused": "amount_fen"}):
            await refunds.request_refund(session.principal, request.app[PAY], contribution_id=contribution_id,
                                         amount_fen=body.amount_fen, reason=body.reason,
                                         idempotency_key=str(form.get("idem", "")) or None)
    except FormErrors as exc:
        fields = {("amount" if k == "amount_fen" else k): v for k, v in exc.fields.items()}
        return await _drive(request, session, status=exc.status,
                            errors={f"{contribution_id}-{k}": v for k, v in fields.items()})
    return await _drive(request, session, done="退款已提交微信支付，完成后计入合计")
