"""Row locks, after pretix's `lock_objects`: every row lock in zonehub goes through `lock_rows`.

- It refuses to run outside a transaction (a lock released at once protects nothing).
- It locks in one fixed order — by table, in the order of `LOCK_ORDER`, then by id — so two
  requests never wait on each other in opposite orders.
- On PostgreSQL it waits at most `LOCK_TIMEOUT_MS` (`SET LOCAL lock_timeout`); a lock not had by
  then answers 409 `busy`, and the transaction changed nothing.
- On SQLite, which has one writer at a time, it takes the database write lock now (a no-op
  UPDATE of the rows), so the read that follows is already serialised with every writer, in
  this process and in others. The busy timeout (10 s) plays the lock timeout; "database is
  locked" answers 409 `busy` too.

It returns the ids it locked (those that exist): read the rows again after it, and branch on
what that read says, never on a copy read before.
"""

from __future__ import annotations

from collections.abc import Iterable

from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient

from services.db import fetch_rows

LOCK_TIMEOUT_MS = 5_000
#: Tables in the order their rows are locked when one transaction locks several.
LOCK_ORDER = ("zone", "campaign", "activity", "activity_unit_seats", "signup")


class NotInTransaction(RuntimeError):
    """A programming error: locks are taken inside `in_transaction()`."""


def _check_order(table: str) -> None:
    if table not in LOCK_ORDER:
        raise ValueError(f"{table} is not a lockable table (LOCK_ORDER)")


async def lock_rows(table: str, ids: Iterable[int], *, timeout_ms: int = LOCK_TIMEOUT_MS) -> list[int]:
    """Lock the rows of `table` with these ids, in id order, inside the current transaction;
    returns the ids locked (the rows that exist)."""
    _check_order(table)
    wanted = sorted(set(ids))
    if not wanted:
        return []
    conn = connections.get("default")
    if not isinstance(conn, TransactionalDBClient):
        raise NotInTransaction(f"lock_rows({table}) outside a transaction")
    marks = ", ".join(f"${i + 1}" for i in range(len(wanted)))
    if conn.capabilities.dialect == "postgres":
        await conn.execute_script(f"SET LOCAL lock_timeout = '{int(timeout_ms)}ms'")
        rows = await fetch_rows(f"SELECT id FROM {table} WHERE id IN ({marks}) ORDER BY id FOR UPDATE",
                                *wanted)
    else:
        rows = await fetch_rows(f"UPDATE {table} SET id = id WHERE id IN ({marks}) RETURNING id", *wanted)
    return sorted(r[0] for r in rows)


async def lock_row(table: str, row_id: int, *, timeout_ms: int = LOCK_TIMEOUT_MS) -> bool:
    """`lock_rows` for one row: whether it exists (and is now locked)."""
    return bool(await lock_rows(table, [row_id], timeout_ms=timeout_ms))
