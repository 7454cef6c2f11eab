"""The order-preserving key encoding: order, round trip, self-delimiting composites."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamokv.api.attributes import B, KeyValue, N, S, compare_values
from dynamokv.api.layout.keycodec import (
    KeyDecodeError,
    decode_key,
    decode_keys,
    encode_key,
    encode_keys,
)
from dynamokv.api.numbers import check_number, parse_number


@st.composite
def dynamo_numbers(draw: st.DrawFn) -> Decimal:
    """Any valid DynamoDB number, across the whole exponent range, both signs and zero."""
    if draw(st.integers(0, 20)) == 0:
        return Decimal(0)
    digits = draw(st.integers(min_value=1, max_value=10**38 - 1))
    while digits % 10 == 0:
        digits //= 10
    text = str(digits)
    # adjusted exponent of the result must lie in [-130, 125]
    adjusted = draw(st.integers(min_value=-130, max_value=125))
    exponent = adjusted - (len(text) - 1)
    sign = "-" if draw(st.booleans()) else ""
    return check_number(Decimal(f"{sign}{text}E{exponent}"))


numbers_ = dynamo_numbers().map(N)
strings = st.text(max_size=10).map(S)
binaries = st.binary(max_size=10).map(B)


def ordered(a: KeyValue, b: KeyValue) -> None:
    order = compare_values(a, b)
    assert order is not None
    ea, eb = encode_key(a), encode_key(b)
    assert ((ea > eb) - (ea < eb)) == order


@settings(max_examples=500, deadline=None)
@given(numbers_, numbers_)
def test_numbers_order(a: N, b: N) -> None:
    ordered(a, b)


@settings(max_examples=300, deadline=None)
@given(strings, strings)
def test_strings_order(a: S, b: S) -> None:
    ordered(a, b)


@settings(max_examples=300, deadline=None)
@given(binaries, binaries)
def test_binaries_order(a: B, b: B) -> None:
    ordered(a, b)


@settings(max_examples=300, deadline=None)
@given(st.one_of(numbers_, strings, binaries))
def test_round_trip(value: KeyValue) -> None:
    assert decode_key(encode_key(value)) == value


@settings(max_examples=300, deadline=None)
@given(strings, numbers_, strings, numbers_)
def test_composite_keys_sort_by_parts(h1: S, r1: N, h2: S, r2: N) -> None:
    e1, e2 = encode_keys(h1, r1), encode_keys(h2, r2)
    expected = compare_values(h1, h2) or compare_values(r1, r2)
    assert ((e1 > e2) - (e1 < e2)) == expected
    assert decode_keys(e1) == [h1, r1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(strings, binaries), min_size=2, max_size=2))
def test_no_encoding_is_a_prefix_of_another(values: list[KeyValue]) -> None:
    a, b = (encode_key(v) for v in values)
    if a != b:
        assert not b.startswith(a) and not a.startswith(b)


@pytest.mark.parametrize(
    "texts",
    [
        [
            "-9.9999999999999999999999999999999999999E+125",
            "-1E+125",
            "-100",
            "-1",
            "-0.5",
            "-1E-130",
            "0",
            "1E-130",
            "0.001",
            "0.1",
            "0.101",
            "0.15",
            "1",
            "1.5",
            "10",
            "99999999999999999999999999999999999999",
            "9.9999999999999999999999999999999999999E+125",
        ]
    ],
)
def test_boundary_numbers_sorted(texts: list[str]) -> None:
    encoded = [encode_key(N(parse_number(t))) for t in texts]
    assert encoded == sorted(encoded)
    assert len(set(encoded)) == len(encoded)


def test_strings_with_nul_bytes() -> None:
    values = [S("a"), S("a\x00"), S("a\x00\x00"), S("a\x00b"), S("a\x01"), S("b")]
    encoded = [encode_key(v) for v in values]
    assert encoded == sorted(encoded)
    assert [decode_key(e) for e in encoded] == values


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x99",
        b"\x20abc",
        b"\x20a\x00\x07",
        b"\x10\x07",
        b"\x10\x03\x80",
        b"\x10",
        b"\x20\x00",
    ],
)
def test_decode_rejects_garbage(data: bytes) -> None:
    with pytest.raises(KeyDecodeError):
        decode_key(data)


def test_decode_rejects_trailing_bytes() -> None:
    with pytest.raises(KeyDecodeError):
        decode_key(encode_key(S("a")) + b"x")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=12))
def test_decode_raises_only_key_decode_error(data: bytes) -> None:
    try:
        decode_keys(data)
    except KeyDecodeError:
        pass
