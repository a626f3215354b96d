"""`scripts/bench [--duration S] [--connections N] [--only NAME]...`

Starts the stack (bench/stack.py), measures the baselines (the bare aiohttp handler, one raw
asyncpg UPDATE and, when a selected figure compares with it, one raw asyncpg INSERT + UPDATE
transaction) and then every figure in FIGURES with the same closed-loop load, prints a table with
each figure's ratio to the bare handler, then each figure's ratio to its SQL baseline (the raw
UPDATE, or the one named in SQL_BASELINES), and writes both to bench/results/latest.json.
Exits 1 if any figure had errors, 2 if the stack could not start. Figures are reported, never
asserted.

To add a figure: write bench/<name>.py with `async def run(ctx: Context) -> list[Result]` and
`FIGURE = Figure("<name>", run)` (see bench/me.py), then append it to FIGURES in bench/run.py.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from bench import baseline, checkins, dues_day, escalation, funds, me, notices, signups
from bench.figure import Context, Figure, Result
from bench.report import (
    document,
    error_details,
    facts_line,
    machine_facts,
    ratio,
    table,
    write_json,
)
from bench.stack import RESULTS_DIR, StackError, open_stack

# funds before notices: notices leaves its `zonehub worker` (and its crons) running to the end.
FIGURES: list[Figure] = [me.FIGURE, signups.FIGURE, checkins.FIGURE, escalation.FIGURE,
                         funds.FIGURE, notices.FIGURE, dues_day.FIGURE]
#: Figures run only when named with --only (they take minutes).
OPT_IN: set[str] = {dues_day.FIGURE.name}
#: The SQL baseline a figure's rows are compared with, when not the single-row UPDATE.
SQL_BASELINES: dict[str, str] = {funds.FIGURE.name: baseline.TXN_LABEL,
                                 dues_day.FIGURE.name: baseline.TXN_LABEL}

LATEST = RESULTS_DIR / "latest.json"
SERVER_LOG_LINES = 40


@dataclass(frozen=True)
class Options:
    duration_s: float
    connections: int
    warmup_s: float
    only: list[str]
    api_workers: int = 1


def parse_args(argv: Sequence[str] | None = None) -> Options:
    names = [f.name for f in FIGURES]
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per figure")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument("--warmup", type=float, default=1.5,
                        help="seconds of unmeasured load first")
    parser.add_argument("--only", action="append", choices=names, metavar="NAME", default=[],
                        help=f"run only this figure (repeatable; the baseline always runs): "
                             f"{', '.join(names)}; without --only every figure but the "
                             f"opt-in {', '.join(sorted(OPT_IN))}")
    parser.add_argument("--api-workers", type=int, default=1,
                        help="API processes (zonehub serve --workers N)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.connections < 1 or args.warmup < 0 or args.api_workers < 1:
        parser.error("--duration must be > 0, --connections >= 1, --warmup >= 0, --api-workers >= 1")
    return Options(duration_s=args.duration, connections=args.connections,
                   warmup_s=args.warmup, only=args.only, api_workers=args.api_workers)


def selected(opts: Options) -> list[Figure]:
    if opts.only:
        return [f for f in FIGURES if f.name in opts.only]
    return [f for f in FIGURES if f.name not in OPT_IN]


async def run_figure(ctx: Context, figure: Figure) -> list[Result]:
    """The figure's results; a figure that raises becomes one failed row, the run goes on."""
    print(f"bench: {figure.name} …", file=sys.stderr, flush=True)
    try:
        return await figure.run(ctx)
    except Exception as exc:  # noqa: BLE001 - reported as a failed row
        traceback.print_exc(file=sys.stderr)
        return [Result(label=figure.name, failure=f"{type(exc).__name__}: {exc}"[:300])]


def _sql_baselines(results: list[Result]) -> dict[str, Result]:
    """The measured SQL baseline rows (raw asyncpg UPDATE, transaction) by label."""
    labels = {baseline.UPDATE_LABEL, *SQL_BASELINES.values()}
    return {r.label: r for r in results if r.label in labels and r.stats}


def sql_baseline_of(owner: str) -> str:
    """The label of the SQL baseline the rows of figure `owner` are compared with."""
    return SQL_BASELINES.get(owner, baseline.UPDATE_LABEL)


def sql_ratios(results: list[Result], owners: list[str], bases: dict[str, Result]) -> str:
    """Each row's rate over its SQL baseline's, measured in the same run, grouped by baseline."""
    width = max([30, *(len(r.label) for r in results)]) + 2
    lines: list[str] = []
    for label in dict.fromkeys(sql_baseline_of(o) for o in owners):
        rows = [r for r, o in zip(results, owners, strict=True) if sql_baseline_of(o) == label]
        base = bases.get(label)
        if base is None:
            lines.append(f"\nvs {label}: not measured")
            continue
        lines.append(f"\n{'vs ' + label:<{width}}{'ratio':>8}")
        for result in rows:
            r = ratio(result, base)
            if r is not None:
                lines.append(f"{result.label:<{width}}{r:>8.2f}")
    return "\n".join(lines)


def _cancel_on_sigterm() -> None:
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def bench(opts: Options, *, event_loop: str) -> int:
    """Run everything; print the table; the exit status."""
    _cancel_on_sigterm()
    print("bench: preparing database, Redis and servers …", file=sys.stderr, flush=True)
    async with open_stack(api_workers=opts.api_workers) as stack, aiohttp.ClientSession() as session:
        ctx = Context(stack=stack, session=session, connections=opts.connections,
                      duration_s=opts.duration_s, warmup_s=opts.warmup_s)
        results = await run_figure(ctx, baseline.FIGURE)
        if any(f.name in SQL_BASELINES for f in selected(opts)):
            results += await run_figure(ctx, baseline.TXN_FIGURE)
        owners = [baseline.FIGURE.name] * len(results)
        for figure in selected(opts):
            rows = await run_figure(ctx, figure)
            results += rows
            owners += [figure.name] * len(rows)
        facts = machine_facts(stack, event_loop=event_loop)
        server_log = stack.processes.log_path("serve")
        server_tail = stack.processes.log_tail("serve", SERVER_LOG_LINES)
    base = results[0] if results[0].stats else None
    sql_bases = _sql_baselines(results)
    print(facts_line(facts, connections=opts.connections, duration_s=opts.duration_s,
                     warmup_s=opts.warmup_s))
    print(table(results, base))
    print(sql_ratios(results, owners, sql_bases))
    doc = document(results, base, facts, settings={
        "connections": opts.connections, "duration_s": opts.duration_s,
        "warmup_s": opts.warmup_s, "figures": [f.name for f in selected(opts)]})
    for row, result, owner in zip(doc["results"], results, owners, strict=True):
        row["sql_baseline"] = sql_baseline_of(owner)
        row["vs_sql_baseline"] = ratio(result, sql_bases.get(row["sql_baseline"]))
    write_json(LATEST, doc)
    print(f"\n(written to {LATEST.relative_to(RESULTS_DIR.parent.parent)})")
    if not any(r.errors for r in results):
        return 0
    print(f"\nerrors:\n{error_details(results)}\n\nlast {SERVER_LOG_LINES} lines of {server_log}:\n"
          f"{server_tail}")
    return 1


def _loop_factory() -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    try:
        import uvloop
    except ImportError:
        return None, "asyncio"
    return uvloop.new_event_loop, "uvloop"


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    factory, name = _loop_factory()
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(bench(opts, event_loop=name))
    except StackError as exc:
        print(f"bench: the stack did not start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        return 130
    except asyncio.CancelledError:  # SIGTERM
        print("bench: terminated; servers stopped", file=sys.stderr)
        return 143


if __name__ == "__main__":
    sys.exit(main())
