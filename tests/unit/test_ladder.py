"""Pure: the escalation ladder's steps and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.supervision import Step
from services.escalation import (
    DEFAULT_LADDER,
    ladder_of,
    last_fired,
    next_step,
    step_at,
    step_level,
)

DUE = datetime(2026, 6, 30, 16, tzinfo=UTC)
H = timedelta(hours=1)


def test_each_step_after_the_one_before_at_its_hour() -> None:
    ladder = ladder_of(None)
    at = DUE - 100 * H
    assert next_step(None, due_at=DUE, ladder=ladder, at=at) == (Step.REMIND, DUE - 48 * H)
    assert next_step(Step.REMIND, due_at=DUE, ladder=ladder, at=at) == (Step.OVERDUE, DUE)
    assert next_step(Step.OVERDUE, due_at=DUE, ladder=ladder, at=at) == (Step.LIAISON, DUE + 24 * H)
    assert next_step(Step.LIAISON, due_at=DUE, ladder=ladder, at=at) == (Step.COMMITTEE, DUE + 72 * H)
    assert next_step(Step.COMMITTEE, due_at=DUE, ladder=ladder, at=at) == (None, None)


def test_the_reminder_is_skipped_when_late_or_disabled() -> None:
    assert next_step(None, due_at=DUE, ladder=ladder_of(None), at=DUE - 10 * H)[0] is Step.OVERDUE
    assert next_step(None, due_at=DUE, ladder=ladder_of({"remind_before_h": 0}), at=DUE - 100 * H)[0] \
        is Step.OVERDUE


def test_overrides_merge_with_the_defaults_and_levels_count_steps() -> None:
    ladder = ladder_of({"liaison_after_h": 2})
    assert ladder == {**DEFAULT_LADDER, "liaison_after_h": 2}
    assert step_at(Step.LIAISON, due_at=DUE, ladder=ladder) == DUE + 2 * H
    assert [step_level(s) for s in Step] == [1, 2, 3, 4]
    assert last_fired(0) is None and last_fired(2) is Step.OVERDUE
