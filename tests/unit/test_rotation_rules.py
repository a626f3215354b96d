"""Pure rotation rules: the duty order and the next unit; quarter arithmetic in Asia/Shanghai."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.org import Unit
from services import clock
from services.rotations import duty_order, next_unit


def _unit(id_: int, strength: int, order: int | None = None) -> Unit:
    return Unit(id=id_, name=f"u{id_}", strength=strength, invite_code=f"C{id_}", duty_order=order)


def test_first_round_is_strongest_first_ties_by_id() -> None:
    units = [_unit(1, 60), _unit(2, 90), _unit(3, 75), _unit(4, 90)]
    assert [u.id for u in duty_order(units)] == [2, 4, 3, 1]


def test_fixed_order_is_kept_and_new_units_join_at_the_end() -> None:
    units = [_unit(1, 10, order=0), _unit(2, 99, order=1), _unit(3, 50), _unit(4, 80)]
    assert [u.id for u in duty_order(units)] == [1, 2, 4, 3]


def test_next_unit_cycles_and_restarts_with_the_strongest_for_a_stranger() -> None:
    order = duty_order([_unit(1, 90), _unit(2, 80), _unit(3, 70)])
    assert next_unit(order, None).id == 1
    assert next_unit(order, 1).id == 2
    assert next_unit(order, 3).id == 1
    assert next_unit(order, 999).id == 1  # last duty unit left the zone (re-partition)


def test_quarter_bounds_are_shanghai_quarters_in_utc() -> None:
    start, end = clock.quarter_bounds(2026, 1)
    assert start == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 16, tzinfo=UTC)
    q4_start, q4_end = clock.quarter_bounds(2026, 4)
    assert q4_end == datetime(2026, 12, 31, 16, tzinfo=UTC)
    # 1 Jan 00:30 in Shanghai is still 31 Dec in UTC, but it is Q1 of the new year.
    assert clock.quarter_of(datetime(2026, 12, 31, 16, 30, tzinfo=UTC)) == (2027, 1)
    assert clock.quarter_of(datetime(2026, 12, 31, 15, 59, tzinfo=UTC)) == (2026, 4)


@pytest.mark.parametrize("text,expected", [("2026Q4", (2026, 4)), ("2027q1", (2027, 1))])
def test_parse_quarter(text: str, expected: tuple[int, int]) -> None:
    assert clock.parse_quarter(text) == expected


@pytest.mark.parametrize("text", ["2026Q5", "Q1", "2026-1", "abcdQ1", ""])
def test_parse_quarter_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        clock.parse_quarter(text)
