"""Routes: administration the committee (and unit admins, for their unit) needs beyond the daily
work — staff accounts and the zones liaisons guide, zones, members, invite codes — and the audit
log of who changed what."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.routing import Access, Router, path_int
from server.schemas.admin import (
    AuditOut,
    AuditQuery,
    InviteCodeOut,
    MemberPatchIn,
    StaffIn,
    StaffListOut,
    StaffOut,
    StaffZonesIn,
    ZoneIn,
    ZonePatchIn,
    ZoneRowOut,
)
from server.schemas.auth import MemberOut
from services import admin, audit, errors
from services.auth import Principal

router = Router()
TAGS = ["administration"]
STAFF = r"/staff/{member_id:\d{1,9}}"


@router.route("GET", "/staff", access=Access.COMMITTEE, response=StaffListOut, tags=TAGS,
              summary="Staff accounts (committee and liaisons) with the zones each guides")
async def list_staff(request: web.Request, *, principal: Principal) -> Any:
    return {"items": await admin.list_staff(principal)}


@router.route("POST", "/staff", access=Access.COMMITTEE, body=StaffIn, response=StaffOut, status=201,
              tags=TAGS, errors=[errors.UsernameTaken, errors.ZoneNotFound],
              summary="Create a staff account; a password made here is answered this once")
async def create_staff(request: web.Request, *, principal: Principal, body: StaffIn) -> Any:
    return await admin.create_staff(principal, username=body.username, name=body.name, phone=body.phone,
                                    role=body.role, zone_ids=body.zone_ids, password=body.password)


@router.route("POST", STAFF + "/reset-password", access=Access.COMMITTEE, response=StaffOut, tags=TAGS,
              errors=[errors.StaffNotFound],
              summary="A new password for a staff account (answered once); its sessions end")
async def reset_password(request: web.Request, *, principal: Principal) -> Any:
    return await admin.reset_staff_password(principal, path_int(request, "member_id"))


@router.route("POST", STAFF + "/disable", access=Access.COMMITTEE, response=StaffOut, tags=TAGS,
              errors=[errors.StaffNotFound, errors.CannotChangeSelf],
              summary="Disable a staff account: its sessions end at once")
async def disable_staff(request: web.Request, *, principal: Principal) -> Any:
    return await admin.set_staff_active(principal, path_int(request, "member_id"), active=False)


@router.route("POST", STAFF + "/enable", access=Access.COMMITTEE, response=StaffOut, tags=TAGS,
              errors=[errors.StaffNotFound, errors.CannotChangeSelf], summary="Enable a staff account again")
async def enable_staff(request: web.Request, *, principal: Principal) -> Any:
    return await admin.set_staff_active(principal, path_int(request, "member_id"), active=True)


@router.route("PUT", STAFF + "/zones", access=Access.COMMITTEE, body=StaffZonesIn, response=StaffOut,
              tags=TAGS, errors=[errors.StaffNotFound, errors.ZoneNotFound],
              summary="The zones a liaison guides: their powers reach exactly these")
async def set_zones(request: web.Request, *, principal: Principal, body: StaffZonesIn) -> Any:
    return await admin.set_liaison_zones(principal, path_int(request, "member_id"), body.zone_ids)


@router.route("POST", "/zones", access=Access.COMMITTEE, body=ZoneIn, response=ZoneRowOut, status=201,
              tags=TAGS, errors=[errors.ZoneNameTaken], summary="Create a zone")
async def create_zone(request: web.Request, *, principal: Principal, body: ZoneIn) -> Any:
    return await admin.create_zone(principal, name=body.name, description=body.description)


@router.route("PATCH", r"/zones/{zone_id:\d{1,9}}", access=Access.COMMITTEE, body=ZonePatchIn,
              response=ZoneRowOut, tags=TAGS, errors=[errors.ZoneNotFound, errors.ZoneNameTaken],
              summary="Rename a zone or change its description")
async def update_zone(request: web.Request, *, principal: Principal, body: ZonePatchIn) -> Any:
    changes = body.model_dump(exclude_unset=True)
    return await admin.update_zone(principal, path_int(request, "zone_id"), name=changes.get("name"),
                                   description=changes.get("description"))


@router.route("PATCH", r"/members/{member_id:\d{1,9}}", access=Access.UNIT_ADMIN, body=MemberPatchIn,
              response=MemberOut, tags=TAGS,
              errors=[errors.MemberNotFound, errors.UnitNotFound, errors.PhoneTaken, errors.CannotChangeSelf],
              summary="Edit a member: name, phone, position, active (their unit's admin); admin or not "
                      "(staff of the zone); move to another unit (committee)")
async def update_member(request: web.Request, *, principal: Principal, body: MemberPatchIn) -> Any:
    """A change of role, unit or activity ends the member's sessions; every change is audited."""
    return await admin.update_member(principal, path_int(request, "member_id"),
                                     body.model_dump(exclude_unset=True))


@router.route("POST", r"/units/{unit_id:\d{1,9}}/invite-code", access=Access.UNIT_ADMIN,
              response=InviteCodeOut, tags=TAGS, errors=[errors.UnitNotFound, errors.InviteCodeTaken],
              summary="A new invite code for a unit (the old one stops binding): its admin or staff")
async def rotate_invite_code(request: web.Request, *, principal: Principal) -> Any:
    return await admin.rotate_invite_code(principal, path_int(request, "unit_id"))


@router.route("GET", "/audit", access=Access.STAFF, query=AuditQuery, response=AuditOut, tags=TAGS,
              summary="Who changed what (money, roles and accounts, rotations, supervision), newest first")
async def audit_log(request: web.Request, *, principal: Principal, query: AuditQuery) -> Any:
    """The committee reads all of it; a liaison what concerns their zones. Filters: `action`
    (a prefix like `refund` or a whole action), `actor_id`, `target_type`/`target_id`, `zone_id`."""
    return await audit.page(principal, cursor=query.cursor, limit=query.limit, action=query.action,
                            actor_id=query.actor_id, target_type=query.target_type,
                            target_id=query.target_id, zone_id=query.zone_id)
