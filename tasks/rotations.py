"""Rotation jobs: next year's rotations ahead of time; telling the next duty unit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from arq import cron

from services import rotations


async def plan_rotations(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron (daily, and at start-up): rotations never run out; the committee is told to confirm
    next year's once they are generated."""
    ahead = timedelta(days=ctx["settings"].rotation_plan_ahead_days)
    return await rotations.plan_ahead(ahead=ahead)


async def tell_next_duty_units(ctx: dict[str, Any]) -> int:
    """Cron (hourly): each unit is told once, ahead of its quarter, that it is on duty next."""
    before = timedelta(days=ctx["settings"].duty_notice_before_days)
    return await rotations.tell_next_duty_units(before=before)


CRON = [
    cron(plan_rotations, hour=3, minute=17, unique=True, run_at_startup=True),
    cron(tell_next_duty_units, minute=23, unique=True, run_at_startup=True),
]
