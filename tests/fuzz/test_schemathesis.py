"""Schemathesis against the whole API, once for each role (see tests/fuzz/harness.py).

The app serves on a real TCP port on this test's event loop; each schemathesis run is
synchronous HTTP and goes in a thread. The test fails on any check failure (bar the listed
known false positives) or run error, printing per role and operation the check, the status,
the server's error code and a reproduction.

    ZONEHUB_FUZZ_EXAMPLES=10  examples per operation and phase (small: the suite's budget)
    ZONEHUB_FUZZ_SEED=...     Hypothesis seed (fixed by default)
    ZONEHUB_FUZZ_ROLES=member,committee   only these roles
    ZONEHUB_FUZZ_REPORT=path  also write the findings there as JSON, with curl reproductions
    ZONEHUB_FUZZ_VERBOSE=1    each failure's message and the server's answer in the summary
    scripts/fuzz --examples 200   the same test with a bigger budget
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from services.settings import Settings
from tests.conftest import reset_database
from tests.fuzz import harness

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(harness.timeout_s())]


async def test_schemathesis_every_role(
        aiohttp_server: Callable[..., Awaitable[TestServer]],
        aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
        settings: Settings) -> None:
    # Production's answers: schemathesis checks them against the spec itself.
    server = await aiohttp_server(create_app(settings, validate_responses=False))
    client = await aiohttp_client(server)
    base_url = str(server.make_url("")).rstrip("/")
    settings.wechat_pay_notify_url = f"{base_url}/api/v1/pay/wechat/notify"
    await reset_database()
    world = await harness.build_world(client)
    spec = await (await client.get("/api/openapi.json")).json()

    findings: list[harness.Finding] = []
    errors: list[str] = []
    for role in harness.selected(world.roles):
        started = time.monotonic()
        run = await asyncio.to_thread(harness.fuzz_role, spec, base_url, role)
        sent = ", ".join(f"{phase} {n}" for phase, n in run.requests.items())
        print(f"\n{role.name}: {len(run.findings)} failures, {len(run.errors)} errors in "
              f"{time.monotonic() - started:.0f}s; requests by phase: {sent}", flush=True)
        findings += run.findings
        errors += run.errors
    print(f"schemathesis {harness.schemathesis.__version__}, {harness.examples_budget()} examples, "
          f"seed {harness.seed()}", flush=True)

    if report := os.environ.get("ZONEHUB_FUZZ_REPORT"):
        with open(report, "w", encoding="utf-8") as out:
            out.write(harness.as_json(findings))
    real = [f for f in findings if harness.known_reason(f) is None]
    known = [f for f in findings if harness.known_reason(f) is not None]
    verbose = bool(os.environ.get("ZONEHUB_FUZZ_VERBOSE"))
    text = harness.summary(real, errors, verbose=verbose, known=known)
    if real or errors:
        pytest.fail("\n" + text, pytrace=False)
    print(text)
