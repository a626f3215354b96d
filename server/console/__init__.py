"""The web console at /console/: server-rendered pages (aiohttp-jinja2), htmx, ECharts and
server-sent events, over the same services as the API."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
import segno
from aiohttp import web

from server.console import admin, funds, governance, pages, practices, work, zones
from server.console.web import COOKIE, error_page
from server.keys import AUTH
from services import clock, console
from services.errors import NotAuthenticated, NotFound

HERE = Path(__file__).parent


def _local(value: object, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant as Asia/Shanghai wall time."""
    if value is None:
        return ""
    return value.astimezone(clock.SHANGHAI).strftime(fmt)  # type: ignore[attr-defined]


def _yuan(fen: int | None) -> str:
    return "" if fen is None else f"{fen / 100:,.2f}"


async def _to_console(_: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/")


def _qr(data: str) -> str:
    """A QR code as inline SVG that scales to its box (a viewBox, no fixed size)."""
    return segno.make(data, error="m").svg_inline(scale=1, omitsize=True, svgclass="qr")


async def _not_found(request: web.Request) -> web.StreamResponse:
    """Any other /console/... address: the console's own 404 page (signed in or not)."""
    try:
        session = await console.load_session(request.app[AUTH], request.cookies.get(COOKIE))
    except NotAuthenticated:
        session = None
    return error_page(request, session, NotFound("找不到该页面"))


def install(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                               autoescape=jinja2.select_autoescape(default=True))
    env.filters.update(local=_local, yuan=_yuan, qr=_qr)
    env.globals["static"] = lambda name: f"/console/static/{name}"
    app.router.add_static("/console/static", HERE / "static")
    app.router.add_get("/console", _to_console)
    app.router.add_routes(pages.routes)
    app.router.add_routes(work.routes)
    app.router.add_routes(admin.routes)
    app.router.add_routes(zones.routes)
    app.router.add_routes(governance.routes)
    app.router.add_routes(funds.routes)
    app.router.add_routes(practices.routes)
    app.router.add_get(r"/console/{tail:.*}", _not_found)  # last: only what nothing else took
