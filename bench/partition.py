"""Re-forming the zones: today's demo partition, random valid partitions and the proposal, measured
the same way; then the proposal's running time on 100, 300 and 1,000 synthetic units.

    python -m bench.partition [--seed 1] [--randoms 20] [--sizes 100,300,1000]

No server, no database. The demo city's 95 units (services/demo.py, seed 2026) in its 10 zones
are "today's partition", and today's pairs are the history the proposal should avoid. The random
column is the mean over `--randoms` seeded random valid partitions (one is noisy). The timing rows
use `services.partition.synthetic_units` with their own in-order zones as history; a proposal's
steps do not depend on the machine, its seconds do (see PERFORMANCE.md: ±20 % between hours).
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import astuple, fields

from services import demo
from services.partition import (Measures, UnitInfo, measure, objective, pairs_of, propose,
                                random_partition, synthetic_units)

ROWS = [  # (Measures field, label, format)
    ("min_units", "units per zone, min", "{:.0f}"),
    ("max_units", "units per zone, max", "{:.0f}"),
    ("members_range", "members per zone, max-min", "{:.0f}"),
    ("members_cv", "members per zone, CV", "{:.3f}"),
    ("strength_range", "mean strength, max-min", "{:.1f}"),
    ("strength_cv", "mean strength, CV", "{:.3f}"),
    ("dominant_nature_share", "dominant nature share (mean)", "{:.3f}"),
    ("districts_per_zone", "districts per zone (mean)", "{:.2f}"),
    ("new_pair_share", "pairs new vs today", "{:.3f}"),
    ("units_meeting_new", "units meeting >= 1 new partner", "{:.3f}"),
    ("units_all_new", "units with only new partners", "{:.3f}"),
]


def demo_city() -> list[UnitInfo]:
    """The demo city's units as services.demo loads them, ids 1..95 in load order."""
    return [UnitInfo(id=i + 1, member_count=u.member_count, strength=u.strength, nature=u.nature,
                     district=u.district, current_zone=u.zone_no)
            for i, u in enumerate(demo.demo_units(random.Random(2026)))]


def mean_measures(ms: list[Measures]) -> Measures:
    return Measures(*(sum(col) / len(ms) for col in zip(*(astuple(m) for m in ms), strict=True)))


def city_table(seed: int, randoms: int) -> None:
    units = demo_city()
    today = {u.id: u.current_zone for u in units if u.current_zone is not None}
    history = pairs_of(today)
    rands = [random_partition(units, seed=seed + r) for r in range(randoms)]
    started = time.perf_counter()
    proposal = propose(units, seed=seed, history=history)
    elapsed = time.perf_counter() - started
    columns = {
        "today": (measure(units, today, history=history), objective(units, today, history=history)),
        f"random (mean of {randoms})": (
            mean_measures([measure(units, r, history=history) for r in rands]),
            sum(objective(units, r, history=history) for r in rands) / randoms),
        "proposal": (proposal.measures, proposal.objective),
    }
    print(f"Demo city: {len(units)} units, history = today's {len(history)} pairs; proposal seed "
          f"{seed}, {proposal.steps:,} steps, {elapsed:.2f} s")
    names = list(columns)
    print(f"{'':32}" + "".join(f"{n:>22}" for n in names))
    values = {n: {f.name: getattr(m, f.name) for f in fields(m)} for n, (m, _) in columns.items()}
    for key, label, fmt in ROWS:
        print(f"{label:32}" + "".join(f"{fmt.format(values[n][key]):>22}" for n in names))
    print(f"{'objective (lower is better)':32}"
          + "".join(f"{columns[n][1]:>22.3f}" for n in names))


def timing_table(seed: int, sizes: list[int]) -> None:
    print("\nSynthetic units, history = their in-order zones")
    print(f"{'units':>6}{'zones':>7}{'steps':>12}{'seconds':>10}{'objective':>11}"
          f"{'random':>9}{'new pairs':>11}{'members CV':>12}{'out of time':>13}")
    for n in sizes:
        units = synthetic_units(n, seed=seed)
        history = pairs_of({u.id: u.current_zone for u in units
                            if u.current_zone is not None})
        rand = random_partition(units, seed=seed)
        started = time.perf_counter()
        p = propose(units, seed=seed, history=history)
        elapsed = time.perf_counter() - started
        print(f"{n:>6}{p.measures.zones:>7}{p.steps:>12,}{elapsed:>10.2f}{p.objective:>11.3f}"
              f"{objective(units, rand, history=history):>9.3f}{p.measures.new_pair_share:>11.3f}"
              f"{p.measures.members_cv:>12.3f}{p.out_of_time!s:>13}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--randoms", type=int, default=20)
    parser.add_argument("--sizes", default="100,300,1000")
    args = parser.parse_args()
    city_table(args.seed, args.randoms)
    timing_table(args.seed, [int(s) for s in args.sizes.split(",") if s])


if __name__ == "__main__":
    main()
