"""Activity jobs: the "three ones" warning 14 days before a rotation ends; the reminder the day
before an activity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from arq import cron

from services import activities, compliance


async def warn_incomplete_rotations(ctx: dict[str, Any]) -> int:
    """Cron (hourly): safe to run twice and on several workers; each rotation is warned once."""
    return await compliance.warn_incomplete_rotations()


async def remind_activities(ctx: dict[str, Any]) -> int:
    """Cron (every 10 minutes): members confirmed for an activity starting within a day are
    reminded once."""
    before = timedelta(seconds=ctx["settings"].activity_remind_before_s)
    return await activities.send_reminders(before=before)


CRON = [
    cron(warn_incomplete_rotations, minute=7, unique=True, run_at_startup=True),
    cron(remind_activities, minute=set(range(0, 60, 10)), unique=True),
]
