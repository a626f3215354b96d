"""The web console's sign-in: QR tickets confirmed from the mini-program, and browser sessions.

A **ticket** is shown on the login page as a QR code. It is bound to the browser that asked for
it (a random id kept in that browser's cookie), lives `TICKET_TTL_S` in Redis and is used once:
the signed-in mini-program of a unit admin (or staff) confirms it, and only the browser that
asked for it can then claim the confirmation, once, to start a session.

A **session** lives in Redis under a random id (the HttpOnly cookie) and holds an API token of
the member (so revocation, role changes and disabled accounts end it like any token) and the
session's CSRF token, which every form and htmx request must echo.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from models.org import Member
from services.auth import Auth, Principal
from services.errors import (
    AccountDisabled,
    ConsoleCsrf,
    ConsoleNotAllowed,
    ConsoleTicketInvalid,
    NotAuthenticated,
    TokenInvalid,
)
from services.redis import key

TICKET_TTL_S = 120
SESSION_TTL_S = 12 * 3600


def _ticket_keys(ticket: str) -> tuple[str, str]:
    return key("console-ticket", ticket), key("console-ticket-ok", ticket)


async def create_ticket(redis: aioredis.Redis, *, browser: str) -> str:
    """A one-time ticket for this browser, pending until the mini-program confirms it."""
    ticket = secrets.token_urlsafe(24)
    pending, _ = _ticket_keys(ticket)
    await redis.set(pending, browser, ex=TICKET_TTL_S)
    return ticket


async def confirm_ticket(redis: aioredis.Redis, principal: Principal, ticket: str) -> None:
    """The mini-program's confirmation: only unit admins and staff may sign in to the console.
    Whoever deletes the pending ticket confirms it; a second confirmation finds it gone."""
    if not (principal.is_unit_admin or principal.is_staff):
        raise ConsoleNotAllowed()
    pending, confirmed = _ticket_keys(ticket)
    browser = await redis.getdel(pending)
    if browser is None:
        raise ConsoleTicketInvalid()
    await redis.set(confirmed, json.dumps({"browser": browser, "member_id": principal.member_id}),
                    ex=TICKET_TTL_S)


async def ticket_state(redis: aioredis.Redis, ticket: str) -> str:
    """`pending`, `confirmed` or `gone` (expired, claimed, or never issued)."""
    pending, confirmed = _ticket_keys(ticket)
    if await redis.exists(confirmed):
        return "confirmed"
    return "pending" if await redis.exists(pending) else "gone"


async def claim_ticket(redis: aioredis.Redis, ticket: str, *, browser: str) -> int | None:
    """The confirmed member's id, once, to the browser that asked for the ticket; else None."""
    _, confirmed = _ticket_keys(ticket)
    raw = await redis.get(confirmed)
    if raw is None:
        return None
    data = json.loads(raw)
    if not hmac.compare_digest(str(data["browser"]), browser):
        return None
    if not await redis.delete(confirmed):  # claimed by a parallel poll of the same browser
        return None
    return int(data["member_id"])


# -- sessions -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    csrf: str
    principal: Principal
    name: str = ""


async def start_session(auth: Auth, member: Member) -> tuple[str, str]:
    """A new session for the member: (session id for the cookie, its CSRF token)."""
    if not member.is_active:
        raise AccountDisabled()
    token, _ = auth.issue_token(member)
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    await auth.redis.set(key("console-session", sid), json.dumps({"token": token, "csrf": csrf,
                                                                   "name": member.name}),
                         ex=SESSION_TTL_S)
    return sid, csrf


async def start_session_for(auth: Auth, member_id: int) -> tuple[str, str]:
    member = await Member.get_or_none(id=member_id)
    if member is None:
        raise TokenInvalid()
    return await start_session(auth, member)


async def load_session(auth: Auth, sid: str | None) -> Session:
    """The session of this cookie, its member still valid; NotAuthenticated otherwise."""
    if not sid:
        raise NotAuthenticated()
    raw = await auth.redis.get(key("console-session", sid))
    if raw is None:
        raise NotAuthenticated()
    data = json.loads(raw)
    try:
        principal = await auth.authenticate(data["token"])
    except TokenInvalid:
        await auth.redis.delete(key("console-session", sid))
        raise NotAuthenticated() from None
    return Session(sid=sid, csrf=data["csrf"], principal=principal, name=data.get("name", ""))


def check_csrf(session: Session, sent: str | None) -> None:
    if not sent or not hmac.compare_digest(session.csrf, sent):
        raise ConsoleCsrf()


async def end_session(auth: Auth, session: Session) -> None:
    await auth.redis.delete(key("console-session", session.sid))
    await auth.logout(session.principal)
