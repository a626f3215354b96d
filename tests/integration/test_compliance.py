""""Three ones": what counts as held, quarter boundaries, and the warning sent once by two workers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from arq import create_pool
from arq.connections import RedisSettings

from models.activities import Activity, ComplianceWarning
from models.notices import InboxItem, Notice
from models.org import Liaison, Rotation
from services import clock
from services.settings import Settings
from tasks.worker import WorkerSettings
from tests.integration.test_activities import create, generate
from tests.support import City, bearer, run_workers, staff_login


async def _held(activity_id: int) -> None:
    """Mark an activity as having taken place with attendance (its end passed, one check-in)."""
    await Activity.filter(id=activity_id).update(checked_in=1)


async def test_held_means_ended_with_checkins_and_quarter_boundaries_count(
        client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    await generate(client, staff)
    zone = city.zones[0]
    year, quarter = clock.quarter_of(clock.now())
    current = await Rotation.get(zone_id=zone.id, year=year, quarter=quarter)
    following = await Rotation.get(zone_id=zone.id, starts_at=current.ends_at)
    last_minute = current.ends_at - clock.now() - timedelta(hours=2)
    # A lesson that starts in the last hours of the quarter belongs to this rotation ...
    lesson = await create(client, staff, zone_id=zone.id, kind="party_lesson", starts_in=last_minute, hours=1)
    # ... one that starts at the first second of the next quarter belongs to the next one.
    next_one = await create(client, staff, zone_id=zone.id, kind="party_activity",
                            starts_in=current.ends_at - clock.now(), hours=1)
    assert lesson["rotation_id"] == current.id and next_one["rotation_id"] == following.id
    meeting = await create(client, staff, zone_id=zone.id, kind="handover_meeting",
                           starts_in=last_minute, hours=1)
    activity = await create(client, staff, zone_id=zone.id, kind="party_activity",
                            starts_in=last_minute, hours=1)
    for a in (lesson, meeting, activity, next_one):
        await _held(a["id"])

    async def status() -> dict[str, Any]:
        r = await client.get(f"/api/v1/zones/{zone.id}/compliance?quarter={year}Q{quarter}",
                             headers=bearer(staff))
        assert r.status == 200
        return (await r.json())["rotations"][0]

    before = await status()
    assert before["complete"] is False and before["missing"] == ["party_lesson", "party_activity",
                                                                 "handover_meeting"]
    clock.travel(current.ends_at - clock.now() - timedelta(minutes=30))  # all three have ended
    after = await status()
    assert after["complete"] is True and after["activities_planned"] == 3
    # Cancelled or unattended activities do not count.
    await Activity.filter(id=meeting["id"]).update(checked_in=0)
    assert (await status())["missing"] == ["handover_meeting"]
    r = await client.get(f"/api/v1/zones/{zone.id}/compliance?quarter=2026Q5", headers=bearer(staff))
    assert r.status == 422


async def test_warning_is_sent_once_by_two_workers(client: TestClient[Any, Any], city: City,
                                                   settings: Settings) -> None:
    staff = await staff_login(client)
    await generate(client, staff)
    liaison = city.committee
    assert liaison is not None
    await Liaison.create(member_id=liaison.id, zone_id=city.zones[0].id)
    year, quarter = clock.quarter_of(clock.now())
    rotations = await Rotation.filter(year=year, quarter=quarter)
    # Each rotation gets its party lesson held; the other two are missing.
    for r in rotations:
        lesson = await Activity.create(zone_id=r.zone_id, rotation_id=r.id, created_by_id=liaison.id,
                                       kind="party_lesson", title="党课", starts_at=r.starts_at,
                                       ends_at=r.starts_at + timedelta(hours=1), checked_in=3,
                                       signup_opens_at=r.starts_at, signup_closes_at=r.starts_at,
                                       checkin_opens_at=r.starts_at, checkin_closes_at=r.starts_at,
                                       checkin_secret="x")
        assert lesson.id
    assert settings.redis_url
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    pool = await create_pool(redis_settings)
    try:
        # Outside the 14-day window nothing is sent.
        ends = rotations[0].ends_at
        if ends - clock.now() > timedelta(days=14):
            await pool.enqueue_job("warn_incomplete_rotations", _queue_name=WorkerSettings.queue_name)
            await run_workers(settings, 1)
            assert await ComplianceWarning.all().count() == 0
        clock.travel(ends - clock.now() - timedelta(days=13))
        for i in range(2):
            await pool.enqueue_job("warn_incomplete_rotations", _job_id=f"warn-{i}",
                                   _queue_name=WorkerSettings.queue_name)
        await run_workers(settings, 2)
        assert await ComplianceWarning.all().count() == len(rotations)
        notices = await Notice.filter(topic="compliance.warning")
        assert len(notices) == len(rotations)
        zone_rotation = next(r for r in rotations if r.zone_id == city.zones[0].id)
        warned = await InboxItem.filter(notice__ref_id=zone_rotation.id).values_list("member_id", flat=True)
        assert sorted(warned) == sorted([city.admins[zone_rotation.unit_id].id, liaison.id])
        warning = await ComplianceWarning.get(rotation_id=zone_rotation.id)
        assert warning.missing == ["party_activity", "handover_meeting"]
        # Again later: nothing new.
        await pool.enqueue_job("warn_incomplete_rotations", _job_id="warn-again",
                               _queue_name=WorkerSettings.queue_name)
        await run_workers(settings, 1)
        assert await Notice.filter(topic="compliance.warning").count() == len(rotations)
    finally:
        await pool.aclose()
