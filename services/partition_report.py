"""A proposal beside today's partition and random ones (services/partition.py measures each):
the comparison the committee reads, and its text table (`zonehub partition`, bench/partition.py)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import astuple, dataclass, fields

from services.partition import (
    Measures,
    Pair,
    Proposal,
    UnitInfo,
    measure,
    objective,
    propose,
    random_partition,
)


@dataclass(frozen=True, slots=True)
class Comparison:
    """The proposal beside today's partition (None when a unit has no zone) and the mean of
    `randoms` random valid partitions, each column's measures and objective."""

    proposal: Proposal
    today: tuple[Measures, float] | None
    random: tuple[Measures, float]
    randoms: int

    def columns(self) -> dict[str, tuple[Measures, float]]:
        return {**({"today": self.today} if self.today else {}),
                f"random (mean of {self.randoms})": self.random,
                "proposal": (self.proposal.measures, self.proposal.objective)}


def compare(units: Sequence[UnitInfo], *, seed: int, zones: int | None = None,
            history: Collection[Pair] = (), randoms: int = 20, time_budget_s: float = 50.0,
            **options: int) -> Comparison:
    """Propose, and measure today's partition (`current_zone`) and `randoms` random ones the
    same way (random seeds seed..seed+randoms-1). `options`: steps_per_unit, min_steps."""
    history = set(history)
    proposal = propose(units, seed=seed, zones=zones, history=history,
                       time_budget_s=time_budget_s, **options)
    today_zones = {u.id: u.current_zone for u in units}
    today = None
    if all(z is not None for z in today_zones.values()):
        today = (measure(units, today_zones, history=history),  # type: ignore[arg-type]
                 objective(units, today_zones, history=history))  # type: ignore[arg-type]
    rands = [random_partition(units, seed=seed + r, zones=proposal.measures.zones)
             for r in range(randoms)]
    random_column = (mean_measures([measure(units, r, history=history) for r in rands]),
                     sum(objective(units, r, history=history) for r in rands) / randoms)
    return Comparison(proposal=proposal, today=today, random=random_column, randoms=randoms)


def mean_measures(ms: Sequence[Measures]) -> Measures:
    return Measures(*(sum(col) / len(ms) for col in zip(*(astuple(m) for m in ms), strict=True)))


TABLE_ROWS = [  # (Measures field, label, format)
    ("min_units", "units per zone, min", "{:.0f}"),
    ("max_units", "units per zone, max", "{:.0f}"),
    ("members_range", "members per zone, max-min", "{:.0f}"),
    ("members_cv", "members per zone, CV", "{:.3f}"),
    ("strength_range", "mean strength, max-min", "{:.1f}"),
    ("strength_cv", "mean strength, CV", "{:.3f}"),
    ("dominant_nature_share", "dominant nature share (mean)", "{:.3f}"),
    ("districts_per_zone", "districts per zone (mean)", "{:.2f}"),
    ("new_pair_share", "pairs new vs history", "{:.3f}"),
    ("units_meeting_new", "units meeting >= 1 new partner", "{:.3f}"),
    ("units_all_new", "units with only new partners", "{:.3f}"),
]


def table(columns: Mapping[str, tuple[Measures, float]]) -> list[str]:
    """The columns' measures side by side, a row per measure and the objective last (text)."""
    names = list(columns)
    lines = [f"{'':32}" + "".join(f"{n:>22}" for n in names)]
    values = {n: {f.name: getattr(m, f.name) for f in fields(m)} for n, (m, _) in columns.items()}
    for key, label, fmt in TABLE_ROWS:
        lines.append(f"{label:32}" + "".join(f"{fmt.format(values[n][key]):>22}" for n in names))
    lines.append(f"{'objective (lower is better)':32}"
                 + "".join(f"{columns[n][1]:>22.3f}" for n in names))
    return lines
