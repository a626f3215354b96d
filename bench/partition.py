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

from services import demo
from services.partition import (UnitInfo, objective, pairs_of, propose, random_partition,
                                synthetic_units)
from services.partition_report import compare, table


def demo_city() -> list[UnitInfo]:
    """The demo city's units as services.demo loads them, ids 1..95 in load order."""
    return [UnitInfo(id=i + 1, member_count=u.member_count, strength=u.strength, nature=u.nature,
                     district=u.district, current_zone=u.zone_no)
            for i, u in enumerate(demo.demo_units(random.Random(2026)))]


def city_table(seed: int, randoms: int) -> None:
    units = demo_city()
    history = pairs_of({u.id: u.current_zone for u in units if u.current_zone is not None})
    started = time.perf_counter()
    comparison = compare(units, seed=seed, history=history, randoms=randoms)
    elapsed = time.perf_counter() - started
    print(f"Demo city: {len(units)} units, history = today's {len(history)} pairs; proposal seed "
          f"{seed}, {comparison.proposal.steps:,} steps, {comparison.proposal.elapsed_s:.2f} s "
          f"({elapsed:.2f} s with the measures)")
    print("\n".join(table(comparison.columns())))


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
