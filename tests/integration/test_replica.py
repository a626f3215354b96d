"""ZONEHUB_DATABASE_READ_URL: the heavy reads (ledgers, evaluation, dashboards, exports) go to
the read replica, everything else — and every write — to the primary. Two databases stand in for
a primary and a replica that has not caught up yet: what a read sees says where it went."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.org import Member
from services import db
from services.settings import ConfigError, load_settings


async def test_reads_inside_on_replica_go_to_the_replica_and_writes_to_the_primary(tmp_path: Path) -> None:
    primary, replica = f"sqlite://{tmp_path / 'primary.sqlite3'}", f"sqlite://{tmp_path / 'replica.sqlite3'}"
    for url in (primary, replica):
        await db.migrate_db(url)
    context = await db.init_db(primary, read_url=replica)
    try:
        await Member.create(name="主库", phone="13800000001")      # on the primary only

        @db.on_replica
        async def heavy_read() -> list[str]:
            names = await Member.all().values_list("name", flat=True)
            await Member.create(name="报表里写的", phone="13800000002")  # a write still goes to the primary
            return list(names)

        assert await heavy_read() == []                            # the replica has not caught up
        assert sorted(await Member.all().values_list("name", flat=True)) == ["主库", "报表里写的"]
    finally:
        await context.close_connections()


async def test_without_a_replica_on_replica_reads_the_primary(tmp_path: Path) -> None:
    primary = f"sqlite://{tmp_path / 'only.sqlite3'}"
    await db.migrate_db(primary)
    context = await db.init_db(primary)
    try:
        await Member.create(name="主库", phone="13800000001")
        assert await db.on_replica(lambda: Member.all().count())() == 1
    finally:
        await context.close_connections()


def test_the_read_url_must_be_postgresql() -> None:
    with pytest.raises(ConfigError, match="ZONEHUB_DATABASE_READ_URL"):
        load_settings(secret_key="x" * 40, database_read_url="sqlite://x", _env_file=None)
