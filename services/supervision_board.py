"""Supervision as the committee and the units read it: the list of items with each one's
assignments, an item's timeline, and the figures (completion, on time, time to acceptance) per
item, zone and unit — each over what the caller may see."""

from __future__ import annotations

from typing import Any

from tortoise.expressions import Q, Subquery
from tortoise.functions import Avg, Count

from models.supervision import (
    EscalationEvent,
    ProgressReport,
    Review,
    Step,
    SupervisionItem,
    Urge,
)
from services.auth import Principal
from services.db import on_replica
from services.errors import ItemNotFound
from services.escalation import LIVE, STEPS
from services.supervision import S, assignment_view, get_or_raise, scoped, visible
from services.views import View


async def list_items(principal: Principal, *, limit: int, cursor: int | None,
                     zone_id: int | None) -> dict[str, Any]:
    """Newest items first with the caller's visible assignments (only items with one, unless
    committee), each item's figures, and the dashboard of everything the caller sees."""
    scope = await visible(principal)
    qs = SupervisionItem.all()
    if scope is not None or zone_id is not None:
        ids = scoped(scope, **({"zone_id": zone_id} if zone_id is not None else {})) \
            .values_list("item_id", flat=True)
        qs = qs.filter(id__in=Subquery(ids))
    if cursor is not None:
        qs = qs.filter(id__lt=cursor)
    items = await qs.order_by("-id").limit(limit)
    zone = {"zone_id": zone_id} if zone_id is not None else {}
    rows = await scoped(scope, item_id__in=[i.id for i in items], **zone) \
        .select_related("unit").order_by("item_id", "unit_id")
    per_item = {s["item_id"]: s for s in await stats(
        scope, by="item_id", item_id__in=[i.id for i in items], **zone)}
    by_item: dict[int, list[View]] = {}
    for a in rows:
        by_item.setdefault(a.item_id, []).append(await assignment_view(a))
    return {"items": [View(i, stats=per_item.get(i.id), assignments=by_item.get(i.id, []))
                      for i in items],
            "next_cursor": items[-1].id if len(items) == limit else None,
            "dashboard": await dashboard(scope, **zone)}


async def stats(scope: Q | None, *, by: str | None, **filters: Any) -> list[dict[str, Any]]:
    """Completion share, on-time share and mean time to acceptance, grouped by item_id, zone_id or
    unit_id (None: overall): one aggregate query."""
    qs = scoped(scope, **filters)
    if by is not None:
        qs = qs.group_by(by)
    rows = await qs.annotate(
        n_total=Count("id"),
        n_accepted=Count("id", _filter=Q(state=S.ACCEPTED)),
        n_submitted=Count("id", _filter=Q(state=S.SUBMITTED)),
        n_on_time=Count("id", _filter=Q(on_time=True)),
        n_overdue=Count("id", _filter=Q(overdue_at__isnull=False, state__in=LIVE)),
        mean_accept_s=Avg("accept_s"),
    ).values(*([by] if by else []), "n_total", "n_accepted", "n_submitted", "n_on_time", "n_overdue",
             "mean_accept_s")
    if by is not None:
        rows = sorted(rows, key=lambda r: (r[by] is None, r[by] or 0))
    return [_shares(r, by) for r in rows if r["n_total"]]


def _shares(r: dict[str, Any], by: str | None) -> dict[str, Any]:
    """completion = accepted / assigned; on time = submitted by the due time, of the accepted;
    mean hours from assignment to acceptance, of the accepted."""
    total, accepted, mean = r["n_total"], r["n_accepted"], r["mean_accept_s"]
    return {**({by: r[by]} if by else {}), "assignments": total, "accepted": accepted,
            "submitted": r["n_submitted"], "overdue": r["n_overdue"],
            "accepted_on_time": r["n_on_time"],
            "completion_share": round(accepted / total, 4) if total else None,
            "on_time_share": round(r["n_on_time"] / accepted, 4) if accepted else None,
            "mean_hours_to_accept": round(float(mean) / 3600, 2) if mean is not None else None}


@on_replica
async def dashboard(scope: Q | None, **filters: Any) -> dict[str, Any]:
    overall = await stats(scope, by=None, **filters)
    return {"overall": overall[0] if overall else None,
            "by_zone": await stats(scope, by="zone_id", **filters),
            "by_unit": await stats(scope, by="unit_id", **filters)}


async def item_view(principal: Principal, item: SupervisionItem) -> View:
    """An item with the assignments the caller sees and their figures."""
    scope = await visible(principal)
    rows = await scoped(scope, item_id=item.id).select_related("unit").order_by("unit_id")
    figures = await stats(scope, by=None, item_id=item.id)
    return View(item, stats=figures[0] if figures else None,
                assignments=[await assignment_view(a) for a in rows])


async def detail(principal: Principal, item_id: int) -> View:
    """One item, the caller's visible assignments and their timeline (progress, reviews, urges,
    escalations) in time order: a handful of queries whatever the number of units."""
    item = await get_or_raise(item_id)
    scope = await visible(principal)
    rows = await scoped(scope, item_id=item_id).select_related("unit").order_by("unit_id")
    if not rows and scope is not None:
        raise ItemNotFound(item_id=item_id)
    unit_of = {a.id: a.unit_id for a in rows}
    events: list[dict[str, Any]] = []
    for r in await ProgressReport.filter(assignment_id__in=list(unit_of)):
        events.append({"at": r.at, "kind": "submitted" if r.done else "progress", "by_id": r.by_id,
                       "unit_id": unit_of[r.assignment_id], "note": r.note,
                       "attachments": r.attachments})
    for v in await Review.filter(assignment_id__in=list(unit_of)):
        events.append({"at": v.at, "kind": "accepted" if v.accept else "returned", "by_id": v.by_id,
                       "unit_id": unit_of[v.assignment_id], "note": v.comment})
    for u in await Urge.filter(assignment_id__in=list(unit_of)):
        events.append({"at": u.at, "kind": "urge", "by_id": u.by_id, "by_unit_id": u.by_unit_id,
                       "unit_id": unit_of[u.assignment_id], "note": u.note})
    for e in await EscalationEvent.filter(assignment_id__in=list(unit_of)):
        events.append({"at": e.fired_at, "kind": "escalation", "step": e.step.value,
                       "due_at": e.due_at, "unit_id": unit_of[e.assignment_id]})
    order = {"escalation": 0, "progress": 1, "submitted": 1, "urge": 2, "accepted": 3, "returned": 3}
    events.sort(key=lambda e: (e["at"], order[e["kind"]], e["unit_id"],
                               STEPS.index(Step(e["step"])) if "step" in e else 0))
    figures = await stats(scope, by=None, item_id=item.id)
    return View(item, stats=figures[0] if figures else None,
                assignments=[await assignment_view(a) for a in rows], timeline=events)
