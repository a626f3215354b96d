"""The database is the last line of defence: when one of its constraints refuses a write that the
services did not foresee, the error a client sees names the condition, from the catalogue.

Unique constraints are told apart by table and columns (PostgreSQL says them in the error's
detail, SQLite in its message); CHECK constraints by their names, which the migrations give.
"""

from __future__ import annotations

import re
import sqlite3

import asyncpg
from tortoise.exceptions import IntegrityError, OperationalError

from services import errors

#: (table, columns) of a unique constraint -> the condition it guards.
UNIQUE: dict[tuple[str, tuple[str, ...]], type[errors.ServiceError]] = {
    ("zone", ("name",)): errors.ZoneNameTaken,
    ("unit", ("name",)): errors.UnitNameTaken,
    ("unit", ("invite_code",)): errors.InviteCodeTaken,
    ("member", ("phone", "unit_id")): errors.PhoneTaken,
    ("member", ("openid",)): errors.OpenidInUse,
    ("member", ("username",)): errors.UsernameTaken,
    ("signup", ("activity_id", "member_id")): errors.Conflict,
    ("contribution", ("campaign_id", "receipt_no", "unit_id")): errors.ReceiptNoTaken,
    ("contribution", ("idempotency_key", "member_id")): errors.IdempotencyKeyReused,
    ("contribution", ("reverses_id",)): errors.AlreadyReversed,
    ("fund_entry", ("reverses_id",)): errors.AlreadyReversed,
    ("fund_entry", ("idempotency_key", "zone_id")): errors.IdempotencyKeyReused,
    ("refund", ("contribution_id", "idempotency_key")): errors.IdempotencyKeyReused,
}

#: name of a CHECK constraint (or the trigger that plays it on SQLite) -> the condition.
CHECKS: dict[str, type[errors.ServiceError]] = {
    "activity_confirmed_within_capacity": errors.ActivityFull,
    "activity_counts_not_negative": errors.Conflict,
    "contribution_refunds_within_paid": errors.RefundExceedsPaid,
    "refund_amount_positive": errors.InvalidInput,
    "fund_entry_amount_not_zero": errors.InvalidInput,
    "campaign_amounts_positive": errors.InvalidInput,
    "rotation_quarter_1_to_4": errors.InvalidInput,
    "unit_strength_0_to_100": errors.InvalidInput,
}

_PG_KEY = re.compile(r"Key \((?P<cols>[^)]*)\)=")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<cols>.+)$")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (?P<name>\w+)")


def _original(exc: BaseException) -> BaseException:
    inner = exc.__cause__ or (exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None)
    return inner if inner is not None else exc


def _unique(table: str, columns: list[str]) -> errors.ServiceError:
    found = UNIQUE.get((table, tuple(sorted(columns))), errors.Conflict)
    return found(constraint="unique", fields=sorted(columns))


def from_integrity(exc: IntegrityError) -> errors.ServiceError:
    """The catalogue's error for a constraint the database enforced."""
    original = _original(exc)
    if isinstance(original, asyncpg.exceptions.UniqueViolationError):
        match = _PG_KEY.search(getattr(original, "detail", "") or "")
        columns = [c.strip() for c in match.group("cols").split(",")] if match else []
        return _unique(getattr(original, "table_name", "") or "", columns)
    if isinstance(original, asyncpg.exceptions.CheckViolationError):
        name = getattr(original, "constraint_name", "") or ""
        return CHECKS.get(name, errors.Conflict)(constraint=name)
    if isinstance(original, asyncpg.exceptions.ForeignKeyViolationError):
        return errors.Conflict("引用的记录不存在或仍被引用", constraint="foreign_key")
    text = str(original)
    if match := _SQLITE_UNIQUE.search(text):
        pairs = [c.strip().split(".", 1) for c in match.group("cols").split(",")]
        return _unique(pairs[0][0], [c for _, c in pairs])
    if match := _SQLITE_CHECK.search(text):
        return CHECKS.get(match.group("name"), errors.Conflict)(constraint=match.group("name"))
    if "FOREIGN KEY constraint failed" in text:
        return errors.Conflict("引用的记录不存在或仍被引用", constraint="foreign_key")
    return errors.Conflict()


def from_operational(exc: OperationalError) -> errors.ServiceError | None:
    """Busy for a lost lock race, 422 for data the database refuses; None: a real outage."""
    original = _original(exc)
    if isinstance(original, sqlite3.OperationalError) and "locked" in str(original):
        return errors.Busy()
    if isinstance(original, asyncpg.exceptions.DataError):
        return errors.InvalidInput(errors=[{"loc": ["body"], "msg": "数据库不接受该取值",
                                            "type": "data_error"}])
    return None
