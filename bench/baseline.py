"""The floors every figure is compared with, served by one process and measured in the same run:

- `GET /hello`: a bare aiohttp app, one handler, a small JSON object (the cost of HTTP alone);
- `POST /counter/{id}`: one raw asyncpg single-row `UPDATE bench_counter SET n = n + 1` through
  an asyncpg pool as large as zonehub's (the cost of HTTP plus one SQL round trip, no ORM),
  first spread over 1,000 rows, then all on one row (requests queue on its lock, as sign-ups to
  one activity do on the activity's row);
- `POST /txn/{id}`: one raw asyncpg transaction through the same pool: INSERT an order-like row
  into `bench_order`, then the same single-row UPDATE, then COMMIT (four round trips: BEGIN,
  INSERT, UPDATE, COMMIT). The floor of a money write such as paying an order and moving its
  running total (bench/funds.py compares with it; measured only when a figure needs it).

Served exactly like `zonehub serve` (own process, uvloop if importable, no access log). The
database comes from `--database-url` or `ZONEHUB_DATABASE_URL` (the harness passes the bench
database in the environment); without a PostgreSQL URL only `/hello` is served:

    python -m bench.baseline --port 8090 [--database-url postgres://127.0.0.1/zonehub_bench]
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]
from aiohttp import web
from yarl import URL

from bench.figure import Context, Figure, Result
from bench.loadgen import Request

LABEL = "bare aiohttp JSON handler"
UPDATE_LABEL = "raw asyncpg single-row UPDATE"
HOT_LABEL = "raw asyncpg UPDATE of one hot row (every request the same row)"
TXN_LABEL = "raw asyncpg transaction: INSERT + UPDATE"
PATH = "/hello"
UPDATE_PATH = "/counter/{id}"
TXN_PATH = "/txn/{id}"
COUNTER_ROWS = 1000
POOL_MAX = 20  # as zonehub's pool (services/db.py)
UPDATE_SQL = "UPDATE bench_counter SET n = n + 1 WHERE id = $1"
ORDER_SQL = ("INSERT INTO bench_order (counter_id, amount_fen, out_trade_no) "
             "VALUES ($1, $2, $3)")
POOL = web.AppKey("pool", asyncpg.Pool)


async def hello(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "baseline"})


async def bump(request: web.Request) -> web.Response:
    """One single-row UPDATE; 404 if the row is missing, so a wrong id cannot pass as work done."""
    status = await request.app[POOL].execute(UPDATE_SQL, int(request.match_info["id"]))
    if status != "UPDATE 1":
        raise web.HTTPNotFound()
    return web.json_response({"status": "ok"})


async def txn(request: web.Request) -> web.Response:
    """One transaction: INSERT an order row, UPDATE its counter row; 404 (rolled back) if the
    counter row is missing."""
    counter_id = int(request.match_info["id"])
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await conn.execute(ORDER_SQL, counter_id, 100 + counter_id, secrets.token_hex(12))
        status = await conn.execute(UPDATE_SQL, counter_id)
        if status != "UPDATE 1":
            raise web.HTTPNotFound()
    return web.json_response({"status": "ok"}, status=201)


def asyncpg_dsn(database_url: str) -> str | None:
    """The URL as asyncpg takes it (no tortoise pool options), or None if not PostgreSQL."""
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql"):
        return None
    return urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))


def pool_ctx(dsn: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """The pool, and the counter table with COUNTER_ROWS rows (created if missing)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=POOL_MAX)
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS bench_counter "
                               "(id integer PRIMARY KEY, n bigint NOT NULL DEFAULT 0)")
            await conn.execute("INSERT INTO bench_counter (id) SELECT generate_series(1, $1) "
                               "ON CONFLICT (id) DO NOTHING", COUNTER_ROWS)
            await conn.execute("CREATE TABLE IF NOT EXISTS bench_order (id bigserial PRIMARY KEY, "
                               "counter_id integer NOT NULL, amount_fen bigint NOT NULL, "
                               "out_trade_no varchar(32) NOT NULL UNIQUE, "
                               "created_at timestamptz NOT NULL DEFAULT now())")
        app[POOL] = pool
        yield
        await pool.close()

    return ctx


def create_app(database_url: str | None = None) -> web.Application:
    app = web.Application()
    app.router.add_get(PATH, hello)
    dsn = asyncpg_dsn(database_url) if database_url else None
    if dsn:
        app.cleanup_ctx.append(pool_ctx(dsn))
        app.router.add_post(UPDATE_PATH, bump)
        app.router.add_post(TXN_PATH, txn)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", default=os.environ.get("ZONEHUB_DATABASE_URL"),
                        help="PostgreSQL URL for the UPDATE baseline "
                             "(default: $ZONEHUB_DATABASE_URL)")
    args = parser.parse_args(argv)
    try:
        import uvloop  # as `zonehub serve` does

        uvloop.install()
    except ImportError:
        pass
    web.run_app(create_app(args.database_url), host=args.host, port=args.port, access_log=None,
                print=None)


async def run(ctx: Context) -> list[Result]:
    """Measure both floors with the same load as every figure; the bare handler comes first
    (it is the table's `vs baseline`)."""
    results = [await ctx.measure(LABEL, [Request.get(ctx.stack.baseline_url)])]
    if asyncpg_dsn(ctx.stack.database_url) is None:
        failure = f"needs PostgreSQL, the run uses {ctx.stack.database_kind}"
        return results + [Result(label=UPDATE_LABEL, failure=failure)]
    base = ctx.stack.baseline_url.removesuffix(PATH)
    # Consecutive requests hit different rows, as the figures' requests hit different members.
    requests = [Request("POST", URL(f"{base}/counter/{i}")) for i in range(1, COUNTER_ROWS + 1)]
    results.append(await ctx.measure(UPDATE_LABEL, requests))
    # Every sign-up to one activity locks that activity's row, so they queue on it as these do:
    # the floor of a path serialised on one row (what the spread UPDATE above never waits for).
    results.append(await ctx.measure(HOT_LABEL, [Request("POST", URL(f"{base}/counter/1"))]))
    return results


async def run_txn(ctx: Context) -> list[Result]:
    """The transaction floor, with the same load (run.py measures it when a selected figure
    compares with it, right after the other two)."""
    if asyncpg_dsn(ctx.stack.database_url) is None:
        failure = f"needs PostgreSQL, the run uses {ctx.stack.database_kind}"
        return [Result(label=TXN_LABEL, failure=failure)]
    base = ctx.stack.baseline_url.removesuffix(PATH)
    requests = [Request("POST", URL(f"{base}/txn/{i}")) for i in range(1, COUNTER_ROWS + 1)]
    return [await ctx.measure(TXN_LABEL, requests)]


FIGURE = Figure("baseline", run)
TXN_FIGURE = Figure("baseline-txn", run_txn)

if __name__ == "__main__":
    main()
