"""Database set-up: one Tortoise config for the server, the worker, the CLI and the tests."""

from __future__ import annotations

import asyncio
import functools
import os
import re
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tortoise import Tortoise, connections
from tortoise import context as tortoise_context
from tortoise.context import TortoiseContext

from models import APP_LABEL, MIGRATIONS_MODULE, MODEL_MODULES


async def _keep_session(_connection: Any) -> None:
    """The pool's reset of a returned connection: nothing beyond asyncpg's own ROLLBACK of a
    transaction left open. Its default (`RESET ALL; UNLISTEN *; CLOSE ALL; advisory unlock`) is
    a round trip after every statement run outside a transaction — the hot paths' single
    statements — and zonehub keeps no session state to undo: settings are `SET LOCAL` or
    `set_config(…, true)` (the transaction's), no LISTEN, cursors or advisory locks."""


def tortoise_config(database_url: str, *, pool_max: int = 20, read_url: str | None = None) -> dict[str, Any]:
    """Build the Tortoise config; SQLite gets WAL + synchronous=NORMAL + a busy timeout. With
    `read_url` (a PostgreSQL read replica), reads inside `on_replica` go there."""
    connections_ = {"default": _connection(database_url, pool_max)}
    if read_url:
        connections_["replica"] = _connection(read_url, pool_max)
    return {
        "connections": connections_,
        # without a replica no router at all: not a function call more per query
        **({"routers": ["services.db.ReplicaRouter"]} if read_url else {}),
        "apps": {
            APP_LABEL: {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _connection(database_url: str, pool_max: int) -> Any:
    if database_url.startswith("sqlite://"):
        raw = database_url.removeprefix("sqlite://")
        path, _, query = raw.partition("?")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        credentials: dict[str, Any] = {
            "file_path": path,
            "journal_mode": "WAL",
            "synchronous": "NORMAL",
            "busy_timeout": 10000,
            "foreign_keys": "ON",
        }
        credentials.update(dict(parse_qsl(query)))
        connection: Any = {"engine": "tortoise.backends.sqlite", "credentials": credentials}
    else:
        parts = urlsplit(database_url)
        query = dict(parse_qsl(parts.query))
        connection = {
            "engine": "tortoise.backends.asyncpg",
            "credentials": {
                "host": parts.hostname or "127.0.0.1",
                "port": parts.port or 5432,
                "user": parts.username or "postgres",
                "password": parts.password or "",
                "database": (parts.path or "/postgres").lstrip("/") or "postgres",
                "minsize": int(query.get("minsize", 1)),
                "maxsize": int(query.get("maxsize", pool_max)),
                "reset": _keep_session,
            },
        }
    return connection


# -- the read replica ----------------------------------------------------------------------------

_replica_reads: ContextVar[bool] = ContextVar("zonehub_replica_reads", default=False)


class ReplicaRouter:
    """Tortoise router: ORM reads go to the "replica" connection inside `on_replica` when one is
    configured (ZONEHUB_DATABASE_READ_URL); every write, and every read elsewhere, to "default"."""

    def db_for_read(self, model: Any) -> str:
        return "replica" if _replica_reads.get() else "default"

    def db_for_write(self, model: Any) -> str:
        return "default"  # inside a transaction: the transaction's connection


def on_replica(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """For heavy reads that may lag the primary by a moment (the ledgers, the evaluation, the
    supervision dashboard, a member's export): their ORM reads go to the replica, if any
    (without one, no router is installed and this changes nothing)."""

    @functools.wraps(fn)
    async def reading(*args: Any, **kwargs: Any) -> Any:
        token = _replica_reads.set(True)
        try:
            return await fn(*args, **kwargs)
        finally:
            _replica_reads.reset(token)

    return reading


async def init_db(database_url: str, *, pool_max: int = 20, read_url: str | None = None) -> TortoiseContext:
    """Initialise Tortoise. The first context of a process is also its global fallback, so
    tasks that did not inherit it (aiohttp cleanup, arq jobs) still find it."""
    return await Tortoise.init(config=tortoise_config(database_url, pool_max=pool_max, read_url=read_url),
                               _enable_global_fallback=tortoise_context._global_context is None)


async def close_db() -> None:
    ctx = tortoise_context.get_current_context()
    if ctx is not None:
        await ctx.close_connections()


async def migrate_db(database_url: str) -> None:
    """Apply the committed migrations (tortoise-orm's built-in migration engine)."""
    from tortoise.migrations.api import migrate

    await migrate(config=tortoise_config(database_url))
    await connections.close_all()
    if database_url.startswith("sqlite"):
        await asyncio.to_thread(repair_sqlite, database_url)


def _model_constraints() -> list[tuple[str, tuple[str, ...], bool]]:
    """(table, columns, unique) of every model's unique_together and indexes."""
    import importlib

    from tortoise.models import Model

    from models import MODEL_MODULES

    out: list[tuple[str, tuple[str, ...], bool]] = []
    for module_name in MODEL_MODULES:
        module = importlib.import_module(module_name)
        for cls in vars(module).values():
            if not (isinstance(cls, type) and issubclass(cls, Model) and cls.__module__ == module_name):
                continue
            meta = cls._meta

            def column(name: str, meta: Any = meta) -> str:
                field = meta.fields_map.get(name)
                return getattr(field, "source_field", None) or (
                    f"{name}_id" if type(field).__name__.startswith("ForeignKey") else name)

            for fields in meta.unique_together or ():
                out.append((meta.db_table, tuple(column(f) for f in fields), True))
            for index in meta.indexes or ():
                out.append((meta.db_table, tuple(column(f) for f in getattr(index, "fields", index)), False))
    return out


def repair_sqlite(database_url: str) -> list[str]:
    """SQLite only: tortoise rebuilds a table to add a NOT NULL column, and the rebuilt table loses
    its multi-column unique constraints, its indexes and its CHECK triggers (0004 and 0008 did).
    Put back whatever is missing (idempotent; run after every migration). Returns what it made."""
    import sqlite3

    from tortoise.backends.base.config_generator import expand_db_url

    path = expand_db_url(database_url)["credentials"]["file_path"]
    made: list[str] = []
    with sqlite3.connect(path) as db:
        for table, columns, unique in _model_constraints():
            present = {frozenset(c[2] for c in db.execute(f"PRAGMA index_info('{ix[1]}')"))
                       for ix in db.execute(f"PRAGMA index_list('{table}')") if ix[2] or not unique}
            if frozenset(columns) in present:
                continue
            name = f"{'uid' if unique else 'idx'}_{table}_{'_'.join(columns)}"[:60]
            cols = ", ".join(f'"{c}"' for c in columns)
            db.execute(f'CREATE {"UNIQUE " if unique else ""}INDEX IF NOT EXISTS "{name}" ON "{table}" ({cols})')
            made.append(name)
        checks = _checks_migration()
        triggers = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        for table, name, condition in checks.CHECKS:
            for event in ("INSERT", "UPDATE"):
                trigger = f"{name}_{event.lower()}"
                if trigger not in triggers:
                    db.executescript(checks.trigger_sql(table, name, condition, event))
                    made.append(trigger)
    return made


def _checks_migration() -> Any:
    """models/migrations/0006_checks.py (a module name that starts with a digit)."""
    import importlib

    return importlib.import_module("models.migrations.0006_checks")


_PLACEHOLDER = re.compile(r"\$\d+")
_WRITES = ("INSERT", "UPDATE", "DELETE")


async def fetch_rows(sql: str, *args: Any) -> list[Any]:
    """Hot paths: hand-written SQL with $1..$n placeholders (rewritten to ?1..?n for SQLite, so
    a parameter may appear twice), so no query is built per request. Rows come back as tuples:
    give every column a distinct name (a write's RETURNING rows, and SQLite's, are read as dicts)."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "sqlite":
        sql = _PLACEHOLDER.sub(lambda m: "?" + m.group(0)[1:], sql)
    elif sql.lstrip()[:6].upper() not in _WRITES:
        # A SELECT (or a WITH): asyncpg's own records, as tuples; execute_query_dict would make a
        # dict of every row first (half the cost of a 500-row escalation scan).
        _, records = await conn.execute_query(sql, list(args))
        return [tuple(r) for r in records]
    # execute_query_dict always fetches (execute_query drops an UPDATE's RETURNING rows on asyncpg)
    rows = await conn.execute_query_dict(sql, list(args))
    return [tuple(r.values()) for r in rows]


async def ping_db() -> None:
    conn = connections.get("default")
    await conn.execute_query("SELECT 1")


def __getattr__(name: str) -> Any:
    # `tortoise -c services.db.MIGRATION_CONFIG makemigrations` (see `zonehub makemigrations`)
    if name == "MIGRATION_CONFIG":
        return tortoise_config(os.environ.get("ZONEHUB_MIGRATION_DB", "sqlite://var/makemigrations.sqlite3"))
    raise AttributeError(name)
