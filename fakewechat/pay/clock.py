"""Beijing time: every time in the pay API is RFC3339 with ``+08:00``, to the second."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Final

__all__ = ["CST", "now", "rfc3339"]

CST: Final = timezone(timedelta(hours=8))


def now() -> datetime:
    """Now in Beijing time, to the second."""
    return datetime.now(CST).replace(microsecond=0)


def rfc3339(moment: datetime) -> str:
    """``moment`` as the API writes it: ``2018-06-08T10:34:56+08:00``."""
    return moment.astimezone(CST).isoformat(timespec="seconds")
