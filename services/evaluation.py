"""The year-end evaluation (年终考核): a rubric of weights the committee sets turns each unit's and
each zone's year into a score out of 100 and a rank, every score with the evidence behind it.

Each metric is a share in [0, 1] read off the year's facts (`services.year_facts`); a metric with
nothing to measure (a unit never on duty has no "three ones" of its own) is left out and the
other weights count in its place. Score = 100 x sum(weight x value) / sum(weights of the metrics
measured), rounded to two places; equal scores share a rank (1, 2, 2, 4). Changing the rubric
recomputes and stores the year's result; every year keeps its own rubric and result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tortoise.transactions import in_transaction

from models.governance import Evaluation, Rubric
from models.org import Rotation
from services import clock
from services.access import check_committee
from services.auth import Principal
from services.db import on_replica
from services.errors import Forbidden
from services.year_facts import UnitTally, YearFacts, gather

METRICS = {
    "compliance": "“三个一”完成率",
    "attendance": "活动参与率",
    "supervision": "督办按时率",
    "acknowledgement": "通知确认率",
    "funds": "缴纳参与率",
    "practice": "经验交流",
    "plans": "计划按时报备率",
}
DEFAULT_WEIGHTS = {"compliance": 25, "attendance": 20, "supervision": 20, "acknowledgement": 10,
                   "funds": 10, "practice": 5, "plans": 10}


def metric(part: float, whole: float, evidence: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"value": round(part / whole, 4) if whole else None, "part": part, "whole": whole,
            "evidence": evidence or []}


def score(metrics: dict[str, dict[str, Any]], weights: dict[str, int]) -> float | None:
    measured = [(weights[k], m["value"]) for k, m in metrics.items()
                if m["value"] is not None and weights.get(k)]
    total = sum(w for w, _ in measured)
    return round(100 * sum(w * v for w, v in measured) / total, 2) if total else None


def ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Highest score first (unscored last); equal scores share a rank."""
    rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0), r["name"]))
    for i, row in enumerate(rows):
        same = i and rows[i - 1]["score"] == row["score"]
        row["rank"] = rows[i - 1]["rank"] if same else i + 1
    return rows


# -- the metrics ---------------------------------------------------------------------------------

def _rotation_evidence(f: YearFacts, rotations: list[Rotation], ok: Callable[[Rotation], bool]) -> dict[str, Any]:
    rows = [{"ref_type": "rotation", "ref_id": r.id, "label": f"{r.year}Q{r.quarter} {f.unit_name.get(r.unit_id, '')}",
             "ok": ok(r)} for r in rotations]
    return metric(sum(r["ok"] for r in rows), len(rows), rows)


def _practice(f: YearFacts, units: list[int]) -> dict[str, Any]:
    """Featured counts whole, published (not featured) half; per unit, then averaged."""
    rows, points = [], 0.0
    for u in units:
        p = f.practice.get(u, {})
        value = 1.0 if p.get("featured") else 0.5 if p.get("published") else 0.0
        points += value
        rows.append({"ref_type": "unit", "ref_id": u, "label": f.unit_name.get(u, ""),
                     "published": p.get("published", 0), "featured": p.get("featured", 0), "ok": value})
    return metric(points, len(units), rows)


def _people(tallies: list[UnitTally], part: Callable[[UnitTally], int], whole: Callable[[UnitTally], int]) -> dict[str, Any]:
    return metric(sum(part(t) for t in tallies), sum(whole(t) for t in tallies))


def measure(f: YearFacts, *, units: list[int], rotations: list[Rotation]) -> dict[str, dict[str, Any]]:
    """The metrics of a set of units and the rotations they held (a unit: its own; a zone: all)."""
    tallies = [f.tally[u] for u in units]
    done = [r for r in rotations if f.finished(r)]
    started = [r for r in rotations if r.starts_at <= f.now]
    supervised = [a for a in f.assignments if a.unit_id in set(units)]
    return {
        "compliance": _rotation_evidence(f, done, lambda r: all(f.three_ones(r).values())),
        "attendance": _people(tallies, lambda t: len(t.attended), lambda t: t.members),
        "supervision": metric(
            sum(1 for a in supervised if a.submitted_at is not None and a.submitted_at <= a.item.due_at),
            len(supervised),
            [{"ref_type": "supervision_item", "ref_id": a.item_id, "label": a.item.title,
              "unit_id": a.unit_id, "ok": a.submitted_at is not None and a.submitted_at <= a.item.due_at}
             for a in supervised]),
        "acknowledgement": _people(tallies, lambda t: t.acked, lambda t: t.ack_required),
        "funds": _people(tallies, lambda t: len(t.payers), lambda t: t.members),
        "practice": _practice(f, units),
        "plans": _rotation_evidence(f, started, f.plan_on_time),
    }


def compute(f: YearFacts, weights: dict[str, int]) -> dict[str, Any]:
    unit_rows, zone_rows = [], []
    for u in (u for u in f.units if u.zone_id is not None):
        m = measure(f, units=[u.id], rotations=[r for r in f.rotations if r.unit_id == u.id])
        unit_rows.append({"id": u.id, "name": u.name, "zone_id": u.zone_id, "score": score(m, weights), "metrics": m})
    for z in f.zones:
        members = [u.id for u in f.units if u.zone_id == z.id]
        if not members:
            continue
        m = measure(f, units=members, rotations=[r for r in f.rotations if r.zone_id == z.id])
        zone_rows.append({"id": z.id, "name": z.name, "zone_id": z.id, "score": score(m, weights), "metrics": m})
    return {"year": f.year, "weights": weights, "metric_titles": METRICS,
            "units": ranked(unit_rows), "zones": ranked(zone_rows)}


# -- the rubric and stored results ---------------------------------------------------------------

async def rubric_for(year: int) -> dict[str, int]:
    own = await Rubric.get_or_none(year=year)
    if own is None:
        own = await Rubric.filter(year__lt=year).order_by("-year").first()
    return {**DEFAULT_WEIGHTS, **(own.weights if own else {})}


def check_reads(principal: Principal) -> None:
    if not principal.is_staff:
        raise Forbidden()


async def _store(year: int, weights: dict[str, int], principal: Principal) -> dict[str, Any]:
    result = compute(await gather(year), weights)
    async with in_transaction():
        await Evaluation.filter(year=year).delete()
        await Evaluation.create(year=year, rubric=weights, result=result, computed_at=clock.now(),
                                computed_by_id=principal.member_id)
    return {**result, "computed_at": clock.now(), "stored": True}


@on_replica
async def get(principal: Principal, year: int) -> dict[str, Any]:
    """The stored result of a year, or (none stored yet) one computed now and not stored."""
    check_reads(principal)
    stored = await Evaluation.get_or_none(year=year)
    if stored is not None:
        return {**stored.result, "computed_at": stored.computed_at, "stored": True}
    return {**compute(await gather(year), await rubric_for(year)), "computed_at": clock.now(),
            "stored": False}


async def set_rubric(principal: Principal, year: int, weights: dict[str, int]) -> dict[str, Any]:
    """The committee sets a year's weights (missing metrics weigh 0): stored, and the year is
    recomputed under them."""
    check_committee(principal)
    full = {k: int(weights.get(k, 0)) for k in METRICS}
    async with in_transaction():
        row = await Rubric.get_or_none(year=year)
        if row is None:
            await Rubric.create(year=year, weights=full, updated_by_id=principal.member_id,
                                updated_at=clock.now())
        else:
            await Rubric.filter(id=row.id).update(weights=full, updated_by_id=principal.member_id,
                                                  updated_at=clock.now())
    return await _store(year, full, principal)


async def recompute(principal: Principal, year: int) -> dict[str, Any]:
    check_committee(principal)
    return await _store(year, await rubric_for(year), principal)
