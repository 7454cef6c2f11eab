"""DynamoDB Number rules: syntax, canonical form, limits, arithmetic, byte size."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamokv.api import numbers
from dynamokv.api.errors import ValidationException


def message(text: str) -> str:
    with pytest.raises(ValidationException) as info:
        numbers.parse_number(text)
    return info.value.message


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1.0", "1"),
        ("01", "1"),
        ("00042", "42"),
        ("3.1400", "3.14"),
        ("0042.1200", "42.12"),
        ("1.5E2", "150"),
        ("1E2", "100"),
        ("100", "100"),
        ("-0", "0"),
        ("0.0", "0"),
        ("0e10", "0"),
        ("+7", "7"),
        (".5", "0.5"),
        ("5.", "5"),
        ("-1.25e-3", "-0.00125"),
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("0.00000000000000000000000000000000000001", "0.00000000000000000000000000000000000001"),
        ("1E125", "1" + "0" * 125),
        ("1E-130", "0." + "0" * 129 + "1"),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    assert numbers.format_number(numbers.parse_number(text)) == canonical


def test_equal_spellings_are_equal_values() -> None:
    assert numbers.parse_number("1.0") == numbers.parse_number("1")
    assert hash(numbers.parse_number("1.000")) == hash(numbers.parse_number("1"))
    assert str(numbers.parse_number("1.0")) == "1"


def test_limits_accepted() -> None:
    for text in (
        "9.9999999999999999999999999999999999999E+125",
        "-9.9999999999999999999999999999999999999E+125",
        "1E-130",
        "-1E-130",
    ):
        numbers.parse_number(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1E+126", numbers.OVERFLOW),
        ("-1e126", numbers.OVERFLOW),
        ("1E-131", numbers.UNDERFLOW),
        ("-1e-131", numbers.UNDERFLOW),
        ("123456789012345678901234567890123456789", numbers.TOO_MANY_DIGITS),
        ("-1.23456789012345678901234567890123456789", numbers.TOO_MANY_DIGITS),
        ("", numbers.NOT_A_NUMBER),
        ("b", numbers.NOT_A_NUMBER + ": b"),
        ("1_000", numbers.NOT_A_NUMBER + ": 1_000"),
        ("NaN", numbers.NOT_A_NUMBER + ": NaN"),
        ("Infinity", numbers.NOT_A_NUMBER + ": Infinity"),
        (" 1", numbers.NOT_A_NUMBER + ":  1"),
        ("1e", numbers.NOT_A_NUMBER + ": 1e"),
        (".", numbers.NOT_A_NUMBER + ": ."),
        ("0x10", numbers.NOT_A_NUMBER + ": 0x10"),
    ],
)
def test_rejections(text: str, expected: str) -> None:
    assert message(text) == expected


def test_exact_messages() -> None:
    assert numbers.OVERFLOW == (
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )
    assert numbers.TOO_MANY_DIGITS == (
        "Attempting to store more than 38 significant digits in a Number"
    )


def test_arithmetic_is_exact() -> None:
    assert numbers.add(Decimal("0.1"), Decimal("0.2")) == Decimal("0.3")
    assert numbers.subtract(Decimal("10"), Decimal("15")) == Decimal("-5")
    assert numbers.add(Decimal("1"), Decimal("-1")) == 0


def test_arithmetic_overflow_and_precision() -> None:
    big = numbers.parse_number("9.9e125")
    with pytest.raises(ValidationException) as info:
        numbers.add(big, big)
    assert info.value.message.startswith("Number overflow")
    # A result needing more than 38 digits is, in DynamoDB's words, an overflow.
    with pytest.raises(ValidationException) as info:
        numbers.add(Decimal("1E20"), Decimal("1E-20"))
    assert info.value.message == numbers.OVERFLOW
    with pytest.raises(ValidationException) as info:
        numbers.subtract(Decimal("1E50"), Decimal("1"))
    assert info.value.message == numbers.OVERFLOW
    with pytest.raises(ValidationException) as info:
        numbers.add(numbers.parse_number("1E-130"), numbers.parse_number("-1.1E-130"))
    assert info.value.message.startswith("Number underflow")


# Literal -> bytes, as measured against the service at the 400 KB boundary.
MEASURED_SIZES = [
    ("0", 1),
    ("1", 2),
    ("12", 2),
    ("123", 3),
    ("1234", 3),
    ("12345678901234567890123456789012345678", 20),
    ("0042", 2),
    ("100", 2),
    ("1010", 3),
    ("0.0000001", 2),
    ("1E125", 2),
    ("1E-100", 2),
    ("1.5", 3),
    ("15", 2),
    ("1.2", 3),
    ("1.200", 3),
    ("1.234", 4),
    ("3.14159", 5),
    ("123456", 4),
    ("100.5", 4),
    ("0.15", 2),
    ("-42", 3),
    ("-0", 1),
]


@pytest.mark.parametrize(("text", "size"), MEASURED_SIZES)
def test_number_size(text: str, size: int) -> None:
    assert numbers.number_size(numbers.parse_number(text)) == size


finite_numbers = st.decimals(
    min_value=Decimal("-1E+20"), max_value=Decimal("1E+20"), allow_nan=False, places=10
)


@settings(max_examples=200, deadline=None)
@given(finite_numbers)
def test_parse_format_round_trip(value: Decimal) -> None:
    parsed = numbers.parse_number(str(value))
    assert parsed == value
    again = numbers.parse_number(numbers.format_number(parsed))
    assert again == parsed
    assert numbers.format_number(again) == numbers.format_number(parsed)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_parse_never_raises_anything_else(text: str) -> None:
    try:
        numbers.parse_number(text)
    except ValidationException:
        pass
