"""Activity jobs: the "three ones" warning, 14 days before a rotation ends."""

from __future__ import annotations

from typing import Any

from services import compliance


async def warn_incomplete_rotations(ctx: dict[str, Any]) -> int:
    """Cron (hourly): safe to run twice and on several workers; each rotation is warned once."""
    return await compliance.warn_incomplete_rotations()
