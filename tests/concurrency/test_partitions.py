"""Applying re-partitionings at once: one apply stands, its rotations made once, one audit entry
(row locks on PostgreSQL, the write lock on SQLite)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from aiohttp.test_utils import TestClient

from models.audit import AuditEntry
from models.org import Rotation
from models.zoning import PartitionProposal
from services import clock
from tests.integration.test_partitions import call, partition_city
from tests.support import bearer


async def _apply_all(client: TestClient[Any, Any], staff: str, ids: list[int],
                     quarter: str) -> list[tuple[int, str | None]]:
    rs = await asyncio.gather(*(client.post(f"/api/v1/partitions/{i}/apply", headers=bearer(staff),
                                            json={"from_quarter": quarter}) for i in ids))
    return [(r.status, (await r.json()).get("code")) for r in rs]


async def test_the_same_proposal_applied_at_once_applies_once(client: TestClient[Any, Any]) -> None:
    _, staff = await partition_city(client)
    p = await call(client, "POST", "/partitions", staff, {"seed": 1}, expect=201)
    outcomes = await _apply_all(client, staff, [p["id"]] * 8, "2027Q2")
    assert Counter(outcomes) == {(200, None): 1, (409, "partition_applied"): 7}
    assert await AuditEntry.filter(action="partition.applied").count() == 1
    boundary = clock.quarter_bounds(2027, 2)[0]
    later = await Rotation.filter(starts_at__gte=boundary).values_list("zone_id", "year", "quarter")
    assert Counter(later) == {(z, 2027, q): 1 for z, _, _ in later for q in (2, 3, 4)}  # once each


async def test_two_proposals_applied_at_once_one_stands(client: TestClient[Any, Any]) -> None:
    _, staff = await partition_city(client)
    ids = [(await call(client, "POST", "/partitions", staff, {"seed": s}, expect=201))["id"]
           for s in (1, 2)]
    outcomes = await _apply_all(client, staff, ids * 3, "2027Q1")
    # The winner's two other applies find it applied; the other proposal's three find it pending.
    assert Counter(outcomes) == {(200, None): 1, (409, "partition_applied"): 2,
                                 (409, "partition_pending"): 3}
    assert await PartitionProposal.filter(status="applied").count() == 1
    assert await AuditEntry.filter(action="partition.applied").count() == 1
