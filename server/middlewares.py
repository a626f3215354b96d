"""Request IDs and the one error middleware: every failure answers the same JSON shape."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid

import asyncpg
import redis.exceptions
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from tortoise.exceptions import (
    DBConnectionError,
    DoesNotExist,
    IntegrityError,
    OperationalError,
    TransactionManagementError,
)

from server.clientaddr import client_address
from server.jsonutil import json_response
from server.keys import CLIENT_ADDRESS, REQUEST_ID, SETTINGS
from services import constraints, requestctx
from services.errors import Busy, NotFound, ServiceError, Unavailable

log = logging.getLogger("zonehub.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_HTTP_CODES = {
    400: ("bad_request", "请求格式错误"),
    401: ("not_authenticated", "请先登录"),
    403: ("forbidden", "没有权限执行此操作"),
    404: ("not_found", "找不到该接口或资源"),
    405: ("method_not_allowed", "不支持该请求方法"),
    413: ("payload_too_large", "上传内容过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
}


def _error(err: ServiceError) -> web.Response:
    headers = {}
    retry = err.data.get("retry_after_s")
    if isinstance(retry, int):
        headers["Retry-After"] = str(retry)
    return json_response(err.to_dict(), status=err.http_status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    address = client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                             request.app[SETTINGS].trusted_networks)
    request[CLIENT_ADDRESS] = address
    requestctx.request_id.set(request_id)
    requestctx.client_address.set(address)
    try:
        response = await handler(request)
    except ServiceError as err:
        response = _error(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
        response = json_response({"code": code, "message": message}, status=exc.status,
                                 headers=headers)
    except (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.LockNotAvailableError,
            asyncpg.exceptions.SerializationError):
        log.warning("contention on %s %s", request.method, request.path)
        response = _error(Busy())
    except DoesNotExist:
        response = _error(NotFound())
    except IntegrityError as exc:
        err = constraints.from_integrity(exc)
        log.info("constraint refused %s %s: %s", request.method, request.path, err.code)
        response = _error(err)
    except OperationalError as exc:
        known = constraints.from_operational(exc)
        if known is None:
            log.exception("dependency failure on %s %s", request.method, request.path)
        response = _error(known or Unavailable())
    except (DBConnectionError, TransactionManagementError, OSError,
            asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.InterfaceError,
            # a pooled connection caught mid-query by the server going down (scripts/faults found it)
            asyncpg.exceptions.InternalClientError,
            asyncpg.exceptions.OperatorInterventionError,  # shutting down, cannot connect now
            redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, asyncio.TimeoutError):
        log.exception("dependency failure on %s %s", request.method, request.path)
        response = _error(Unavailable())
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s [%s]", request.method, request.path, request_id)
        response = json_response({"code": "internal_error", "message": "服务器内部错误，请稍后再试",
                                  "request_id": request_id}, status=500)
    response.headers["X-Request-ID"] = request_id
    return response


# -- requests aiohttp could not parse -----------------------------------------------------------

_aiohttp_handle_error = RequestHandler.handle_error


def _unparseable(self: RequestHandler, request: BaseRequest, status: int = 500,
                 exc: BaseException | None = None, message: str | None = None) -> web.StreamResponse:
    """aiohttp answers a request it cannot parse (a NUL in a header, a broken request line) from
    inside its protocol, before any middleware: text/plain and an ERROR log line. Answer those
    as every other error, in JSON with an X-Request-ID, and log them as the client's fault."""
    if status >= 500 or request.writer.output_size > 0:
        return _aiohttp_handle_error(self, request, status, exc, message)
    log.info("unparseable request from %s: %s", request.remote, (message or "").splitlines()[:1])
    code, text = _HTTP_CODES.get(status, ("bad_request", "请求格式错误"))
    response = json_response({"code": code, "message": text}, status=status,
                             headers={"X-Request-ID": uuid.uuid4().hex})
    response.force_close()
    return response


def answer_unparseable_requests_in_json() -> None:
    """Installed once by create_app (aiohttp offers no hook for it: its handler class is patched)."""
    RequestHandler.handle_error = _unparseable  # type: ignore[method-assign,assignment]
