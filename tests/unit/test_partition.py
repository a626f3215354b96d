"""The partitioner: hard constraints, impossible sizes, what it beats, determinism, its measures."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import pytest

from services.errors import InvalidInput
from services.partition import (PartitionInfeasible, Proposal, UnitInfo, Weights, _anneal,
                                measure, objective, pairs_of, propose, random_partition,
                                synthetic_units, zone_count, zone_figures)
from services.partition_report import compare, table


def _quick(units: list[UnitInfo], **kwargs: Any) -> Proposal:
    """A short run: the constraints and determinism hold at any length."""
    return propose(units, steps_per_unit=300, min_steps=20_000, **kwargs)


def _today(units: list[UnitInfo]) -> dict[int, int]:
    return {u.id: u.current_zone for u in units if u.current_zone is not None}


def _check_valid(units: list[UnitInfo], assignment: dict[int, int], zones: int) -> None:
    assert sorted(assignment) == sorted(u.id for u in units)  # each unit once, no stranger
    sizes = Counter(assignment.values())
    assert sorted(sizes) == list(range(zones))  # zone indices 0..zones-1, none empty
    assert all(8 <= s <= 10 for s in sizes.values()), sizes


@pytest.mark.parametrize(("n", "zones", "expected"), [(100, None, 10), (300, None, 30),
                                                      (300, 34, 34)])
def test_every_unit_in_one_zone_of_8_to_10(n: int, zones: int | None, expected: int) -> None:
    units = synthetic_units(n, seed=7)
    history = pairs_of(_today(units))
    p = _quick(units, seed=1, zones=zones, history=history)
    _check_valid(units, p.assignment, expected)
    assert [z.units for z in p.zones] == [Counter(p.assignment.values())[z]
                                          for z in range(expected)]
    assert sum(z.members for z in p.zones) == sum(u.member_count for u in units)
    assert (p.measures.zones, p.measures.min_units >= 8, p.measures.max_units <= 10) == (
        expected, True, True)


@pytest.mark.parametrize("n", [0, 7, 11, 23])
def test_counts_that_cannot_make_zones_of_8_to_10_are_refused(n: int) -> None:
    units = [UnitInfo(id=i, member_count=30, strength=60, nature="A", district="X")
             for i in range(n)]
    for call in (lambda: propose(units, seed=1), lambda: random_partition(units, seed=1)):
        with pytest.raises(PartitionInfeasible) as err:
            call()
        assert (err.value.code, err.value.http_status) == ("partition_infeasible", 422)


@pytest.mark.parametrize("zones", [9, 13])
def test_a_zone_count_the_sizes_do_not_allow_is_refused(zones: int) -> None:
    assert zone_count(100, zones=10) == 10 and zone_count(100, zones=12) == 12  # the bounds
    with pytest.raises(PartitionInfeasible) as err:
        propose(synthetic_units(100, seed=1), seed=1, zones=zones)
    assert err.value.data["zones"] == zones


@pytest.mark.parametrize(("n", "sizes"), [(8, [8]), (10, [10]), (16, [8, 8]), (19, [10, 9]),
                                          (20, [10, 10])])
def test_small_cities(n: int, sizes: list[int]) -> None:
    units = synthetic_units(n, seed=3)
    p = _quick(units, seed=2, history=pairs_of(_today(units)))
    _check_valid(units, p.assignment, len(sizes))
    assert sorted((z.units for z in p.zones), reverse=True) == sizes


def test_duplicate_unit_ids_are_refused() -> None:
    units = synthetic_units(20, seed=1)
    with pytest.raises(InvalidInput) as err:
        propose([*units[:-1], units[0]], seed=1)
    assert err.value.code == "invalid_request"


def test_the_proposal_beats_random_partitions_on_balance_and_new_pairs() -> None:
    units = synthetic_units(100, seed=11)
    history = pairs_of(_today(units))
    p = propose(units, seed=5, history=history)
    randoms = [measure(units, random_partition(units, seed=s), history=history)
               for s in range(10)]
    best = {key: min(getattr(r, key) for r in randoms)
            for key in ("members_cv", "strength_cv", "members_range", "strength_range",
                        "districts_per_zone")}
    m = p.measures
    # Better than the best of ten random partitions, by a wide margin on balance.
    assert m.members_cv < best["members_cv"] / 2 and m.members_range < best["members_range"] / 2
    assert m.strength_cv < best["strength_cv"] / 2
    assert m.strength_range < best["strength_range"] / 2
    assert m.districts_per_zone < best["districts_per_zone"]
    assert m.new_pair_share > 0.99 > max(r.new_pair_share for r in randoms)
    assert m.units_all_new > 0.95 > max(r.units_all_new for r in randoms)
    assert p.objective < min(objective(units, random_partition(units, seed=s), history=history)
                             for s in range(10))


def test_history_is_what_makes_partners_new() -> None:
    """Control: without history the search has no reason to split today's zones."""
    units = synthetic_units(100, seed=11)
    history = pairs_of(_today(units))
    blind = _quick(units, seed=5)
    aware = _quick(units, seed=5, history=history)
    assert measure(units, blind.assignment, history=history).new_pair_share < 0.97
    assert aware.measures.new_pair_share > 0.99


def test_the_same_seed_gives_the_same_proposal_and_another_seed_another() -> None:
    units = synthetic_units(100, seed=4)
    history = pairs_of(_today(units))
    first, again, other = (_quick(units, seed=s, history=history) for s in (3, 3, 4))
    assert first.assignment == again.assignment and first.objective == again.objective
    assert first.steps == again.steps == 30_000 and not first.out_of_time
    assert other.assignment != first.assignment
    assert random_partition(units, seed=9) == random_partition(units, seed=9)
    assert random_partition(units, seed=9) != random_partition(units, seed=10)


def test_a_time_budget_stops_the_search_and_says_so() -> None:
    units = synthetic_units(100, seed=4)
    p = propose(units, seed=3, time_budget_s=0.0)
    _check_valid(units, p.assignment, 10)
    assert p.out_of_time and p.steps == 0


@pytest.mark.parametrize("zones", [7, 6])  # sizes 8-9 (moves and swaps), 10 each (swaps only)
def test_the_incremental_objective_matches_a_recount(zones: int) -> None:
    units = synthetic_units(60, seed=8, zones=zones)
    history = pairs_of(_today(units)) | pairs_of(random_partition(units, seed=2, zones=zones))
    weights = Weights(members=1.5, strength=0.7, nature=1.2, district=0.4, history=3.0)
    start = random_partition(units, seed=6, zones=zones)
    zone_of = [start[u.id] for u in units]
    best, gain, steps, _ = _anneal(units, zone_of, zones, history=history, weights=weights,
                                   rng=random.Random(1), min_size=8, max_size=10, steps=20_000,
                                   deadline=time.perf_counter() + 60)
    after = {u.id: z for u, z in zip(units, best, strict=True)}
    before_f = objective(units, start, history=history, weights=weights)
    assert steps == 20_000 and gain < -0.1
    assert objective(units, after, history=history, weights=weights) == pytest.approx(
        before_f + gain, abs=1e-9)


def test_measures_of_a_known_partition() -> None:
    def unit(id_: int, members: int, strength: int, nature: str, district: str) -> UnitInfo:
        return UnitInfo(id=id_, member_count=members, strength=strength, nature=nature,
                        district=district)

    units = [unit(i, 10, 50, "A" if i < 6 else "B", "X") for i in range(1, 9)]  # zone 5
    units += [unit(i, 20, 80, "A" if i < 11 else "B", f"D{i % 3}") for i in range(9, 17)]  # zone 9
    assignment = {u.id: 5 if u.id <= 8 else 9 for u in units}
    history = {frozenset((1, 2)), frozenset((1, 3)), frozenset((1, 9))}  # (1, 9): not together
    m = measure(units, assignment, history=history)
    assert (m.zones, m.min_units, m.max_units, m.members_range) == (2, 8, 8, 80)
    assert m.members_cv == pytest.approx(1 / 3)  # 80 and 160 around 120
    assert (m.strength_range, m.strength_cv) == (30, pytest.approx(15 / 65))
    assert m.dominant_nature_share == pytest.approx((5 / 8 + 6 / 8) / 2)
    assert m.districts_per_zone == 2.0  # 1 and 3
    assert m.new_pair_share == pytest.approx(54 / 56)  # 2 of the 2 x 28 pairs met before
    assert m.units_meeting_new == 1.0
    assert m.units_all_new == pytest.approx(13 / 16)  # 1, 2 and 3 met someone again
    assert [(z.zone, z.units, z.members, z.mean_strength, z.natures, z.districts)
            for z in zone_figures(units, assignment)] == [(5, 8, 80, 50, 2, 1),
                                                          (9, 8, 160, 80, 2, 3)]


@pytest.mark.parametrize("change", ["missing", "stranger"])
def test_a_partition_that_is_not_of_these_units_is_refused(change: str) -> None:
    units = synthetic_units(20, seed=1)
    assignment = random_partition(units, seed=1)
    if change == "missing":
        del assignment[units[0].id]
    else:
        assignment[999] = 0
    for call in (measure, objective, zone_figures):
        with pytest.raises(InvalidInput) as err:
            call(units, assignment)
        assert err.value.data == {"field": "assignment"}


def test_compare_measures_today_random_and_the_proposal_alike() -> None:
    units = synthetic_units(40, seed=5)
    history = pairs_of(_today(units))
    c = compare(units, seed=2, history=history, randoms=3, steps_per_unit=300, min_steps=20_000)
    assert c.today == (measure(units, _today(units), history=history),
                       objective(units, _today(units), history=history))
    again = _quick(units, seed=2, history=history)  # the same run, its time aside
    assert (c.proposal.assignment, c.proposal.objective) == (again.assignment, again.objective)
    assert list(c.columns()) == ["today", "random (mean of 3)", "proposal"]
    lines = table(c.columns())
    assert len(lines) == 1 + 11 + 1 and lines[-1].startswith("objective")
    assert c.today[0].new_pair_share == 0.0 < c.random[0].new_pair_share < c.proposal.measures.new_pair_share
    # A unit without a zone: no "today" column.
    loose = [*units[:-1], UnitInfo(id=units[-1].id, member_count=9, strength=50, nature="N1",
                                   district="D1")]
    assert "today" not in compare(loose, seed=2, randoms=1, steps_per_unit=10, min_steps=10).columns()
