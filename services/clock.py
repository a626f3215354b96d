"""Time: stored in UTC, quarters and display in Asia/Shanghai. `now()` is the one clock tests move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

_offset = timedelta(0)


def now() -> datetime:
    """The current time in UTC (tests may shift it with `travel`)."""
    return datetime.now(UTC) + _offset


def travel(delta: timedelta) -> None:
    """Move this process's clock (tests and demos only)."""
    global _offset
    _offset += delta


def reset_travel() -> None:
    global _offset
    _offset = timedelta(0)


def quarter_of(at: datetime) -> tuple[int, int]:
    """(year, quarter) of an instant, counted in Asia/Shanghai."""
    local = at.astimezone(SHANGHAI)
    return local.year, (local.month - 1) // 3 + 1


def quarter_bounds(year: int, quarter: int) -> tuple[datetime, datetime]:
    """[start, end) of a quarter in UTC, the quarter being an Asia/Shanghai calendar quarter."""
    if not 1 <= quarter <= 4:
        raise ValueError("quarter must be 1..4")
    start = datetime(year, 3 * quarter - 2, 1, tzinfo=SHANGHAI)
    end = datetime(year + 1, 1, 1, tzinfo=SHANGHAI) if quarter == 4 else datetime(
        year, 3 * quarter + 1, 1, tzinfo=SHANGHAI
    )
    return start.astimezone(UTC), end.astimezone(UTC)


def parse_quarter(text: str) -> tuple[int, int]:
    """'2026Q4' -> (2026, 4)."""
    year, sep, q = text.upper().partition("Q")
    if not sep or not year.isdigit() or q not in {"1", "2", "3", "4"}:
        raise ValueError("quarter must look like 2026Q4")
    return int(year), int(q)


def local_iso(at: datetime | None) -> str | None:
    """ISO 8601 with the +08:00 offset, as the mini-program shows it."""
    return at.astimezone(SHANGHAI).isoformat() if at else None
