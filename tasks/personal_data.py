"""Personal data jobs: check-in coordinates dropped after their retention; inbox rows of old
notices folded into per-unit counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from arq import cron

from services import inbox, personal_data


async def drop_checkin_coordinates(ctx: dict[str, Any]) -> int:
    """Cron (daily at 04:13 Beijing time): safe to run twice; answers how many check-ins lost theirs."""
    days = ctx["settings"].checkin_coordinates_retention_days
    return await personal_data.drop_old_coordinates(older_than=timedelta(days=days))


async def archive_inboxes(ctx: dict[str, Any]) -> int:
    """Cron (hourly at :41): notices older than the inbox retention, 50 a run, each in its own
    transaction; answers how many were archived."""
    days = ctx["settings"].inbox_retention_days
    return await inbox.archive_old(older_than=timedelta(days=days))


CRON = [
    cron(drop_checkin_coordinates, hour=4, minute=13, unique=True),
    cron(archive_inboxes, minute=41, unique=True),
]
