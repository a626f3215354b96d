"""Good practice (经验交流): units publish their experiences (title, text, images) for every unit
to read; the committee features one, once, and it goes to every zone as a notice that refers
back to it; each member's first read is counted (a row per member: once is a database fact).
The ledger lists them per unit and the year-end evaluation scores them (services.year_facts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise.functions import Count
from tortoise.transactions import in_transaction

from models.notices import Notice
from models.org import Unit, Zone
from models.practices import Practice, PracticeRead
from services import audit, clock, files, notices
from services.access import check_committee
from services.auth import Principal
from services.errors import Forbidden, PracticeFeatured, PracticeNotFound
from services.records import check_images

REF_TYPE = "practice"


async def get_or_raise(practice_id: int) -> Practice:
    practice = await Practice.get_or_none(id=practice_id)
    if practice is None:
        raise PracticeNotFound(practice_id=practice_id)
    return practice


async def can_read_any(principal: Principal, practice_ids: list[int]) -> bool:
    """Practices are published to everyone signed in (their images' readers)."""
    return await Practice.exists(id__in=practice_ids)


async def _reads(ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    return dict(await PracticeRead.filter(practice_id__in=ids).annotate(n=Count("id"))
                .group_by("practice_id").values_list("practice_id", "n"))


async def view(practice: Practice) -> dict[str, Any]:
    name = await Unit.filter(id=practice.unit_id).values_list("name", flat=True)
    return {"id": practice.id, "unit_id": practice.unit_id, "unit_name": name[0] if name else "",
            "zone_id": practice.zone_id, "year": practice.year, "title": practice.title,
            "body": practice.body, "images": practice.images, "author_id": practice.author_id,
            "published_at": practice.published_at, "featured_at": practice.featured_at,
            "featured_by_id": practice.featured_by_id, "notice_id": practice.notice_id,
            "reads": (await _reads([practice.id])).get(practice.id, 0)}


async def create(principal: Principal, *, title: str, body: str, images: list[dict[str, Any]],
                 unit_id: int | None, root: Path) -> dict[str, Any]:
    """A unit admin publishes for their own unit (the duty unit too: for itself, not its zone)."""
    if not principal.is_unit_admin or principal.unit_id is None:
        raise Forbidden("经验交流由各单位发布")
    if unit_id is not None and unit_id != principal.unit_id:
        raise Forbidden("只能以本单位名义发布经验交流")
    images = await check_images(principal, root, images, field="images")
    now = clock.now()
    async with in_transaction():
        practice = await Practice.create(
            unit_id=principal.unit_id, zone_id=principal.zone_id, year=now.astimezone(clock.SHANGHAI).year,
            title=title, body=body, images=images, author_id=principal.member_id, published_at=now)
        await files.attach(images, ref_type=REF_TYPE, ref_id=practice.id)
    return await view(practice)


async def page(principal: Principal, *, zone_id: int | None, unit_id: int | None, year: int | None,
               featured: bool | None, cursor: int | None, limit: int) -> dict[str, Any]:
    """Newest first, everyone signed in; `cursor`: the previous page's next_cursor."""
    qs = Practice.all()
    for name, value in (("zone_id", zone_id), ("unit_id", unit_id), ("year", year)):
        if value is not None:
            qs = qs.filter(**{name: value})
    if featured is not None:
        qs = qs.filter(featured_at__isnull=not featured)
    if cursor is not None:
        qs = qs.filter(id__lt=cursor)
    rows = await qs.order_by("-id").limit(limit)
    reads = await _reads([p.id for p in rows])
    names = dict(await Unit.filter(id__in={p.unit_id for p in rows}).values_list("id", "name"))
    items = [{"id": p.id, "unit_id": p.unit_id, "unit_name": names.get(p.unit_id, ""),
              "zone_id": p.zone_id, "year": p.year, "title": p.title, "published_at": p.published_at,
              "featured_at": p.featured_at, "reads": reads.get(p.id, 0), "images": len(p.images)}
             for p in rows]
    return {"items": items, "next_cursor": rows[-1].id if len(rows) == limit else None}


async def read(principal: Principal, practice_id: int) -> dict[str, Any]:
    """One practice; the caller's first read is counted (concurrent reads too: the unique row)."""
    practice = await get_or_raise(practice_id)
    await PracticeRead.bulk_create(
        [PracticeRead(practice_id=practice.id, member_id=principal.member_id, read_at=clock.now())],
        ignore_conflicts=True)
    return await view(practice)


async def feature(principal: Principal, practice_id: int) -> tuple[dict[str, Any], Notice]:
    """The committee features a practice, once (featuring it again: 409 practice_already_featured):
    a notice to every zone refers back to it, carrying its images, and the audit log records it.
    Returns the practice and the notice (the caller hands the notice to the queue after commit)."""
    check_committee(principal)
    practice = await get_or_raise(practice_id)
    now = clock.now()
    async with in_transaction():
        if not await Practice.filter(id=practice.id, featured_at__isnull=True).update(
                featured_at=now, featured_by_id=principal.member_id):
            done = await Practice.get(id=practice.id)
            raise PracticeFeatured(practice_id=practice.id, featured_at=clock.local_iso(done.featured_at),
                                   notice_id=done.notice_id)
        unit = await Unit.get(id=practice.unit_id)
        notice = await notices.create(
            principal, title=f"经验交流：{practice.title}"[:128],
            body=f"机关工委推介{unit.name}的经验交流《{practice.title}》，请各网络区成员单位学习借鉴。\n\n{practice.body}",
            audience={"zone_ids": await Zone.all().order_by("id").values_list("id", flat=True)},
            require_ack=False, ack_due_at=None, priority="normal", attachments=practice.images,
            remind_after_s=None, ref_type=REF_TYPE, ref_id=practice.id)
        await Practice.filter(id=practice.id).update(notice_id=notice.id)
        await audit.record(principal, "practice.featured", "practice", practice.id,
                           zone_id=practice.zone_id, unit_id=practice.unit_id, notice_id=notice.id,
                           title=practice.title)
    return await view(await Practice.get(id=practice.id)), notice
