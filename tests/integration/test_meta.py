"""Health, configuration, the OpenAPI document and the docs page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from services.settings import ConfigError, Settings, load_settings

ROOT = Path(__file__).parents[2]


async def test_health_ok(client: TestClient[Any, Any]) -> None:
    r = await client.get("/api/v1/health")
    assert r.status == 200
    assert await r.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_health_is_503_when_redis_is_down(
        aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], settings: Settings) -> None:
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    client = await aiohttp_client(create_app(down))
    r = await client.get("/api/v1/health")
    assert r.status == 503
    assert await r.json() == {"status": "degraded", "database": "ok", "redis": "down"}
    # A route that needs Redis answers a JSON 503 too, not a 500 (a well-signed token: the
    # revocation check in Redis is the first thing that cannot be done).
    from services import tokens

    key = tokens.derive_key(settings.secret_key.get_secret_value(), "session")
    token = tokens.sign(key, {"sub": 1, "ver": 0, "jti": "x", "exp": 4_000_000_000})
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 503 and (await r.json())["code"] == "service_unavailable"


def test_missing_and_invalid_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ZONEHUB_"):
            monkeypatch.delenv(name)
    with pytest.raises(ConfigError, match="ZONEHUB_SECRET_KEY is required"):
        load_settings(_env_file=None)
    monkeypatch.setenv("ZONEHUB_SECRET_KEY", "short")
    monkeypatch.setenv("ZONEHUB_DATABASE_URL", "mysql://nope")
    monkeypatch.setenv("ZONEHUB_MEMBER_TOKEN_TTL_S", "ten")
    with pytest.raises(ConfigError) as exc:
        load_settings(_env_file=None)
    text = str(exc.value)
    for var in ("ZONEHUB_SECRET_KEY", "ZONEHUB_DATABASE_URL", "ZONEHUB_MEMBER_TOKEN_TTL_S"):
        assert var in text
    assert "short" not in text  # the secret's value is never echoed


def test_secrets_do_not_leak_into_reprs() -> None:
    s = Settings(secret_key="s" * 40, wechat_secret="wechat-very-secret", _env_file=None)  # type: ignore[call-arg]
    assert "s" * 40 not in repr(s) and "wechat-very-secret" not in repr(s)


def test_serve_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"]}
    out = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "from server.cli import main; main(['serve'])", str(ROOT)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "ZONEHUB_SECRET_KEY is required" in out.stderr


async def test_openapi_documents_every_route(client: TestClient[Any, Any]) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    for route in [("POST", "/api/v1/auth/wechat"), ("POST", "/api/v1/auth/bind"),
                  ("POST", "/api/v1/auth/login"), ("GET", "/api/v1/me"), ("GET", "/api/v1/zones"),
                  ("GET", "/api/v1/zones/{zone_id}"), ("GET", "/api/v1/units"),
                  ("GET", "/api/v1/units/{unit_id}/members"), ("POST", "/api/v1/org/import"),
                  ("GET", "/api/v1/zones/{zone_id}/rotations"), ("POST", "/api/v1/rotations/generate"),
                  ("GET", "/api/v1/health")]:
        assert route in routes
    registered = {(r.method, r.resource.canonical) for r in client.app.router.routes()  # type: ignore[union-attr]
                  if r.resource is not None and r.resource.canonical.startswith("/api/v1")}
    assert {(m, p) for m, p in registered if m != "HEAD"} == routes  # nothing undocumented
    login = spec["paths"]["/api/v1/auth/wechat"]["post"]
    assert "not_bound" in login["responses"]["403"]["description"]
    assert login["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("WeChatLoginIn")
    r = await client.get("/api/docs")
    assert r.status == 200 and "/api/v1/rotations/generate" in await r.text()


async def test_the_spec_states_the_rules_the_server_enforces(client: TestClient[Any, Any]) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    paths, schemas = spec["paths"], spec["components"]["schemas"]

    def param(path: str, name: str) -> dict[str, Any]:
        [p] = [p for p in paths[path]["get"]["parameters"] if p["name"] == name]
        return dict(p["schema"])

    # Path parameters as their routes match them.
    assert param("/api/v1/attachments/{key}", "key") == {"type": "string", "pattern": "^[0-9a-f]{64}$"}
    assert param("/api/v1/rotation-plans/{year}", "year")["maximum"] == 9999
    assert param("/api/v1/zones/{zone_id}", "zone_id")["maximum"] == 999_999_999
    # Cursors fit the 32-bit ids they page over.
    assert param("/api/v1/me/notices", "cursor")["anyOf"][0]["maximum"] == 2_147_483_647
    # Each multipart route names its own parts.
    def form(path: str) -> dict[str, Any]:
        return dict(paths[path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"])
    assert set(form("/api/v1/attachments")["properties"]) == {"file"}
    assert form("/api/v1/org/import")["properties"]["kind"]["enum"] == ["units", "members"]
    # Free text holds no control characters; the rules across fields are stated too.
    title = schemas["NoticeIn"]["properties"]["title"]
    assert re.fullmatch(title["pattern"], "通知\n正文\t") and not re.fullmatch(title["pattern"], "a\x00")
    assert len(schemas["Audience"]["anyOf"]) == 4 and len(schemas["ItemIn"]["anyOf"]) == 2
    entry = schemas["FundEntryIn"]["oneOf"]
    assert all("campaign" not in branch["properties"]["category"]["enum"] for branch in entry)
