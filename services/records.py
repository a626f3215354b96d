"""Activity records (活动记录) as evidence: after an activity has started, its organiser attaches
the minutes (纪要) and photos. The organiser is the duty unit of the rotation the activity
belongs to (or staff governing its zone). The outgoing duty unit may still record for a grace
period after its quarter: while its handover is open and at most 30 days after the quarter ended
(as it keeps read access to its quarter for that handover). The record is seen by the activity's
zone and the staff governing it, shown with the activity, and linked from the work ledger."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.activities import Activity, ActivityStatus
from models.files import AttachmentRef
from models.governance import Handover
from models.org import Rotation
from models.records import ActivityRecord
from services import clock, files, storage
from services.activities import can_see, check_can_see, get_or_raise
from services.auth import Principal
from services.errors import (
    ActivityCancelled,
    ActivityNotFound,
    NotAnImage,
    NotYourQuarter,
    RecordWindowClosed,
)

GRACE_AFTER_END = timedelta(days=30)   # the outgoing unit records until then, handover open
REF_TYPE = "activity_record"


# -- photos --------------------------------------------------------------------------------------

async def check_images(principal: Principal, root: Path, items: list[dict[str, Any]], *,
                       field: str) -> list[dict[str, Any]]:
    """Attachments that must be pictures: files the caller may cite (services.files), stored
    here, and JPEG or PNG by their own first bytes."""
    resolved = await files.resolve(principal, items)
    for index, item in enumerate(resolved):
        key = files.stored_key(item["url"])
        if key is None or not storage.is_image(root, key):
            raise NotAnImage(errors=[{"loc": ["body", field, index], "msg": NotAnImage.default_message,
                                      "type": NotAnImage.code}], index=index)
    return resolved


# -- who records, and when -----------------------------------------------------------------------

async def rotation_of(activity: Activity) -> Rotation | None:
    """The rotation an activity belongs to: the one it was made in, or (placed in the zone by the
    committee) the one it falls in."""
    if activity.rotation_id is not None:
        return await Rotation.get_or_none(id=activity.rotation_id)
    if activity.zone_id is None or activity.organiser_unit_id is not None:
        return None
    return await Rotation.filter(zone_id=activity.zone_id, starts_at__lte=activity.starts_at,
                                 ends_at__gt=activity.starts_at).first()


async def window(activity: Activity, rotation: Rotation | None) -> tuple[datetime, datetime | None]:
    """When the duty unit may record: from the activity's start until its quarter ends, and on
    while its handover stays open, at most 30 days after the quarter (None: no end, staff)."""
    if rotation is None:
        return activity.starts_at, None
    closed = await Handover.filter(rotation_id=rotation.id, closed_at__isnull=False) \
        .values_list("closed_at", flat=True)
    end = rotation.ends_at + GRACE_AFTER_END
    if closed:
        end = min(end, max(closed[0], rotation.ends_at))
    return activity.starts_at, end


async def check_recorder(principal: Principal, activity: Activity, *, at: datetime) -> None:
    """Staff governing the zone record once the activity started; the admins of the rotation's
    unit within its window (see `window`); anyone else is refused (a unit that cannot see the
    activity is told it does not exist)."""
    await check_can_see(principal, activity)
    if activity.status is ActivityStatus.CANCELLED:
        raise ActivityCancelled(activity_id=activity.id)
    staff = principal.governs(activity.zone_id) or (principal.is_committee and activity.zone_id is None)
    rotation = None if staff else await rotation_of(activity)
    if not staff:
        if not principal.is_unit_admin or rotation is None or rotation.unit_id != principal.unit_id:
            raise NotYourQuarter(activity_id=activity.id)
    opens, closes = await window(activity, rotation)
    if at < opens or (closes is not None and at >= closes):
        raise RecordWindowClosed(activity_id=activity.id, opens_at=clock.local_iso(opens),
                                 closes_at=clock.local_iso(closes))


def can_read(principal: Principal, activity: Activity) -> bool:
    """The activity's zone (its members and units), the staff governing it; a city-wide activity:
    whoever sees it."""
    if activity.zone_id is None:
        return can_see(principal, activity)
    return principal.governs(activity.zone_id) or principal.zone_id == activity.zone_id


async def can_read_any(principal: Principal, activity_ids: list[int]) -> bool:
    """Whether the caller may see the record of one of these activities (its photos' readers)."""
    return any(can_read(principal, a) for a in await Activity.filter(id__in=activity_ids))


# -- reading and writing -------------------------------------------------------------------------

def view(record: ActivityRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"activity_id": record.activity_id, "minutes": record.minutes, "photos": record.photos,
            "recorded_by_id": record.recorded_by_id, "recorded_unit_id": record.recorded_unit_id,
            "created_at": record.created_at, "updated_at": record.updated_at}


async def for_activity(principal: Principal, activity: Activity) -> dict[str, Any] | None:
    """The record shown with an activity, to those who may read it (None otherwise, or unrecorded)."""
    if not can_read(principal, activity):
        return None
    return view(await ActivityRecord.get_or_none(activity_id=activity.id))


async def get(principal: Principal, activity_id: int) -> dict[str, Any]:
    activity = await get_or_raise(activity_id)
    await check_can_see(principal, activity)
    if not can_read(principal, activity):
        raise ActivityNotFound(activity_id=activity_id)
    return view(await ActivityRecord.get_or_none(activity_id=activity.id)) or {
        "activity_id": activity.id, "minutes": "", "photos": [], "recorded_by_id": None,
        "recorded_unit_id": None, "created_at": None, "updated_at": None}


async def put(principal: Principal, activity_id: int, *, minutes: str, photos: list[dict[str, Any]],
              root: Path) -> dict[str, Any]:
    """Write the activity's record (the whole of it: minutes and photos as sent)."""
    activity = await get_or_raise(activity_id)
    await check_recorder(principal, activity, at=clock.now())
    photos = await check_images(principal, root, photos, field="photos")
    values = {"minutes": minutes, "photos": photos, "recorded_by_id": principal.member_id,
              "recorded_unit_id": principal.unit_id if principal.is_unit_admin else None,
              "updated_at": clock.now()}
    async with in_transaction():
        if not await ActivityRecord.filter(activity_id=activity.id).update(**values):
            try:
                async with in_transaction():
                    await ActivityRecord.create(activity_id=activity.id, **values)
            except IntegrityError:  # written at the same moment by another request: ours wins
                await ActivityRecord.filter(activity_id=activity.id).update(**values)
        await AttachmentRef.filter(ref_type=REF_TYPE, ref_id=activity.id).delete()
        await files.attach(photos, ref_type=REF_TYPE, ref_id=activity.id)
    return view(await ActivityRecord.get(activity_id=activity.id))  # type: ignore[return-value]
