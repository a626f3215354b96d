"""Supervision jobs: the escalation ladder, every minute."""

from __future__ import annotations

from typing import Any

from services import supervision


async def escalate_supervision(ctx: dict[str, Any]) -> int:
    """Cron (every minute): fire the due ladder steps. Safe to run twice and on several workers at
    once: each step fires once (its unique escalation row decides)."""
    return (await supervision.run_escalations()).fired
