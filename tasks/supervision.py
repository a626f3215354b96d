"""Supervision jobs: the escalation ladder, every minute."""

from __future__ import annotations

from typing import Any

from arq import cron

from services import escalation


async def escalate_supervision(ctx: dict[str, Any]) -> int:
    """Cron (every minute, and at start-up): fire the due ladder steps. Safe to run twice and on
    several workers at once: each step fires once (its unique escalation row decides)."""
    return (await escalation.run_escalations()).fired


CRON = [cron(escalate_supervision, second=0, unique=True, run_at_startup=True)]
