"""Routes: send notices, inbox, read and ack receipts, unit sign-off, stats, subscriptions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.keys import ARQ
from server.routing import Access, Router, path_int
from server.schemas.notices import (
    InboxOut,
    InboxQuery,
    NoticeIn,
    NoticeQueuedOut,
    NoticeStatsOut,
    ReceiptOut,
    SentNoticesOut,
    SentQuery,
    SubscriptionIn,
    SubscriptionOut,
    UnitReceiptOut,
)
from services import errors, inbox, notices
from services.auth import Principal
from tasks.notices import hand_over

router = Router()
TAGS = ["notices"]
ID = r"/notices/{notice_id:\d{1,9}}"


@router.route("GET", "/notices", access=Access.UNIT_ADMIN, query=SentQuery, response=SentNoticesOut,
              tags=TAGS, summary="Notices sent, newest first, with their reach (committee: all; others: their own)")
async def list_sent(request: web.Request, *, principal: Principal, query: SentQuery) -> Any:
    return await notices.sent(principal, cursor=query.cursor, limit=query.limit)


@router.route("POST", "/notices", access=Access.UNIT_ADMIN, body=NoticeIn, response=NoticeQueuedOut,
              status=202, tags=TAGS,
              errors=[errors.AudienceOutOfScope, errors.NotOnDuty, errors.ZoneNotFound,
                      errors.UnitNotFound, errors.AttachmentNotCitable, errors.InvalidInput],
              summary="Send a notice (committee: anyone; liaison: their zones; duty unit: its zone; "
                      "unit admin: own unit)")
async def send_notice(request: web.Request, *, principal: Principal, body: NoticeIn) -> dict[str, Any]:
    """Answers 202 at once: the notice is stored, the fan-out runs in the job queue. If the
    queue cannot be reached now, the sweeper hands the notice over later; nothing is lost."""
    notice = await notices.create(
        principal, title=body.title, body=body.body, audience=body.audience.model_dump(),
        require_ack=body.require_ack, ack_due_at=body.ack_due_at, priority=body.priority,
        attachments=[a.model_dump() for a in body.attachments], remind_after_s=body.remind_after_s)
    await hand_over(request.app[ARQ], notice.id)
    return {"id": notice.id, "status": "queued"}


@router.route("GET", ID + "/stats", access=Access.UNIT_ADMIN, response=NoticeStatsOut, tags=TAGS,
              errors=[errors.NoticeNotFound],
              summary="Receipts: delivered, pushed, read, acked, per unit, time to reach all")
async def notice_stats(request: web.Request, *, principal: Principal) -> Any:
    """The sender and the committee see everything; a recipient unit's admin sees their unit
    and the list of their members who have not read."""
    return await notices.stats(principal, path_int(request, "notice_id"))


@router.route("GET", "/me/notices", access=Access.MEMBER, query=InboxQuery, response=InboxOut,
              tags=TAGS, summary="My inbox, newest first, cursor pagination, unread count")
async def my_inbox(request: web.Request, *, principal: Principal, query: InboxQuery) -> Any:
    return await inbox.inbox_page(principal.member_id, cursor=query.cursor, limit=query.limit)


@router.route("POST", ID + "/read", access=Access.MEMBER, response=ReceiptOut, tags=TAGS,
              errors=[errors.NoticeNotFound], summary="Mark read (idempotent)")
async def read(request: web.Request, *, principal: Principal) -> Any:
    return await inbox.mark_read(principal.member_id, path_int(request, "notice_id"))


@router.route("POST", ID + "/ack", access=Access.MEMBER, response=ReceiptOut, tags=TAGS,
              errors=[errors.NoticeNotFound, errors.AckNotRequired], summary="Acknowledge (idempotent)")
async def ack(request: web.Request, *, principal: Principal) -> Any:
    return await inbox.acknowledge(principal.member_id, path_int(request, "notice_id"))


@router.route("POST", ID + "/sign", access=Access.UNIT_ADMIN, response=UnitReceiptOut, tags=TAGS,
              errors=[errors.NoticeNotFound],
              summary="A unit admin signs for the unit (签收, idempotent)")
async def sign(request: web.Request, *, principal: Principal) -> Any:
    return await inbox.sign_for_unit(principal, path_int(request, "notice_id"))


@router.route("POST", "/me/subscriptions", access=Access.MEMBER, body=SubscriptionIn,
              response=SubscriptionOut, tags=TAGS,
              summary="Record a subscribe-message grant from wx.requestSubscribeMessage")
async def subscriptions(request: web.Request, *, principal: Principal, body: SubscriptionIn) -> Any:
    """Each accepted grant allows one push; each push consumes one."""
    return await inbox.record_subscription(principal.member_id, template_id=body.template_id,
                                           accept=body.result == "accept")
