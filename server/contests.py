"""Routes: contest entries, each zone's preliminary round, the committee's final, results."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.routing import Access, Router, path_int
from server.schemas.common import OkOut
from server.schemas.contests import (
    EntriesOut,
    EntryIn,
    EntryOut,
    FinalIn,
    PreliminaryIn,
    ResultsOut,
)
from services import contests, errors
from services.auth import Principal

router = Router()
TAGS = ["contests"]
ID = r"/activities/{activity_id:\d{1,9}}"
NOT_A_CONTEST = [errors.ActivityNotFound, errors.NotAContest, errors.ActivityCancelled]


@router.route("POST", ID + "/entries", access=Access.MEMBER, body=EntryIn, response=EntryOut,
              status=201, tags=TAGS,
              errors=[*NOT_A_CONTEST, errors.RoundClosed, errors.AlreadyEntered, errors.NotInAudience,
                      errors.Forbidden],
              summary="Enter a contest, as a member or (unit admin) for the unit")
async def add_entry(request: web.Request, *, principal: Principal, body: EntryIn) -> Any:
    return await contests.add_entry(principal, contest_id=path_int(request, "activity_id"),
                                    title=body.title, as_unit=body.as_unit)


@router.route("GET", ID + "/entries", access=Access.MEMBER, response=EntriesOut, tags=TAGS,
              errors=NOT_A_CONTEST, summary="A contest's entries")
async def list_entries(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return {"items": await contests.entries(principal, path_int(request, "activity_id"))}


@router.route("POST", ID + "/rounds/preliminary", access=Access.UNIT_ADMIN, body=PreliminaryIn,
              response=OkOut, tags=TAGS,
              errors=[*NOT_A_CONTEST, errors.RoundClosed, errors.NotOnDuty, errors.NoRotation,
                      errors.InvalidInput],
              summary="Close a zone's preliminary: rank its entries, advance the top N")
async def close_preliminary(request: web.Request, *, principal: Principal,
                            body: PreliminaryIn) -> dict[str, Any]:
    await contests.close_preliminary(principal, contest_id=path_int(request, "activity_id"),
                                     zone_id=body.zone_id, advance_top=body.advance_top,
                                     scores=[s.model_dump() for s in body.scores])
    return {"ok": True}


@router.route("POST", ID + "/rounds/final", access=Access.COMMITTEE, body=FinalIn,
              response=OkOut, tags=TAGS,
              errors=[*NOT_A_CONTEST, errors.RoundClosed, errors.PreliminariesOpen,
                      errors.InvalidInput],
              summary="Close the committee's final: rank the finalists")
async def close_final(request: web.Request, *, principal: Principal, body: FinalIn) -> dict[str, Any]:
    await contests.close_final(principal, contest_id=path_int(request, "activity_id"),
                               scores=[s.model_dump() for s in body.scores])
    return {"ok": True}


@router.route("GET", ID + "/results", access=Access.MEMBER, response=ResultsOut, tags=TAGS,
              errors=NOT_A_CONTEST, summary="Results per round: each zone's preliminary and the final")
async def contest_results(request: web.Request, *, principal: Principal) -> Any:
    return await contests.results(principal, path_int(request, "activity_id"))
