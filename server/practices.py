"""Routes: good practice (经验交流) — publish, list, read (counted once per member), feature."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.keys import ARQ, SETTINGS
from server.routing import Access, Router, path_int
from server.schemas.practices import PracticeIn, PracticeOut, PracticesOut, PracticesQuery
from services import errors, practices
from services.auth import Principal
from tasks.notices import hand_over

router = Router()
TAGS = ["practices"]
ID = r"/practices/{practice_id:\d{1,9}}"


@router.route("POST", "/practices", access=Access.UNIT_ADMIN, body=PracticeIn, response=PracticeOut,
              status=201, tags=TAGS,
              errors=[errors.NotAnImage, errors.AttachmentNotCitable],
              summary="Publish a good practice (a unit admin, the duty unit too: for their own unit)")
async def publish(request: web.Request, *, principal: Principal, body: PracticeIn) -> Any:
    return await practices.create(principal, title=body.title, body=body.body,
                                  images=[i.model_dump() for i in body.images], unit_id=body.unit_id,
                                  root=request.app[SETTINGS].files_dir)


@router.route("GET", "/practices", access=Access.MEMBER, query=PracticesQuery, response=PracticesOut,
              tags=TAGS, summary="Good practices, newest first, filters zone_id, unit_id, year, featured; paged")
async def list_practices(request: web.Request, *, principal: Principal, query: PracticesQuery) -> Any:
    return await practices.page(principal, zone_id=query.zone_id, unit_id=query.unit_id, year=query.year,
                                featured=query.featured, cursor=query.cursor, limit=query.limit)


@router.route("GET", ID, access=Access.MEMBER, response=PracticeOut, tags=TAGS,
              errors=[errors.PracticeNotFound],
              summary="One good practice; the caller's first read is counted")
async def read_practice(request: web.Request, *, principal: Principal) -> Any:
    return await practices.read(principal, path_int(request, "practice_id"))


@router.route("POST", ID + "/feature", access=Access.COMMITTEE, response=PracticeOut, tags=TAGS,
              errors=[errors.PracticeNotFound, errors.PracticeFeatured],
              summary="Feature a good practice (committee, once): a notice to every zone refers to it")
async def feature(request: web.Request, *, principal: Principal) -> Any:
    """Featuring it again answers 409 practice_already_featured and sends nothing."""
    out, notice = await practices.feature(principal, path_int(request, "practice_id"))
    await hand_over(request.app[ARQ], notice.id)
    return out
