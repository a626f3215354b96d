"""scripts/bench's figure selection: opt-in figures (minutes long) run only when named."""

from __future__ import annotations

from bench.baseline import TXN_LABEL
from bench.run import OPT_IN, SQL_BASELINES, parse_args, selected


def test_the_default_run_leaves_the_opt_in_figures_out() -> None:
    names = [f.name for f in selected(parse_args([]))]
    assert "dues_day" in OPT_IN
    assert "dues_day" not in names
    assert "funds" in names and "notices" in names


def test_only_selects_an_opt_in_figure_with_its_transaction_baseline() -> None:
    assert [f.name for f in selected(parse_args(["--only", "dues_day"]))] == ["dues_day"]
    assert SQL_BASELINES["dues_day"] == TXN_LABEL
