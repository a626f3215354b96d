"""`POST /api/v1/activities/{id}/checkin` with the venue code: 2,000 signed-up demo members check
in once each to a party lesson whose check-in window is open (it starts in 10 minutes; check-in
opens 30 minutes before the start), no capacity limit.

As in bench/signups.py the load runs for a fixed time, so the figure prepares rounds: one activity
per 2,000 check-ins, each with the 2,000 members signed up (by their unit admins' batch sign-up,
set-up only). Request n is member n mod 2,000 checking in to activity n div 2,000: every request is
a first check-in. The venue code rotates every 30 s and is accepted for 30-60 s, so a background
task fetches each activity's code as the committee right before the load and every
CODE_REFRESH_S during it. At the end each activity's `checked_in` must equal the members sent to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from yarl import URL

from bench.figure import Context, Figure, Result
from bench.loadgen import Request
from bench.signups import (
    Rounds,
    activity_counts,
    bounded,
    committee_token,
    create_activities,
    login_members,
    rounds_needed,
)

MEMBERS = 2000
#: Rounds are prepared for this rate (each costs 2,000 set-up sign-ups, so not the raw UPDATE's
#: ~7k/s): above the ~2k/s a check-in reached on a quiet machine (1,500 was passed there, and the
#: check failed loudly, as it should). Faster, and the check fails loudly.
RATE_CEILING_PER_S = 3000.0
CODE_REFRESH_S = 10.0
BATCH_MAX = 500  # BatchSignupIn.member_ids


async def sign_up_everyone(ctx: Context, activity_ids: list[int],
                           members: list[dict[str, Any]]) -> None:
    """Set-up: each unit admin signs their members up for every activity in batches."""
    by_unit: dict[int, list[int]] = defaultdict(list)
    for m in members:
        by_unit[m["unit_id"]].append(m["id"])
    admins = dict(zip(by_unit, await bounded([
        ctx.call("POST", "/auth/wechat", body={"code": f"test-demo-admin-{unit_id}"})
        for unit_id in by_unit]), strict=True))
    calls = []
    for activity_id in activity_ids:
        for unit_id, ids in by_unit.items():
            for start in range(0, len(ids), BATCH_MAX):
                calls.append(ctx.call("POST", f"/activities/{activity_id}/signups/batch",
                                      body={"member_ids": ids[start:start + BATCH_MAX]},
                                      token=admins[unit_id]["token"], expect=201))
    await bounded(calls, limit=8)


class VenueCodes:
    """The current venue code of each activity as a ready request body, refreshed in the
    background while the load runs."""

    def __init__(self, ctx: Context, token: str, activity_ids: list[int]) -> None:
        self.ctx, self.token, self.activity_ids = ctx, token, activity_ids
        self.bodies: list[bytes] = [b""] * len(activity_ids)

    async def fetch(self) -> None:
        answers = await bounded([self.ctx.call("GET", f"/activities/{a}/checkin-code",
                                               token=self.token) for a in self.activity_ids],
                                limit=8)
        self.bodies = [json.dumps({"token": a["token"]}).encode() for a in answers]

    async def keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(CODE_REFRESH_S)
            await self.fetch()


def checkin_requests(ctx: Context, activity_ids: list[int], tokens: list[str], rounds: Rounds,
                     codes: VenueCodes) -> Callable[[int], Request]:
    urls = [URL(f"{ctx.api}/activities/{a}/checkin") for a in activity_ids]
    headers = [{"Authorization": f"Bearer {t}", "Content-Type": "application/json"}
               for t in tokens]

    def pick(n: int) -> Request:
        k, i = rounds.place(n)
        return Request("POST", urls[k], headers[i], codes.bodies[k])

    return pick


def check(rounds: Rounds, counts: list[dict[str, Any]], errors: int) -> tuple[str, list[str]]:
    problems = [p for p in [rounds.overflow_problem()] if p]
    if errors:
        problems.append(f"{errors} requests failed")
    for sent, got in zip(rounds.sent, counts, strict=True):
        if got["checked_in"] != len(sent):
            problems.append(f"activity {got['id']}: {len(sent)} distinct members checked in, "
                            f"checked_in = {got['checked_in']}")
    verdict = "✓" if not problems else "CHECK FAILED"
    total = sum(len(s) for s in rounds.sent)
    return f"{total:,} members: checked_in = members {verdict}", problems


async def run(ctx: Context) -> list[Result]:
    staff = await committee_token(ctx)
    members = await login_members(ctx, MEMBERS)
    rounds = Rounds(MEMBERS, rounds_needed(ctx, MEMBERS, RATE_CEILING_PER_S))
    activity_ids = await create_activities(ctx, staff, count=rounds.rounds,
                                           title="党课：签到压测", starts_in=timedelta(minutes=10),
                                           capacity=None)
    await sign_up_everyone(ctx, activity_ids, members)
    codes = VenueCodes(ctx, staff, activity_ids)
    await codes.fetch()
    refresher = asyncio.create_task(codes.keep_fresh())
    try:
        pick = checkin_requests(ctx, activity_ids, [m["token"] for m in members], rounds, codes)
        measured = await ctx.measure("checkin", pick)
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
    assert measured.stats is not None
    counts = await activity_counts(ctx, staff, activity_ids)
    summary, problems = check(rounds, counts, measured.stats.errors)
    results = [Result(label=f"POST …/checkin ({summary})", stats=measured.stats)]
    if problems:
        results.append(Result(label="checkin check", failure="; ".join(problems)[:300]))
    return results


FIGURE = Figure("checkins", run)
