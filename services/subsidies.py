"""Committee subsidies of a zone fund (工委补助): requested as a pending line, booked only when
another committee member — or a liaison of the zone — approves it (four eyes), or rejected."""

from __future__ import annotations

from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models.ledger import EntryCategory, EntryStatus, FundEntry
from models.org import Member, Role
from services import audit, clock, inbox
from services.access import check_governs, current_rotation
from services.auth import Principal
from services.errors import AlreadyDecided, NotASubsidy, SelfApproval
from services.fund_entries import lock_zone
from services.ledger import get_or_raise, result, yuan
from services.views import View


async def _pending(zone_id: int, entry_id: int) -> FundEntry:
    entry = await get_or_raise(zone_id, entry_id)
    if entry.category is not EntryCategory.COMMITTEE_SUBSIDY:
        raise NotASubsidy(entry_id=entry_id, category=entry.category.value)
    if entry.status is not EntryStatus.PENDING:
        raise AlreadyDecided(entry_id=entry_id, status=entry.status.value,
                             decided_by_id=entry.decided_by_id, decided_at=entry.decided_at)
    return entry


async def _decide(entry: FundEntry, to: EntryStatus, changes: dict[str, Any]) -> FundEntry:
    """Conditional UPDATE from pending: of two deciders racing, exactly one moves it."""
    moved = await FundEntry.filter(id=entry.id, status=EntryStatus.PENDING).update(status=to, **changes)
    if not moved:
        await _pending(entry.zone_id, entry.id)  # raises already_decided with who and when
    return await FundEntry.get(id=entry.id)


async def ask_approvers(entry: FundEntry) -> None:
    """Everyone who may approve it — the committee and the zone's liaisons, but not the
    requester — is told of a new subsidy request; inside the recording transaction."""
    approvers = await Member.filter(
        Q(role=Role.COMMITTEE) | Q(role=Role.LIAISON, liaisons__zone_id=entry.zone_id),
        is_active=True).exclude(id=entry.recorded_by_id).distinct().values_list("id", flat=True)
    await inbox.send_system(member_ids=approvers, topic="ledger.subsidy_requested",
                            title=f"经费补贴待审批：{yuan(entry.amount_fen)}",
                            body=entry.description, ref_type="fund_entry", ref_id=entry.id)


async def _tell(entry: FundEntry, *, topic: str, title: str, body: str) -> None:
    """The zone's duty-unit admins and the requester; inside the deciding transaction."""
    rotation = await current_rotation(entry.zone_id)
    people = await inbox.unit_admin_ids([rotation.unit_id]) if rotation else []
    await inbox.send_system(member_ids=[*people, entry.recorded_by_id], topic=topic, title=title,
                            body=body, ref_type="fund_entry", ref_id=entry.id)


async def approve(principal: Principal, *, zone_id: int, entry_id: int, note: str) -> View:
    """Staff governing the zone, other than the requester, approve a pending subsidy: it is
    booked now and the duty unit's admins and the requester are told, in one transaction."""
    check_governs(principal, zone_id)
    async with in_transaction():
        await lock_zone(zone_id)
        entry = await _pending(zone_id, entry_id)
        if entry.recorded_by_id == principal.member_id:
            raise SelfApproval(entry_id=entry_id)
        now = clock.now()
        entry = await _decide(entry, EntryStatus.BOOKED, {
            "booked_at": now, "decided_at": now, "decided_by_id": principal.member_id,
            "decision_note": note})
        await audit.record(principal, "subsidy.approved", "fund_entry", entry.id, zone_id=zone_id,
                           amount_fen=entry.amount_fen, requested_by=entry.recorded_by_id, note=note)
        await _tell(entry, topic="ledger.subsidy_approved",
                    title=f"工委补助已批准：{yuan(entry.amount_fen)}",
                    body=f"{entry.description}\n{note}".strip())
        return await result(entry)


async def reject(principal: Principal, *, zone_id: int, entry_id: int, note: str) -> View:
    """Staff governing the zone reject a pending subsidy with a reason (the requester may
    withdraw their own request this way: rejecting moves no money)."""
    check_governs(principal, zone_id)
    async with in_transaction():
        entry = await _pending(zone_id, entry_id)
        now = clock.now()
        entry = await _decide(entry, EntryStatus.REJECTED, {
            "decided_at": now, "decided_by_id": principal.member_id, "decision_note": note})
        await audit.record(principal, "subsidy.rejected", "fund_entry", entry.id, zone_id=zone_id,
                           amount_fen=entry.amount_fen, requested_by=entry.recorded_by_id, note=note)
        await _tell(entry, topic="ledger.subsidy_rejected",
                    title=f"工委补助未获批准：{yuan(entry.amount_fen)}",
                    body=f"{entry.description}\n{note}")
        return await result(entry)
