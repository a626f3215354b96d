"""Console pages: login (password or QR ticket), dashboard, notices — with their live feeds."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp_sse import sse_response

from server.console.web import (
    BROWSER_COOKIE,
    COOKIE,
    FormErrors,
    before,
    page,
    pager,
    parse,
    refusals,
    render,
    service_errors,
    set_cookie,
)
from server.keys import ARQ, AUTH, REDIS, SETTINGS
from server.schemas.auth import PasswordLoginIn
from server.schemas.notices import NoticeIn
from services import console, dashboard, files, notices, org
from services.console import Session
from services.errors import ConsoleCsrf, ServiceError
from tasks.notices import hand_over

routes = web.RouteTableDef()
LIVE_INTERVAL_S = 1.0
TICKET_QR_PREFIX = "zonehub-console:"


def _browser(request: web.Request) -> str:
    return request.cookies.get(BROWSER_COOKIE) or secrets.token_urlsafe(24)


async def _login_page(request: web.Request, *, errors: dict[str, str] | None = None,
                      username: str = "", status: int = 200) -> web.Response:
    browser = _browser(request)
    ticket = await console.create_ticket(request.app[REDIS], browser=browser)
    response = render(request, "login.html", None, status=status, ticket=ticket,
                      qr_text=TICKET_QR_PREFIX + ticket, ttl_s=console.TICKET_TTL_S,
                      form_csrf=browser, errors=errors or {}, username=username)
    set_cookie(response, BROWSER_COOKIE, browser, max_age=24 * 3600)
    return response


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _signed_in(response: web.StreamResponse, sid: str) -> web.StreamResponse:
    set_cookie(response, COOKIE, sid, max_age=console.SESSION_TTL_S)
    return response


@routes.get("/console/login")
async def login_form(request: web.Request) -> web.StreamResponse:
    return await _login_page(request)


@routes.post("/console/login")
async def login(request: web.Request) -> web.StreamResponse:
    """Staff passwords, through the API's login service (its rate limits included). The form's
    CSRF token is the browser cookie, double-submitted."""
    form = await request.post()
    username = str(form.get("username", ""))
    browser = request.cookies.get(BROWSER_COOKIE)
    try:
        if not browser or not secrets.compare_digest(browser, str(form.get("csrf", ""))):
            raise ConsoleCsrf()
        body = parse(PasswordLoginIn, {"username": username, "password": str(form.get("password", ""))})
        member = await request.app[AUTH].login_password(
            username=body.username, password=body.password, address=request.remote or "unknown")
        sid, _ = await console.start_session(request.app[AUTH], member)
    except FormErrors as exc:
        return await _login_page(request, errors=exc.fields, username=username, status=exc.status)
    except ServiceError as err:
        return await _login_page(request, errors=service_errors(err, fields={
            "login_failed": "password"}).fields, username=username, status=err.http_status)
    return _signed_in(_redirect("/console/"), sid)


@routes.get(r"/console/login/tickets/{ticket:[A-Za-z0-9_-]{32}}")
async def ticket_poll(request: web.Request) -> web.StreamResponse:
    """Polled by the login page (htmx, every second): once the mini-program confirmed the
    ticket, this browser (and only it) starts its session."""
    redis, ticket = request.app[REDIS], request.match_info["ticket"]
    browser = request.cookies.get(BROWSER_COOKIE, "")
    member_id = await console.claim_ticket(redis, ticket, browser=browser) if browser else None
    if member_id is not None:
        try:
            sid, _ = await console.start_session_for(request.app[AUTH], member_id)
        except ServiceError as err:
            return web.Response(text=f'<p class="error">{err.message}</p>', content_type="text/html")
        response = web.Response(text="登录成功，正在进入…", content_type="text/html",
                                headers={"HX-Redirect": "/console/"})
        return _signed_in(response, sid)
    state = await console.ticket_state(redis, ticket)
    text = {"pending": "请使用小程序扫码确认", "confirmed": "已确认，正在登录…",
            "gone": '二维码已失效，<a href="/console/login">刷新</a>'}[state]
    headers = {"HX-Trigger": "ticket-gone"} if state == "gone" else {}
    return web.Response(text=text, content_type="text/html", headers=headers,
                        status=286 if state == "gone" else 200)  # 286: htmx stops polling


@routes.post("/console/logout")
@page
async def logout(request: web.Request, session: Session) -> web.StreamResponse:
    await console.end_session(request.app[AUTH], session)
    response = _redirect("/console/login")
    response.del_cookie(COOKIE, path="/console")
    return response


# -- dashboard ------------------------------------------------------------------------------------

@routes.get("/console/")
@page
async def home(request: web.Request, session: Session) -> web.StreamResponse:
    data = await dashboard.gather(session.principal)
    return render(request, "dashboard.html", session, **data)


async def _stream(request: web.Request, session: Session, read: Any) -> web.StreamResponse:
    """Server-sent events: `read()` every second, sent when it changed; ends when the client
    goes or the session ends."""
    async with sse_response(request) as sse:
        last = None
        while sse.is_connected():
            try:
                await console.load_session(request.app[AUTH], session.sid)
                data = await read()
            except ServiceError as err:
                await sse.send(json.dumps({"error": err.code, "message": err.message}), event="error")
                break
            text = json.dumps(data, default=str, ensure_ascii=False)
            if text != last:
                await sse.send(text, event="figures")
                last = text
            await asyncio.sleep(LIVE_INTERVAL_S)
    return sse


@routes.get("/console/live/dashboard")
@page
async def live_dashboard(request: web.Request, session: Session) -> web.StreamResponse:
    return await _stream(request, session, lambda: dashboard.in_flight(session.principal))


# -- notices --------------------------------------------------------------------------------------

async def _compose_context(session: Session) -> dict[str, Any]:
    principal = session.principal
    zones = await org.list_zones()
    scope = dashboard.zone_scope(principal)
    if scope is not None:
        zones = [z for z in zones if z.id in scope]
    units = await org.list_units(principal) if (principal.is_staff or principal.is_unit_admin) else []
    return {"zones": zones, "units": units}


@routes.get("/console/notices")
@page
async def notices_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _notices(request, session)


async def _notices(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                   form: dict[str, Any] | None = None, status: int = 200) -> web.StreamResponse:
    sent = await notices.sent(session.principal, cursor=before(request), limit=50)
    return render(request, "notices.html", session, status=status, sent=sent["items"],
                  pages=pager(request, sent["next_cursor"]),
                  errors=errors or {}, form=form or {}, **await _compose_context(session))


def _audience(form: Any) -> dict[str, Any]:
    audience: dict[str, Any] = {}
    if form.get("audience_all"):
        audience["all"] = True
    for name in ("zone_ids", "unit_ids"):
        ids = [int(v) for v in form.getall(name, []) if str(v).isdigit()]
        if ids:
            audience[name] = ids
    roles = [str(v) for v in form.getall("roles", [])]
    if roles:
        audience["roles"] = roles
    return audience


@routes.post("/console/notices")
@page
async def send_notice(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    data: dict[str, Any] = {"title": str(form.get("title", "")), "body": str(form.get("body", "")),
                            "audience": _audience(form), "require_ack": bool(form.get("require_ack")),
                            "priority": str(form.get("priority", "normal"))}
    try:
        body = parse(NoticeIn, data)
        with refusals(fields={"audience_out_of_scope": "audience", "not_on_duty": "audience",
                              "zone_not_found": "audience", "unit_not_found": "audience"}):
            notice = await notices.create(
                session.principal, title=body.title, body=body.body,
                audience=body.audience.model_dump(), require_ack=body.require_ack,
                ack_due_at=body.ack_due_at, priority=body.priority, attachments=[],
                remind_after_s=body.remind_after_s)
    except FormErrors as exc:
        return await _notices(request, session, errors=exc.fields, form=data, status=exc.status)
    await hand_over(request.app[ARQ], notice.id)
    raise web.HTTPSeeOther(f"/console/notices/{notice.id}")


@routes.get(r"/console/notices/{notice_id:\d{1,9}}")
@page
async def notice_page(request: web.Request, session: Session) -> web.StreamResponse:
    notice_id = int(request.match_info["notice_id"])
    return render(request, "notice.html", session,
                  **await dashboard.notice_summary(session.principal, notice_id))


@routes.get(r"/console/live/notices/{notice_id:\d{1,9}}")
@page
async def live_notice(request: web.Request, session: Session) -> web.StreamResponse:
    notice_id = int(request.match_info["notice_id"])
    return await _stream(request, session, lambda: notices.stats(session.principal, notice_id))


@routes.get(r"/console/attachments/{key:[0-9a-f]{64}}")
@page
async def attachment(request: web.Request, session: Session) -> web.StreamResponse:
    """An attachment (a record's photo, a practice's image) for whoever may see what it is
    attached to — the API's download with the console's session in place of a bearer token."""
    found = await files.open_for(session.principal, root=request.app[SETTINGS].files_dir,
                                 key=request.match_info["key"])
    return web.FileResponse(found.path, headers={
        "Content-Type": found.content_type, "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(found.name, safe='')}",
        "Cache-Control": "private, max-age=300"})
