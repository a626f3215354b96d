"""Typed results that add to a stored row what one caller's answer needs (their own sign-up, a
running balance, a name): attribute access falls through to the row, so the route's response
model renders either alike."""

from __future__ import annotations

from typing import Any


class View:
    """A row plus a few named values: `View(activity, my_status="confirmed").title`."""

    __slots__ = ("_row", "_extra")

    def __init__(self, row: Any, **extra: Any) -> None:
        object.__setattr__(self, "_row", row)
        object.__setattr__(self, "_extra", extra)

    def __getattr__(self, name: str) -> Any:
        extra = object.__getattribute__(self, "_extra")
        if name in extra:
            return extra[name]
        return getattr(object.__getattribute__(self, "_row"), name)

    @property
    def row(self) -> Any:
        return object.__getattribute__(self, "_row")

    def __repr__(self) -> str:
        return f"View({self.row!r}, {object.__getattribute__(self, '_extra')!r})"
