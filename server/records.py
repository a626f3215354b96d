"""Routes: an activity's record (minutes and photos) — read it, write it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.keys import SETTINGS
from server.routing import Access, Router, path_int
from server.schemas.records import RecordIn, RecordOut
from services import errors, records
from services.auth import Principal

router = Router()
TAGS = ["activities"]
ID = r"/activities/{activity_id:\d{1,9}}"


@router.route("GET", ID + "/record", access=Access.MEMBER, response=RecordOut, tags=TAGS,
              errors=[errors.ActivityNotFound],
              summary="An activity's record: minutes and photos (its zone and the staff governing it)")
async def get_record(request: web.Request, *, principal: Principal) -> Any:
    return await records.get(principal, path_int(request, "activity_id"))


@router.route("PUT", ID + "/record", access=Access.UNIT_ADMIN, body=RecordIn, response=RecordOut,
              tags=TAGS, errors=[errors.ActivityNotFound, errors.NotYourQuarter, errors.ActivityCancelled,
                                 errors.RecordWindowClosed, errors.NotAnImage,
                                 errors.AttachmentNotCitable],
              summary="Record an activity after it started: minutes (纪要) and photos (its duty unit, "
                      "until its handover closes or 30 days after its quarter; staff of its zone)")
async def put_record(request: web.Request, *, principal: Principal, body: RecordIn) -> Any:
    """The whole record as sent: minutes and photos replace what was there."""
    return await records.put(principal, path_int(request, "activity_id"), minutes=body.minutes,
                             photos=[p.model_dump() for p in body.photos],
                             root=request.app[SETTINGS].files_dir)
