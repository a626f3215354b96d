"""Known attack classes, by hand, against the live app: each answer must be one the spec
documents for the operation, never a 5xx, carry X-Request-ID, and malformed input must be
refused as such.

What schemathesis does not generate on its own: JSON nested deep, NUL characters, JSON types
that pydantic's lax mode coerces, datetimes at the ends of the calendar, multipart bodies with
control characters in a part's headers, null for a field a PATCH cannot clear, integers past
64 bits in queries. One test, every case, a table of the ones that answer wrongly.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from services.settings import Settings
from tests.conftest import reset_database
from tests.fuzz import harness
from tests.support import bearer

pytestmark = pytest.mark.fuzz

API = "/api/v1"
REFUSED = frozenset({400, 413, 415, 422})  # malformed input: refused as such
ANY = frozenset(range(200, 500))           # anything but a 5xx (and it must be documented)


@dataclass
class Case:
    name: str
    role: str
    method: str
    path: str                              # may name {activity}, {campaign}, {zone}, {unit}
    expect: frozenset[int]
    body: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def multipart(*parts: tuple[bytes, bytes], boundary: str = "XyZ") -> tuple[bytes, str]:
    """A raw multipart body from (header block, content) pairs, and its Content-Type."""
    out = b"".join(b"--" + boundary.encode() + b"\r\n" + head + b"\r\n\r\n" + content + b"\r\n"
                   for head, content in parts)
    return out + b"--" + boundary.encode() + b"--\r\n", f"multipart/form-data; boundary={boundary}"


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def cases() -> list[Case]:
    out: list[Case] = []
    # JSON nested deep: the decoder's recursion limit must be an invalid body, not a crash.
    for depth in (1_000, 100_000):
        deep = b"[" * depth + b"]" * depth
        out += [
            Case(f"body nested {depth} deep", "anonymous", "POST", "/auth/login", REFUSED, raw=deep),
            Case(f"field nested {depth} deep", "anonymous", "POST", "/auth/login", REFUSED,
                 raw=b'{"username":' + deep + b',"password":"x"}'),
            Case(f"activity body nested {depth} deep", "duty_admin", "POST", "/activities", REFUSED,
                 raw=deep)]
    # NUL in strings: PostgreSQL cannot store it; whatever the answer, not a 5xx.
    nul = "a\u0000b"
    out += [
        Case("NUL in login username", "anonymous", "POST", "/auth/login", ANY,
             body={"username": nul, "password": "x"}),
        Case("NUL in notice title", "committee", "POST", "/notices", ANY,
             body={"title": nul, "body": "x", "audience": {"all": True}}),
        Case("NUL in activity title (PATCH)", "duty_admin", "PATCH", "/activities/{activity}", ANY,
             body={"title": nul}),
        Case("NUL in supervision item title", "committee", "POST", "/supervision-items", ANY,
             body={"title": nul, "due_at": "2030-01-01T00:00:00+08:00", "unit_ids": ["{unit}"]}),
        Case("NUL in offline receipt_no", "committee", "POST",
             "/campaigns/{campaign}/offline-contributions", ANY, headers=key(),
             body={"unit_id": "{unit}", "amount_fen": 1, "channel": "cash", "receipt_no": nul,
                   "received_on": "2025-01-01"})]
    # JSON types the spec forbids for an integer field.
    for amount in (True, "100", False, "1"):
        out.append(Case(f"amount_fen={json.dumps(amount)}", "member", "POST",
                        "/campaigns/{campaign}/contributions", REFUSED, headers=key(),
                        body={"amount_fen": amount}))
    out.append(Case('signup_opens_at=0 (a number for a date-time)', "duty_admin", "PATCH",
                    "/activities/{activity}", REFUSED, body={"signup_opens_at": 0}))
    out.append(Case("to=0 (a number for a date-time)", "member", "GET", "/activities?to=0", REFUSED))
    # Datetimes at the ends of the calendar: UTC conversion and arithmetic overflow there.
    for when in ("0368-07-23T00:00:00+00:00", "9999-12-31T23:59:59+08:00",
                 "0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00"):
        out += [
            Case(f"activity starts_at={when}", "duty_admin", "POST", "/activities", ANY,
                 body={"zone_id": "{zone}", "kind": "other", "title": "t", "place": "p",
                       "starts_at": when, "ends_at": "9999-12-31T23:59:59+08:00"}),
            Case(f"activity ends_at={when} (PATCH)", "duty_admin", "PATCH", "/activities/{activity}",
                 ANY, body={"ends_at": when}),
            Case(f"campaign ends_at={when}", "committee", "POST", "/campaigns", ANY,
                 body={"title": "t", "kind": "special_dues", "target_fen": 1, "ends_at": when}),
            Case(f"supervision due_at={when}", "committee", "POST", "/supervision-items", ANY,
                 body={"title": "t", "due_at": when, "unit_ids": ["{unit}"]}),
            Case(f"notice ack_due_at={when}", "committee", "POST", "/notices", ANY,
                 body={"title": "t", "body": "b", "audience": {"all": True}, "require_ack": True,
                       "ack_due_at": when}),
            Case(f"activities from={when}", "member", "GET",
                 "/activities?from=" + when.replace("+", "%2B"), ANY)]
    # Multipart with control characters (and other damage) in a part's headers.
    csv = b"name,zone\nu,zone-1\n"
    for label, head in (
            ("\\x01 in filename", b'Content-Disposition: form-data; name="file"; filename="a\x01.csv"'),
            ("\\x00 in filename", b'Content-Disposition: form-data; name="file"; filename="a\x00.csv"'),
            ("\\x07 in the field name", b'Content-Disposition: form-data; name="\x07K"'),
            ("\\x01 in Content-Type", b'Content-Disposition: form-data; name="file"; filename="a.png"'
                                      b"\r\nContent-Type: image/png\x01"),
            ("a header line without a colon", b'Content-Disposition: form-data; name="file"\r\nJunk')):
        for path in ("/attachments", "/org/import"):
            raw, ctype = multipart((head, csv))
            out.append(Case(f"multipart, {label}", "committee", "POST", path, REFUSED, raw=raw,
                            content_type=ctype))
    for path in ("/attachments", "/org/import"):
        out += [
            Case("multipart without a boundary parameter", "committee", "POST", path, REFUSED,
                 raw=b"x", content_type="multipart/form-data"),
            Case("multipart cut short (no closing boundary)", "committee", "POST", path, REFUSED,
                 raw=multipart((b'Content-Disposition: form-data; name="file"; filename="a.csv"',
                                csv))[0][:-8], content_type="multipart/form-data; boundary=XyZ")]
    out.append(Case("multipart kind that is not UTF-8", "committee", "POST", "/org/import", REFUSED,
                    raw=multipart((b'Content-Disposition: form-data; name="file"; filename="a.csv"', csv),
                                  (b'Content-Disposition: form-data; name="kind"', b"\xff\xfe"))[0],
                    content_type="multipart/form-data; boundary=XyZ"))
    # null for a field the activity cannot be without: refused, or taken as "unchanged".
    for name in ("title", "place", "description", "starts_at", "ends_at", "signup_opens_at",
                 "checkin_opens_at", "walk_ins", "waitlist", "audience"):
        out.append(Case(f"PATCH activity {name}=null", "duty_admin", "PATCH", "/activities/{activity}",
                        frozenset({200, 422}), body={name: None}))
    # Integers past 64 bits in queries: refused as invalid, not a database failure.
    big = str(10 ** 30)
    out += [
        Case("cursor past int64", "member", "GET", f"/me/notices?cursor={big}", REFUSED),
        Case("cursor past int32 (the ids)", "committee", "GET", f"/units/{{unit}}/members?cursor={2 ** 31}",
             REFUSED),
        Case("cursor past int64 on members", "committee", "GET", f"/units/{{unit}}/members?cursor={big}",
             REFUSED),
        Case("year past int64", "member", "GET", f"/zones/{{zone}}/rotations?year={big}", REFUSED)]
    return out


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    """"{unit}"-style placeholders in bodies become the world's ids (as integers)."""
    if isinstance(value, str) and re.fullmatch(r"\{(\w+)\}", value):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def documented(spec: dict[str, Any], method: str, path: str) -> set[int] | None:
    """The statuses the spec documents for the operation this path reaches (None: no operation)."""
    bare = path.split("?", 1)[0]
    for template, ops in spec["paths"].items():
        pattern = "^" + re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(template)) + "$"
        if re.match(pattern, bare) and method.lower() in ops:
            return {int(s) for s in ops[method.lower()]["responses"]}
    return None


async def test_known_attacks_are_refused_and_documented(
        aiohttp_server: Callable[..., Awaitable[TestServer]],
        aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
        settings: Settings) -> None:
    server = await aiohttp_server(create_app(settings))
    client = await aiohttp_client(server)
    await reset_database()
    world = await harness.build_world(client)
    spec = await (await client.get("/api/openapi.json")).json()
    tokens = {r.name: r.token for r in world.roles}
    notes = world.notes
    ids = {"activity": notes["activity_id"], "campaign": notes["campaign_id"],
           "zone": notes["zone_id"], "unit": notes["admin_unit_id"]}

    wrong: list[str] = []
    for case in cases():
        path = API + case.path.format(**ids)
        headers = dict(case.headers)
        if tokens[case.role]:
            headers.update(bearer(str(tokens[case.role])))
        data = case.raw if case.raw is not None else (
            json.dumps(_fill(case.body, ids)).encode() if case.body is not None else None)
        if data is not None:
            headers["Content-Type"] = case.content_type
        r = await client.request(case.method, path, data=data, headers=headers)
        text = await r.text()
        problems = []
        if r.status not in case.expect:
            problems.append("expected " + ("a refusal (400/413/415/422)" if case.expect is REFUSED
                                           else "no 5xx" if case.expect is ANY
                                           else "/".join(map(str, sorted(case.expect)))))
        statuses = documented(spec, case.method, path)
        if statuses is not None and r.status not in statuses:
            problems.append(f"undocumented (spec: {sorted(statuses)})")
        if "X-Request-ID" not in r.headers:
            problems.append("no X-Request-ID")
        if problems:
            wrong.append(f"{case.name}: {case.method} {path} as {case.role} -> {r.status} "
                         f"{'; '.join(problems)}\n      {text[:160]}")
    if wrong:
        pytest.fail(f"\n{len(wrong)} of {len(cases())} attacks answered wrongly:\n  "
                    + "\n  ".join(wrong), pytrace=False)
