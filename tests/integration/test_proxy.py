"""Behind a proxy: login limits and audit rows use the client address, which comes from
X-Forwarded-For only when the peer (here the test client, 127.0.0.1) is a trusted proxy."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from models.audit import AuditEntry
from tests.support import STAFF_PASSWORD, City, bearer, staff_login


async def _spray(client: TestClient[Any, Any], settings: Any, forwarded: str) -> int:
    """As many failures as one address may make, then one more login: its status."""
    for n in range(settings.login_failures_per_address_per_minute):
        r = await client.post("/api/v1/auth/login", json={"username": f"user{n}", "password": "123456"},
                              headers={"X-Forwarded-For": f"198.51.100.{n + 1}"})
        assert r.status == 401
    r = await client.post("/api/v1/auth/login", json={"username": "staff", "password": STAFF_PASSWORD},
                          headers={"X-Forwarded-For": forwarded})
    return r.status


async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
        client: TestClient[Any, Any], city: City, settings: Any) -> None:
    settings.trusted_proxies = "10.0.0.0/8"  # the test client (127.0.0.1) is not a proxy
    # a new X-Forwarded-For per guess does not make a new address: the limit holds
    assert await _spray(client, settings, "192.0.2.200") == 429


async def test_a_trusted_proxy_forwards_each_client_address(
        client: TestClient[Any, Any], city: City, settings: Any) -> None:
    settings.trusted_proxies = "127.0.0.1/32"
    # twenty clients behind the proxy failed once each: another client is not limited ...
    assert await _spray(client, settings, "192.0.2.200") == 200
    # ... and one client's failures are counted as its own, whatever it puts left of its hop
    for _ in range(settings.login_failures_per_minute):
        r = await client.post("/api/v1/auth/login", json={"username": "staff", "password": "wrong"},
                              headers={"X-Forwarded-For": "192.0.2.77"})
        assert r.status == 401
    r = await client.post("/api/v1/auth/login", json={"username": "staff", "password": STAFF_PASSWORD},
                          headers={"X-Forwarded-For": "6.6.6.6, 192.0.2.77"})
    assert r.status == 429


async def test_audit_rows_carry_the_client_address(client: TestClient[Any, Any], city: City,
                                                   settings: Any) -> None:
    settings.trusted_proxies = "127.0.0.1/32"
    staff = await staff_login(client)
    r = await client.post("/api/v1/staff", headers={**bearer(staff), "X-Forwarded-For": "6.6.6.6, 203.0.113.5"},
                          json={"username": "liaison9", "name": "联络员九", "phone": "13800000009",
                                "role": "liaison", "zone_ids": []})
    assert r.status == 201
    settings.trusted_proxies = ""
    r = await client.post("/api/v1/staff", headers={**bearer(staff), "X-Forwarded-For": "203.0.113.5"},
                          json={"username": "liaison10", "name": "联络员十", "phone": "13800000010",
                                "role": "liaison", "zone_ids": []})
    assert r.status == 201
    rows = await AuditEntry.filter(action__startswith="staff.").order_by("id")
    assert [row.address for row in rows] == ["203.0.113.5", "127.0.0.1"]
    listed = await (await client.get("/api/v1/audit?action=staff", headers=bearer(staff))).json()
    assert {item["address"] for item in listed["items"]} == {"203.0.113.5", "127.0.0.1"}
