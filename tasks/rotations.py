"""Rotation jobs: next year's rotations ahead of time; telling the next duty unit; the 2-4
activities guideline; handovers left open after the boundary; units moving to their new zones
when an applied re-partitioning comes into force."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from arq import cron

from services import handovers, plans, rotations, zoning


async def plan_rotations(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron (daily, and at start-up): rotations never run out; the committee is told to confirm
    next year's once they are generated."""
    ahead = timedelta(days=ctx["settings"].rotation_plan_ahead_days)
    return await rotations.plan_ahead(ahead=ahead)


async def tell_next_duty_units(ctx: dict[str, Any]) -> int:
    """Cron (hourly): each unit is told once, ahead of its quarter, that it is on duty next."""
    before = timedelta(days=ctx["settings"].duty_notice_before_days)
    return await rotations.tell_next_duty_units(before=before)


async def warn_few_held(ctx: dict[str, Any]) -> int:
    """Cron (hourly): three weeks before a quarter ends, fewer than two activities held is told to
    the duty unit and the liaisons, once."""
    return await plans.warn_few_held()


async def flag_open_handovers(ctx: dict[str, Any]) -> int:
    """Cron (hourly): a handover still open a few days after its quarter is flagged to the
    liaisons, once."""
    return await handovers.flag_open()


async def move_partitioned_units(ctx: dict[str, Any]) -> int:
    """Cron (every minute): at the quarter an applied re-partitioning starts from, its units move
    to their new zones, once."""
    return await zoning.move_due()


CRON = [
    cron(plan_rotations, hour=3, minute=17, unique=True, run_at_startup=True),
    cron(tell_next_duty_units, minute=23, unique=True, run_at_startup=True),
    cron(warn_few_held, minute=29, unique=True, run_at_startup=True),
    cron(flag_open_handovers, minute=31, unique=True, run_at_startup=True),
    cron(move_partitioned_units, unique=True, run_at_startup=True),  # second 0 of every minute
]
