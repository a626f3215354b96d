"""Routes: zones, units, rosters, org import."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from models.org import Role
from server.routing import Access, Router, invalid, path_int, read_multipart
from server.schemas.org import (
    ImportOut,
    MembersOut,
    MembersQuery,
    UnitsOut,
    UnitsQuery,
    ZoneDetailOut,
    ZonesOut,
)
from services import errors, org, org_import
from services.auth import Principal

router = Router()
TAGS = ["organisation"]
ZONE = r"/zones/{zone_id:\d{1,9}}"
UNIT = r"/units/{unit_id:\d{1,9}}"


@router.route("GET", "/zones", access=Access.MEMBER, response=ZonesOut, tags=TAGS,
              summary="Zones with their units' count and the current duty unit")
async def list_zones(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return {"items": await org.list_zones()}


@router.route("GET", ZONE, access=Access.MEMBER, response=ZoneDetailOut, tags=TAGS,
              errors=[errors.ZoneNotFound], summary="One zone: its units, liaisons and current rotation")
async def get_zone(request: web.Request, *, principal: Principal) -> Any:
    return await org.get_zone(path_int(request, "zone_id"), principal)


@router.route("GET", "/units", access=Access.UNIT_ADMIN, query=UnitsQuery, response=UnitsOut,
              tags=TAGS, summary="Units (committee: all, filter zone_id; liaison: their zones; unit admin: own)")
async def list_units(request: web.Request, *, principal: Principal, query: UnitsQuery) -> dict[str, Any]:
    return {"items": await org.list_units(principal, zone_id=query.zone_id)}


@router.route("GET", UNIT + "/members", access=Access.UNIT_ADMIN, query=MembersQuery,
              response=MembersOut, tags=TAGS, errors=[errors.UnitNotFound],
              summary="A unit's roster (committee; liaison of its zone; its unit admin), filter role")
async def list_members(request: web.Request, *, principal: Principal, query: MembersQuery) -> dict[str, Any]:
    members = await org.list_members(principal, unit_id=path_int(request, "unit_id"),
                                     role=Role(query.role) if query.role else None,
                                     limit=query.limit, cursor=query.cursor)
    return {"items": members, "next_cursor": members[-1].id if len(members) == query.limit else None}


@router.route("POST", "/org/import", access=Access.COMMITTEE, response=ImportOut,
              tags=TAGS, errors=[errors.ImportInvalid, errors.MultipartInvalid, errors.PayloadTooLarge],
              form={"type": "object", "required": ["file"], "properties": {
                  "file": {"type": "string", "format": "binary", "description": "CSV (UTF-8 or GBK) or XLSX"},
                  "kind": {"type": "string", "enum": ["units", "members"],
                           "description": "guessed from the header row when left out"}}},
              summary="Import units or members from CSV/XLSX (all or nothing)")
async def import_org(request: web.Request, *, principal: Principal) -> Any:
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
    return await org_import.import_table(filename=upload.filename or "upload.csv",
                                         content=upload.content, kind=kind,
                                         by_member_id=principal.member_id)
