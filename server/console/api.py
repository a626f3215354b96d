"""The console's one API route: the mini-program confirms a console login ticket."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.keys import REDIS
from server.routing import Access, Router
from server.schemas.common import OkOut
from services import console, errors
from services.auth import Principal

router = Router()


@router.route("POST", "/console/tickets/{ticket:[A-Za-z0-9_-]{32}}/confirm", access=Access.MEMBER,
              response=OkOut, tags=["console"],
              errors=[errors.ConsoleNotAllowed, errors.ConsoleTicketInvalid],
              summary="Confirm a console login ticket scanned from the console's login page")
async def confirm_ticket(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    """A unit admin (or staff) scans the QR code the console's login page shows; confirming it
    starts that browser's session as the caller. Plain members are refused
    (`console_not_allowed`); an expired, used or unknown ticket answers 410
    `console_ticket_invalid`."""
    await console.confirm_ticket(request.app[REDIS], principal, request.match_info["ticket"])
    return {"ok": True}
