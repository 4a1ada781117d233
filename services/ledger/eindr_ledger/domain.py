"""Pure rules of the ledger: currencies and their minor units (ISO 4217), parsing money
exactly, signs and netting, contact keys, text hygiene. No I/O here.

Money never touches a float. An amount arrives as a decimal string, is checked against
its currency's minor unit (JPY 0 decimals, USD 2, KWD 3) and is stored as an integer
count of minor units; totals are integer sums, so they are exact by construction.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from iso4217 import Currency

DIRECTIONS = ("they_owe_me", "i_owe_them")
ENTRY_STATUSES = ("open", "settled")
MAX_AMOUNT = Decimal(10) ** 12  # 1,000,000,000,000 major units, inclusive
MAX_NAME = 200
MAX_NOTE = 2000
MAX_REASON = 500
PHONE_HASH = re.compile(r"^[0-9a-f]{64}$")
# Plain decimal notation only: no sign, no exponent, no spaces, no thousands separators.
_AMOUNT_SHAPE = re.compile(r"^(0|[1-9][0-9]{0,12})(\.[0-9]{1,4})?$")


class MoneyError(ValueError):
    """A bad amount or currency; ``field`` names the request field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@cache
def minor_units(currency: str) -> int | None:
    """Decimal places of ``currency`` per ISO 4217, or None when it is not a currency
    people owe each other in (unknown codes, funds, metals, XXX/XTS have no minor unit)."""
    try:
        return Currency(currency).exponent
    except ValueError:
        return None


def check_currency(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value):
        raise MoneyError("currency", "must be a three-letter ISO 4217 currency code, e.g. USD")
    code = value.upper()
    if minor_units(code) is None:
        raise MoneyError("currency", f"{code} is not an ISO 4217 currency with minor units")
    return code


def parse_amount(value: object, currency: str, *, field: str = "amount") -> int:
    """Decimal string → integer minor units of ``currency`` (already checked), exactly.

    Refuses anything that is not a positive plain decimal with at most the currency's
    number of decimals, and anything above 1e12 major units."""
    if not isinstance(value, str):
        raise MoneyError(field, "must be a decimal string such as \"20.00\" (never a JSON number)")
    if not _AMOUNT_SHAPE.match(value):
        raise MoneyError(field, "must be a positive decimal such as \"20.00\" (digits and at most one '.')")
    exponent = minor_units(currency)
    assert exponent is not None
    _, _, fraction = value.partition(".")
    if len(fraction) > exponent:
        places = "no decimals" if exponent == 0 else f"at most {exponent} decimal{'s' if exponent > 1 else ''}"
        raise MoneyError(field, f"{currency} amounts have {places}")
    amount = Decimal(value)
    if amount <= 0:
        raise MoneyError(field, "must be greater than zero")
    if amount > MAX_AMOUNT:
        raise MoneyError(field, "must be at most 1000000000000")
    return int(amount.scaleb(exponent))


def format_minor(minor: int, currency: str) -> str:
    """Integer minor units → decimal string with exactly the currency's decimals."""
    exponent = minor_units(currency) or 0
    digits = str(minor)
    if not exponent:
        return digits
    # Placing the point in the integer's digits is exact, and it runs once per row of a
    # balances answer (1,500 rows for a large ledger): cheaper than divmod + formatting.
    sign = ""
    if minor < 0:
        sign, digits = "-", digits[1:]
    digits = digits.rjust(exponent + 1, "0")
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"


def signed(direction: str, amount_minor: int) -> int:
    """Positive when the counterparty owes the owner."""
    return amount_minor if direction == "they_owe_me" else -amount_minor


def flip(direction: str) -> str:
    """The same debt seen from the other side: my 'they owe me' is their 'I owe them'."""
    return "i_owe_them" if direction == "they_owe_me" else "they_owe_me"


def net_direction(net_minor: int) -> str:
    if net_minor > 0:
        return "they_owe_me"
    if net_minor < 0:
        return "i_owe_them"
    return "settled"


def settlement_direction(entry_direction: str) -> str:
    """A settlement moves the balance back towards zero: it carries the opposite sign."""
    return flip(entry_direction)


def check_settle_amount(remaining_minor: int, requested_minor: int | None) -> int:
    """Amount a settlement takes: all that remains when none is given; never more."""
    if remaining_minor <= 0:
        raise ValueError("already_settled")
    if requested_minor is None:
        return remaining_minor
    if requested_minor > remaining_minor:
        raise ValueError("exceeds_remaining")
    return requested_minor


def normalize_name(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).split())


def user_contact(uid: str) -> str:
    return "user:" + uid


def name_contact(name: str) -> str:
    return "name:" + normalize_name(name).casefold()


def contact_key(counterparty_user_id: str | None, counterparty_name: str | None) -> str:
    if counterparty_user_id:
        return user_contact(counterparty_user_id)
    assert counterparty_name
    return name_contact(counterparty_name)


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be stored as text, or None (NUL bytes and lone surrogates would
    otherwise be a 500 from Postgres or the UTF-8 encoder)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    for ch in value:
        if ch == "\x00":
            return "must not contain NUL bytes"
        if unicodedata.category(ch) == "Cc" and not (multiline and ch in "\n\t\r"):
            return "must not contain control characters"
    return None


_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection): a cell a user typed that starts
    with = + - @ is prefixed with a quote so Excel/Sheets shows it as text."""
    return "'" + value if value.startswith(_CSV_FORMULA) else value


@dataclass(frozen=True)
class Perspective:
    """How an entry looks to ``viewer``: the owner sees it as stored; the counterparty of a
    mirrored entry sees the direction flipped and the owner as the contact."""

    viewer: str

    def direction(self, owner_id: str, stored_direction: str) -> str:
        return stored_direction if owner_id == self.viewer else flip(stored_direction)

    def contact(self, owner_id: str, stored_contact: str) -> str:
        return stored_contact if owner_id == self.viewer else user_contact(owner_id)
