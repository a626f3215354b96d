"""The work ledger and the year-end evaluation on the demo city's year: what each step costs.

    python -m bench.ledger [--database-url URL] [--repeat 5]

Loads the demo city (its lived-in year) into a fresh database — a SQLite file in a temporary
directory, or the empty database `--database-url` names (e.g. a PostgreSQL one made for it) —
then times, `--repeat` times each, in this process: reading the year (`year_facts.gather`: a
dozen queries for the whole city), composing the ledger's sections, computing the evaluation,
and writing the XLSX workbook. Prints the median and the worst run, and the ledger's size."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from services import clock, evaluation, ledger_xlsx, work_ledger
from services.db import close_db, init_db, migrate_db
from services.demo import load_demo
from services.year_facts import gather


async def _timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float, Any]:
    runs, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = await fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), max(runs), out


async def run(url: str, repeat: int) -> None:
    await migrate_db(url)
    await init_db(url)
    try:
        await load_demo(admin_password="bench-admin-password")
        year = clock.now().astimezone(clock.SHANGHAI).year
        facts_t = await _timed(lambda: gather(year), repeat)
        facts = facts_t[2]

        async def compose() -> Any:
            return work_ledger.compose(facts, zone_id=None, unit_id=None)

        async def score() -> Any:
            return evaluation.compute(facts, evaluation.DEFAULT_WEIGHTS)

        book_t = await _timed(compose, repeat)
        score_t = await _timed(score, repeat)

        async def xlsx() -> Any:
            return ledger_xlsx.workbook(book_t[2], score_t[2])

        xlsx_t = await _timed(xlsx, repeat)
    finally:
        await close_db()
    rows = sum(len(s["rows"]) for s in book_t[2]["sections"])
    print(f"demo city, year {year}: {len(book_t[2]['sections'])} sections, {rows:,} rows; "
          f"workbook {len(xlsx_t[2]):,} bytes; {repeat} runs each, median / worst (ms)")
    for label, (median, worst, _) in (("read the year (year_facts.gather)", facts_t),
                                      ("compose the ledger", book_t), ("compute the evaluation", score_t),
                                      ("write the XLSX workbook", xlsx_t)):
        print(f"  {label:<38} {median * 1000:8.1f} {worst * 1000:8.1f}")
    print(f"  city: {book_t[2]['city']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.database_url:
        asyncio.run(run(args.database_url, args.repeat))
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(f"sqlite://{Path(tmp) / 'ledger.sqlite3'}", args.repeat))


if __name__ == "__main__":
    main()
