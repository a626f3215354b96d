"""Routes: zones, units, rosters, rotations, org import."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from models.org import Role
from server import serialize
from server.routing import (
    Access,
    MultipartInvalid,
    PayloadTooLarge,
    Router,
    invalid,
    path_int,
    read_multipart,
)
from server.schemas.org import (
    ImportOut,
    MembersOut,
    MembersQuery,
    UnitsOut,
    UnitsQuery,
    ZoneDetailOut,
    ZonesOut,
)
from services import org, org_import
from services.auth import Principal
from services.errors import Forbidden, NotFound

router = Router()
TAGS = ["organisation"]
ID = r"{%s:\d{1,9}}"


@router.route("GET", "/zones", access=Access.MEMBER, response=ZonesOut, tags=TAGS,
              summary="Zones with their units' count and the current duty unit")
async def list_zones(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    rows = await org.list_zones()
    return {"items": [{
        "id": r["zone"].id, "name": r["zone"].name, "description": r["zone"].description,
        "unit_count": r["unit_count"],
        "duty_unit": serialize.unit_ref(r["rotation"].unit) if r["rotation"] else None,
        "rotation": serialize.rotation(r["rotation"]),
    } for r in rows]}


@router.route("GET", "/zones/" + ID % "zone_id", access=Access.MEMBER, response=ZoneDetailOut,
              tags=TAGS, summary="One zone: its units, liaisons and current rotation",
              errors=[NotFound])
async def get_zone(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    data = await org.get_zone(path_int(request, "zone_id"))
    zone = data["zone"]
    return {"id": zone.id, "name": zone.name, "description": zone.description,
            "units": [serialize.unit(u) for u in data["units"]],
            "liaisons": [{"id": m.id, "name": m.name, "phone": m.phone} for m in data["liaisons"]],
            "rotation": serialize.rotation(data["rotation"])}


@router.route("GET", "/units", access=Access.UNIT_ADMIN, query=UnitsQuery, response=UnitsOut,
              tags=TAGS, summary="Units (committee: all, filter zone_id; unit admin: own)")
async def list_units(request: web.Request, *, principal: Principal,
                     query: UnitsQuery) -> dict[str, Any]:
    units = await org.list_units(principal, zone_id=query.zone_id)
    return {"items": [serialize.unit(u, with_invite=True) for u in units]}


@router.route("GET", "/units/" + ID % "unit_id" + "/members", access=Access.UNIT_ADMIN,
              query=MembersQuery, response=MembersOut, tags=TAGS, errors=[NotFound, Forbidden],
              summary="A unit's roster (committee; unit admin of that unit), filter role")
async def list_members(request: web.Request, *, principal: Principal,
                       query: MembersQuery) -> dict[str, Any]:
    members = await org.list_members(
        principal, unit_id=path_int(request, "unit_id"),
        role=Role(query.role) if query.role else None, limit=query.limit, after_id=query.after_id)
    return {"items": [serialize.member(m) for m in members],
            "next_cursor": members[-1].id if len(members) == query.limit else None}


@router.route("POST", "/org/import", access=Access.COMMITTEE, response=ImportOut,
              tags=TAGS, errors=[org_import.ImportInvalid, MultipartInvalid, PayloadTooLarge],
              request_content_type="multipart/form-data",
              summary="Import units or members from CSV/XLSX (all or nothing)")
async def import_org(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    """Multipart fields: `file` (CSV or XLSX) and optional `kind` (`units` | `members`; guessed
    from the header otherwise). Any bad row rejects the whole file with a row-by-row report
    (422 `import_invalid`); the same file imported twice changes nothing."""
    parts = await read_multipart(request, max_bytes=org_import.MAX_BYTES)
    upload, kind_part = parts.get("file"), parts.get("kind")
    if upload is None or not upload.content:
        raise invalid(["body", "file"], "缺少文件", "missing")
    kind = (kind_part.text() if kind_part else "") or None
    if kind not in (None, "units", "members"):
        raise invalid(["body", "kind"], "kind 须为 units 或 members", "enum")
    filename, content = upload.filename or "upload.csv", upload.content
    report = await org_import.import_table(filename=filename, content=bytes(content), kind=kind,
                                           by_member_id=principal.member_id)
    return {"kind": report.kind, "rows": report.rows, "created": report.created,
            "updated": report.updated, "unchanged": report.unchanged}

