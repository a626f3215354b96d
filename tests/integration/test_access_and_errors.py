"""Scoped lists, and bad input answers a JSON 4xx, never a 500 (the role matrix over every route
is tests/integration/test_role_matrix.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from jsonschema_rs import Draft202012Validator

from models.org import Rotation
from services import clock
from tests.support import City, bearer, staff_login, wechat_login


async def _tokens(client: TestClient[Any, Any], city: City) -> dict[str, str]:
    """Callers: a member, the duty unit's admin, another unit's admin, committee staff."""
    staff = await staff_login(client)
    year, quarter = clock.quarter_of(clock.now())
    await client.post("/api/v1/rotations/generate", json={"year": year}, headers=bearer(staff))
    zone = city.zones[0]
    duty = await Rotation.get(zone_id=zone.id, year=year, quarter=quarter)
    other_unit = next(u for u in city.units[zone.id] if u.id != duty.unit_id)
    return {
        "member": await wechat_login(client, city.members[duty.unit_id][0].openid or ""),
        "duty_admin": await wechat_login(client, city.admins[duty.unit_id].openid or ""),
        "other_admin": await wechat_login(client, city.admins[other_unit.id].openid or ""),
        "committee": staff,
        "_duty_unit": str(duty.unit_id),
        "_other_unit": str(other_unit.id),
        "_zone": str(zone.id),
    }


async def test_unit_admin_lists_only_their_own_unit(client: TestClient[Any, Any], city: City) -> None:
    tokens = await _tokens(client, city)
    r = await client.get("/api/v1/units", headers=bearer(tokens["other_admin"]))
    assert [u["id"] for u in (await r.json())["items"]] == [int(tokens["_other_unit"])]
    r = await client.get("/api/v1/units", headers=bearer(tokens["committee"]))
    assert len((await r.json())["items"]) == 8


async def test_every_protected_route_in_the_spec_refuses_anonymous_callers(
        client: TestClient[Any, Any], city: City) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    protected = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            concrete = re.sub(r"\{\w+_id\}", "1", path).replace("{key}", "0" * 64).replace("{year}", "2026") \
                .replace("{ticket}", "t" * 32)
            r = await client.request(method.upper(), concrete)
            if op["x-access"] == "anyone":
                continue
            protected += 1
            assert r.status == 401, (method, path)
    assert protected >= 10


BAD_BODIES: list[bytes] = [b"{", b"[]", b'"text"', b"null", b"12", b"{}", "{\"x\": \"\u0000\"}".encode(),
                           b'{"code": ' + b"[" * 200 + b"]" * 200 + b"}"]


def _wrong_values(schema: dict[str, Any], components: dict[str, Any]) -> list[dict[str, Any]]:
    """For each property of a body schema, a body whose only fault is that property's type."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    out = []
    for name, prop in schema.get("properties", {}).items():
        # The property's own schema, its references resolvable: a value it allows is no fault.
        allows = Draft202012Validator({**prop, "components": {"schemas": components}}).is_valid
        for wrong in (["a", "list"], {"an": "object"}, "x" * 5000, -1, 10**12, None, True):
            if not allows(wrong):
                out.append({name: wrong})
    return out


async def test_malformed_bodies_answer_422_never_500(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    spec = await (await client.get("/api/openapi.json")).json()
    components = spec["components"]["schemas"]
    tried = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            concrete = re.sub(r"\{\w+\}", str(city.zones[0].id), path)
            bodies = BAD_BODIES + [json.dumps(b).encode() for b in
                                   _wrong_values(content["application/json"]["schema"], components)]
            for raw in bodies:
                r = await client.request(method.upper(), concrete, data=raw, headers={
                    **bearer(staff), "Content-Type": "application/json"})
                assert r.status < 500, (method, path, raw[:80], await r.text())
                body = await r.json()
                if raw == b"{}" and not op["requestBody"]["required"] and r.status < 300:
                    continue  # every field optional: {} is a request, not a malformed one
                assert set(body) >= {"code", "message"}, (method, path, raw[:80])
                if r.status == 422:
                    assert body["code"] == "invalid_request" and body["errors"]
                tried += 1
    assert tried > 100


@pytest.mark.parametrize("path", ["/api/v1/zones/abc", "/api/v1/zones/99999999999999999999",
                                  "/api/v1/zones/-1/rotations", "/api/v1/units/1.5/members",
                                  "/api/v1/nowhere", "/api/v1/zones/0"])
async def test_bad_paths_are_json_404(client: TestClient[Any, Any], city: City, path: str) -> None:
    staff = await staff_login(client)
    r = await client.get(path, headers=bearer(staff))
    assert r.status == 404
    assert (await r.json())["code"] == ("zone_not_found" if path.endswith("/0") else "not_found")


async def test_bad_query_values_are_422(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    for q in ["zone_id=abc", "zone_id=0", "zone_id=99999999999"]:
        r = await client.get(f"/api/v1/units?{q}", headers=bearer(staff))
        assert r.status == 422 and (await r.json())["errors"][0]["loc"][:2] == ["query", "zone_id"]
    unit = city.units[city.zones[0].id][0]
    r = await client.get(f"/api/v1/units/{unit.id}/members?role=boss&limit=0", headers=bearer(staff))
    assert r.status == 422 and {tuple(e["loc"]) for e in (await r.json())["errors"]} == {
        ("query", "role"), ("query", "limit")}


async def test_wrong_method_is_json_405(client: TestClient[Any, Any]) -> None:
    r = await client.delete("/api/v1/zones")
    assert r.status == 405 and (await r.json())["code"] == "method_not_allowed"
    assert "GET" in r.headers["Allow"]


async def test_every_response_carries_a_request_id(client: TestClient[Any, Any]) -> None:
    r = await client.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    r = await client.get("/api/v1/nowhere", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"])
    r = await client.post("/api/v1/auth/wechat", data=b"{")
    assert r.status == 422 and r.headers["X-Request-ID"]
