"""Routes: health, the OpenAPI 3.1 document generated from the declared routes, a docs page."""

from __future__ import annotations

import asyncio
import html
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from server.jsonutil import json_response
from server.keys import REDIS
from server.routing import Access, PayloadTooLarge, Router, RouteSpec, openapi_path
from server.schemas.common import ErrorOut, InvalidRequestOut
from services.db import ping_db
from services.errors import Forbidden, NotAuthenticated, NotFound, TokenInvalid

router = Router()
API_PREFIX = "/api/v1"
HEALTH_TIMEOUT_S = 2.0


class HealthOut(BaseModel):
    status: str
    database: str
    redis: str


async def _check(coro: Any) -> str:
    try:
        await asyncio.wait_for(coro, HEALTH_TIMEOUT_S)
        return "ok"
    except Exception:  # any failure of a dependency is "down", never a 500
        return "down"


@router.route("GET", "/health", access=Access.ANYONE, response=HealthOut, tags=["meta"],
              summary="Liveness of the API, the database and Redis (503 when one is down)")
async def health(request: web.Request) -> web.Response:
    database, redis_status = await asyncio.gather(_check(ping_db()),
                                                  _check(request.app[REDIS].ping()))
    ok = database == "ok" and redis_status == "ok"
    return json_response({"status": "ok" if ok else "degraded", "database": database,
                          "redis": redis_status}, status=200 if ok else 503)


def build_openapi(specs: list[RouteSpec], *, version: str) -> dict[str, Any]:
    # Requests as they are read, answers as they are written (aliases, serialized times).
    models: dict[type[BaseModel], str] = {ErrorOut: "serialization", InvalidRequestOut: "serialization"}
    for spec in specs:
        for m in (spec.body, spec.query):
            if m is not None:
                models[m] = "validation"
        if isinstance(spec.response, type) and issubclass(spec.response, BaseModel):
            models[spec.response] = "serialization"
    _, defs = models_json_schema(list(models.items()), ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})

    def ref(model: Any) -> dict[str, Any]:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return {"$ref": f"#/components/schemas/{model.__name__}"}
        return TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}",
                                              mode="serialization")  # only answers are not models

    error = {"content": {"application/json": {"schema": ref(ErrorOut)}}}
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        path, params = openapi_path(API_PREFIX + spec.path)
        op: dict[str, Any] = {
            "operationId": spec.handler.__name__ if spec.handler else path,
            "summary": spec.summary, "tags": spec.tags,
            "description": spec.description + f"\n\nWho may call: **{spec.access.value}**.",
            "x-access": spec.access.value,
            "parameters": [{"name": n, "in": "path", "required": True, "schema": schema}
                           for n, schema in params.items()],
            "responses": {},
        }
        if spec.query is not None:
            # The model's own schema carries every limit the server enforces (ge, le, pattern).
            props = spec.query.model_json_schema(by_alias=True)["properties"]
            for name, info in spec.query.model_fields.items():
                schema = dict(props[info.alias or name])
                schema.pop("title", None)
                op["parameters"].append({
                    "name": info.alias or name, "in": "query", "required": info.is_required(),
                    "schema": schema, "description": info.description or ""})
        if spec.idempotency is not None:
            op["parameters"].append({
                "name": "Idempotency-Key", "in": "header",
                "required": spec.idempotency == "required",
                "schema": {"type": "string", "minLength": 1, "maxLength": 64,
                           "pattern": "^[\\x21-\\x7e]+$"},
                "description": "one per intended action (a UUID): a retry with the same key and "
                               "request gets the first answer; another request answers 409 "
                               "idempotency_key_reused"})
        if spec.body is not None:
            # A body whose fields all have defaults may be left out: the server reads it as {}
            # (unless {} itself is refused: minProperties).
            required = any(f.is_required() for f in spec.body.model_fields.values()) or bool(
                getattr(spec.body, "schema_rules", {}).get("minProperties"))
            op["requestBody"] = {"required": required, "content": {
                "application/json": {"schema": ref(spec.body)}}}
        elif spec.form is not None:
            op["requestBody"] = {"required": True, "content": {"multipart/form-data": {
                "schema": spec.form}}}
        ok: dict[str, Any] = {"description": "OK" if spec.status != 204 else "No Content"}
        if spec.response is not None and spec.status != 204:
            ok["content"] = {spec.content_type: {"schema": ref(spec.response)},
                             **{t: {"schema": {"type": "string", "format": "binary"}} for t in spec.files}}
        op["responses"][str(spec.status)] = ok
        if spec.replays and spec.status != 200:
            op["responses"]["200"] = {**ok, "description": "a retry that matched the first "
                                      "request: its answer again (header Idempotent-Replayed: true)"}
        if spec.body is not None or spec.query is not None or spec.request_content_type:
            op["responses"]["422"] = {"description": "invalid_request",  # the shape was wrong
                                      "content": {"application/json": {
                                          "schema": ref(InvalidRequestOut)}}}
        declared = list(spec.errors)
        if params:
            declared.append(NotFound)          # a path that matches no route, or no such row
        if spec.body is not None or spec.request_content_type:
            declared.append(PayloadTooLarge)   # over the body limit
        if spec.access is not Access.ANYONE:
            op["security"] = [{"bearer": []}]
            declared += [NotAuthenticated, TokenInvalid]
            if spec.access is not Access.MEMBER:
                declared.append(Forbidden)
        for err in declared:
            entry = op["responses"].setdefault(str(err.http_status), {"description": "", **error})
            codes = [c for c in entry["description"].split(", ") if c]
            if err.code not in codes:
                entry["description"] = ", ".join([*codes, err.code])
        paths.setdefault(path, {})[spec.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "zonehub API", "version": version,
                 "description": "Backend of the party-building network zones mini-program. "
                                "Errors: `{code, message, ...}`; money in fen; times ISO 8601."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
    }


def docs_page(spec: dict[str, Any]) -> str:
    """A self-contained page (no CDN): every route, who may call it, its shapes."""
    rows = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody", {}).get("content", {})
            body_ref = next(iter(body.values()), {}).get("schema", {}).get("$ref", "")
            ok = next(iter(op["responses"].values()), {}).get("content", {})
            out_ref = next(iter(ok.values()), {}).get("schema", {}).get("$ref", "")
            errs = ", ".join(f"{s}: {r['description']}" for s, r in op["responses"].items()
                             if s >= "400")
            rows.append(
                f"<tr><td class=m>{method.upper()}</td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['x-access'])}</td><td>{html.escape(op['summary'])}</td>"
                f"<td>{html.escape(body_ref.rsplit('/', 1)[-1])}</td>"
                f"<td>{html.escape(out_ref.rsplit('/', 1)[-1])}</td>"
                f"<td class=e>{html.escape(errs)}</td></tr>")
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>zonehub API</title><style>
body{{font:14px system-ui,sans-serif;margin:2em}} table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}}
.m{{font-weight:bold}} .e{{font-size:12px;color:#555}}</style></head><body>
<h1>zonehub API {html.escape(spec['info']['version'])}</h1>
<p>The machine-readable document is <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1).
Authenticated calls carry <code>Authorization: Bearer &lt;token&gt;</code>.</p>
<table><tr><th></th><th>path</th><th>who</th><th>what</th><th>body</th><th>answer</th><th>errors</th></tr>
{''.join(rows)}</table></body></html>"""
