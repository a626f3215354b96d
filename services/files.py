"""Attachments: who may cite a stored file, what it is attached to, and who may download it.

A stored file (services/storage.py, named by its SHA-256) belongs to what it is attached to. It
is served to whoever uploaded it, to the admins of the uploader's unit, and to whoever may see
something it is attached to (the recipients of a notice, the members of a ledger's zone, the
units of a supervision item); never to someone who merely knows its hash. A file can be cited
(attached) by its uploader, by the admins of the uploader's unit and by committee staff.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import Q

from models.files import AttachmentRef, Upload
from services import storage
from services.auth import Principal
from services.errors import (
    AttachmentNotCitable,
    AttachmentNotFound,
)

STORED = re.compile(r"^/api/v1/attachments/([0-9a-f]{64})$")


def stored_key(url: str) -> str | None:
    match = STORED.match(url)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class Uploaded:
    name: str
    url: str
    size: int
    content_type: str


async def record_upload(principal: Principal, *, stored: storage.Stored, name: str) -> Uploaded:
    """Remember who uploaded the stored file (once per person and file)."""
    await Upload.bulk_create([Upload(key=stored.key, name=name[:128], content_type=stored.content_type,
                                     size=stored.size, uploaded_by_id=principal.member_id,
                                     unit_id=principal.unit_id)], ignore_conflicts=True)
    return Uploaded(name=name[:128], url=f"/api/v1/attachments/{stored.key}", size=stored.size,
                    content_type=stored.content_type)


def _citable_by(principal: Principal) -> Q:
    mine = Q(uploaded_by_id=principal.member_id)
    if principal.is_unit_admin and principal.unit_id is not None:
        mine |= Q(unit_id=principal.unit_id)
    return mine


async def resolve(principal: Principal, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check and normalise attachments a caller cites: a stored file must be one they may cite
    (its size and type are the stored ones); an external link is kept as sent."""
    items = list(items)
    keys = {k for k in (stored_key(i["url"]) for i in items) if k}
    uploads: dict[str, Upload] = {}
    if keys:
        query = Upload.filter(key__in=keys)
        if not principal.is_committee:
            query = query.filter(_citable_by(principal))
        uploads = {u.key: u for u in await query}
    out = []
    for position, item in enumerate(items):
        key = stored_key(item["url"])
        if key is None:
            out.append({"name": item["name"], "url": item["url"], "size": item.get("size") or 0,
                        "content_type": item.get("content_type") or "application/octet-stream"})
            continue
        upload = uploads.get(key)
        if upload is None:
            raise AttachmentNotCitable(index=position, url=item["url"])
        out.append({"name": item["name"], "url": item["url"], "size": upload.size,
                    "content_type": upload.content_type})
    return out


async def attach(attachments: Iterable[dict[str, Any]], *, ref_type: str, ref_id: int) -> None:
    """Record what the stored files are attached to; call in the transaction that writes it."""
    keys = {k for k in (stored_key(a["url"]) for a in attachments) if k}
    if keys:
        await AttachmentRef.bulk_create(
            [AttachmentRef(key=k, ref_type=ref_type, ref_id=ref_id) for k in sorted(keys)],
            ignore_conflicts=True)


@dataclass(frozen=True, slots=True)
class Download:
    path: Any
    content_type: str
    name: str


async def open_for(principal: Principal, *, root: Any, key: str) -> Download:
    """The stored file, if the caller may read it; AttachmentNotFound otherwise (the same answer
    as for a file that does not exist, so a hash reveals nothing)."""
    path, content_type = storage.open_file(root, key)
    own = await Upload.filter(Q(key=key) & _citable_by(principal)).first()
    if own is not None:
        return Download(path, content_type, own.name)
    if not principal.is_committee and not await _attached_to_visible(principal, key):
        raise AttachmentNotFound()
    upload = await Upload.filter(key=key).order_by("id").first()
    return Download(path, content_type, upload.name if upload else key[:16])


def _readers() -> dict[str, Callable[[Principal, list[int]], Awaitable[bool]]]:
    """Who may see what a file is attached to: each domain's own check, given the ids."""
    from services import activities, ledger, notices, practices, records, supervision

    return {"notice": notices.can_read_any, "fund_entry": ledger.can_read_any,
            "supervision_item": supervision.can_read_items,
            "supervision_assignment": supervision.can_read_assignments,
            "activity": activities.can_read_any, "activity_record": records.can_read_any,
            "practice": practices.can_read_any}


async def _attached_to_visible(principal: Principal, key: str) -> bool:
    refs: dict[str, list[int]] = {}
    for ref_type, ref_id in await AttachmentRef.filter(key=key).values_list("ref_type", "ref_id"):
        refs.setdefault(ref_type, []).append(ref_id)
    readers = _readers()
    for ref_type, ids in refs.items():
        if await readers[ref_type](principal, ids):
            return True
    return False
