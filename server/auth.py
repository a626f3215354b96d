"""Routes: WeChat login and binding, staff login, logout, me."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.keys import AUTH, CLIENT_ADDRESS
from server.routing import Access, Router
from server.schemas.auth import (
    BindIn,
    MeOut,
    PasswordLoginIn,
    StaffTokenOut,
    TokenOut,
    WeChatLoginIn,
)
from server.schemas.admin import OwnPasswordIn, OwnPasswordOut
from server.schemas.common import OkOut
from services import admin, auth, errors
from services.auth import Principal

router = Router()
TAGS = ["auth"]


@router.route("POST", "/auth/wechat", access=Access.ANYONE, body=WeChatLoginIn, response=TokenOut,
              summary="Log in with the code from wx.login()", tags=TAGS,
              errors=[errors.NotBound, errors.WeChatCodeInvalid, errors.UpstreamError,
                      errors.AccountDisabled])
async def login_wechat(request: web.Request, *, body: WeChatLoginIn) -> Any:
    """A bound openid gets a token; an unknown one gets 403 `not_bound` with a one-time
    `bind_ticket` for `POST /auth/bind`."""
    return request.app[AUTH].session(await request.app[AUTH].login_wechat(code=body.code))


@router.route("POST", "/auth/bind", access=Access.ANYONE, body=BindIn, response=TokenOut,
              summary="Bind a WeChat account to a roster entry", tags=TAGS,
              errors=[errors.BindTicketInvalid, errors.BindMismatch, errors.AlreadyBound,
                      errors.OpenidInUse, errors.RateLimited])
async def bind(request: web.Request, *, body: BindIn) -> Any:
    """The unit's invite code, the member's name and phone must match the unit's roster; one
    answer (bind_mismatch) whichever part is wrong, and guesses are limited per WeChat account
    and per invite code."""
    member = await request.app[AUTH].bind(bind_ticket=body.bind_ticket,
                                          invite_code=body.invite_code, name=body.name,
                                          phone=body.phone)
    return request.app[AUTH].session(member)


@router.route("POST", "/auth/login", access=Access.ANYONE, body=PasswordLoginIn,
              response=StaffTokenOut, summary="Staff log in with username and password", tags=TAGS,
              errors=[errors.LoginFailed, errors.RateLimited, errors.AccountDisabled])
async def login_password(request: web.Request, *, body: PasswordLoginIn) -> Any:
    """Five failures a minute for one account from one address, or twenty from one address over
    any accounts, answer 429 `rate_limited` with Retry-After."""
    member = await request.app[AUTH].login_password(username=body.username, password=body.password,
                                                    address=request[CLIENT_ADDRESS])
    return request.app[AUTH].session(member)


@router.route("POST", "/auth/logout", access=Access.MEMBER, response=OkOut,
              summary="Revoke the token of this request", tags=TAGS)
async def logout(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    await request.app[AUTH].logout(principal)
    return {"ok": True}


@router.route("GET", "/me", access=Access.MEMBER, response=MeOut,
              summary="My profile: unit, zone, roles, and whether my unit is on duty", tags=["me"])
async def me(request: web.Request, *, principal: Principal) -> Any:
    return await request.app[AUTH].profile(principal)


@router.route("PUT", "/me/password", access=Access.UNIT_ADMIN, body=OwnPasswordIn, response=OwnPasswordOut,
              summary="A unit admin sets their own username and password (the console at a desk)",
              tags=["me"], errors=[errors.UsernameTaken, errors.CurrentPasswordWrong])
async def set_own_password(request: web.Request, *, principal: Principal, body: OwnPasswordIn) -> Any:
    """Staff are refused (403): the committee manages their passwords (`/staff/{id}/reset-password`)."""
    return await admin.set_own_password(principal, **body.model_dump())
