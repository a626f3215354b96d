"""Personal data kept no longer than needed, and a member's rights over theirs (个人信息保护法):
check-in coordinates dropped after a retention, a member's data exported, and erased on request
with money records kept (会计档案 must be kept: contributions and refunds keep their payer)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from models.activities import Checkin, Signup
from models.audit import AuditEntry
from models.funds import Contribution, Refund
from models.notices import InboxItem, SubscriptionGrant
from models.org import Member
from services import audit, clock, privacy
from services.access import unit_zone
from services.auth import Principal, sessions_changed
from services.db import on_replica
from services.errors import CannotChangeSelf, Forbidden, MemberNotFound

ERASED_NAME = "已注销成员"
KEPT_ON_ERASURE = ["contributions", "refunds", "audit_log"]


async def drop_old_coordinates(*, older_than: timedelta) -> int:
    """Check-ins older than the retention lose their latitude and longitude; the check-in stays.
    Safe to run twice."""
    cutoff = clock.now() - older_than
    return await Checkin.filter(Q(lat__isnull=False) | Q(lng__isnull=False),
                                checked_in_at__lt=cutoff).update(lat=None, lng=None)


async def _member(principal: Principal, member_id: int) -> Member:
    if not principal.is_committee and principal.member_id != member_id:
        raise Forbidden()
    member = await Member.get_or_none(id=member_id).select_related("unit")
    if member is None:
        raise MemberNotFound(member_id=member_id)
    return member


def _at(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@on_replica
async def export(principal: Principal, member_id: int) -> dict[str, Any]:
    """Everything zonehub holds about a member, as JSON: the member themself or the committee.
    Audited (an export is a disclosure)."""
    member = await _member(principal, member_id)
    signups = await Signup.filter(member_id=member_id).select_related("activity").order_by("id")
    checkins = await Checkin.filter(member_id=member_id).select_related("activity").order_by("id")
    inbox = await InboxItem.filter(member_id=member_id).select_related("notice").order_by("id")
    money = await Contribution.filter(member_id=member_id).select_related("campaign").order_by("id")
    refunds = await Refund.filter(contribution__member_id=member_id).order_by("id")
    grants = await SubscriptionGrant.filter(member_id=member_id).order_by("id")
    changes = await AuditEntry.filter(target_type="member", target_id=member_id).order_by("id")
    data = {
        "member": {"id": member.id, "name": member.name, "phone": member.phone, "role": member.role.value,
                   "position": member.position.value, "unit_id": member.unit_id,
                   "unit_name": member.unit.name if member.unit else None, "username": member.username,
                   "wechat_bound": member.openid is not None, "is_active": member.is_active,
                   "created_at": _at(member.created_at), "erased_at": _at(member.erased_at)},
        "signups": [{"activity_id": s.activity_id, "activity_title": s.activity.title,
                     "status": s.status.value, "queued_at": _at(s.queued_at),
                     "confirmed_at": _at(s.confirmed_at), "cancelled_at": _at(s.cancelled_at)}
                    for s in signups],
        "checkins": [{"activity_id": c.activity_id, "activity_title": c.activity.title,
                      "method": c.method.value, "checked_in_at": _at(c.checked_in_at),
                      "lat": c.lat, "lng": c.lng} for c in checkins],
        "inbox": [{"notice_id": i.notice_id, "title": i.notice.title, "delivered_at": _at(i.delivered_at),
                   "read_at": _at(i.read_at), "acked_at": _at(i.acked_at)} for i in inbox],
        "contributions": [{"id": c.id, "campaign_id": c.campaign_id, "campaign_title": c.campaign.title,
                           "channel": c.channel.value, "status": c.status.value, "amount_fen": c.amount_fen,
                           "refunded_fen": c.refunded_fen, "paid_at": _at(c.paid_at),
                           "out_trade_no": c.out_trade_no, "receipt_no": c.receipt_no}
                          for c in money],
        "refunds": [{"id": r.id, "contribution_id": r.contribution_id, "amount_fen": r.amount_fen,
                     "status": r.status.value, "created_at": _at(r.created_at)} for r in refunds],
        "subscriptions": [{"template_id": g.template_id, "available": g.available} for g in grants],
        "changes": [{"at": _at(e.at), "action": e.action, "actor_id": e.actor_id} for e in changes],
        "exported_at": clock.now().isoformat(),
    }
    async with in_transaction():
        await audit.record(principal, "member.exported", "member", member_id,
                           zone_id=await unit_zone(member.unit_id) if member.unit_id else None)
    return data


async def erase(principal: Principal, member_id: int) -> dict[str, Any]:
    """The committee erases a member's personal fields on request: name, phone, WeChat binding,
    login, check-in coordinates, subscriptions; their sessions end. Contributions and refunds are
    kept whole (accounting records), as is the audit log of who changed what, with phone numbers
    in it masked. The member's row stays, so figures counted by it (sign-ups, attendance, reach)
    hold. Erasing again changes nothing."""
    if not principal.is_committee:
        raise Forbidden()
    if principal.member_id == member_id:
        raise CannotChangeSelf()
    member = await Member.get_or_none(id=member_id)
    if member is None:
        raise MemberNotFound(member_id=member_id)
    if member.erased_at is None:
        zone_id = await unit_zone(member.unit_id) if member.unit_id else None
        now = clock.now()
        async with in_transaction():
            claimed = await Member.filter(id=member_id, erased_at__isnull=True).update(
                name=ERASED_NAME, phone=f"erased-{member_id}", openid=None, username=None,
                password_hash=None, is_active=False, erased_at=now, token_version=F("token_version") + 1)
            if claimed:
                await Checkin.filter(member_id=member_id).update(lat=None, lng=None)
                await SubscriptionGrant.filter(member_id=member_id).delete()
                for entry in await AuditEntry.filter(target_type="member", target_id=member_id):
                    masked = privacy.mask_phones_in(entry.detail)
                    if masked != entry.detail:
                        await AuditEntry.filter(id=entry.id).update(detail=masked)
                await audit.record(principal, "member.erased", "member", member_id, zone_id=zone_id,
                                   kept=KEPT_ON_ERASURE)
        await sessions_changed()  # their sessions end in every process, not after the cache's TTL
        member = await Member.get(id=member_id)
    return {"member_id": member_id, "erased_at": member.erased_at, "kept": KEPT_ON_ERASURE}
