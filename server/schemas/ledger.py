"""Zone fund ledger: request and response shapes. Money is integer fen."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from server.schemas.common import Day, Id, In, Out, Timestamp, Year
from server.schemas.files import AttachmentOut, Attachments
from services.ledger import (
    CATEGORIES,
    DIRECTION_OF,
    MAX_AMOUNT_FEN,
    SYSTEM_CATEGORIES,
    UNIT_CATEGORIES,
)

DirectionName = Literal["income", "expense"]
IncomeCategory = Literal["duty_unit", "member_unit", "committee_subsidy", "campaign",
                         "other_income"]
ExpenseCategory = Literal["venue_rent", "materials", "event_costs", "other_expense"]
CategoryName = Literal[IncomeCategory, ExpenseCategory]  # type: ignore[valid-type]
StatusName = Literal["pending", "booked", "rejected"]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class FundEntryIn(In):
    direction: DirectionName
    category: CategoryName = Field(description="income: duty_unit, member_unit, committee_subsidy, "
                                   "other_income (campaign is booked by the system); expense: "
                                   "venue_rent, materials, event_costs, other_expense")
    amount_fen: int = Field(ge=1, le=MAX_AMOUNT_FEN, description="fen, 1 to 10^10")
    description: Text200
    occurred_on: Day = Field(description="YYYY-MM-DD, not after today in Asia/Shanghai")
    unit_id: Id | None = Field(default=None, validate_default=True,
                               description="the paying unit (of this zone): required for "
                               "duty_unit and member_unit income, refused otherwise")
    attachments: Attachments = Field(default_factory=list)

    # The validators below, as the schema says them: the category belongs to the direction (and
    # is never a system one); unit income names its unit, nothing else does.
    schema_rules: ClassVar[dict[str, Any]] = {"oneOf": [
        {"properties": {"direction": {"const": d.value},
                        "category": {"enum": [c.value for c in cs]},
                        "unit_id": {"type": "integer"} if needs_unit else {"type": "null"}},
         "required": ["unit_id"] if needs_unit else []}
        for d, categories in CATEGORIES.items()
        for needs_unit, cs in ((True, [c for c in categories if c in UNIT_CATEGORIES]),
                               (False, [c for c in categories
                                        if c not in UNIT_CATEGORIES + SYSTEM_CATEGORIES]))
        if cs]}

    @field_validator("category")
    @classmethod
    def _category_of_direction(cls, v: str, info: ValidationInfo) -> str:
        if v in SYSTEM_CATEGORIES:
            raise ValueError("campaign 收入由系统在网络区经费募集结束后入账")
        direction = info.data.get("direction")
        if direction is not None and DIRECTION_OF[v] != direction:  # type: ignore[index]
            raise ValueError(f"{v} 不是 {direction} 的类别")
        return v

    @field_validator("unit_id")
    @classmethod
    def _unit_for_unit_income(cls, v: int | None, info: ValidationInfo) -> int | None:
        category = info.data.get("category")
        if category is None:
            return v
        needs = category in UNIT_CATEGORIES
        if needs and v is None:
            raise ValueError(f"{category} 收入须指定 unit_id")
        if not needs and v is not None:
            raise ValueError(f"只有 duty_unit 和 member_unit 收入可以指定 unit_id，{category} 不可以")
        return v


class SubsidyApproveIn(In):
    note: Note = ""


class SubsidyRejectIn(In):
    note: Annotated[Note, StringConstraints(min_length=1)] = Field(
        description="why, 1 to 200 characters")


class FundReverseIn(In):
    reason: Text200


class FundLedgerQuery(In):
    year: Year | None = Field(default=None, description="default: this year in Asia/Shanghai")


class FundEntryOut(Out):
    id: int
    zone_id: int
    direction: DirectionName
    category: CategoryName
    status: StatusName
    amount_fen: int = Field(description="negative only on a reversing line")
    effect_fen: int = Field(description="what the line does to the balance once booked: "
                            "income +amount, expense -amount")
    unit_id: int | None
    unit_name: str | None
    campaign_id: int | None
    description: str
    attachments: list[AttachmentOut]
    occurred_on: date
    recorded_by_id: int
    decided_by_id: int | None
    decided_at: Timestamp | None
    decision_note: str
    reverses_id: int | None = Field(description="the line this one reverses")
    reversed_by_id: int | None = Field(description="the line that reversed this one")
    booked_at: Timestamp | None
    created_at: Timestamp


class FundEntryResultOut(FundEntryOut):
    zone_balance_fen: int = Field(description="the zone's booked balance after this call")


class FundLedgerLineOut(FundEntryOut):
    balance_fen: int = Field(description="the running balance after this line")


class FundIncomeByCategory(Out):
    duty_unit: int
    member_unit: int
    committee_subsidy: int
    campaign: int
    other_income: int


class FundExpenseByCategory(Out):
    venue_rent: int
    materials: int
    event_costs: int
    other_expense: int


class FundTotals(Out):
    opening_balance_fen: int = Field(description="every line booked before the year")
    income_fen: int
    expense_fen: int
    closing_balance_fen: int
    income_by_category: FundIncomeByCategory = Field(description="net of reversals")
    expense_by_category: FundExpenseByCategory = Field(description="net of reversals")
    pending_fen: int = Field(description="subsidies waiting for approval now (any year)")
    pending_count: int


class FundLedgerOut(FundTotals, Out):
    zone_id: int
    zone_name: str
    year: int
    entries: list[FundLedgerLineOut] = Field(description="the year's booked lines in booking order")
    pending: list[FundEntryOut] = Field(description="subsidies waiting for approval, any year")
    rejected: list[FundEntryOut] = Field(description="subsidies rejected in the year")


class ZoneFundTotals(FundTotals):
    zone_id: int
    zone_name: str


class FundSummaryOut(Out):
    year: int
    zones: list[ZoneFundTotals]
    city: FundTotals
