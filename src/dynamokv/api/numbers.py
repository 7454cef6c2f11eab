"""DynamoDB's Number type: parsing, canonical form, limits, arithmetic and stored size.

Owns: the rules a Number must satisfy (at most 38 significant digits, magnitude between
1E-130 and 9.9999999999999999999999999999999999999E+125, or zero), its canonical text, exact
addition/subtraction with DynamoDB's overflow/precision errors, and its byte cost in an item.
May import: stdlib, :mod:`dynamokv.api.errors`.

Numbers are :class:`decimal.Decimal` values kept *normalised* (no trailing zeros, ``-0`` is
``0``), so ``Decimal`` equality and hashing coincide with DynamoDB's ("1.0" == "1", "01" == "1").
"""

from __future__ import annotations

import decimal
import math
import re
from decimal import Decimal

from dynamokv.api.errors import ValidationException

MAX_SIGNIFICANT_DIGITS = 38
# Adjusted exponent (power of ten of the leading digit) of the largest and smallest magnitudes.
MAX_ADJUSTED_EXPONENT = 125
MIN_ADJUSTED_EXPONENT = -130

NOT_A_NUMBER = "The parameter cannot be converted to a numeric value"
TOO_MANY_DIGITS = "Attempting to store more than 38 significant digits in a Number"
OVERFLOW = (
    "Number overflow. Attempting to store a number with magnitude larger than supported range"
)
UNDERFLOW = (
    "Number underflow. Attempting to store a number with magnitude smaller than supported range"
)

# What Java's BigDecimal(String) accepts, which is what DynamoDB parses with: an optional sign,
# digits with an optional point, an optional exponent. Python's Decimal() is more lenient
# (whitespace, underscores, "Infinity", "NaN"), so the syntax is checked first.
_NUMBER_SYNTAX = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# Large enough that a sum of two in-range numbers is always exact: the widest sum spans from
# 10^126 down to 10^-168 (38 digits below 1E-130), under 300 digits.
_EXACT = decimal.Context(
    prec=400, Emax=999_999, Emin=-999_999, rounding=decimal.ROUND_HALF_EVEN, traps=[]
)
_ZERO = Decimal(0)


def significant_digits(value: Decimal) -> int:
    """Digits between the first and the last non-zero digit (0 for zero)."""
    digits = value.as_tuple().digits
    text = "".join(map(str, digits)).strip("0")
    return len(text)


def check_number(value: Decimal) -> Decimal:
    """Enforce DynamoDB's precision and range on ``value``; return its canonical form."""
    if not value.is_finite():
        raise ValidationException(NOT_A_NUMBER)
    if value.is_zero():
        return _ZERO
    # A coefficient of at most 38 digits cannot hold more significant ones: skip the count.
    if len(value.as_tuple().digits) > MAX_SIGNIFICANT_DIGITS and (
        significant_digits(value) > MAX_SIGNIFICANT_DIGITS
    ):
        raise ValidationException(TOO_MANY_DIGITS)
    adjusted = value.adjusted()
    if adjusted > MAX_ADJUSTED_EXPONENT:
        raise ValidationException(OVERFLOW)
    if adjusted < MIN_ADJUSTED_EXPONENT:
        raise ValidationException(UNDERFLOW)
    return value.normalize(_EXACT)


def parse_number(text: str) -> Decimal:
    """Parse the wire form of a Number (the string in ``{"N": "..."}``) into canonical form."""
    if not text:
        raise ValidationException(NOT_A_NUMBER)
    if _plain_integer(text):
        return Decimal(text)
    if _NUMBER_SYNTAX.fullmatch(text) is None:
        raise ValidationException(f"{NOT_A_NUMBER}: {text}")
    try:
        value = Decimal(text)
    except decimal.InvalidOperation as exc:  # pragma: no cover - syntax already checked
        raise ValidationException(f"{NOT_A_NUMBER}: {text}") from exc
    return check_number(value)


def _plain_integer(text: str) -> bool:
    """The most common Number: an integer of at most 38 digits (so in range), without leading
    or trailing zeros (so not zero, and ``Decimal(text)`` is already its canonical form)."""
    digits = text[1:] if text[0] == "-" else text
    return (
        len(text) <= MAX_SIGNIFICANT_DIGITS
        and digits.isascii()
        and digits.isdigit()
        and digits[0] != "0"
        and digits[-1] != "0"
    )


def format_number(value: Decimal) -> str:
    """The canonical text DynamoDB returns: plain notation, no exponent, no trailing zeros."""
    if value.is_zero():
        return "0"
    return format(value.normalize(_EXACT), "f")


def add(a: Decimal, b: Decimal) -> Decimal:
    """``a + b`` exactly, then DynamoDB's checks (so precision loss is an error, not rounding)."""
    return _check_result(_EXACT.add(a, b))


def subtract(a: Decimal, b: Decimal) -> Decimal:
    return _check_result(_EXACT.subtract(a, b))


def _check_result(value: Decimal) -> Decimal:
    """``check_number`` for a computed value: DynamoDB reports a result needing more than 38
    significant digits (1E50 + 1) as an overflow, not as too many digits."""
    try:
        return check_number(value)
    except ValidationException as exc:
        if exc.message == TOO_MANY_DIGITS:
            raise ValidationException(OVERFLOW) from exc
        raise


def number_size(value: Decimal) -> int:
    """Bytes a Number costs in an item.

    One byte of exponent plus one byte per two significant digits, where the integer and the
    fractional parts are counted separately (each rounded up) -- so ``1.5`` costs 3 bytes and
    ``15`` costs 2 -- plus one byte for a negative sign. This is the rule measured against the
    service byte-for-byte; the developer guide's "approximately (digits / 2) + 1" is coarser.
    """
    if value.is_zero():
        return 1
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if digit_tuple[-1]:
        # A canonical coefficient (no trailing zero; never a leading one): the digits left of
        # the point are the integer part, the rest the fraction, with nothing to strip.
        count = len(digit_tuple)
        point = count + exponent
        if 0 < point < count:
            return 1 + (point + 1) // 2 + (count - point + 1) // 2 + sign
        return 1 + (count + 1) // 2 + sign
    return _number_size_of_digits(sign, "".join(map(str, digit_tuple)), exponent)


def _number_size_of_digits(sign: int, digits: str, exponent: int) -> int:
    point = len(digits) + exponent  # position of the decimal point within ``digits``
    if point <= 0:
        int_part, frac_part = "", "0" * (-point) + digits
    elif point >= len(digits):
        int_part, frac_part = digits + "0" * (point - len(digits)), ""
    else:
        int_part, frac_part = digits[:point], digits[point:]
    int_part = int_part.lstrip("0")
    frac_part = frac_part.rstrip("0")
    # A zero between significant digits is itself significant: integer trailing zeros only
    # drop out when no fraction follows, fraction leading zeros only when no integer precedes.
    int_count = len(int_part.rstrip("0")) if not frac_part else len(int_part)
    frac_count = len(frac_part.lstrip("0")) if not int_part else len(frac_part)
    return 1 + math.ceil(int_count / 2) + math.ceil(frac_count / 2) + (1 if sign else 0)
