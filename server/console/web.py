"""The console's plumbing: the session cookie, CSRF, rendering, and forms parsed by the API's
own request models so that a page refuses exactly what the API refuses, in the same words."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.keys import AUTH
from services import console
from services.console import Session
from services.errors import BadRequest, Forbidden, InvalidInput, NotAuthenticated, ServiceError
from services.messages import field_message

COOKIE = "zh_console"
BROWSER_COOKIE = "zh_console_browser"  # binds a login ticket and the login form to this browser
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Page = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


def set_cookie(response: web.StreamResponse, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Lax", path="/console")


def render(request: web.Request, template: str, session: Session | None, status: int = 200,
           **context: Any) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, {
        "session": session, "principal": session.principal if session else None,
        "csrf": session.csrf if session else "", "path": request.path, **context})
    response.set_status(status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def error_page(request: web.Request, session: Session | None, err: ServiceError) -> web.Response:
    return render(request, "error.html", session, status=err.http_status, error=err)


def page(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A signed-in page: no session redirects to the login page; a POST (or any htmx write)
    must carry the session's CSRF token; a refusal from a service renders an error page with its
    message and status (403 for another unit's page)."""

    @wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            session = await console.load_session(request.app[AUTH], request.cookies.get(COOKIE))
        except NotAuthenticated:
            if request.headers.get("HX-Request"):
                return web.Response(status=401, headers={"HX-Redirect": "/console/login"})
            raise web.HTTPSeeOther("/console/login") from None
        try:
            if request.method != "GET":
                sent = request.headers.get("X-CSRF-Token")
                if sent is None:
                    sent = str((await request.post()).get("csrf", "")) or None
                console.check_csrf(session, sent)
            return await handler(request, session)
        except ServiceError as err:
            return error_page(request, session, err)

    return wrapper


# -- paged lists ---------------------------------------------------------------------------------

def _query_id(request: web.Request, name: str, *, digits: int, refusal: str) -> int | None:
    """An id in the query string (absent or empty: None); anything else is a 400 page."""
    raw = request.query.get(name, "")
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > digits:
        raise BadRequest(refusal, field=name)
    return int(raw)


def before(request: web.Request) -> int | None:
    """`?before=N` of a paged list: its page starts below id N (absent: the newest page)."""
    return _query_id(request, "before", digits=12, refusal="翻页参数不正确")


def zone_filter(request: web.Request) -> int | None:
    """`?zone_id=N` of a list the caller narrows to one zone (absent or empty: every zone)."""
    return _query_id(request, "zone_id", digits=9, refusal="网络区参数不正确")


def action_filter(request: web.Request) -> str | None:
    """`?action=` of the audit log: an action ("refund.requested") or its family ("refund")."""
    raw = request.query.get("action", "").strip()
    if not raw:
        return None
    if len(raw) > 64 or not all(c.isascii() and (c.isalnum() or c in "._") for c in raw):
        raise BadRequest("操作名称不正确", field="action")
    return raw


def pager(request: web.Request, next_cursor: int | None) -> dict[str, str | None]:
    """The links of a paged list (the `pager` macro): to the next older page if there is one,
    and back to the newest from any other page; the page's other query parameters are kept."""
    url = request.rel_url
    return {"older": str(url.update_query(before=next_cursor)) if next_cursor is not None else None,
            "newest": str(url.without_query_params("before")) if "before" in url.query else None}


def next_cursor(rows: list[Any], limit: int) -> int | None:
    """For a service that returns a bare list: the last id when the page is full."""
    return rows[-1].id if len(rows) == limit else None


# -- forms ---------------------------------------------------------------------------------------

class FormErrors(Exception):
    """Field name -> message; "_" is the form as a whole."""

    def __init__(self, fields: dict[str, str], *, status: int = 422) -> None:
        super().__init__(fields)
        self.fields, self.status = fields, status


def parse(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """The API's request model over what the form gave (JSON mode, as the API reads a body)."""
    for name, value in data.items():
        if isinstance(value, str) and _CONTROL.search(value):
            raise FormErrors({name: "不能包含控制字符"})
    try:
        return model.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for e in exc.errors(include_url=False, include_input=False):
            name = str(e["loc"][0]) if e["loc"] else "_"
            fields.setdefault(name, field_message(e))
        raise FormErrors(fields) from None


def service_errors(err: ServiceError, *, fields: dict[str, str] | None = None) -> FormErrors:
    """A service's refusal beside the field it concerns: an InvalidInput names its fields
    (`loc`); other codes are placed by `fields` (code -> field), else above the form."""
    out: dict[str, str] = {}
    if isinstance(err, InvalidInput):
        for e in err.to_dict().get("errors", []):  # type: ignore[union-attr]
            loc = [p for p in e["loc"] if p != "body"]
            out.setdefault(str(loc[0]) if loc else "_", e["msg"])
    if not out:
        out[(fields or {}).get(err.code, "_")] = err.message
    return FormErrors(out, status=err.http_status)


@contextmanager
def refusals(*, fields: dict[str, str] | None = None) -> Iterator[None]:
    """Around a service call from a form: its refusal becomes FormErrors beside the field it
    concerns (`service_errors`). A Forbidden the form does not place (`fields`) is left to the
    page, which shows it whole: the person may not do this at all."""
    try:
        yield
    except ServiceError as err:
        if isinstance(err, Forbidden) and err.code not in (fields or {}):
            raise
        raise service_errors(err, fields=fields) from None


def local_instant(value: str) -> str | None:
    """A datetime-local input (Asia/Shanghai wall time) as ISO 8601 with its offset."""
    value = value.strip()
    if not value:
        return None
    return value + (":00" if len(value) == 16 else "") + "+08:00"


def int_or_none(value: str) -> int | str | None:
    value = value.strip()
    if not value:
        return None
    return int(value) if value.isdigit() else value  # the model says what is wrong with it


def yuan_to_fen(text: str) -> int | str:
    """A yuan amount typed in the form as integer fen (what the API takes); anything else goes
    to the model as it is, which says what is wrong with it."""
    text = text.strip().replace(",", "")
    if not text:
        return 0
    try:
        whole, _, frac = text.partition(".")
        if whole.isdigit() and (not frac or (frac.isdigit() and len(frac) <= 2)):
            return int(whole) * 100 + int((frac + "00")[:2])
    except ValueError:
        pass
    return text
