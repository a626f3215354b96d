"""Contests with zone preliminaries: entries, each zone ranks its entries and advances its top N,
the committee's final ranks the finalists. A closed round is final (one row per round)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models.activities import (
    Activity,
    ActivityKind,
    ActivityStatus,
    ContestEntry,
    ContestRound,
    ContestRoundKind,
)
from services.access import check_duty_zone
from services.activities import check_can_see, get_or_raise, in_audience
from services.auth import Principal
from services.errors import (
    ActivityCancelled,
    AlreadyEntered,
    Forbidden,
    InvalidInput,
    NotAContest,
    NotInAudience,
    PreliminariesOpen,
    RoundClosed,
)

FINAL_ZONE = 0  # the final's row key, so the unique constraint also holds for it


async def _contest(contest_id: int) -> Activity:
    activity = await get_or_raise(contest_id)
    if activity.kind is not ActivityKind.CONTEST:
        raise NotAContest()
    if activity.status is ActivityStatus.CANCELLED:
        raise ActivityCancelled()
    return activity


async def add_entry(principal: Principal, *, contest_id: int, title: str, as_unit: bool) -> ContestEntry:
    contest = await _contest(contest_id)
    if principal.unit_id is None or principal.zone_id is None:
        raise Forbidden("只有单位的党员或单位管理员可以报名参赛")
    if not in_audience(contest, unit_id=principal.unit_id, zone_id=principal.zone_id,
                       role=principal.role.value):
        raise NotInAudience()
    if as_unit and not principal.is_unit_admin:
        raise Forbidden("只有单位管理员可以代表单位参赛")
    if await ContestRound.filter(Q(zone_id=principal.zone_id) | Q(kind=ContestRoundKind.FINAL),
                                 contest_id=contest_id).exists():
        raise RoundClosed()  # the zone's preliminary, or the final, is over
    member_id = None if as_unit else principal.member_id
    dup = ContestEntry.filter(contest_id=contest_id, unit_id=principal.unit_id)
    dup = dup.filter(member_id__isnull=True) if as_unit else dup.filter(member_id=member_id)
    if await dup.exists():
        raise AlreadyEntered()
    return await ContestEntry.create(contest_id=contest_id, zone_id=principal.zone_id,
                                     unit_id=principal.unit_id, member_id=member_id, title=title)


def _rank(scores: dict[int, Decimal]) -> dict[int, int]:
    """Competition ranking (1, 2, 2, 4) by score, highest first."""
    ordered = sorted(scores.items(), key=lambda kv: -kv[1])
    ranks: dict[int, int] = {}
    for i, (entry_id, score) in enumerate(ordered):
        prev = ordered[i - 1] if i else None
        ranks[entry_id] = ranks[prev[0]] if prev and prev[1] == score else i + 1
    return ranks


def _scores(expected: set[int], scores: list[dict[str, Any]]) -> dict[int, Decimal]:
    got = {int(s["entry_id"]): Decimal(str(s["score"])) for s in scores}
    if set(got) != expected or len(got) != len(scores):
        raise InvalidInput(errors=[{"loc": ["body", "scores"], "type": "value_error",
                                    "msg": "score every entry of the round exactly once",
                                    "missing": sorted(expected - set(got)),
                                    "unexpected": sorted(set(got) - expected)}])
    return got


async def close_preliminary(principal: Principal, *, contest_id: int, zone_id: int,
                            advance_top: int, scores: list[dict[str, Any]]) -> None:
    await _contest(contest_id)
    await check_duty_zone(principal, zone_id)
    entries = set(await ContestEntry.filter(contest_id=contest_id, zone_id=zone_id)
                  .values_list("id", flat=True))
    got = _scores(entries, scores)
    ranks = _rank(got)
    try:
        async with in_transaction():
            await ContestRound.create(contest_id=contest_id, kind=ContestRoundKind.PRELIMINARY,
                                      zone_id=zone_id, advance_top=advance_top,
                                      closed_by_id=principal.member_id)
            for entry_id, score in got.items():
                await ContestEntry.filter(id=entry_id).update(
                    preliminary_score=score, preliminary_rank=ranks[entry_id],
                    advanced=ranks[entry_id] <= advance_top)
    except IntegrityError:
        raise RoundClosed() from None


async def close_final(principal: Principal, *, contest_id: int, scores: list[dict[str, Any]]) -> None:
    if not principal.is_committee:
        raise Forbidden()
    await _contest(contest_id)
    zones_with_entries = set(await ContestEntry.filter(contest_id=contest_id)
                             .values_list("zone_id", flat=True))
    closed = set(await ContestRound.filter(contest_id=contest_id, kind=ContestRoundKind.PRELIMINARY)
                 .values_list("zone_id", flat=True))
    if zones_with_entries - closed:
        raise PreliminariesOpen(zone_ids=sorted(zones_with_entries - closed))
    finalists = set(await ContestEntry.filter(contest_id=contest_id, advanced=True)
                    .values_list("id", flat=True))
    got = _scores(finalists, scores)
    ranks = _rank(got)
    try:
        async with in_transaction():
            await ContestRound.create(contest_id=contest_id, kind=ContestRoundKind.FINAL,
                                      zone_id=FINAL_ZONE, closed_by_id=principal.member_id)
            for entry_id, score in got.items():
                await ContestEntry.filter(id=entry_id).update(final_score=score,
                                                              final_rank=ranks[entry_id])
    except IntegrityError:
        raise RoundClosed() from None


async def entries(principal: Principal, contest_id: int) -> list[ContestEntry]:
    """A contest's entries, for whoever may see the contest."""
    await check_can_see(principal, await _contest(contest_id))
    return await ContestEntry.filter(contest_id=contest_id).order_by("zone_id", "id")


async def results(principal: Principal, contest_id: int) -> dict[str, Any]:
    """Results per round (each zone's preliminary, the final), for whoever may see the contest."""
    await check_can_see(principal, await _contest(contest_id))
    rounds = await ContestRound.filter(contest_id=contest_id).order_by("closed_at", "id")
    all_entries = await ContestEntry.filter(contest_id=contest_id)
    out = []
    for r in rounds:
        if r.kind is ContestRoundKind.PRELIMINARY:
            ranking = sorted((e for e in all_entries if e.zone_id == r.zone_id),
                             key=lambda e: (e.preliminary_rank or 0, e.id))
            zone_id: int | None = r.zone_id
        else:
            ranking = sorted((e for e in all_entries if e.final_rank is not None),
                             key=lambda e: (e.final_rank or 0, e.id))
            zone_id = None
        out.append({"kind": r.kind.value, "zone_id": zone_id, "advance_top": r.advance_top,
                    "closed_at": r.closed_at, "ranking": ranking})
    return {"contest_id": contest_id, "rounds": out}
