"""Console pages: good practice (经验交流) — the list, reading one (counted once per member, as
the API counts it), a unit's admin publishing one with images, the committee featuring one."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.console.web import (
    FormErrors,
    before,
    page,
    pager,
    parse,
    refusals,
    render,
)
from server.console.work import uploads
from server.keys import ARQ, SETTINGS
from server.schemas.practices import PracticeIn
from services import practices
from services.console import Session
from services.errors import Forbidden
from tasks.notices import hand_over

routes = web.RouteTableDef()


async def _list(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                form: dict[str, Any] | None = None, status: int = 200) -> web.StreamResponse:
    featured = {"1": True, "0": False}.get(request.query.get("featured", ""))
    found = await practices.page(session.principal, zone_id=None, unit_id=None, year=None,
                                 featured=featured, cursor=before(request), limit=100)
    return render(request, "practices.html", session, status=status, items=found["items"],
                  pages=pager(request, found["next_cursor"]),
                  featured=featured, errors=errors or {}, form=form or {})


@routes.get("/console/practices")
@page
async def practices_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _list(request, session)


@routes.post("/console/practices")
@page
async def publish(request: web.Request, session: Session) -> web.StreamResponse:
    """As POST /practices (after POST /attachments for each image): a unit's admin, for their unit."""
    form = await request.post()
    raw = {"title": str(form.get("title", "")), "body": str(form.get("body", ""))}
    try:
        parse(PracticeIn, raw)  # the text first: nothing is stored for a bad form
        if not session.principal.is_unit_admin:
            raise Forbidden("经验交流由各单位发布")
        images = await uploads(request, session, form, "image", error_field="images")
        body = parse(PracticeIn, {**raw, "images": images})
        with refusals(fields={"not_an_image": "images", "attachment_not_citable": "images"}):
            made = await practices.create(session.principal, title=body.title, body=body.body,
                                          images=[i.model_dump() for i in body.images], unit_id=None,
                                          root=request.app[SETTINGS].files_dir)
    except FormErrors as exc:
        return await _list(request, session, errors=exc.fields, form=raw, status=exc.status)
    raise web.HTTPSeeOther(f"/console/practices/{made['id']}")


async def _one(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
               done: str = "", status: int = 200) -> web.StreamResponse:
    practice = await practices.read(session.principal, int(request.match_info["practice_id"]))
    return render(request, "practice.html", session, status=status, p=practice, errors=errors or {},
                  done=done)


@routes.get(r"/console/practices/{practice_id:\d{1,9}}")
@page
async def practice_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _one(request, session)


@routes.post(r"/console/practices/{practice_id:\d{1,9}}/feature")
@page
async def feature(request: web.Request, session: Session) -> web.StreamResponse:
    """As POST /practices/{id}/feature: once; a notice to every zone refers to it."""
    try:
        with refusals(fields={"practice_already_featured": "feature"}):
            _, notice = await practices.feature(session.principal, int(request.match_info["practice_id"]))
    except FormErrors as exc:
        return await _one(request, session, errors=exc.fields, status=exc.status)
    await hand_over(request.app[ARQ], notice.id)
    return await _one(request, session, done="已推介，已向各网络区发出通知")
