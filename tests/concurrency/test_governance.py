"""Plans and handovers under parallel requests (PostgreSQL): every version numbered once, a
decision taken once, a handover closed once with one message."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from aiohttp.test_utils import TestClient

from models.governance import Handover, WorkPlanVersion
from models.notices import Notice
from tests.integration.test_governance import (
    _call,
    _liaison,
    _plan,
    _quarter_city,
    shanghai,
    travel_to,
)
from tests.support import City, bearer, requires_postgres


@requires_postgres
async def test_parallel_plan_writes_number_every_version_once_and_one_decision_stands(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 10, 5, 9))
    path = f"/api/v1/rotations/{s['rotation'].id}/plan"
    rs = await asyncio.gather(*(client.put(path, headers=bearer(s["duty"]), json=_plan(goals=f"目标{i}"))
                                for i in range(12)))
    assert Counter(r.status for r in rs) == {200: 12}
    versions = await WorkPlanVersion.filter(plan__rotation_id=s["rotation"].id).values_list("version", flat=True)
    assert sorted(versions) == list(range(1, 13))
    await _call(client, "POST", path.removeprefix("/api/v1") + "/submit", s["duty"])
    decisions = await asyncio.gather(*(
        client.post(path + "/file", headers=bearer(s["staff"]),
                    json={"decision": "file"} if i % 2 else {"decision": "return", "comment": "再改改"})
        for i in range(8)))
    assert Counter(r.status for r in decisions) == {200: 1, 409: 7}


@requires_postgres
async def test_a_handover_confirmed_by_both_sides_at_once_closes_once(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 12, 10, 9))
    await _liaison(client, "liaison-z1", [s["zone"]])                # who is told it closed
    path = f"/api/v1/rotations/{s['rotation'].id}/handover"
    travel_to(shanghai(2026, 12, 20, 9))
    rs = await asyncio.gather(*(client.post(path, headers=bearer(token), json={"confirm": True})
                                for token in [s["duty"], s["incoming"]] * 4))
    assert Counter(r.status for r in rs) == {200: 8}
    [row] = await Handover.filter(rotation_id=s["rotation"].id)
    assert row.closed_at is not None and row.report is not None
    assert await Notice.filter(topic="handover.closed", ref_id=s["rotation"].id).count() == 1
