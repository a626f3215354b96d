"""Routes: the work ledger (台账) as JSON or an XLSX workbook, and the year-end evaluation."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from server.routing import Access, Router
from server.schemas.work_ledger import EvaluationOut, LedgerOut, LedgerQuery, RubricIn
from services import errors, evaluation, work_ledger
from services.auth import Principal
from services.ledger import this_year

router = Router()
TAGS = ["governance"]
YEAR = r"/evaluation/{year:20\d\d}"  # a year the ledger can hold: 2000-2099
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.route("GET", "/ledger", access=Access.UNIT_ADMIN, query=LedgerQuery, response=LedgerOut,
              files=(XLSX,), tags=TAGS,
              errors=[errors.ZoneNotFound, errors.UnitNotFound, errors.UnitNotInZone],
              summary="The work ledger of a year: the city, a zone or a unit (format=xlsx: a workbook)")
async def get_ledger(request: web.Request, *, principal: Principal, query: LedgerQuery) -> Any:
    """Committee: any scope; a liaison: their zones; a unit admin: their own unit. Sections:
    rotations and plans, meetings, activities, units, supervision, funds; city figures."""
    year = query.year or this_year()
    if query.format == "json":
        return await work_ledger.book(principal, year=year, zone_id=query.zone_id,
                                      unit_id=query.unit_id)
    name, body = await work_ledger.workbook(principal, year=year, zone_id=query.zone_id,
                                            unit_id=query.unit_id)
    return web.Response(body=body, headers={
        "Content-Type": XLSX, "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


@router.route("GET", YEAR, access=Access.STAFF, response=EvaluationOut, tags=TAGS,
              summary="A year's evaluation: scores and ranks of units and zones, with their evidence")
async def get_evaluation(request: web.Request, *, principal: Principal) -> Any:
    """The stored result, or (none yet) one computed now under the year's rubric (`stored`: false)."""
    return await evaluation.get(principal, int(request.match_info["year"]))


@router.route("PUT", YEAR + "/rubric", access=Access.COMMITTEE, body=RubricIn, response=EvaluationOut,
              tags=TAGS, summary="Set the year's rubric (weights); the year is recomputed and stored")
async def put_rubric(request: web.Request, *, principal: Principal, body: RubricIn) -> Any:
    return await evaluation.set_rubric(principal, int(request.match_info["year"]), dict(body.weights))


@router.route("POST", YEAR + "/compute", access=Access.COMMITTEE, response=EvaluationOut, tags=TAGS,
              summary="Recompute the year under its rubric and store the result")
async def compute(request: web.Request, *, principal: Principal) -> Any:
    return await evaluation.recompute(principal, int(request.match_info["year"]))
