"""Funds: request and response shapes. Money is integer fen."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AliasChoices, AliasPath, Field, StringConstraints, model_validator

from server.schemas.common import Cursor, Day, Id, In, Instant, Out, Timestamp
from services import clock

Fen = Annotated[int, Field(ge=1, le=10_000_000_000, description="fen (1/100 yuan)")]
Text = Annotated[str, StringConstraints(max_length=2000)]
Kind = Literal["special_dues", "donation", "zone_fund"]
Limit = Annotated[int, Field(ge=1, le=200)]


class CampaignIn(In):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    kind: Kind
    target_fen: Fen | None = None
    ends_at: Instant
    starts_at: Instant | None = None
    description: Text = ""
    zone_ids: list[Id] = Field(default_factory=list, max_length=100,
                               description="audience zones; empty: the whole city")
    fund_zone_id: Id | None = Field(default=None, description="zone_fund drives: the zone whose ledger gets the money")
    min_amount_fen: Fen = 1
    max_amount_fen: Fen = 10_000_000
    draft: bool = Field(default=False, description="true: created as a draft, opened later")

    @model_validator(mode="after")
    def _coherent(self) -> CampaignIn:
        if self.kind == "zone_fund" and self.fund_zone_id is None:
            raise ValueError("网络区经费募集须指定 fund_zone_id")
        if self.kind != "zone_fund" and self.fund_zone_id is not None:
            raise ValueError("只有网络区经费募集可以指定 fund_zone_id")
        if self.min_amount_fen > self.max_amount_fen:
            raise ValueError("min_amount_fen 不能大于 max_amount_fen")
        if self.ends_at <= max(clock.now(), self.starts_at or clock.now()):
            raise ValueError("ends_at 须晚于现在和 starts_at")
        return self


class CampaignOut(Out):
    id: int
    kind: Kind
    state: Literal["draft", "open", "closed"]
    title: str
    description: str
    target_fen: int | None
    zone_ids: list[int]
    fund_zone_id: int | None
    min_amount_fen: int
    max_amount_fen: int
    starts_at: Timestamp | None
    ends_at: Timestamp
    created_at: Timestamp
    opened_at: Timestamp | None
    closed_at: Timestamp | None


class CampaignsQuery(In):
    state: Literal["draft", "open", "closed"] | None = None
    limit: Limit = 50
    cursor: Cursor = None


class CampaignsOut(Out):
    items: list[CampaignOut]
    next_cursor: int | None


class TallyOut(Out):
    total_fen: int = Field(description="online + offline - refunded")
    count: int = Field(description="paid contributions (online and offline, net of reversals)")
    online_fen: int
    online_count: int
    offline_fen: int
    offline_count: int
    refunded_fen: int
    refund_count: int


class ZoneTallyOut(TallyOut):
    rank: int
    zone_id: int | None
    zone_name: str | None


class UnitTallyOut(TallyOut):
    rank: int
    unit_id: int
    unit_name: str
    zone_id: int | None


class TotalsOut(TallyOut):
    campaign_id: int
    title: str
    state: str
    target_fen: int | None
    progress: float | None = Field(description="total / target, when there is a target")
    by_zone: list[ZoneTallyOut]
    by_unit: list[UnitTallyOut]


class LeaderboardQuery(In):
    by: Literal["unit", "zone"] = "unit"
    limit: Limit = 20


class LeaderRow(Out):
    rank: int
    id: int | None
    name: str | None
    zone_id: int | None
    total_fen: int
    count: int


class LeaderboardOut(Out):
    campaign_id: int
    by: Literal["unit", "zone"]
    rows: list[LeaderRow]


class ContributeIn(In):
    amount_fen: Fen


class PayParams(Out):
    """The arguments of wx.requestPayment, signed by the merchant key."""

    timeStamp: str
    nonceStr: str
    package: str
    signType: Literal["RSA"]
    paySign: str


class OrderOut(Out):
    contribution_id: int
    out_trade_no: str
    status: str
    amount_fen: int
    pay_params: PayParams | None = Field(description="null once the order is no longer payable")
    expires_at: Timestamp


class ContributionOut(Out):
    id: int
    campaign_id: int
    campaign_title: str = Field(validation_alias=AliasChoices("campaign_title", AliasPath("campaign", "title")))
    channel: Literal["wechat", "cash", "bank_transfer"]
    status: Literal["pending", "paid", "closed", "flagged", "refunded"]
    amount_fen: int = Field(description="negative on a reversing entry")
    refunded_fen: int
    member_id: int | None
    unit_id: int
    zone_id: int | None
    out_trade_no: str | None
    transaction_id: str | None
    receipt_no: str | None
    payer_name: str
    received_on: date | None
    note: str
    reverses_id: int | None
    flag_reason: str
    paid_at: Timestamp | None
    created_at: Timestamp


class ContributionsOut(Out):
    items: list[ContributionOut]
    next_cursor: int | None


class MyContributionsQuery(In):
    limit: Limit = 50
    cursor: Cursor = None
    include_unpaid: bool = False


class ContributionsQuery(In):
    limit: Limit = 50
    cursor: Cursor = None
    unit_id: Id | None = None
    status: Literal["pending", "paid", "closed", "flagged", "refunded"] | None = None


class ContributionQuery(In):
    refresh: bool = Field(default=False, description="a pending order: ask WeChat Pay now")


class OfflineIn(In):
    unit_id: Id
    amount_fen: Fen
    channel: Literal["cash", "bank_transfer"]
    receipt_no: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    payer_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = ""
    member_id: Id | None = None
    received_on: Day
    note: Annotated[str, StringConstraints(max_length=500)] = ""

    @model_validator(mode="after")
    def _not_future(self) -> OfflineIn:
        if self.received_on > clock.now().astimezone(clock.SHANGHAI).date():
            raise ValueError("received_on 不能晚于今天")
        return self


class ReverseIn(In):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class RefundIn(In):
    amount_fen: Fen
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=80)] = ""


class RefundOut(Out):
    id: int
    contribution_id: int
    out_refund_no: str
    refund_id: str | None
    amount_fen: int
    reason: str
    status: Literal["processing", "success", "closed", "abnormal", "failed"]
    created_at: Timestamp
    ended_at: Timestamp | None
