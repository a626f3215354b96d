"""Pure: rankings, distances, money text, ledger effects, audiences, the strict-input checks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from server.routing import control_character_at, json_too_deep
from services.audience import matches
from services.checkins import distance_m
from services.contests import _rank
from services.contributions import Tally, _ranked
from services.ledger import effect, yuan
from services.messages import field_message


def test_competition_ranking_shares_ranks_and_skips() -> None:
    assert _rank({1: Decimal(90), 2: Decimal(95), 3: Decimal(90), 4: Decimal(80)}) == {
        2: 1, 1: 2, 3: 2, 4: 4}
    rows = [{"total_fen": 5, "count": 1, "n": "b"}, {"total_fen": 9, "count": 2, "n": "a"},
            {"total_fen": 5, "count": 3, "n": "c"}]
    assert [(r["n"], r["rank"]) for r in _ranked(rows, "n")] == [("a", 1), ("c", 2), ("b", 2)]


def test_tallies_add_up_net_of_refunds() -> None:
    t = Tally(online_fen=1000, online_count=2, offline_fen=500, offline_count=1, refunded_fen=300)
    t.add(Tally(online_fen=1, online_count=1))
    assert (t.total_fen, t.count) == (1201, 4)


def test_haversine_distance() -> None:
    assert distance_m(31.0, 121.0, 31.0, 121.0) == 0
    assert distance_m(31.0, 121.0, 31.01, 121.0) == pytest.approx(1112, rel=0.01)  # 0.01° ≈ 1.1 km


def test_money_text_and_balance_effect() -> None:
    assert yuan(12_345_678) == "123,456.78 元" and yuan(-5) == "-0.05 元"
    assert effect("income", 100) == 100 and effect("expense", 100) == -100
    assert effect("income", -100) == -100  # a reversal of income takes it back


@pytest.mark.parametrize(("audience", "who", "expected"), [
    ({"all": True}, (1, 1, "member"), True),
    ({"zone_ids": [2]}, (1, 1, "member"), False),
    ({"zone_ids": [1], "roles": ["unit_admin"]}, (1, 1, "member"), False),
    ({"zone_ids": [1], "roles": ["unit_admin"]}, (1, 1, "unit_admin"), True),
    ({"unit_ids": [1], "roles": ["member"]}, (1, 9, "unit_admin"), True),
    ({"roles": ["unit_admin"]}, (5, 5, "unit_admin"), True),
    ({"roles": ["committee"]}, (None, None, "liaison"), True),
    ({"all": True}, (None, None, "committee"), False),
])
def test_who_an_audience_names(audience: dict, who: tuple, expected: bool) -> None:
    unit_id, zone_id, role = who
    assert matches(audience, unit_id=unit_id, zone_id=zone_id, role=role) is expected


def test_json_depth_is_measured_outside_strings() -> None:
    assert not json_too_deep(b'{"a": [[1]]}', limit=3)
    assert json_too_deep(b'{"a": [[[1]]]}', limit=3)
    assert not json_too_deep(b'{"a": "[[[[[[[[[["}', limit=3)   # brackets inside a string
    assert not json_too_deep(b'{"a": "\\"[[[[[[[[["}', limit=3)  # an escaped quote


def test_control_characters_are_found_in_values_and_keys() -> None:
    assert control_character_at({"a": ["ok\n\ttab", {"b": "x\x00"}]}) == ["a", 1, "b"]
    assert control_character_at({"k\x1b": 1}) == ["k\x1b"]
    assert control_character_at({"text": "line one\r\nline two"}) is None


def test_field_messages_are_chinese() -> None:
    assert field_message({"type": "missing", "ctx": {}}) == "缺少必填字段"
    assert field_message({"type": "string_too_long", "ctx": {"max_length": 5}}) == "长度不能超过 5 个字符"
    assert field_message({"type": "value_error", "ctx": {"error": ValueError("自定义")}}) == "自定义"
    assert field_message({"type": "something_new"}) == "格式不正确"
