"""Routes: each zone's fund ledger (经费台账): read it, record lines, decide subsidies, reverse."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from models.ledger import Direction, EntryCategory
from server.routing import Access, Router, idempotency_key, path_int
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
from services import errors, fund_entries, ledger, subsidies
from services.auth import Principal

router = Router()
TAGS = ["ledger"]
ZONE = r"/zones/{zone_id:\d{1,9}}"
ENTRY = ZONE + r"/fund-entries/{entry_id:\d{1,9}}"


@router.route("GET", ZONE + "/fund-ledger", access=Access.MEMBER, query=FundLedgerQuery,
              response=FundLedgerOut, tags=TAGS, errors=[errors.NotZoneMember, errors.ZoneNotFound],
              summary="A zone's fund ledger for a year: balances, income and expense by category, "
                      "the booked lines with the running balance (members of the zone; staff)")
async def get_ledger(request: web.Request, *, principal: Principal, query: FundLedgerQuery) -> Any:
    """The year is an Asia/Shanghai calendar year of the booking time. `opening_balance_fen` is
    every line booked before it; `entries` are the year's booked lines in booking order, each with
    `balance_fen` after it; `pending` lists the subsidies waiting for approval (any year),
    `rejected` those rejected in the year. Category figures are net of reversals."""
    return await ledger.ledger(principal, zone_id=path_int(request, "zone_id"), year=query.year)


@router.route("GET", "/fund-ledger/summary", access=Access.COMMITTEE, query=FundLedgerQuery,
              response=FundSummaryOut, tags=TAGS,
              summary="Every zone's fund figures for a year, and the city's totals (committee)")
async def get_summary(request: web.Request, *, principal: Principal, query: FundLedgerQuery) -> Any:
    return await ledger.summary(principal, year=query.year)


@router.route("POST", ZONE + "/fund-entries", access=Access.UNIT_ADMIN, body=FundEntryIn,
              response=FundEntryResultOut, status=201, tags=TAGS, idempotency="optional",
              errors=[errors.NotOnDuty, errors.NoRotation, errors.ZoneNotFound,
                      errors.UnitNotInZone, errors.InsufficientBalance, errors.IdempotencyKeyReused,
                      errors.AttachmentNotCitable, errors.InvalidInput, errors.Busy],
              summary="Record an income or expense line (duty unit of the zone in its quarter; staff)")
async def create_entry(request: web.Request, *, principal: Principal, body: FundEntryIn) -> Any:
    """`committee_subsidy` income is created `pending` until another committee member approves
    it; every other line is booked at once. An expense may not take the booked balance below 0
    (409 insufficient_balance with `balance_fen`). `campaign` income is booked by the system.

    Optional header `Idempotency-Key` (1 to 64 printable ASCII characters): the same key in the
    same zone with the same request answers the standing line with 200 instead of 201; with a
    different request, 409 idempotency_key_reused."""
    return await fund_entries.record(
        principal, zone_id=path_int(request, "zone_id"), direction=Direction(body.direction),
        category=EntryCategory(body.category), amount_fen=body.amount_fen,
        description=body.description, occurred_on=body.occurred_on, unit_id=body.unit_id,
        attachments=[a.model_dump() for a in body.attachments],
        idempotency_key=idempotency_key(request))


@router.route("POST", ENTRY + "/approve", access=Access.STAFF, body=SubsidyApproveIn,
              response=FundEntryResultOut, tags=TAGS,
              errors=[errors.EntryNotFound, errors.NotASubsidy, errors.AlreadyDecided,
                      errors.SelfApproval, errors.ZoneNotFound, errors.Busy],
              summary="Approve a pending committee subsidy: it is booked now (staff governing the "
                      "zone, not the requester)")
async def approve(request: web.Request, *, principal: Principal, body: SubsidyApproveIn) -> Any:
    """Four eyes: the one who asked cannot approve (403 self_approval). Of two approvers at once,
    one decides; the other gets 409 already_decided. The zone's duty-unit admins and the
    requester are told."""
    return await subsidies.approve(principal, zone_id=path_int(request, "zone_id"),
                                   entry_id=path_int(request, "entry_id"), note=body.note)


@router.route("POST", ENTRY + "/reject", access=Access.STAFF, body=SubsidyRejectIn,
              response=FundEntryResultOut, tags=TAGS,
              errors=[errors.EntryNotFound, errors.NotASubsidy, errors.AlreadyDecided],
              summary="Reject a pending committee subsidy with a note (staff governing the zone)")
async def reject(request: web.Request, *, principal: Principal, body: SubsidyRejectIn) -> Any:
    """Nothing is booked. The requester may reject (withdraw) their own request. The zone's
    duty-unit admins and the requester are told."""
    return await subsidies.reject(principal, zone_id=path_int(request, "zone_id"),
                                  entry_id=path_int(request, "entry_id"), note=body.note)


@router.route("POST", ENTRY + "/reverse", access=Access.UNIT_ADMIN, body=FundReverseIn,
              response=FundEntryResultOut, status=201, tags=TAGS,
              errors=[*errors.DUTY_REFUSALS, errors.EntryNotFound, errors.NotBooked,
                      errors.ReversalNotReversible, errors.AlreadyReversed,
                      errors.InsufficientBalance, errors.ZoneNotFound, errors.Busy],
              summary="Reverse a booked line with a new line of the negated amount (duty unit of "
                      "the zone in its quarter; staff)")
async def reverse(request: web.Request, *, principal: Principal, body: FundReverseIn) -> Any:
    """Answers the reversing line (`reverses_id` names the original). A line is reversed at most
    once (409 already_reversed), a reversing line cannot be reversed, only booked lines can be,
    and reversing income may not take the balance below 0 (409 insufficient_balance)."""
    return await fund_entries.reverse(principal, zone_id=path_int(request, "zone_id"),
                                      entry_id=path_int(request, "entry_id"), reason=body.reason)
