"""Routes: send notices, inbox, read and ack receipts, unit sign-off, stats, subscriptions."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from models.notices import InboxItem
from server.keys import ARQ
from server.routing import Access, Router, path_int
from server.schemas.notices import (
    InboxOut,
    InboxQuery,
    NoticeIn,
    NoticeQueuedOut,
    NoticeStatsOut,
    ReceiptOut,
    SubscriptionIn,
    SubscriptionOut,
    UnitReceiptOut,
)
from services import notices
from services.access import NotOnDuty
from services.auth import Principal
from services.errors import Forbidden

log = logging.getLogger(__name__)
router = Router()
TAGS = ["notices"]
ID = r"/notices/{notice_id:\d{1,9}}"


@router.route("POST", "/notices", access=Access.UNIT_ADMIN, body=NoticeIn, response=NoticeQueuedOut,
              status=202, tags=TAGS, errors=[notices.AudienceOutOfScope, NotOnDuty],
              summary="Send a notice (committee: anyone; duty unit: its zone; unit admin: own unit)")
async def send_notice(request: web.Request, *, principal: Principal, body: NoticeIn) -> dict[str, Any]:
    """Answers 202 at once: the notice is stored, the fan-out runs in the job queue. If the
    queue cannot be reached now, the sweeper hands the notice over later; nothing is lost."""
    notice = await notices.create(
        principal, title=body.title, body=body.body, audience=body.audience.model_dump(),
        require_ack=body.require_ack, ack_due_at=body.ack_due_at, priority=body.priority,
        attachments=[a.model_dump() for a in body.attachments], remind_after_s=body.remind_after_s)
    try:
        await request.app[ARQ].enqueue_job("plan_notice", notice.id, _job_id=f"notice:{notice.id}:plan")
    except Exception:  # Redis down: the notice row is the outbox, the sweeper will pick it up
        log.warning("queue unreachable; notice %s waits for the sweeper", notice.id)
    return {"id": notice.id, "status": "queued"}


@router.route("GET", ID + "/stats", access=Access.UNIT_ADMIN, response=NoticeStatsOut, tags=TAGS,
              errors=[notices.NoticeNotFound, Forbidden],
              summary="Receipts: delivered, pushed, read, acked, per unit, time to reach all")
async def notice_stats(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    """The sender and the committee see everything; a recipient unit's admin sees their unit
    and the list of their members who have not read."""
    return await notices.stats(principal, path_int(request, "notice_id"))


def _entry(item: InboxItem) -> dict[str, Any]:
    n = item.notice
    return {"notice_id": n.id, "kind": n.kind.value, "topic": n.topic, "title": n.title,
            "body": n.body, "priority": n.priority.value, "attachments": n.attachments,
            "require_ack": n.require_ack, "ack_due_at": n.ack_due_at,
            "delivered_at": item.delivered_at, "read_at": item.read_at, "acked_at": item.acked_at}


@router.route("GET", "/me/notices", access=Access.MEMBER, query=InboxQuery, response=InboxOut,
              tags=TAGS, summary="My inbox, newest first, cursor pagination, unread count")
async def my_inbox(request: web.Request, *, principal: Principal, query: InboxQuery) -> dict[str, Any]:
    page = await notices.inbox_page(principal.member_id, before_id=query.cursor, limit=query.limit)
    return {"items": [_entry(i) for i in page["items"]], "unread": page["unread"],
            "next_cursor": page["next_cursor"]}


@router.route("POST", ID + "/read", access=Access.MEMBER, response=ReceiptOut, tags=TAGS,
              errors=[notices.NoticeNotFound], summary="Mark read (idempotent)")
async def read(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    item = await notices.mark_read(principal.member_id, path_int(request, "notice_id"))
    return {"notice_id": item.notice_id, "read_at": item.read_at, "acked_at": item.acked_at}


@router.route("POST", ID + "/ack", access=Access.MEMBER, response=ReceiptOut, tags=TAGS,
              errors=[notices.NoticeNotFound, notices.AckNotRequired],
              summary="Acknowledge (idempotent)")
async def ack(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    item = await notices.acknowledge(principal.member_id, path_int(request, "notice_id"))
    return {"notice_id": item.notice_id, "read_at": item.read_at, "acked_at": item.acked_at}


@router.route("POST", ID + "/sign", access=Access.UNIT_ADMIN, response=UnitReceiptOut, tags=TAGS,
              errors=[notices.NoticeNotFound, Forbidden],
              summary="A unit admin signs for the unit (签收, idempotent)")
async def sign(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    r = await notices.sign_for_unit(principal, path_int(request, "notice_id"))
    return {"notice_id": r.notice_id, "unit_id": r.unit_id, "signed_by": r.signed_by_id,
            "signed_at": r.signed_at}


@router.route("POST", "/me/subscriptions", access=Access.MEMBER, body=SubscriptionIn,
              response=SubscriptionOut, tags=TAGS,
              summary="Record a subscribe-message grant from wx.requestSubscribeMessage")
async def subscriptions(request: web.Request, *, principal: Principal,
                        body: SubscriptionIn) -> dict[str, Any]:
    """Each accepted grant allows one push; each push consumes one."""
    grant = await notices.record_subscription(principal.member_id, template_id=body.template_id,
                                              accept=body.result == "accept")
    return {"template_id": grant.template_id, "available": grant.available}
