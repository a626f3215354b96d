"""Routes: WeChat login and binding, staff login, logout, me."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from models.org import Member
from server import serialize
from server.keys import AUTH
from server.routing import Access, Router
from server.schemas.auth import (
    BindIn,
    MeOut,
    PasswordLoginIn,
    StaffTokenOut,
    TokenOut,
    WeChatLoginIn,
)
from server.schemas.common import OkOut
from services import access, auth
from services.auth import Principal
from services.db import fetch_rows
from services.errors import RateLimited, TokenInvalid, UpstreamError
from services.wechat import WeChatCodeInvalid

router = Router()
_ME_SQL = (
    "SELECT m.name, m.phone, u.id AS unit_id, u.name AS unit_name, z.id AS zone_id, "
    "z.name AS zone_name FROM member m "
    "LEFT JOIN unit u ON u.id = m.unit_id LEFT JOIN zone z ON z.id = u.zone_id WHERE m.id = $1")
TAGS = ["auth"]


def _client_address(request: web.Request) -> str:
    return request.remote or "unknown"


def _token_out(request: web.Request, member: Member) -> dict[str, Any]:
    token, exp = request.app[AUTH].issue_token(member)
    return {"token": token, "expires_at": datetime.fromtimestamp(exp, UTC),
            "member": serialize.member(member)}


@router.route("POST", "/auth/wechat", access=Access.ANYONE, body=WeChatLoginIn, response=TokenOut,
              summary="Log in with the code from wx.login()", tags=TAGS,
              errors=[auth.NotBound, WeChatCodeInvalid, UpstreamError, auth.AccountDisabled])
async def login_wechat(request: web.Request, *, body: WeChatLoginIn) -> dict[str, Any]:
    """A bound openid gets a token; an unknown one gets 403 `not_bound` with a one-time
    `bind_ticket` for `POST /auth/bind`."""
    member = await request.app[AUTH].login_wechat(code=body.code)
    return _token_out(request, member)


@router.route("POST", "/auth/bind", access=Access.ANYONE, body=BindIn, response=TokenOut,
              summary="Bind a WeChat account to a roster entry", tags=TAGS,
              errors=[auth.BindTicketInvalid, auth.BindMismatch, auth.AlreadyBound,
                      auth.OpenidInUse, RateLimited])
async def bind(request: web.Request, *, body: BindIn) -> dict[str, Any]:
    """The unit's invite code, the member's name and phone must match the unit's roster."""
    member = await request.app[AUTH].bind(bind_ticket=body.bind_ticket,
                                          invite_code=body.invite_code, name=body.name,
                                          phone=body.phone)
    return _token_out(request, member)


@router.route("POST", "/auth/login", access=Access.ANYONE, body=PasswordLoginIn,
              response=StaffTokenOut, summary="Staff log in with username and password", tags=TAGS,
              errors=[auth.LoginFailed, RateLimited, auth.AccountDisabled])
async def login_password(request: web.Request, *, body: PasswordLoginIn) -> dict[str, Any]:
    """Five failures a minute for one account from one address, or twenty from one address over
    any accounts, answer 429 `rate_limited` with Retry-After."""
    member = await request.app[AUTH].login_password(
        username=body.username, password=body.password, address=_client_address(request))
    out = _token_out(request, member)
    return {"token": out["token"], "expires_at": out["expires_at"]}


@router.route("POST", "/auth/logout", access=Access.MEMBER, response=OkOut,
              summary="Revoke the token of this request", tags=TAGS)
async def logout(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    await request.app[AUTH].logout(principal)
    return {"ok": True}


@router.route("GET", "/me", access=Access.MEMBER, response=MeOut,
              summary="My profile: unit, zone, roles, and whether my unit is on duty", tags=["me"])
async def me(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    rows = await fetch_rows(_ME_SQL, principal.member_id)
    if not rows:
        raise TokenInvalid()
    name, phone, unit_id, unit_name, zone_id, zone_name = tuple(rows[0])
    duty = await access.duty_rotation(principal)  # no query unless a unit admin
    liaison_zones = await access.liaison_zone_ids(principal)  # no query unless committee
    roles = auth.member_roles(principal.role)
    if liaison_zones:
        roles.append("liaison")
    if duty is not None:
        roles.append("duty_unit")
    return {
        "id": principal.member_id, "name": name, "phone": phone, "roles": roles,
        "unit": {"id": unit_id, "name": unit_name} if unit_id is not None else None,
        "zone": {"id": zone_id, "name": zone_name} if zone_id is not None else None,
        "duty": {"on_duty": True, "zone_has_rotation": True, "rotation_id": duty.id,
                 "zone_id": duty.zone_id, "year": duty.year, "quarter": duty.quarter,
                 "starts_at": duty.starts_at, "ends_at": duty.ends_at} if duty else {
            "on_duty": False, "zone_has_rotation": zone_id is None or
            await access.current_rotation(zone_id) is not None},
        "liaison_zone_ids": liaison_zones,
    }
