"""Database set-up: one Tortoise config for the server, the worker, the CLI and the tests."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tortoise import Tortoise, connections
from tortoise import context as tortoise_context
from tortoise.context import TortoiseContext

from models import APP_LABEL, MIGRATIONS_MODULE, MODEL_MODULES


def tortoise_config(database_url: str, *, pool_max: int = 20) -> dict[str, Any]:
    """Build the Tortoise config; SQLite gets WAL + synchronous=NORMAL + a busy timeout."""
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
            },
        }
    return {
        "connections": {"default": connection},
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


async def init_db(database_url: str, *, pool_max: int = 20) -> TortoiseContext:
    """Initialise Tortoise. The first context of a process is also its global fallback, so
    tasks that did not inherit it (aiohttp cleanup, arq jobs) still find it."""
    return await Tortoise.init(config=tortoise_config(database_url, pool_max=pool_max),
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


_PLACEHOLDER = re.compile(r"\$\d+")


async def fetch_rows(sql: str, *args: Any) -> list[Any]:
    """Hot paths: hand-written SQL with $1..$n placeholders (rewritten to ?1..?n for SQLite, so
    a parameter may appear twice), so no query is built per request. Rows come back as tuples:
    give every column a distinct name (the driver's rows are read as dicts)."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "sqlite":
        sql = _PLACEHOLDER.sub(lambda m: "?" + m.group(0)[1:], sql)
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
