"""Administration: staff accounts and the zones a liaison guides, zones themselves, members
(edited, moved between units, made admins, deactivated) and units' invite codes. Every change to
an account, a role or a membership is audited in its own transaction; a change that alters what
someone may do ends their sessions (their token version moves on)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models.org import Liaison, Member, Position, Role, Unit, Zone
from services import audit
from services.access import check_committee, check_unit_scope, unit_zone
from services.auth import Principal, hash_password, member_view, sessions_changed, verify_password
from services.errors import (
    CannotChangeSelf,
    CurrentPasswordWrong,
    Forbidden,
    InviteCodeTaken,
    MemberNotFound,
    PhoneTaken,
    StaffNotFound,
    UnitNotFound,
    UsernameTaken,
    ZoneNameTaken,
    ZoneNotFound,
)
from services.views import View

STAFF_ROLES = (Role.COMMITTEE, Role.LIAISON)
INVITE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


# -- staff accounts ------------------------------------------------------------------------------

async def _staff_view(member: Member) -> View:
    zones = await Liaison.filter(member_id=member.id).order_by("zone_id").values_list("zone_id", flat=True)
    return View(member, zone_ids=list(zones))


async def _staff_or_raise(member_id: int) -> Member:
    member = await Member.get_or_none(id=member_id, role__in=STAFF_ROLES)
    if member is None:
        raise StaffNotFound(member_id=member_id)
    return member


async def list_staff(principal: Principal) -> list[View]:
    check_committee(principal)
    return [await _staff_view(m) for m in await Member.filter(role__in=STAFF_ROLES).order_by("id")]


async def _check_zones(zone_ids: list[int]) -> list[int]:
    zone_ids = sorted(set(zone_ids))
    known = set(await Zone.filter(id__in=zone_ids).values_list("id", flat=True))
    if missing := [z for z in zone_ids if z not in known]:
        raise ZoneNotFound(zone_ids=missing)
    return zone_ids


async def create_staff(principal: Principal, *, username: str, name: str, phone: str, role: str,
                       zone_ids: list[int], password: str | None) -> View:
    """A committee member or a liaison (guiding `zone_ids`). The password, when not given, is
    made here and answered once, never again."""
    check_committee(principal)
    zone_ids = await _check_zones(zone_ids)
    chosen = password or secrets.token_urlsafe(12)
    hashed = await asyncio.to_thread(hash_password, chosen)
    try:
        async with in_transaction():
            member = await Member.create(username=username, name=name, phone=phone, role=Role(role),
                                         password_hash=hashed)
            await Liaison.bulk_create([Liaison(member_id=member.id, zone_id=z) for z in zone_ids])
            await audit.record(principal, "staff.created", "member", member.id, role=role,
                               username=username, zone_ids=zone_ids)
    except IntegrityError:
        raise UsernameTaken(username=username) from None
    view = await _staff_view(member)
    return View(view, password=None if password else chosen)


async def set_own_password(principal: Principal, *, username: str, password: str,
                           current_password: str | None = None) -> dict[str, Any]:
    """A unit admin's own username and password, for the console at a desk without a phone to
    scan its QR (staff have theirs from the committee). Changing a password that exists needs
    it; the other sessions of a changed password end (this one's token too: log in again)."""
    if not principal.is_unit_admin:
        raise Forbidden()
    member = await Member.get(id=principal.member_id)
    zone_id = await unit_zone(member.unit_id) if member.unit_id else None
    had = member.password_hash is not None
    if had and not await asyncio.to_thread(verify_password, member.password_hash, current_password or ""):
        raise CurrentPasswordWrong()
    hashed = await asyncio.to_thread(hash_password, password)
    changes: dict[str, Any] = {"username": username, "password_hash": hashed}
    if had:
        changes["token_version"] = F("token_version") + 1
    try:
        async with in_transaction():
            await Member.filter(id=member.id).update(**changes)
            await audit.record(principal, "member.password_set", "member", member.id, zone_id=zone_id,
                               unit_id=member.unit_id, username=username, changed=had)
    except IntegrityError:
        raise UsernameTaken(username=username) from None
    await sessions_changed()
    return {"username": username, "sessions_ended": had}


async def reset_staff_password(principal: Principal, member_id: int) -> View:
    """A new random password, answered once; the account's sessions end."""
    check_committee(principal)
    member = await _staff_or_raise(member_id)
    chosen = secrets.token_urlsafe(12)
    hashed = await asyncio.to_thread(hash_password, chosen)
    async with in_transaction():
        await Member.filter(id=member.id).update(password_hash=hashed, token_version=F("token_version") + 1)
        await audit.record(principal, "staff.password_reset", "member", member.id)
    await sessions_changed()
    return View(await _staff_view(await Member.get(id=member.id)), password=chosen)


async def set_staff_active(principal: Principal, member_id: int, *, active: bool) -> View:
    """Disable (its sessions end at once) or enable a staff account; not one's own."""
    check_committee(principal)
    member = await _staff_or_raise(member_id)
    if member.id == principal.member_id:
        raise CannotChangeSelf()
    async with in_transaction():
        if member.is_active != active:
            await Member.filter(id=member.id).update(is_active=active, token_version=F("token_version") + 1)
            await audit.record(principal, "staff.enabled" if active else "staff.disabled", "member", member.id)
    await sessions_changed()
    return await _staff_view(await Member.get(id=member.id))


async def set_liaison_zones(principal: Principal, member_id: int, zone_ids: list[int]) -> View:
    """The zones a member of staff guides (a liaison's powers reach exactly these)."""
    check_committee(principal)
    member = await _staff_or_raise(member_id)
    zone_ids = await _check_zones(zone_ids)
    async with in_transaction():
        before = sorted(await Liaison.filter(member_id=member.id).values_list("zone_id", flat=True))
        if before != zone_ids:
            await Liaison.filter(member_id=member.id).delete()
            await Liaison.bulk_create([Liaison(member_id=member.id, zone_id=z) for z in zone_ids])
            # Scopes are read per request; moving the version on ends sessions that cached them.
            await Member.filter(id=member.id).update(token_version=F("token_version") + 1)
            await audit.record(principal, "staff.zones_changed", "member", member.id,
                               before=before, after=zone_ids)
    await sessions_changed()
    return await _staff_view(member)


# -- zones ---------------------------------------------------------------------------------------

async def create_zone(principal: Principal, *, name: str, description: str) -> Zone:
    check_committee(principal)
    try:
        async with in_transaction():
            zone = await Zone.create(name=name, description=description)
            await audit.record(principal, "zone.created", "zone", zone.id, zone_id=zone.id, name=name)
    except IntegrityError:
        raise ZoneNameTaken(name=name) from None
    return zone


async def update_zone(principal: Principal, zone_id: int, *, name: str | None,
                      description: str | None) -> Zone:
    check_committee(principal)
    zone = await Zone.get_or_none(id=zone_id)
    if zone is None:
        raise ZoneNotFound(zone_id=zone_id)
    changes = {k: v for k, v in (("name", name), ("description", description))
               if v is not None and getattr(zone, k) != v}
    if changes:
        try:
            async with in_transaction():
                await Zone.filter(id=zone_id).update(**changes)
                await audit.record(principal, "zone.updated", "zone", zone_id, zone_id=zone_id,
                                   before={k: getattr(zone, k) for k in changes}, after=changes)
        except IntegrityError:
            raise ZoneNameTaken(name=name) from None
        await sessions_changed()  # the zone's name in its members' /me
    return await Zone.get(id=zone_id)


# -- members -------------------------------------------------------------------------------------

async def update_member(principal: Principal, member_id: int, changes: dict[str, Any]) -> View:
    """Edit a member of a unit. Their unit's admin (or staff governing its zone): name, phone,
    position, active; staff governing the zone also make a member an admin or not; the committee
    also moves them to another unit. A change of role, unit or activity ends their sessions."""
    member = await Member.get_or_none(id=member_id, role__in=[Role.MEMBER, Role.UNIT_ADMIN])
    if member is None or member.unit_id is None:
        raise MemberNotFound(member_id=member_id)
    await check_unit_scope(principal, member.unit_id)
    zone_id = await unit_zone(member.unit_id)
    if "role" in changes and not principal.governs(zone_id):
        raise Forbidden("只有机关工委或联络员可以设置单位管理员")
    if "unit_id" in changes:
        check_committee(principal)
        if not await Unit.exists(id=changes["unit_id"]):
            raise UnitNotFound(unit_id=changes["unit_id"])
    if member.id == principal.member_id and {"role", "is_active", "unit_id"} & changes.keys():
        raise CannotChangeSelf()
    wanted = {k: v for k, v in changes.items() if getattr(member, k if k != "unit_id" else "unit_id") != v}
    if "role" in wanted:
        wanted["role"] = Role(wanted["role"])
    if "position" in wanted:
        wanted["position"] = Position(wanted["position"])
    if not wanted:
        return member_view(member, principal)
    revokes = {"role", "unit_id", "is_active"} & wanted.keys()
    try:
        async with in_transaction():
            await Member.filter(id=member.id).update(
                **wanted, **({"token_version": F("token_version") + 1} if revokes else {}))
            before = {k: getattr(member, k) for k in wanted}
            action = "member.role_changed" if "role" in wanted else "member.moved" if "unit_id" in wanted \
                else "member.deactivated" if wanted.get("is_active") is False else "member.updated"
            await audit.record(principal, action, "member", member.id, zone_id=zone_id,
                               before=before, after=wanted)
    except IntegrityError:
        raise PhoneTaken(phone=changes.get("phone")) from None
    await sessions_changed()
    return member_view(await Member.get(id=member.id), principal)


# -- units ---------------------------------------------------------------------------------------

async def rotate_invite_code(principal: Principal, unit_id: int) -> Unit:
    """A new invite code for a unit (the old one stops binding at once): its admin or staff."""
    unit = await Unit.get_or_none(id=unit_id)
    if unit is None:
        raise UnitNotFound(unit_id=unit_id)
    await check_unit_scope(principal, unit_id)
    for _ in range(5):
        code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(8))
        try:
            async with in_transaction():
                await Unit.filter(id=unit_id).update(invite_code=code)
                await audit.record(principal, "unit.invite_code_rotated", "unit", unit_id, zone_id=unit.zone_id)
            return await Unit.get(id=unit_id)
        except IntegrityError:
            continue
    raise InviteCodeTaken()
