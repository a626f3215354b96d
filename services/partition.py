"""Re-forming the zones: propose a partition of all units into zones of 8-10, and measure any.

Pure logic, no I/O. The caller reads the units (`UnitInfo`) and the pairs that already shared a zone
(`pairs_of` today's partition and earlier ones), calls `propose`, and shows the `Proposal` beside
`measure` of today's partition and of a `random_partition` (the baseline).

Hard constraints: every unit in exactly one zone of `min_size`..`max_size` units (8..10). The zone
count defaults to the fewest that fit (ceil(n / max_size): 10 for the city's 95-100 units); when no
count fits, `PartitionInfeasible` (422, `partition_infeasible`).

Objective, minimised, a weighted sum of dimensionless figures (`Weights`, defaults in brackets):
- members (1.0): coefficient of variation (CV) of total members per zone;
- strength (1.0): CV of the zones' mean strength around the mean strength of all units;
- nature (1.0): same-nature pairs per reference pair (a zone dominated by one nature has many);
- district (0.3): minus same-district pairs per reference pair;
- history (4.0): pairs that already shared a zone per reference pair (meet new partners).
The reference pair count is sum(C(size, 2)) at the balanced sizes, a constant. A CV of 0.01
weighs as 1 % of the pairs being of one nature, or 0.25 % having met before (one pair in 95 units).
On the demo city history 2.0 kept 2-3 old pairs, 4.0 none, balance as good; district 0.6 halved
the districts per zone (4 -> 2.2) but kept ~15 old pairs, 0.0 left 5.6 (random 5.8).

Solver: simulated annealing over two neighbourhoods, moving a unit to another zone (when both
sizes allow) and swapping two units of different zones. Deltas are O(1) from per-zone sums
(members, strength, nature and district counts) and, per unit, its history partners in each zone
(updated over a unit's partners when it moves). The temperature falls geometrically from one that
accepts the mean uphill swap of a 200-swap sample with probability 0.1 to a thousandth of that
(0.5 or 0.001, and 100 or 10,000, did no better on 95 and 1,000 units); the best partition seen is
returned. The run is a fixed number of steps, `steps_per_unit` x n but at least `MIN_STEPS`, so a
seed gives the same partition on any machine; `time_budget_s` is only a safety cap (`out_of_time`
says it stopped the run, which then depends on the machine). ~1.5 s for 100 units, ~2 s for 300,
~6-8 s for 1,000 here; there 500 / 1,000 / 2,000 / 4,000 steps per unit reach 0.063 / 0.045 /
0.018 / 0.013 (random ~0.5) in 1.7 / 3.4 / 6.3 / 12.9 s.

Why not OR-Tools CP-SAT: bench/partition_cpsat.py (ortools 9.15, scratch venv) gives it the terms
recast (absolute deviations, c*c of per-zone counts) and scores answers with `objective`. 95 units:
random 1.10; CP-SAT 0.35-0.74 in 10 s (2 workers; runs differ), 0.31 in 60 s (8 workers), 0.30-0.32
in 60 s started from the annealed answer; annealing 0.29 in 1-2 s. 1,000 units, two runs: CP-SAT
finds no feasible partition in 60 s; annealing 0.026-0.03 (random 0.56) in ~9-12 s.
Balance and pair terms cost CP-SAT auxiliary variables and weak bounds, a local search prices them
exactly, and a proof of optimality is worth nothing here. So: annealing, no new dependency.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.errors import InvalidInput

MIN_SIZE, MAX_SIZE = 8, 10
STEPS_PER_UNIT, MIN_STEPS = 2000, 500_000
START_ACCEPT, COOLING = 0.1, 1000  # see the module docstring
Pair = frozenset[int]


class PartitionInfeasible(InvalidInput):
    code, default_message = "partition_infeasible", "单位数量无法分成每区8至10个单位的网络区"


@dataclass(frozen=True, slots=True)
class UnitInfo:
    id: int
    member_count: int
    strength: float
    nature: str
    district: str
    current_zone: int | None = None


@dataclass(frozen=True, slots=True)
class Weights:
    members: float = 1.0
    strength: float = 1.0
    nature: float = 1.0
    district: float = 0.3
    history: float = 4.0


@dataclass(frozen=True, slots=True)
class ZoneFigures:
    zone: int
    units: int
    members: int
    mean_strength: float
    natures: int
    districts: int


@dataclass(frozen=True, slots=True)
class Measures:
    """Figures of one partition, comparable between partitions of the same units.

    `new_pair_share`: of all pairs of units sharing a zone, the share that never shared one in the
    history (1.0 without history). `units_meeting_new`: the share of units with at least one zone
    partner they never shared a zone with; `units_all_new`: with no partner they shared one with.
    `dominant_nature_share`: the mean over zones of the share of the zone's most common nature
    (lower is more mixed). CVs are population standard deviations over the mean.
    """

    zones: int
    min_units: int
    max_units: int
    members_range: int
    members_cv: float
    strength_range: float
    strength_cv: float
    dominant_nature_share: float
    districts_per_zone: float
    new_pair_share: float
    units_meeting_new: float
    units_all_new: float


@dataclass(frozen=True, slots=True)
class Proposal:
    assignment: dict[int, int]  # unit id -> zone index 0..zones-1
    zones: list[ZoneFigures]
    measures: Measures
    objective: float
    seed: int
    steps: int
    elapsed_s: float
    out_of_time: bool


def zone_count(n: int, *, zones: int | None = None, min_size: int = MIN_SIZE,
               max_size: int = MAX_SIZE) -> int:
    """The number of zones: `zones` if valid, else the fewest that fit; PartitionInfeasible if
    n units cannot be split into zones of min_size..max_size."""
    fewest, most = -(-n // max_size), n // min_size
    if n < 1 or not 1 <= min_size <= max_size or fewest > most:
        raise PartitionInfeasible(units=n, min_size=min_size, max_size=max_size)
    if zones is None:
        return fewest
    if not fewest <= zones <= most:
        raise PartitionInfeasible("网络区数量与每区单位数不相容", units=n, zones=zones,
                                  min_size=min_size, max_size=max_size)
    return zones


def pairs_of(assignment: Mapping[int, int]) -> set[Pair]:
    """Every pair of unit ids sharing a zone in a partition (history for the next one)."""
    members: dict[int, list[int]] = {}
    for unit_id, zone in assignment.items():
        members.setdefault(zone, []).append(unit_id)
    return {frozenset((a, b)) for ids in members.values()
            for i, a in enumerate(ids) for b in ids[i + 1:]}


def random_partition(units: Sequence[UnitInfo], *, seed: int, zones: int | None = None,
                     min_size: int = MIN_SIZE, max_size: int = MAX_SIZE) -> dict[int, int]:
    """A uniformly shuffled valid partition (the baseline): unit id -> zone index."""
    k = zone_count(len(units), zones=zones, min_size=min_size, max_size=max_size)
    rng = random.Random(seed)
    ids = [u.id for u in units]
    rng.shuffle(ids)
    sizes = _sizes(len(ids), k)
    rng.shuffle(sizes)
    slots = [z for z, size in enumerate(sizes) for _ in range(size)]
    return dict(zip(ids, slots, strict=True))


def measure(units: Sequence[UnitInfo], assignment: Mapping[int, int], *,
            history: Collection[Pair] = ()) -> Measures:
    """The measures of any partition of `units` (zone labels may be any integers)."""
    figures, history = zone_figures(units, assignment), set(history)
    members = [f.members for f in figures]
    strengths = [f.mean_strength for f in figures]
    groups = list(_groups(units, assignment).values())
    dominant = [max(Counter(u.nature for u in g).values()) / len(g) for g in groups]
    pairs = new = 0
    meets_new: set[int] = set()
    meets_old: set[int] = set()
    for g in groups:
        for i, a in enumerate(g):
            for b in g[i + 1:]:
                pairs += 1
                seen = meets_old if frozenset((a.id, b.id)) in history else meets_new
                seen.update((a.id, b.id))
                new += seen is meets_new
    return Measures(
        zones=len(figures), min_units=min(f.units for f in figures),
        max_units=max(f.units for f in figures),
        members_range=max(members) - min(members), members_cv=_cv(members),
        strength_range=max(strengths) - min(strengths), strength_cv=_cv(strengths),
        dominant_nature_share=sum(dominant) / len(dominant),
        districts_per_zone=sum(f.districts for f in figures) / len(figures),
        new_pair_share=new / pairs if pairs else 1.0,
        units_meeting_new=len(meets_new) / len(units),
        units_all_new=1 - len(meets_old) / len(units))


def zone_figures(units: Sequence[UnitInfo], assignment: Mapping[int, int]) -> list[ZoneFigures]:
    """Per-zone figures, in the order of the zone labels (`zone`: the label)."""
    return [ZoneFigures(zone=z, units=len(g), members=sum(u.member_count for u in g),
                        mean_strength=sum(u.strength for u in g) / len(g),
                        natures=len({u.nature for u in g}), districts=len({u.district for u in g}))
            for z, g in _groups(units, assignment).items()]


def objective(units: Sequence[UnitInfo], assignment: Mapping[int, int], *,
              history: Collection[Pair] = (), weights: Weights = Weights()) -> float:
    """The objective `propose` minimises, computed from scratch for any partition."""
    groups, history = list(_groups(units, assignment).values()), set(history)
    k, n = len(groups), len(units)
    mbar = sum(u.member_count for u in units) / k
    sbar = sum(u.strength for u in units) / n
    ss_m = sum((sum(u.member_count for u in g) - mbar) ** 2 for g in groups)
    ss_s = sum((sum(u.strength for u in g) / len(g) - sbar) ** 2 for g in groups)
    same_nature = same_district = old = 0
    for g in groups:
        same_nature += sum(c * (c - 1) // 2 for c in Counter(u.nature for u in g).values())
        same_district += sum(c * (c - 1) // 2 for c in Counter(u.district for u in g).values())
        old += sum(frozenset((a.id, b.id)) in history for i, a in enumerate(g) for b in g[i + 1:])
    cm, cs, ref = _scales(weights, k, n, mbar, sbar)
    return (cm * math.sqrt(ss_m) + cs * math.sqrt(ss_s)
            + (weights.nature * same_nature - weights.district * same_district
               + weights.history * old) / ref)


def propose(units: Sequence[UnitInfo], *, seed: int = 0, zones: int | None = None,
            history: Collection[Pair] = (), weights: Weights = Weights(),
            min_size: int = MIN_SIZE, max_size: int = MAX_SIZE,
            steps_per_unit: int = STEPS_PER_UNIT,
            min_steps: int = MIN_STEPS, time_budget_s: float = 50.0) -> Proposal:
    """Propose a partition of all `units` (see the module docstring for the objective)."""
    started = time.perf_counter()
    n = len(units)
    k = zone_count(n, zones=zones, min_size=min_size, max_size=max_size)
    if len({u.id for u in units}) != n:
        raise InvalidInput("单位编号重复", field="units")
    start = random_partition(units, seed=seed, zones=k, min_size=min_size,
                             max_size=max_size)
    zone_of = [start[u.id] for u in units]
    best, _, steps, out_of_time = _anneal(
        units, zone_of, k, history=history, weights=weights, rng=random.Random(seed),
        min_size=min_size, max_size=max_size, steps=max(steps_per_unit * n, min_steps),
        deadline=started + time_budget_s)
    assignment = {u.id: z for u, z in zip(units, best, strict=True)}
    return Proposal(
        assignment=assignment, zones=zone_figures(units, assignment),
        measures=measure(units, assignment, history=history),
        objective=objective(units, assignment, history=history, weights=weights), seed=seed,
        steps=steps, elapsed_s=time.perf_counter() - started, out_of_time=out_of_time)


def synthetic_units(n: int, *, seed: int, zones: int | None = None) -> list[UnitInfo]:
    """Demo-like units (services/demo.py): ~53 members each, strength 45-98, 8 districts, the
    first 40 % of one nature and the rest of five; `current_zone` splits them in order."""
    rng = random.Random(seed)
    weights = [rng.randint(20, 90) for _ in range(n)]
    scale = 5000 / 95 / (sum(weights) / n)
    sizes = _sizes(n, zone_count(n, zones=zones))
    current = [z for z, size in enumerate(sizes) for _ in range(size)]
    return [UnitInfo(id=i + 1, member_count=max(8, round(w * scale)), strength=rng.randint(45, 98),
                     nature="N0" if i < 0.4 * n else f"N{rng.randrange(5)}",
                     district=f"D{rng.randrange(8)}", current_zone=current[i])
            for i, w in enumerate(weights)]


# -- the search ------------------------------------------------------------------------------------

def _anneal(units: Sequence[UnitInfo], zone_of: list[int], k: int, *,
            history: Collection[Pair], weights: Weights, rng: random.Random, min_size: int,
            max_size: int, steps: int, deadline: float) -> tuple[list[int], float, int, bool]:
    """Simulated annealing from `zone_of` (changed in place); returns the best partition seen,
    its objective minus the start's (summed deltas), the steps taken and whether the deadline
    stopped it."""
    n = len(units)
    if k == 1 or steps <= 0:
        return zone_of[:], 0.0, 0, False
    index = {u.id: i for i, u in enumerate(units)}
    natures = {v: i for i, v in enumerate(sorted({u.nature for u in units}))}
    districts = {v: i for i, v in enumerate(sorted({u.district for u in units}))}
    nk, nd = len(natures), len(districts)
    unit_nat = [natures[u.nature] for u in units]
    unit_dis = [districts[u.district] for u in units]
    unit_mem = [float(u.member_count) for u in units]
    unit_str = [float(u.strength) for u in units]
    partners: list[list[int]] = [[] for _ in range(n)]
    for pair in history:
        a, b = (index.get(x) for x in pair) if len(pair) == 2 else (None, None)
        if a is not None and b is not None:
            partners[a].append(b)
            partners[b].append(a)
    partner_sets = [set(p) for p in partners]

    size, mem, stsum = [0] * k, [0.0] * k, [0.0] * k
    nat, dis, hist = [0] * (k * nk), [0] * (k * nd), [0] * (n * k)  # hist[i*k+z]: i's partners in z
    for i, z in enumerate(zone_of):
        size[z] += 1
        mem[z] += unit_mem[i]
        stsum[z] += unit_str[i]
        nat[z * nk + unit_nat[i]] += 1
        dis[z * nd + unit_dis[i]] += 1
        for j in partners[i]:
            hist[j * k + z] += 1
    mbar, sbar = sum(unit_mem) / k, sum(unit_str) / n
    cm, cs, ref = _scales(weights, k, n, mbar, sbar)
    wn, wd, wh = weights.nature / ref, weights.district / ref, weights.history / ref
    ss_m = sum((m - mbar) ** 2 for m in mem)
    ss_s = sum((s / c - sbar) ** 2 for s, c in zip(stsum, size))
    rm, rs = math.sqrt(ss_m), math.sqrt(ss_s)
    can_move = any(c > min_size for c in size) and any(c < max_size for c in size)
    p_move = 0.3 if can_move else 0.0
    rnd, sqrt, exp = rng.random, math.sqrt, math.exp

    def delta_of(i: int, b: int, j: int) -> tuple[float, float, float]:
        """The objective change of moving i to zone b (j < 0) or swapping i with j (in b), and
        the new sums of squares."""
        a = zone_of[i]
        ni, di = unit_nat[i], unit_dis[i]
        if j < 0:
            dm, ds, na, nb = unit_mem[i], unit_str[i], size[a] - 1, size[b] + 1
            pairs = (wn * (nat[b * nk + ni] - nat[a * nk + ni] + 1)
                     - wd * (dis[b * nd + di] - dis[a * nd + di] + 1)
                     + wh * (hist[i * k + b] - hist[i * k + a]))
        else:
            dm, ds, na, nb = unit_mem[i] - unit_mem[j], unit_str[i] - unit_str[j], size[a], size[b]
            nj, dj = unit_nat[j], unit_dis[j]
            pairs = wh * (hist[i * k + b] - hist[i * k + a] + hist[j * k + a] - hist[j * k + b]
                          - (2 if j in partner_sets[i] else 0))
            if ni != nj:
                pairs += wn * (nat[a * nk + nj] - nat[a * nk + ni] + 1
                               + nat[b * nk + ni] - nat[b * nk + nj] + 1)
            if di != dj:
                pairs -= wd * (dis[a * nd + dj] - dis[a * nd + di] + 1
                               + dis[b * nd + di] - dis[b * nd + dj] + 1)
        ma, mb = mem[a], mem[b]
        new_m = (ss_m - (ma - mbar) ** 2 - (mb - mbar) ** 2
                 + (ma - dm - mbar) ** 2 + (mb + dm - mbar) ** 2)
        sa, sb = stsum[a], stsum[b]
        new_s = (ss_s - (sa / size[a] - sbar) ** 2 - (sb / size[b] - sbar) ** 2
                 + ((sa - ds) / na - sbar) ** 2 + ((sb + ds) / nb - sbar) ** 2)
        new_m, new_s = max(new_m, 0.0), max(new_s, 0.0)
        return cm * (sqrt(new_m) - rm) + cs * (sqrt(new_s) - rs) + pairs, new_m, new_s

    def shift(i: int, a: int, b: int) -> None:
        zone_of[i] = b
        for z, sign in ((a, -1), (b, 1)):
            size[z] += sign
            mem[z] += sign * unit_mem[i]
            stsum[z] += sign * unit_str[i]
            nat[z * nk + unit_nat[i]] += sign
            dis[z * nd + unit_dis[i]] += sign
        for p in partners[i]:
            hist[p * k + a] -= 1
            hist[p * k + b] += 1

    uphill: list[float] = []  # the temperature's scale: uphill swaps from the start
    for _ in range(200):
        i, j = int(rnd() * n), int(rnd() * n)
        if zone_of[i] != zone_of[j] and (d := delta_of(i, zone_of[j], j)[0]) > 0:
            uphill.append(d)
    t_start = (sum(uphill) / len(uphill) if uphill else 1e-3) / math.log(1 / START_ACCEPT)
    t_end = t_start / COOLING
    f = best_f = 0.0  # the objective relative to the start
    best = zone_of[:]
    step, block, out_of_time = 0, 1000, False
    while step < steps:
        if time.perf_counter() > deadline:
            out_of_time = True
            break
        t = t_start * (t_end / t_start) ** (step / steps)
        for _ in range(min(block, steps - step)):
            i = int(rnd() * n)
            a = zone_of[i]
            if rnd() < p_move:  # move i to zone b
                b, j = int(rnd() * k), -1
                if b == a or size[a] <= min_size or size[b] >= max_size:
                    continue
            else:  # swap i with j
                j = int(rnd() * n)
                b = zone_of[j]
                if b == a:
                    continue
            d, new_m, new_s = delta_of(i, b, j)
            if d <= 0 or rnd() < exp(-d / t):
                shift(i, a, b)
                if j >= 0:
                    shift(j, b, a)
                ss_m, ss_s, rm, rs = new_m, new_s, sqrt(new_m), sqrt(new_s)
                f += d
                if f < best_f - 1e-12:
                    best_f, best = f, zone_of[:]
        step += min(block, steps - step)
    return best, best_f, step, out_of_time


def _scales(weights: Weights, k: int, n: int, mbar: float,
            sbar: float) -> tuple[float, float, float]:
    """Factors turning sqrt(sum of squares) into weighted CVs, and the reference pair count."""
    cm = weights.members / (mbar * math.sqrt(k)) if mbar > 0 else 0.0
    cs = weights.strength / (sbar * math.sqrt(k)) if sbar > 0 else 0.0
    ref = sum(c * (c - 1) / 2 for c in _sizes(n, k))
    return cm, cs, max(ref, 1.0)


def _sizes(n: int, k: int) -> list[int]:
    """The balanced zone sizes: n // k each, one more for the first n % k zones."""
    base, extra = divmod(n, k)
    return [base + 1] * extra + [base] * (k - extra)


def _groups(units: Sequence[UnitInfo], assignment: Mapping[int, int]) -> dict[int, list[UnitInfo]]:
    """The units of each zone, by zone label in order; `assignment` must cover exactly `units`."""
    if assignment.keys() != {u.id for u in units}:
        raise InvalidInput("分区与单位名单不一致", field="assignment")
    groups: dict[int, list[UnitInfo]] = {}
    for u in units:
        groups.setdefault(assignment[u.id], []).append(u)
    return dict(sorted(groups.items()))


def _cv(values: Iterable[float]) -> float:
    xs = list(values)
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs)) / mean if mean else 0.0
