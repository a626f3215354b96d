"""Request metrics by route template, and GET /metrics (Prometheus text format)."""

from __future__ import annotations

import time

from aiohttp import web

from server.keys import REDIS
from services import metrics
from services.redis import QUEUE_NAME

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def route_template(request: web.Request) -> str:
    """`/api/v1/notices/{notice_id}/stats`, never the ids themselves (bounded label values)."""
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical


@web.middleware
async def metrics_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        method = request.method if request.method in METHODS else "OTHER"
        route = route_template(request)
        metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
        metrics.HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Not under /api/v1 and not public: the proxy refuses it from outside (deploy/nginx)."""
    await metrics.refresh_gauges(request.app[REDIS], QUEUE_NAME)
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})
