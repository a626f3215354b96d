"""Routes: each zone's fund ledger (经费台账): read it, record lines, decide subsidies, reverse."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from models.funds import Direction, EntryCategory, FundEntry
from server.routing import Access, Replayed, Router, idempotency_key, path_int
from server.schemas.ledger import (
    FundEntryIn,
    FundEntryResultOut,
    FundLedgerOut,
    FundLedgerQuery,
    FundReverseIn,
    FundSummaryOut,
    SubsidyApproveIn,
    SubsidyRejectIn,
)
from services import ledger as svc
from services.access import NotOnDuty
from services.auth import Principal
from services.errors import Busy
from services.org import UnitNotInZone

router = Router()
TAGS = ["ledger"]
ZONE = r"/zones/{zone_id:\d{1,9}}"
ENTRY = ZONE + r"/fund-entries/{entry_id:\d{1,9}}"


def entry_out(e: FundEntry, *, reversed_by: dict[int, int],
              unit_names: dict[int, str]) -> dict[str, Any]:
    return {"id": e.id, "zone_id": e.zone_id, "direction": e.direction.value,
            "category": e.category.value, "status": e.status.value, "amount_fen": e.amount_fen,
            "effect_fen": svc.effect(e.direction, e.amount_fen), "unit_id": e.unit_id,
            "unit_name": unit_names.get(e.unit_id) if e.unit_id is not None else None,
            "campaign_id": e.campaign_id, "description": e.description,
            "attachments": e.attachments, "occurred_on": e.occurred_on,
            "recorded_by_id": e.recorded_by_id, "decided_by_id": e.decided_by_id,
            "decided_at": e.decided_at, "decision_note": e.decision_note,
            "reverses_id": e.reverses_id, "reversed_by_id": reversed_by.get(e.id),
            "booked_at": e.booked_at, "created_at": e.created_at}


async def result_out(r: svc.Recorded) -> dict[str, Any]:
    return {**entry_out(r.entry, reversed_by=await svc.reversed_by([r.entry]),
                        unit_names=await svc.unit_names([r.entry])),
            "zone_balance_fen": r.balance_fen}


@router.route("GET", ZONE + "/fund-ledger", access=Access.MEMBER, query=FundLedgerQuery,
              response=FundLedgerOut, tags=TAGS, errors=[svc.NotZoneMember, svc.ZoneNotFound],
              summary="A zone's fund ledger for a year: balances, income and expense by category, "
                      "the booked lines with the running balance (members of the zone; committee)")
async def get_ledger(request: web.Request, *, principal: Principal,
                     query: FundLedgerQuery) -> dict[str, Any]:
    """The year is an Asia/Shanghai calendar year of the booking time. `opening_balance_fen` is
    every line booked before it; `entries` are the year's booked lines in booking order, each with
    `balance_fen` after it; `pending` lists the subsidies waiting for approval (any year),
    `rejected` those rejected in the year. Category figures are net of reversals."""
    book = await svc.ledger(principal, zone_id=path_int(request, "zone_id"), year=query.year)
    out = {"reversed_by": book.reversed_by, "unit_names": book.unit_names}
    return {"zone_id": book.zone.id, "zone_name": book.zone.name, "year": book.year, **book.totals,
            "entries": [{**entry_out(e, **out), "balance_fen": bal} for e, bal in book.entries],
            "pending": [entry_out(e, **out) for e in book.pending],
            "rejected": [entry_out(e, **out) for e in book.rejected]}


@router.route("GET", "/fund-ledger/summary", access=Access.COMMITTEE, query=FundLedgerQuery,
              response=FundSummaryOut, tags=TAGS,
              summary="Every zone's fund figures for a year, and the city's totals (committee)")
async def get_summary(request: web.Request, *, principal: Principal,
                      query: FundLedgerQuery) -> dict[str, Any]:
    year, zones, city = await svc.summary(principal, year=query.year)
    return {"year": year, "zones": zones, "city": city}


@router.route("POST", ZONE + "/fund-entries", access=Access.UNIT_ADMIN, body=FundEntryIn,
              response=FundEntryResultOut, status=201, tags=TAGS, idempotency="optional",
              errors=[NotOnDuty, svc.ZoneNotFound, UnitNotInZone, svc.InsufficientBalance,
                      svc.IdempotencyKeyReused, Busy],
              summary="Record an income or expense line (duty unit of the zone in its quarter; "
                      "committee)")
async def create_entry(request: web.Request, *, principal: Principal,
                       body: FundEntryIn) -> dict[str, Any] | Replayed:
    """`committee_subsidy` income is created `pending` until another committee member approves
    it; every other line is booked at once. An expense may not take the booked balance below 0
    (409 insufficient_balance with `balance_fen`). `campaign` income is booked by the system.

    Optional header `Idempotency-Key` (1 to 64 printable ASCII characters): the same key in the
    same zone with the same request answers the standing line with 200 instead of 201; with a
    different request, 409 idempotency_key_reused."""
    recorded = await svc.record(
        principal, zone_id=path_int(request, "zone_id"), direction=Direction(body.direction),
        category=EntryCategory(body.category), amount_fen=body.amount_fen,
        description=body.description, occurred_on=body.occurred_on, unit_id=body.unit_id,
        attachments=[a.model_dump() for a in body.attachments],
        idempotency_key=idempotency_key(request))
    data = await result_out(recorded)
    return data if recorded.created else Replayed(data)


@router.route("POST", ENTRY + "/approve", access=Access.STAFF, body=SubsidyApproveIn,
              response=FundEntryResultOut, tags=TAGS,
              errors=[svc.EntryNotFound, svc.NotASubsidy, svc.AlreadyDecided, svc.SelfApproval,
                      svc.ZoneNotFound, Busy],
              summary="Approve a pending committee subsidy: it is booked now (committee, not the "
                      "requester)")
async def approve(request: web.Request, *, principal: Principal,
                  body: SubsidyApproveIn) -> dict[str, Any]:
    """Four eyes: the committee member who asked cannot approve (403 self_approval). Of two
    approvers at once, one decides; the other gets 409 already_decided. The zone's duty-unit
    admins and the requester are told."""
    return await result_out(await svc.approve(
        principal, zone_id=path_int(request, "zone_id"), entry_id=path_int(request, "entry_id"),
        note=body.note))


@router.route("POST", ENTRY + "/reject", access=Access.STAFF, body=SubsidyRejectIn,
              response=FundEntryResultOut, tags=TAGS,
              errors=[svc.EntryNotFound, svc.NotASubsidy, svc.AlreadyDecided],
              summary="Reject a pending committee subsidy with a note (committee)")
async def reject(request: web.Request, *, principal: Principal,
                 body: SubsidyRejectIn) -> dict[str, Any]:
    """Nothing is booked. The requester may reject (withdraw) their own request. The zone's
    duty-unit admins and the requester are told."""
    return await result_out(await svc.reject(
        principal, zone_id=path_int(request, "zone_id"), entry_id=path_int(request, "entry_id"),
        note=body.note))


@router.route("POST", ENTRY + "/reverse", access=Access.UNIT_ADMIN, body=FundReverseIn,
              response=FundEntryResultOut, status=201, tags=TAGS,
              errors=[NotOnDuty, svc.EntryNotFound, svc.NotBooked, svc.ReversalNotReversible,
                      svc.AlreadyReversed, svc.InsufficientBalance, svc.ZoneNotFound, Busy],
              summary="Reverse a booked line with a new line of the negated amount (duty unit of "
                      "the zone in its quarter; committee)")
async def reverse(request: web.Request, *, principal: Principal,
                  body: FundReverseIn) -> dict[str, Any]:
    """Answers the reversing line (`reverses_id` names the original). A line is reversed at most
    once (409 already_reversed), a reversing line cannot be reversed, only booked lines can be,
    and reversing income may not take the balance below 0 (409 insufficient_balance)."""
    return await result_out(await svc.reverse(
        principal, zone_id=path_int(request, "zone_id"), entry_id=path_int(request, "entry_id"),
        reason=body.reason))
