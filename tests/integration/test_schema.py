"""The database the migrations build holds every constraint the models declare: each
unique_together and index, and each named CHECK (PostgreSQL constraints, SQLite triggers). On
SQLite tortoise rebuilds a table to add a NOT NULL column and the rebuilt table lost its
constraints; `services.db.repair_sqlite` puts them back after every migration."""

from __future__ import annotations

from typing import Any

from tortoise import connections

from services.db import _checks_migration, _model_constraints, fetch_rows


async def _present(table: str) -> set[tuple[frozenset[str], bool]]:
    conn = connections.get("default")
    if conn.capabilities.dialect == "sqlite":
        out = set()
        for _, name, unique, *_ in await fetch_rows(f"PRAGMA index_list('{table}')"):
            cols = frozenset(r[2] for r in await fetch_rows(f"PRAGMA index_info('{name}')"))
            out.add((cols, bool(unique)))
        return out
    rows = await fetch_rows(
        "SELECT i.indisunique AS u, array_agg(a.attname::text) AS cols FROM pg_index i "
        "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_attribute a ON a.attrelid = t.oid "
        "AND a.attnum = ANY(i.indkey) WHERE t.relname = $1 GROUP BY i.indexrelid, i.indisunique", table)
    return {(frozenset(cols), bool(u)) for u, cols in rows}


async def test_every_declared_unique_and_index_exists(db: Any) -> None:
    missing = []
    for table, columns, unique in _model_constraints():
        present = await _present(table)
        if not any(cols == frozenset(columns) and (u or not unique) for cols, u in present):
            missing.append((table, columns, "unique" if unique else "index"))
    assert missing == []


async def test_every_named_check_exists(db: Any) -> None:
    conn = connections.get("default")
    names = {name for _, name, _ in _checks_migration().CHECKS}
    if conn.capabilities.dialect == "sqlite":
        triggers = {r[0] for r in await fetch_rows("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert {f"{n}_{e}" for n in names for e in ("insert", "update")} <= triggers
    else:
        found = {r[0] for r in await fetch_rows("SELECT conname FROM pg_constraint WHERE contype = 'c'")}
        assert names <= found
