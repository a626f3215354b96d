"""Declared routes: each says who may call it and the shapes it takes and gives.

`@router.route(...)` wraps a handler so that it authenticates, checks the coarse role, parses
the body and query through pydantic, and serialises the result. The same declarations
generate the OpenAPI 3.1 document, so the spec cannot drift from the code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, TypeAdapter, ValidationError

from server.jsonutil import json_response
from server.keys import AUTH, PRINCIPAL
from services.auth import Principal
from services.errors import (
    Forbidden,
    InvalidInput,
    MultipartInvalid,
    NotAuthenticated,
    PayloadTooLarge,
    ServiceError,
)
from services.messages import field_message


class Access(StrEnum):
    """Who may call a route, before per-domain scope checks (own unit, own zone, own quarter)."""

    ANYONE = "anyone"
    MEMBER = "member"          # any signed-in person
    UNIT_ADMIN = "unit_admin"  # a unit admin (duty-unit powers are checked by the service) or staff
    STAFF = "staff"            # committee, or a liaison (the service scopes them to their zones)
    COMMITTEE = "committee"    # committee-wide by design: liaisons are refused


@dataclass
class RouteSpec:
    method: str
    path: str
    access: Access
    summary: str
    tags: list[str]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Any
    status: int
    errors: list[type[ServiceError]]
    description: str = ""
    content_type: str = "application/json"
    request_content_type: str | None = None
    form: dict[str, Any] | None = None  # multipart routes: the parts, as a JSON Schema object
    files: tuple[str, ...] = ()  # other types the 200 may answer instead (a file download)
    idempotency: str | None = None  # "required" or "optional": the Idempotency-Key header
    replays: bool = False           # a matched retry (result.replayed) answers 200, the first answer
    # Redis keys the handler reads, fetched with the authentication's own read (`read=` values)
    reads: Callable[[web.Request], list[str]] | None = field(default=None, repr=False)
    handler: Callable[..., Awaitable[web.StreamResponse]] | None = field(default=None, repr=False)


Handler = Callable[..., Awaitable[Any]]


def validation_errors(exc: ValidationError, prefix: str) -> list[dict[str, Any]]:
    return [{"loc": [prefix, *err["loc"]], "msg": field_message(err), "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False)]


def invalid(loc: list[Any], msg: str, type_: str = "value_error") -> InvalidInput:
    return InvalidInput(errors=[{"loc": loc, "msg": msg, "type": type_}])


MAX_JSON_DEPTH = 8  # the deepest body a route takes is 3 levels; anything far deeper is an attack
_BRACKETS = re.compile(rb"[\[\]{}]")
_JSON_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, LF and CR are text


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Nesting deeper than `limit`, found by scanning the bytes (string contents skipped), before
    any parser recurses into it."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for match in _BRACKETS.finditer(_JSON_STRINGS.sub(b'""', raw)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > limit:
            return True
    return False


def control_character_at(data: Any) -> list[Any] | None:
    """The location of the first string (or key) holding NUL or another control character."""
    stack: list[tuple[list[Any], Any]] = [([], data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            if _CONTROL.search(value):
                return loc
        elif isinstance(value, dict):
            for k, v in value.items():
                if _CONTROL.search(k):
                    return [*loc, k]
                stack.append(([*loc, k], v))
        elif isinstance(value, list):
            stack.extend(([*loc, i], v) for i, v in enumerate(value))
    return None


def _number(whole: list[bool], text: str) -> int | float:
    """A JSON number with a fraction or exponent: an int when its value is whole (and of a sane
    size), else a float. Notes in `whole` that one was turned into an int."""
    value = Decimal(text)
    if value.is_finite() and value.adjusted() < 19 and value == value.to_integral_value():
        whole.append(True)
        return int(value)
    return float(text)


async def parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """One rule for every JSON body: bounded depth, UTF-8 JSON, no control characters in any
    string, then the model in strict mode (no coercion, unknown fields refused)."""
    raw = await request.read()
    if json_too_deep(raw):
        raise invalid(["body"], f"JSON 嵌套不能超过 {MAX_JSON_DEPTH} 层", "json_too_deep")
    whole: list[bool] = []
    try:
        data = json.loads(raw, parse_float=partial(_number, whole)) if raw else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise invalid(["body"], "不是合法的 JSON", "json_invalid") from None
    loc = control_character_at(data)
    if loc is not None:
        raise invalid(["body", *loc], "不能包含控制字符", "control_character")
    if whole:  # 2389.0 or 1e3 is an integer to JSON Schema: pass it on as one
        raw = json.dumps(data, ensure_ascii=False).encode()
    try:
        return model.model_validate_json(raw or b"{}", strict=True)
    except ValidationError as exc:
        raise InvalidInput(errors=validation_errors(exc, "body")) from None


@dataclass(frozen=True, slots=True)
class Part:
    filename: str | None
    content_type: str
    content: bytes

    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace").strip()


async def read_multipart(request: web.Request, *, max_bytes: int) -> dict[str, Part]:
    """The parts of a multipart/form-data body by name (the first of each name), each at most
    `max_bytes`. A malformed body (bad boundary, control characters in a part's headers) is 400."""
    if not request.content_type.startswith("multipart/"):
        raise invalid(["body"], "应为 multipart/form-data，文件放在 file 字段", "multipart")
    parts: dict[str, Part] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            chunks, size = [], 0
            while chunk := await part.read_chunk(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(max_bytes=max_bytes)
                chunks.append(chunk)
            filename = part.filename
            if filename is not None and _CONTROL.search(filename):
                raise MultipartInvalid(field=part.name)
            kind = (part.headers.get("Content-Type") or "application/octet-stream").split(";")[0]
            parts.setdefault(part.name, Part(filename, kind.strip().lower(), b"".join(chunks)))
    except (HttpProcessingError, ValueError, AssertionError, UnicodeDecodeError):
        raise MultipartInvalid() from None
    return parts


def parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """The query parameters through the route's model: undeclared ones are refused too (a
    misspelt cursor must not quietly return the first page)."""
    known = {info.alias or name for name, info in model.model_fields.items()}
    if unknown := sorted(set(request.query) - known):
        raise InvalidInput(errors=[{"loc": ["query", name], "msg": "不允许的参数",
                                    "type": "extra_forbidden"} for name in unknown])
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        values = request.query.getall(info.alias or name, [])
        if not values:
            continue
        is_list = "list" in str(info.annotation)
        data[info.alias or name] = values if is_list else values[-1]
    loc = control_character_at(data)
    if loc is not None:
        raise invalid(["query", *loc], "不能包含控制字符", "control_character")
    try:
        return model.model_validate(data, strict=False)  # query strings are text: coerce them
    except ValidationError as exc:
        raise InvalidInput(errors=validation_errors(exc, "query")) from None


_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,64}$")  # printable ASCII, no spaces


def idempotency_key(request: web.Request) -> str | None:
    """The `Idempotency-Key` header, when sent: 1 to 64 printable ASCII characters (a UUID fits)."""
    raw = request.headers.get("Idempotency-Key")
    if raw is not None and not _IDEMPOTENCY_KEY.match(raw):
        raise invalid(["header", "Idempotency-Key"], "须为 1 至 64 个可打印 ASCII 字符，不含空格")
    return raw


def path_int(request: web.Request, name: str) -> int:
    """Path ids are declared `{name:\\d{1,9}}`, so this cannot fail for a matched route."""
    return int(request.match_info[name])


async def authenticate(request: web.Request) -> Principal:
    return (await authenticate_reading(request, ()))[0]


async def authenticate_reading(request: web.Request, keys: Sequence[str]) -> tuple[Principal, list[Any]]:
    """The caller, and the values of Redis `keys`, in one round trip."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated()
    principal, values = await request.app[AUTH].authenticate_reading(token.strip(), keys)
    request[PRINCIPAL] = principal
    return principal, values


def check_access(principal: Principal, access: Access) -> None:
    if access is Access.COMMITTEE and not principal.is_committee:
        raise Forbidden()
    if access is Access.STAFF and not principal.is_staff:
        raise Forbidden()
    if access is Access.UNIT_ADMIN and not (principal.is_staff or principal.is_unit_admin):
        raise Forbidden()


class Router:
    def __init__(self) -> None:
        self.specs: list[RouteSpec] = []

    def route(self, method: str, path: str, *, access: Access, summary: str,
              tags: list[str], body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, response: Any = None, status: int = 200,
              errors: list[type[ServiceError]] | tuple[type[ServiceError], ...] = (),
              description: str = "", content_type: str = "application/json",
              form: dict[str, Any] | None = None, files: tuple[str, ...] = (),
              idempotency: str | None = None, replays: bool = False,
              reads: Callable[[web.Request], list[str]] | None = None) -> Callable[[Handler], Handler]:
        assert idempotency in (None, "required", "optional")
        assert reads is None or access is not Access.ANYONE, "reads= come with the token check"
        spec = RouteSpec(method=method.upper(), path=path, access=access, summary=summary,
                         tags=tags, body=body, query=query, response=response, status=status,
                         errors=list(errors), description=description, content_type=content_type,
                         request_content_type="multipart/form-data" if form else None,
                         form=form, files=files, idempotency=idempotency,
                         replays=replays or idempotency is not None, reads=reads)
        adapter = TypeAdapter(response) if response is not None else None

        def decorate(fn: Handler) -> Handler:
            async def handler(request: web.Request) -> web.StreamResponse:
                kwargs: dict[str, Any] = {}
                if access is not Access.ANYONE and reads is not None:
                    principal, kwargs["read"] = await authenticate_reading(request, reads(request))
                    check_access(principal, access)
                    kwargs["principal"] = principal
                elif access is not Access.ANYONE:
                    principal = await authenticate(request)
                    check_access(principal, access)
                    kwargs["principal"] = principal
                if query is not None:
                    kwargs["query"] = parse_query(request, query)
                if body is not None:
                    kwargs["body"] = await parse_body(request, body)
                result = await fn(request, **kwargs)
                if isinstance(result, web.StreamResponse):
                    return result
                answer_status, headers = status, None
                if getattr(result, "replayed", False) is True:  # an idempotent retry: 200
                    answer_status, headers = 200, {"Idempotent-Replayed": "true"}
                if adapter is None:
                    return json_response(result, status=answer_status, headers=headers)
                # The declared response model renders the service's typed result: what is
                # answered is exactly what the spec says, fields and formats.
                rendered = adapter.dump_json(adapter.validate_python(result, from_attributes=True))
                return web.Response(body=rendered, status=answer_status, headers=headers,
                                    content_type="application/json")

            handler.__name__ = fn.__name__
            handler.__doc__ = fn.__doc__
            spec.handler = handler
            if not spec.description and fn.__doc__:
                spec.description = fn.__doc__.strip()
            self.specs.append(spec)
            return handler

        return decorate

    def install(self, app: web.Application, prefix: str = "") -> None:
        for spec in self.specs:
            assert spec.handler is not None
            app.router.add_route(spec.method, prefix + spec.path, spec.handler)


#: What a path parameter's pattern promises, as a JSON Schema (the route table uses these three).
PARAM_SCHEMAS = {
    r"\d{1,9}": {"type": "integer", "minimum": 1, "maximum": 999_999_999},
    r"\d{4}": {"type": "integer", "minimum": 1000, "maximum": 9999},
    r"20\d\d": {"type": "integer", "minimum": 2000, "maximum": 2099},
}


def openapi_path(path: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """'/zones/{zone_id:\\d{1,9}}' -> ('/zones/{zone_id}', {'zone_id': <its JSON Schema>})."""
    params: dict[str, dict[str, Any]] = {}
    out, depth, buf = "", 0, ""
    # Braces can nest inside the regex part ({1,9}); walk them by hand.
    for ch in path:
        if ch == "{":
            depth += 1
        if depth:
            buf += ch
        else:
            out += ch
        if ch == "}":
            depth -= 1
            if depth == 0:
                name, _, pattern = buf[1:-1].partition(":")
                params[name] = PARAM_SCHEMAS.get(pattern) or (
                    {"type": "string", "pattern": f"^{pattern}$"} if pattern else {"type": "string"})
                out += "{" + name + "}"
                buf = ""
    return out, params
