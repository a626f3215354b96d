"""`POST /api/v1/activities/{id}/signup`: 2,000 distinct demo members sign up once each for a
party lesson of 500 seats (500 confirmed, 1,500 waitlisted), all connections at once, every
sign-up fighting for the same activity row.

The load generator runs for a fixed time, not a fixed count, so the figure prepares rounds: one
activity per 2,000 sign-ups, more than the fastest rate this machine could reach needs
(RATE_CEILING_PER_S; an activity costs one set-up request). Request n is member n mod 2,000
signing up for activity n div 2,000, so every request is a first sign-up and no member signs up
twice for one activity. After the measurement the members not yet sent to a used activity sign
up too (unmeasured), and each used activity must then show, through the API, exactly 500
confirmed and 1,500 waitlisted (the others 0 and 0). The label says so; a mismatch or any error
adds a failed row (exit status 1).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from yarl import URL

from bench.figure import Context, Figure, Result, SetupFailed
from bench.loadgen import Request

MEMBERS = 2000
CAPACITY = 500
ZONE_ID = 1  # the first demo zone (the bench database is fresh)
#: A sign-up does several SQL statements on one hot row: it cannot outrun this many per second
#: (the raw asyncpg single-UPDATE floor is ~3k/s here). If it ever did, the check fails loudly.
RATE_CEILING_PER_S = 5000.0
SETUP_CONCURRENCY = 32


# -- set-up helpers, shared with bench/checkins.py -----------------------------------------------

async def committee_token(ctx: Context) -> str:
    """The demo committee account (`admin`, password from the harness's environment)."""
    answer = await ctx.call("POST", "/auth/login", body={
        "username": "admin", "password": ctx.stack.env["ZONEHUB_ADMIN_PASSWORD"]})
    return str(answer["token"])


async def bounded(coros: list[Any], limit: int = SETUP_CONCURRENCY) -> list[Any]:
    """gather() with at most `limit` in flight, results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def login_members(ctx: Context, count: int) -> list[dict[str, Any]]:
    """Log demo members 1..count in through the fake WeChat: their token, id and unit_id."""
    answers = await bounded([ctx.call("POST", "/auth/wechat", body={"code": f"test-demo-{i}"})
                             for i in range(1, count + 1)])
    members = [{"token": a["token"], "id": a["member"]["id"], "unit_id": a["member"]["unit_id"]}
               for a in answers]
    if len({m["id"] for m in members}) != count:
        raise SetupFailed(f"{count} demo logins gave {len({m['id'] for m in members})} members")
    return members


async def create_activities(ctx: Context, token: str, *, count: int, title: str,
                            starts_in: timedelta, capacity: int | None) -> list[int]:
    """`count` party lessons in zone 1 open to everyone, two hours long; their ids."""
    starts_at = datetime.now(UTC) + starts_in
    body = {"zone_id": ZONE_ID, "kind": "party_lesson", "title": title,
            "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + timedelta(hours=2)).isoformat(),
            "capacity": capacity, "audience": {"all": True}}
    created = await bounded([ctx.call("POST", "/activities", body=body, token=token, expect=201)
                             for _ in range(count)], limit=4)
    return [int(a["id"]) for a in created]


def rounds_needed(ctx: Context, per_round: int, rate_ceiling_per_s: float) -> int:
    """Rounds of `per_round` requests enough for warm-up + duration at the ceiling rate."""
    return math.ceil(rate_ceiling_per_s * (ctx.warmup_s + ctx.duration_s) / per_round) + 1


class Rounds:
    """Request n -> (round n div size, member n mod size); records who was sent in each round."""

    def __init__(self, size: int, rounds: int) -> None:
        self.size, self.rounds = size, rounds
        self.sent: list[set[int]] = [set() for _ in range(rounds)]
        self.overflow = 0

    def place(self, n: int) -> tuple[int, int]:
        k, i = divmod(n, self.size)
        if k >= self.rounds:  # ran past the prepared rounds: a repeat, reported below
            self.overflow += 1
            k = self.rounds - 1
        self.sent[k].add(i)
        return k, i

    def used(self) -> list[int]:
        return [k for k, sent in enumerate(self.sent) if sent]

    def missing(self, k: int) -> list[int]:
        return [i for i in range(self.size) if i not in self.sent[k]]

    def overflow_problem(self) -> str | None:
        if self.overflow:
            return (f"{self.overflow} requests beyond the {self.rounds} prepared rounds "
                    f"(raise the rate ceiling)")
        return None


async def activity_counts(ctx: Context, token: str, ids: list[int]) -> list[dict[str, Any]]:
    return await bounded([ctx.call("GET", f"/activities/{i}", token=token) for i in ids], limit=8)


# -- the figure ----------------------------------------------------------------------------------

def signup_requests(ctx: Context, activity_ids: list[int], tokens: list[str],
                    rounds: Rounds) -> Callable[[int], Request]:
    urls = [URL(f"{ctx.api}/activities/{a}/signup") for a in activity_ids]
    headers = [{"Authorization": f"Bearer {t}"} for t in tokens]

    def pick(n: int) -> Request:
        k, i = rounds.place(n)
        return Request("POST", urls[k], headers[i])

    return pick


async def complete_rounds(ctx: Context, activity_ids: list[int], tokens: list[str],
                          rounds: Rounds) -> list[str]:
    """After the measurement, unmeasured: the members not yet sent to a used activity sign up,
    so each used activity ends with all MEMBERS signed up once. The problems found."""
    calls = [ctx.call("POST", f"/activities/{activity_ids[k]}/signup", token=tokens[i],
                      expect=201) for k in rounds.used() for i in rounds.missing(k)]
    answers = await bounded([_failure_of(c) for c in calls], limit=ctx.connections)
    failed = [a for a in answers if a]
    return [f"{len(failed)} completing sign-ups failed: {failed[0]}"] if failed else []


async def _failure_of(call: Any) -> str | None:
    try:
        await call
    except SetupFailed as exc:
        return str(exc)
    return None


def check(rounds: Rounds, counts: list[dict[str, Any]]) -> list[str]:
    """Each used activity: exactly CAPACITY confirmed and the rest waitlisted; others untouched."""
    problems = [p for p in [rounds.overflow_problem()] if p]
    for k, got in enumerate(counts):
        want = (CAPACITY, MEMBERS - CAPACITY) if rounds.sent[k] else (0, 0)
        if (got["confirmed"], got["waitlisted"]) != want:
            problems.append(f"activity {got['id']}: confirmed/waitlisted {got['confirmed']}/"
                            f"{got['waitlisted']}, expected {want[0]}/{want[1]}")
    return problems


async def run(ctx: Context) -> list[Result]:
    staff = await committee_token(ctx)
    members = await login_members(ctx, MEMBERS)
    tokens = [m["token"] for m in members]
    rounds = Rounds(MEMBERS, rounds_needed(ctx, MEMBERS, RATE_CEILING_PER_S))
    activity_ids = await create_activities(ctx, staff, count=rounds.rounds,
                                           title="党课：报名压测", starts_in=timedelta(days=2),
                                           capacity=CAPACITY)
    measured = await ctx.measure("signup", signup_requests(ctx, activity_ids, tokens, rounds))
    assert measured.stats is not None
    problems = await complete_rounds(ctx, activity_ids, tokens, rounds)
    if measured.stats.errors:
        problems.insert(0, f"{measured.stats.errors} measured requests failed")
    problems += check(rounds, await activity_counts(ctx, staff, activity_ids))
    verdict = "✓" if not problems else "CHECK FAILED"
    label = (f"POST …/signup ({len(rounds.used())}×{MEMBERS:,} members: {CAPACITY} confirmed + "
             f"{MEMBERS - CAPACITY:,} waitlisted {verdict})")
    results = [Result(label=label, stats=measured.stats)]
    if problems:
        results.append(Result(label="signup check", failure="; ".join(problems)[:300]))
    return results


FIGURE = Figure("signups", run)
