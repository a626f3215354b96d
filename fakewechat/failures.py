"""Scripted failures, as both fakes keep them: rules that make the next calls answer an error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

__all__ = ["ScriptedRule", "check_count", "take"]


class ScriptedRule(Protocol):
    """A rule with the number of calls it still fails (-1: forever)."""

    remaining: int


Rule = TypeVar("Rule", bound=ScriptedRule)


def check_count(count: int) -> None:
    """ValueError unless ``count`` is a positive number of calls or -1 (forever)."""
    if count == 0 or count < -1:
        raise ValueError("count must be a positive int or -1")


def take(rules: list[Rule], matches: Callable[[Rule], bool]) -> Rule | None:
    """The first of ``rules`` that ``matches`` the call, one use spent (a used-up one goes)."""
    for index, rule in enumerate(rules):
        if matches(rule):
            if rule.remaining > 0:
                rule.remaining -= 1
                if rule.remaining == 0:
                    del rules[index]
            return rule
    return None
