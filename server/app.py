"""The application factory: one cleanup_ctx per resource, routes under /api/v1."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web
from arq.connections import ArqRedis

from server import (
    activities,
    admin,
    attendance,
    checkins,
    contests,
    files,
    funds,
    governance,
    ledger,
    meta,
    notices,
    org,
    personal_data,
    plans,
    practices,
    records,
    rotations,
    signups,
    supervision,
    work_ledger,
    zoning,
)
from server import auth as auth_routes
from server import console
from server.console import api as console_api
from server.jsonutil import json_response
from server.keys import ARQ, AUTH, PASS_SIGNER, PAY, REDIS, SETTINGS, VALIDATE_RESPONSES, WECHAT
from server.middlewares import answer_unparseable_requests_in_json, error_middleware
from server.observe import metrics_endpoint, metrics_middleware
from server.routing import Router
from services.auth import Auth
from services.db import init_db
from services.passes import PassSigner
from services.pay import WeChatPay
from services.redis import (
    QUEUE_NAME,
    connection_pool,
    create_redis,
    register_process_client,
    unregister_process_client,
)
from services.settings import ConfigError, Settings
from services.wechat import WeChat

log = logging.getLogger("zonehub")

ROUTERS: list[Router] = [meta.router, auth_routes.router, org.router, rotations.router,
                         activities.router, signups.router, checkins.router, attendance.router,
                         contests.router,
                         notices.router, supervision.router, files.router, funds.router,
                         ledger.router, plans.router, governance.router, work_ledger.router,
                         admin.router, records.router, practices.router,
                         zoning.router, console_api.router,
                         personal_data.router]
MAX_BODY_BYTES = 6 * 1024 * 1024


def app_version() -> str:
    try:
        return version("zonehub")
    except PackageNotFoundError:
        return "dev"


async def _solver(app: web.Application) -> AsyncIterator[None]:
    """The re-partitioning solver's process (started on the first proposal), stopped at exit."""
    yield
    from services.zoning import shutdown_solver

    shutdown_solver()


async def _database(app: web.Application) -> AsyncIterator[None]:
    context = await init_db(app[SETTINGS].database_url, read_url=app[SETTINGS].database_read_url)
    yield
    # This app's own connections: with two apps in one process (tests), the current context
    # may be the other app's, and a SQLite connection left open keeps the process from exiting.
    await context.close_connections()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.redis_url:
        raise ConfigError("ZONEHUB_REDIS_URL is required to serve (`zonehub up` starts an embedded Redis)")
    app[REDIS] = create_redis(settings)
    yield
    await app[REDIS].aclose()


async def _arq(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.redis_url
    # No ping at start-up: the API serves (and /health reports 503) while Redis is down.
    app[ARQ] = ArqRedis(connection_pool=connection_pool(settings),
                        default_queue_name=QUEUE_NAME)
    yield
    await app[ARQ].aclose()


async def _wechat(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.redis_url
    app[WECHAT] = WeChat(appid=settings.wechat_appid,
                         secret=settings.wechat_secret.get_secret_value(),
                         api_base=settings.wechat_api_base, settings=settings)
    app[AUTH] = Auth(settings=settings, redis=app[REDIS], wechat=app[WECHAT])
    register_process_client(app[REDIS])
    yield
    unregister_process_client(app[REDIS])
    app[WECHAT].close()


async def _pay(app: web.Application) -> AsyncIterator[None]:
    app[PAY] = WeChatPay(app[SETTINGS])
    await app[PAY].start()
    yield
    await app[PAY].close()


def create_app(settings: Settings, *, validate_responses: bool = False) -> web.Application:
    answer_unparseable_requests_in_json()
    app = web.Application(middlewares=[metrics_middleware, error_middleware],
                          client_max_size=max(MAX_BODY_BYTES, settings.attachment_max_bytes + 1024 * 1024))
    app[SETTINGS] = settings
    app[VALIDATE_RESPONSES] = validate_responses
    app[PASS_SIGNER] = PassSigner(settings.secret_key.get_secret_value())
    app.cleanup_ctx.extend([_database, _redis, _arq, _wechat, _pay, _solver])
    for router in ROUTERS:
        router.install(app, prefix=meta.API_PREFIX)
    specs = [spec for router in ROUTERS for spec in router.specs]
    document = meta.build_openapi(specs, version=app_version())
    page = meta.docs_page(document)

    async def openapi(_: web.Request) -> web.Response:
        return json_response(document)

    async def docs(_: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_get("/api/docs", docs)
    console.install(app)
    app.router.add_get("/metrics", metrics_endpoint)
    return app
