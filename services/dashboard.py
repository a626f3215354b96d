"""What the console's dashboard shows, read within the caller's scope: the zones and their duty
units now, notices still reaching people, overdue supervision, attendance by month, the drives'
money. Reads only: every rule it relies on lives in the domain's own service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models.activities import Checkin
from models.notices import Notice
from models.supervision import Assignment
from services import clock, contributions, notices, org, work_ledger, year_facts
from services.auth import Principal
from services.campaigns import list_campaigns
from services.escalation import LIVE
from services.supervision import visible


def zone_scope(principal: Principal) -> list[int] | None:
    """The zones a caller's figures cover: None = the city (committee)."""
    if principal.is_committee:
        return None
    if principal.is_liaison:
        return sorted(principal.liaison_zone_ids)
    return [principal.zone_id] if principal.zone_id is not None else []


async def overdue(principal: Principal, *, limit: int = 20) -> list[Assignment]:
    """Assignments past their item's due time and not yet submitted, oldest due first."""
    scope = await visible(principal)
    qs = Assignment.filter(state__in=list(LIVE), item__due_at__lt=clock.now())
    if scope is not None:
        qs = qs.filter(scope)
    return await qs.select_related("item", "unit").order_by("item__due_at", "id").limit(limit)


async def attendance_by_month(principal: Principal, *, year: int) -> list[int]:
    """Check-ins in each month of the year (Asia/Shanghai), in the caller's zones."""
    start = datetime(year, 1, 1, tzinfo=clock.SHANGHAI)
    end = datetime(year + 1, 1, 1, tzinfo=clock.SHANGHAI)
    qs = Checkin.filter(checked_in_at__gte=start, checked_in_at__lt=end)
    zones = zone_scope(principal)
    if zones is not None:
        qs = qs.filter(activity__zone_id__in=zones)
    months = [0] * 12
    for (at,) in await qs.values_list("checked_in_at"):
        months[at.astimezone(clock.SHANGHAI).month - 1] += 1
    return months


async def drives(principal: Principal, *, limit: int = 8) -> list[dict[str, Any]]:
    """The newest drives the caller sees, with their totals."""
    out = []
    for campaign in await list_campaigns(principal, state=None, limit=limit, cursor=None):
        out.append(await contributions.totals(principal, campaign.id))
    return out


async def in_flight(principal: Principal, *, limit: int = 8) -> list[dict[str, Any]]:
    """The newest notices the caller sent (the committee: anyone's) with their reach."""
    if not (principal.is_staff or principal.is_unit_admin):
        return []
    out = []
    for n in (await notices.sent(principal, cursor=None, limit=limit))["items"]:
        total = n.recipients or 0
        delivered = await n.inbox_items.all().count() if n.status.value != "delivered" else total
        out.append({"id": n.id, "title": n.title, "status": n.status.value, "recipients": total,
                    "delivered": delivered, "read": n.read, "acked": n.acked,
                    "share_read": round(n.read / total, 4) if total else 0.0})
    return out


async def year_figures(principal: Principal, *, year: int) -> dict[str, Any]:
    """The year's figures the committee reports (the ledger's), over the caller's scope: the city,
    a liaison's zones, a unit admin's unit."""
    zones = zone_scope(principal)
    own = principal.unit_id if principal.is_unit_admin else None
    facts = await year_facts.gather(year)
    return work_ledger.city_figures(facts, lambda z: zones is None or z in zones,
                                    lambda u: own is None or u == own)


async def gather(principal: Principal) -> dict[str, Any]:
    year, quarter = clock.quarter_of(clock.now())
    zones = await org.list_zones()
    scope = zone_scope(principal)
    if scope is not None:
        zones = [z for z in zones if z.id in scope]
    return {"year": year, "quarter": quarter, "zones": zones,
            "figures": await year_figures(principal, year=year),
            "notices": await in_flight(principal), "overdue": await overdue(principal, limit=8),
            "attendance": await attendance_by_month(principal, year=year),
            "drives": await drives(principal)}


async def notice_summary(principal: Principal, notice_id: int) -> dict[str, Any]:
    """A sent notice and its receipts, for whoever may read its stats."""
    stats = await notices.stats(principal, notice_id)
    notice = await Notice.get(id=notice_id)
    return {"notice": notice, "stats": stats}
