"""The results as a plain table (stdout) and as JSON (bench/results/latest.json)."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.figure import Result
from bench.stack import REPO, Stack

HEADER = ("req/s", "p50 ms", "p99 ms", "errors", "vs baseline")


def machine_facts(stack: Stack, *, event_loop: str) -> dict[str, Any]:
    """What the figures depend on: cores, Python, database, Redis, event loop, date."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "aiohttp": version("aiohttp"),
        "event_loop": event_loop,
        "database": stack.database_kind,
        "redis": stack.redis_version,
        "commit": _commit(),
    }


def _commit() -> str | None:
    """The checked-out commit, read from .git without running git."""
    try:
        head = (REPO / ".git" / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        loose = REPO / ".git" / ref
        if loose.exists():
            return loose.read_text().strip()
        for line in (REPO / ".git" / "packed-refs").read_text().splitlines():
            if line.endswith(f" {ref}"):
                return line.split()[0]
    except OSError:
        pass
    return None


def ratio(result: Result, baseline: Result | None) -> float | None:
    """result's rate over the baseline's, measured in the same run."""
    if result.stats is None or baseline is None or baseline.stats is None:
        return None
    return result.stats.rate / baseline.stats.rate if baseline.stats.rate else None


def table(results: list[Result], baseline: Result | None) -> str:
    width = max([30, *(len(r.label) for r in results)]) + 2
    header = (f"{'figure':<{width}}{HEADER[0]:>8}{HEADER[1]:>9}{HEADER[2]:>9}"
              f"{HEADER[3]:>8}{HEADER[4]:>13}")
    lines = [header]
    for result in results:
        lines.append(f"{result.label:<{width}}{_row(result, baseline)}")
    return "\n".join(lines)


def _row(result: Result, baseline: Result | None) -> str:
    s = result.stats
    if s is None:
        return f"failed: {result.failure}"
    r = ratio(result, baseline)
    p50, p99 = (f"{s.p50_ms:.1f}", f"{s.p99_ms:.1f}") if s.requests else ("-", "-")
    return (f"{s.rate:>8,.0f}{p50:>9}{p99:>9}{s.errors:>8}"
            f"{'' if r is None else f'{r:.2f}':>13}")


def facts_line(facts: dict[str, Any], *, connections: int, duration_s: float,
               warmup_s: float) -> str:
    return (f"{facts['date']}  nproc {facts['nproc']}  {facts['python']}  "
            f"aiohttp {facts['aiohttp']} ({facts['event_loop']})  {facts['database']}  "
            f"Redis {facts['redis']}\n{connections} connections, {duration_s:g} s after "
            f"{warmup_s:g} s warm-up, load generator in its own process on the same machine")


def error_details(results: list[Result]) -> str:
    """Each error kind with its count, for the figures that had errors."""
    lines = []
    for result in results:
        if result.failure:
            lines.append(f"{result.label}: {result.failure}")
        elif result.stats and result.stats.errors:
            lines.append(f"{result.label}: {result.stats.errors} errors")
            lines += [f"  {n:>7}  {kind}" for kind, n in result.stats.error_kinds.items()]
    return "\n".join(lines)


def document(results: list[Result], baseline: Result | None, facts: dict[str, Any],
             settings: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for result in results:
        row: dict[str, Any] = {"label": result.label, "failure": result.failure}
        row.update(asdict(result.stats) if result.stats else {})
        row["vs_baseline"] = ratio(result, baseline)
        rows.append(row)
    return {"machine": facts, "settings": settings, "results": rows}


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
