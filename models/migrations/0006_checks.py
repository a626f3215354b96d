"""CHECK constraints: what the database can hold about the figures, it holds.

PostgreSQL gets real CHECK constraints. SQLite cannot add one to an existing table without
rebuilding it (which would drop its unique constraints and indexes), so there each check is a
pair of triggers that refuse the same rows with the same name in the message
("CHECK constraint failed: <name>"), which services/constraints.py maps to the catalogue's error.
"""

import re

from tortoise import migrations
from tortoise.migrations import operations as ops

CHECKS = [
    ("activity", "activity_confirmed_within_capacity", "capacity IS NULL OR confirmed <= capacity"),
    ("activity", "activity_counts_not_negative",
     "confirmed >= 0 AND waitlisted >= 0 AND checked_in >= 0"),
    ("activity_unit_seats", "activity_unit_seats_not_negative", "confirmed >= 0"),
    ("contribution", "contribution_refunds_within_paid",
     "refunded_fen >= 0 AND refund_reserved_fen >= 0 AND amount_fen <> 0 AND "
     "(amount_fen < 0 OR refunded_fen + refund_reserved_fen <= amount_fen)"),
    ("refund", "refund_amount_positive", "amount_fen > 0"),
    ("fund_entry", "fund_entry_amount_not_zero", "amount_fen <> 0"),
    ("campaign", "campaign_amounts_positive",
     "min_amount_fen >= 1 AND max_amount_fen >= min_amount_fen AND "
     "(target_fen IS NULL OR target_fen > 0)"),
    ("rotation", "rotation_quarter_1_to_4", "quarter BETWEEN 1 AND 4 AND ends_at > starts_at"),
    ("unit", "unit_strength_0_to_100", "strength BETWEEN 0 AND 100 AND member_count >= 0"),
]


class Check(ops.TortoiseOperation):
    """A named CHECK on a table (PostgreSQL), or triggers that play it (SQLite)."""

    def __init__(self, table: str, name: str, condition: str) -> None:
        self.table, self.name, self.condition = table, name, condition

    def describe(self) -> str:
        return f"Check {self.name} on {self.table}"

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is None:
            return
        if state_editor.client.capabilities.dialect == "postgres":
            await state_editor._run_sql(
                f'ALTER TABLE "{self.table}" ADD CONSTRAINT "{self.name}" CHECK ({self.condition})')
            return
        for event in ("INSERT", "UPDATE"):  # (a trigger body holds a ";": not through _run_sql)
            await state_editor.client.execute_script(trigger_sql(self.table, self.name, self.condition, event))


def trigger_sql(table: str, name: str, condition: str, event: str) -> str:
    """The SQLite trigger that refuses, on INSERT or UPDATE, a row the CHECK would refuse (also
    used by services.db.repair_sqlite to put back triggers a table rebuild dropped)."""
    return (f'CREATE TRIGGER IF NOT EXISTS "{name}_{event.lower()}" BEFORE {event} '
            f'ON "{table}" FOR EACH ROW WHEN NOT ({_new(condition)}) '
            f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END")


def _new(condition: str) -> str:
    """The condition over the row being written (NEW.column) for a SQLite trigger."""
    keywords = {"IS", "NULL", "OR", "AND", "NOT", "BETWEEN"}
    return re.sub(r"\b([a-z_]+)\b", lambda m: m.group(1) if m.group(1).upper() in keywords
                  else f"NEW.{m.group(1)}", condition)


class Migration(migrations.Migration):
    dependencies = [('models', '0005_foreign_keys')]

    initial = False

    operations = [Check(table, name, condition) for table, name, condition in CHECKS]
