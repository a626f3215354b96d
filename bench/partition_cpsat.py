"""Why services/partition.py anneals instead of calling OR-Tools CP-SAT: both on the same units,
every partition scored by `services.partition.objective`.

    pip install 'ortools>=9.15,<10'   # in a scratch venv: not a zonehub dependency
    python -m bench.partition_cpsat [--units 95] [--limit-s 60] [--workers 8] [--hint]

Synthetic units (`synthetic_units`, seed 1); history = their in-order zones plus one earlier random
partition. CP-SAT gets the objective's terms in a form it takes: absolute deviations of member
totals from their mean and of strength sums from size x mean strength (instead of the CVs), and
each pair term as sum(c * (c - 1) / 2) over per-zone counts c of each nature, district and past
zone (c * c through add_multiplication_equality), integer coefficients scaled by 100,000.
`--hint` also runs CP-SAT started from the annealed partition.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence

from ortools.sat.python import cp_model  # type: ignore[import-not-found, unused-ignore]

from services.partition import (MAX_SIZE, MIN_SIZE, UnitInfo, Weights, objective, pairs_of,
                                propose, random_partition, synthetic_units, zone_count)

SCALE = 100_000


def cpsat(units: Sequence[UnitInfo], past: list[Mapping[int, int]], k: int, *, limit_s: float,
          workers: int, hint: Mapping[int, int] | None = None) -> tuple[dict[int, int] | None, str]:
    n, w = len(units), Weights()
    m = cp_model.CpModel()
    x = [[m.new_bool_var(f"x{i}_{z}") for z in range(k)] for i in range(n)]
    for row in x:
        m.add_exactly_one(row)
    m.add(x[0][0] == 1)  # zones are interchangeable: unit 0 opens zone 0
    mbar = sum(u.member_count for u in units) / k
    sbar10 = round(10 * sum(u.strength for u in units) / n)
    base, extra = divmod(n, k)
    ref = (k - extra) * base * (base - 1) / 2 + extra * (base + 1) * base / 2
    terms: list[tuple[cp_model.IntVar, float]] = []

    def absdev(expr: cp_model.LinearExprT, coef: float) -> None:
        dev = m.new_int_var(0, 10**8, "")
        m.add(dev >= expr)
        m.add(dev >= -expr)
        terms.append((dev, coef))

    def pairs(idx: list[int], z: int, coef: float) -> None:  # coef * C(count in z, 2)
        c, sq = m.new_int_var(0, MAX_SIZE, ""), m.new_int_var(0, MAX_SIZE**2, "")
        m.add(c == sum(x[i][z] for i in idx))
        m.add_multiplication_equality(sq, [c, c])
        terms.extend([(sq, coef / 2), (c, -coef / 2)])

    groups: list[tuple[list[list[int]], float]] = []
    for attr, coef in (("nature", w.nature), ("district", -w.district)):
        by: dict[str, list[int]] = defaultdict(list)
        for i, u in enumerate(units):
            by[getattr(u, attr)].append(i)
        groups.append((list(by.values()), coef))
    old: list[list[int]] = []
    for partition in past:
        by_zone: dict[int, list[int]] = defaultdict(list)
        for i, u in enumerate(units):
            by_zone[partition[u.id]].append(i)
        old.extend(by_zone.values())
    groups.append((old, w.history))
    for z in range(k):
        size = sum(x[i][z] for i in range(n))
        m.add_linear_constraint(size, MIN_SIZE, MAX_SIZE)
        absdev(sum(u.member_count * x[i][z] for i, u in enumerate(units)) - round(mbar),
               w.members * SCALE / (k * mbar))
        absdev(sum(round(10 * u.strength) * x[i][z] for i, u in enumerate(units)) - sbar10 * size,
               w.strength * SCALE / (9 * k * sbar10))
        for idxs, coef in groups:
            for idx in idxs:
                pairs(idx, z, coef * SCALE / ref)
    m.minimize(sum(round(coef) * v for v, coef in terms))
    for i, u in enumerate(units):
        for z in range(k):
            if hint is not None:
                m.add_hint(x[i][z], hint[u.id] == z)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = limit_s
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 1
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, solver.status_name(status)
    return ({u.id: next(z for z in range(k) if solver.value(x[i][z]))
             for i, u in enumerate(units)}, solver.status_name(status))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=95)
    parser.add_argument("--limit-s", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--hint", action="store_true")
    args = parser.parse_args()
    units = synthetic_units(args.units, seed=1)
    today = {u.id: u.current_zone for u in units if u.current_zone is not None}
    earlier = random_partition(units, seed=99)
    history = pairs_of(today) | pairs_of(earlier)
    k = zone_count(len(units))

    def score(assignment: Mapping[int, int] | None) -> str:
        return "-" if assignment is None else f"{objective(units, assignment, history=history):.3f}"

    print(f"{len(units)} units, {k} zones, {len(history)} history pairs")
    print(f"random partition (seed 5)       objective {score(random_partition(units, seed=5))}")
    started = time.perf_counter()
    annealed = propose(units, seed=1, history=history)
    print(f"annealing (services.partition)  objective {annealed.objective:.3f} "
          f"in {time.perf_counter() - started:.1f} s")
    runs = [("CP-SAT", None), ("CP-SAT from the annealed", annealed.assignment)][:1 + args.hint]
    for label, hint in runs:
        started = time.perf_counter()
        found, status = cpsat(units, [today, earlier], k, limit_s=args.limit_s,
                              workers=args.workers, hint=hint)
        print(f"{label:31} objective {score(found)} in {time.perf_counter() - started:.1f} s "
              f"({status}, {args.workers} workers, limit {args.limit_s:g} s)", flush=True)


if __name__ == "__main__":
    main()
