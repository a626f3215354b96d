"""Contribution drives (募集): special party dues, donations and zone fund drives; who sees them,
their states (draft -> open -> closed, by conditional UPDATEs), and closing them at their end."""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from models.funds import Campaign, CampaignKind, CampaignState
from models.org import Zone
from services import audit, clock, totals_cache
from services.access import check_committee
from services.auth import Principal
from services.errors import CampaignBooked, CampaignNotFound, IllegalTransition, ZoneNotFound
from services.locks import lock_row


async def create_campaign(principal: Principal, *, kind: CampaignKind, title: str, description: str,
                          target_fen: int | None, starts_at: datetime | None, ends_at: datetime,
                          zone_ids: list[int], fund_zone_id: int | None, min_amount_fen: int,
                          max_amount_fen: int, draft: bool) -> Campaign:
    """The committee starts a drive (open at once unless a draft); `zone_ids` limits who sees it,
    a zone_fund drive's proceeds go to `fund_zone_id`'s ledger once it is settled."""
    check_committee(principal)
    wanted = set(zone_ids) | ({fund_zone_id} if fund_zone_id else set())
    if wanted and await Zone.filter(id__in=wanted).count() != len(wanted):
        raise ZoneNotFound()
    if kind is CampaignKind.ZONE_FUND and not zone_ids and fund_zone_id:
        zone_ids = [fund_zone_id]
    now = clock.now()
    async with in_transaction():
        campaign = await Campaign.create(
            kind=kind, title=title, description=description, target_fen=target_fen,
            starts_at=starts_at, ends_at=ends_at, zone_ids=sorted(set(zone_ids)),
            fund_zone_id=fund_zone_id, min_amount_fen=min_amount_fen, max_amount_fen=max_amount_fen,
            created_by_id=principal.member_id, state=CampaignState.DRAFT if draft else CampaignState.OPEN,
            opened_at=None if draft else now)
        await audit.record(principal, "campaign.created", "campaign", campaign.id, zone_id=fund_zone_id,
                           kind=kind, title=title, target_fen=target_fen, state=campaign.state)
    return campaign


def visible(principal: Principal, campaign: Campaign) -> bool:
    return visible_in(principal, campaign.state, campaign.zone_ids)


def visible_in(principal: Principal, state: CampaignState, zone_ids: list[int]) -> bool:
    """Whether a drive in `state` for the audience `zone_ids` is the caller's to see."""
    if principal.is_committee:
        return True
    if state is CampaignState.DRAFT:
        return False
    return not zone_ids or principal.zone_id in zone_ids or any(principal.governs(z) for z in zone_ids)


async def get_campaign(principal: Principal, campaign_id: int) -> Campaign:
    campaign = await Campaign.get_or_none(id=campaign_id)
    if campaign is None or not visible(principal, campaign):
        raise CampaignNotFound()
    return campaign


async def list_campaigns(principal: Principal, *, state: CampaignState | None, limit: int,
                         cursor: int | None) -> list[Campaign]:
    """Newest first; `cursor` is the last id of the previous page."""
    query = Campaign.all()
    if state is not None:
        query = query.filter(state=state)
    if cursor is not None:
        query = query.filter(id__lt=cursor)
    if not principal.is_committee:
        query = query.exclude(state=CampaignState.DRAFT)
    found: list[Campaign] = []
    # Audience filtering is per row (a JSON list); campaigns are few, so page in Python.
    async for campaign in query.order_by("-id"):
        if visible(principal, campaign):
            found.append(campaign)
            if len(found) == limit:
                break
    return found


_TRANSITIONS = {"open": ({CampaignState.DRAFT}, CampaignState.OPEN, "opened_at"),
                "close": ({CampaignState.DRAFT, CampaignState.OPEN}, CampaignState.CLOSED, "closed_at")}


async def change_state(principal: Principal, campaign_id: int, action: str) -> Campaign:
    """draft → open, draft or open → closed, by one conditional UPDATE (no reopening)."""
    check_committee(principal)
    sources, target, stamp = _TRANSITIONS[action]
    async with in_transaction():
        changed = await Campaign.filter(id=campaign_id, state__in=list(sources)).update(
            state=target, **{stamp: clock.now()})
        if changed:
            await audit.record(principal, f"campaign.{target.value}", "campaign", campaign_id)
    if changed:
        await totals_cache.moved([campaign_id])
    campaign = await Campaign.get_or_none(id=campaign_id)
    if campaign is None:
        raise CampaignNotFound()
    if not changed:
        raise IllegalTransition(state=campaign.state.value)
    return campaign


async def close_ended_campaigns() -> int:
    now = clock.now()
    ended = await Campaign.filter(state=CampaignState.OPEN, ends_at__lte=now).values_list("id", flat=True)
    closed = await Campaign.filter(id__in=ended, state=CampaignState.OPEN).update(
        state=CampaignState.CLOSED, closed_at=now) if ended else 0
    await totals_cache.moved(ended)
    return closed


async def lock_unbooked(campaign_id: int) -> None:
    """The drive's row lock, inside the current transaction: serialised with settling a
    zone_fund drive into its ledger; once settled, its money is in the ledger and may not change."""
    await lock_row("campaign", campaign_id)
    if await Campaign.filter(id=campaign_id, settled_at__isnull=False).exists():
        raise CampaignBooked()
