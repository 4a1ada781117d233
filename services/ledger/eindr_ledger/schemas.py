"""The public contract of the ledger service: request and response bodies.

Strings are length-bounded and checked for NUL bytes, control characters and lone
surrogates here, so bad input is a 400 naming the field before anything reaches SQL.
Amounts stay strings: their check needs the currency and happens in ``domain``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from . import domain


def _single_line(value: str) -> str:
    problem = domain.text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _multiline(value: str) -> str:
    problem = domain.text_problem(value, multiline=True)
    if problem:
        raise ValueError(problem)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


UserId = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_single_line), AfterValidator(_not_blank)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=domain.MAX_NAME), AfterValidator(_single_line)]
Note = Annotated[str, StringConstraints(max_length=domain.MAX_NOTE), AfterValidator(_multiline)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=domain.MAX_REASON), AfterValidator(_multiline)]
PhoneHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# Shape only here (bounded, so a megabyte string is refused early); minor units are
# checked against the currency in domain.parse_amount.
AmountText = Annotated[str, StringConstraints(min_length=1, max_length=32), AfterValidator(_single_line)]
CurrencyCode = Annotated[str, StringConstraints(min_length=3, max_length=3), AfterValidator(_single_line)]
Direction = Literal["they_owe_me", "i_owe_them"]
ContactKey = Annotated[str, StringConstraints(min_length=6, max_length=260, pattern=r"^(user|name):"), AfterValidator(_single_line)]


class EntryCreate(BaseModel):
    """``counterparty_user_id`` for a friend on Eindr, or ``counterparty_name`` for a
    contact known only by name (optionally with the hex SHA-256 of their normalised phone)."""

    model_config = ConfigDict(extra="forbid")

    counterparty_user_id: UserId | None = None
    counterparty_name: Name | None = None
    counterparty_phone_hash: PhoneHash | None = None
    direction: Direction
    amount: AmountText = Field(description='Decimal string, e.g. "20.00"; at most the currency\'s minor units')
    currency: CurrencyCode = Field(description="ISO 4217 code, e.g. USD, JPY, KWD")
    note: Note | None = None
    occurred_on: date | None = Field(default=None, description="Date of the debt; today (UTC) when left out")
    due_at: AwareDatetime | None = Field(default=None, description="RFC 3339 with offset; creates a reminder")

    @model_validator(mode="after")
    def _someone(self) -> EntryCreate:
        if not self.counterparty_user_id and not self.counterparty_name:
            raise ValueError("counterparty_user_id or counterparty_name is required")
        return self


class EntryPatch(BaseModel):
    """Only the fields sent change; ``null`` clears note or due date."""

    model_config = ConfigDict(extra="forbid")

    amount: AmountText | None = None
    currency: CurrencyCode | None = None
    counterparty_name: Name | None = None
    note: Note | None = None
    occurred_on: date | None = None
    due_at: AwareDatetime | None = None


class SettleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: AmountText | None = Field(default=None, description="Partial amount; all that remains when left out")
    note: Note | None = None
    occurred_on: date | None = None


class DisputeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class Counterparty(BaseModel):
    user_id: str | None
    name: str | None
    phone_hash: str | None = None


class ContactRef(BaseModel):
    user_id: str | None
    name: str | None


class Entry(BaseModel):
    id: str
    kind: Literal["entry", "settlement"]
    owner_id: str
    mirrored: bool = Field(description="True when a friend recorded this entry and it shows in your ledger")
    counterparty: Counterparty
    contact: str
    direction: Direction
    amount: str
    currency: str
    settled_amount: str
    remaining_amount: str
    status: Literal["open", "settled", "applied", "voided"]
    settles_entry_id: str | None
    note: str | None
    occurred_on: date
    due_at: datetime | None
    reminder_id: str | None
    reminder_error: str | None
    disputed: bool
    dispute_reason: str | None
    disputed_by: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    voided_at: datetime | None


class EntryDetail(Entry):
    settlements: list[Entry] = Field(default_factory=list, description="Settlements of this entry, voided ones included")


class SettleResult(BaseModel):
    entry: Entry
    settlement: Entry


class Balance(BaseModel):
    contact: str
    counterparty: ContactRef
    currency: str
    net_amount: str = Field(description="Absolute net amount, exact to the currency's minor unit")
    direction: Literal["they_owe_me", "i_owe_them", "settled"]
    entries: int


class Balances(BaseModel):
    items: list[Balance]
    partial: bool = Field(description="True when friends could not be asked, so friends' shared entries are missing")


class CurrencyTotal(BaseModel):
    currency: str
    net_amount: str
    direction: Literal["they_owe_me", "i_owe_them", "settled"]


class ContactBalance(BaseModel):
    contact: str
    counterparty: ContactRef
    totals: list[CurrencyTotal]
    history: list[Entry]
    next_cursor: str | None
    partial: bool
