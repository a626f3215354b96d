"""Routes: a member's personal data, exported and erased on request (个人信息保护法)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.routing import Access, Router, path_int
from server.schemas.personal_data import ErasedOut, MemberExportOut
from services import errors, personal_data
from services.auth import Principal

router = Router()
TAGS = ["personal data"]
MEMBER = r"/members/{member_id:\d{1,9}}"


@router.route("GET", MEMBER + "/export", access=Access.MEMBER, response=MemberExportOut, tags=TAGS,
              errors=[errors.MemberNotFound, errors.Forbidden],
              summary="Everything held about a member, as JSON (the member or the committee); audited")
async def export_member(request: web.Request, *, principal: Principal) -> Any:
    return await personal_data.export(principal, path_int(request, "member_id"))


@router.route("POST", MEMBER + "/erase", access=Access.COMMITTEE, response=ErasedOut, tags=TAGS,
              errors=[errors.MemberNotFound, errors.CannotChangeSelf],
              summary="Erase a member's personal fields on request (committee); money records kept; audited")
async def erase_member(request: web.Request, *, principal: Principal) -> Any:
    """Name, phone, WeChat binding, login, check-in coordinates and subscriptions are erased and
    the member's sessions end; contributions and refunds stay whole (accounting records), and
    the member's row stays so the figures counted by it hold. Erasing again changes nothing."""
    return await personal_data.erase(principal, path_int(request, "member_id"))
