"""Pure money rules: formatting minor units back to decimal strings, exactly."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from eindr_ledger import domain


@pytest.mark.parametrize("currency", ["JPY", "USD", "KWD", "CLF"])
def test_format_minor_is_the_exact_decimal_with_the_currency_exponent(currency):
    exponent = domain.minor_units(currency)
    rng = random.Random(currency)
    edges = [0, 1, 9, 10, 99, 100, 101, 999, 1000, 10**16, 10**25 + 3]
    for minor in edges + [rng.randrange(10**20) for _ in range(2000)]:
        for value in (minor, -minor):
            expected = str(Decimal(value).scaleb(-exponent))
            assert domain.format_minor(value, currency) == expected, (value, currency)


@pytest.mark.parametrize(("minor", "currency", "text"), [(5, "USD", "0.05"), (5, "KWD", "0.005"), (5, "CLF", "0.0005"), (5, "JPY", "5"), (-120, "USD", "-1.20")])
def test_format_minor_examples(minor, currency, text):
    assert domain.format_minor(minor, currency) == text


def test_format_then_parse_round_trips():
    rng = random.Random(7)
    for currency in ("JPY", "USD", "KWD", "CLF"):
        top = int(domain.MAX_AMOUNT) * 10 ** domain.minor_units(currency)
        for minor in [1, top] + [rng.randint(1, top) for _ in range(1000)]:
            assert domain.parse_amount(domain.format_minor(minor, currency), currency) == minor
