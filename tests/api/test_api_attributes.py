"""Attribute values: wire validation with DynamoDB's messages, round trips, size, keys."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamokv.api import attributes as attr
from dynamokv.api.attributes import (
    BOOL,
    BS,
    NS,
    NULL,
    SS,
    B,
    L,
    M,
    N,
    S,
    from_wire,
    item_from_wire,
    item_size,
    item_to_wire,
    to_wire,
)
from dynamokv.api.errors import DynamoDBError, SerializationException, ValidationException


def rejected(data: Any) -> str:
    with pytest.raises(ValidationException) as info:
        from_wire(data)
    return info.value.message


# --------------------------------------------------------------------------- validation


def test_every_type_parses() -> None:
    assert from_wire({"S": "x"}) == S("x")
    assert from_wire({"N": "1.50"}) == N(Decimal("1.5"))
    assert from_wire({"B": base64.b64encode(b"\x00\x01").decode()}) == B(b"\x00\x01")
    assert from_wire({"BOOL": False}) == BOOL(False)
    assert from_wire({"NULL": True}) == NULL()
    assert from_wire({"SS": ["a", "b"]}) == SS(frozenset({"a", "b"}))
    assert from_wire({"NS": ["1", "2.0"]}) == NS(frozenset({Decimal(1), Decimal(2)}))
    assert from_wire({"BS": ["AA==", "AQ=="]}) == BS(frozenset({b"\x00", b"\x01"}))
    assert from_wire({"L": [{"S": "a"}, {"N": "1"}]}) == L((S("a"), N(Decimal(1))))
    assert from_wire({"M": {"k": {"S": "v"}}}) == M({"k": S("v")})


def test_null_false_is_accepted_as_null() -> None:
    # The service now accepts {"NULL": false} and stores NULL true.
    assert from_wire({"NULL": False}) == NULL()
    assert to_wire(from_wire({"NULL": False})) == {"NULL": True}


def test_empty_strings_and_binary_allowed_for_non_key_values() -> None:
    assert from_wire({"S": ""}) == S("")
    assert from_wire({"B": ""}) == B(b"")
    assert from_wire({"L": [{"S": ""}, {"S": "hello"}]}) == L((S(""), S("hello")))


def test_empty_sets_rejected_with_dynamodb_wording() -> None:
    # Note DynamoDB's double space and "An string".
    assert rejected({"SS": []}) == (
        "One or more parameter values were invalid: An string set  may not be empty"
    )
    assert rejected({"NS": []}) == (
        "One or more parameter values were invalid: An number set  may not be empty"
    )
    assert rejected({"BS": []}) == (
        "One or more parameter values were invalid: Binary sets should not be empty"
    )


def test_empty_set_nested_in_documents_rejected() -> None:
    assert "may not be empty" in rejected({"M": {"inner": {"SS": []}}})
    assert "may not be empty" in rejected({"L": [{"SS": []}]})


def test_duplicate_set_members_rejected() -> None:
    text = rejected({"SS": ["a", "a"]})
    assert text.startswith("One or more parameter values were invalid: Input collection")
    assert text.endswith("contains duplicates.")
    # Numbers are compared by value, so differently spelled equal numbers are duplicates.
    assert "contains duplicates" in rejected({"NS": ["1", "1.0"]})
    assert "contains duplicates" in rejected({"BS": ["AA==", "AA=="]})


def test_structure_errors() -> None:
    assert rejected({}) == (
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
    )
    assert rejected({"S": "a", "N": "1"}) == (
        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of "
        "the supported datatypes"
    )
    assert rejected({"N": "abc"}) == "The parameter cannot be converted to a numeric value: abc"
    assert rejected({"NS": ["1", ""]}) == "The parameter cannot be converted to a numeric value"


@pytest.mark.parametrize(
    "data",
    [
        "not a map",
        {"S": 5},
        {"N": 5},
        {"BOOL": "true"},
        {"NULL": "yes"},
        {"B": "!!!!"},
        {"B": "abc"},
        {"SS": "a"},
        {"L": {"S": "a"}},
        {"M": [1]},
        {"S": "\ud800"},
    ],
)
def test_shape_errors_are_serialization_errors(data: Any) -> None:
    with pytest.raises(SerializationException):
        from_wire(data)


def test_nesting_limit() -> None:
    value: dict[str, Any] = {"S": "leaf"}
    for _ in range(31):
        value = {"L": [value]}
    from_wire(value)  # 31 documents + a scalar = 32 levels: fine
    assert rejected({"L": [value]}) == (
        "Nesting Levels have exceeded supported limits: "
        "Attributes in the item have nested levels beyond supported limit")


def test_item_round_trip_and_canonical_numbers() -> None:
    wire = {
        "pk": {"S": "k"},
        "n": {"N": "001.500"},
        "ss": {"SS": ["b", "a"]},
        "doc": {"M": {"l": {"L": [{"NULL": True}, {"BOOL": True}]}}},
    }
    item = item_from_wire(wire)
    out = item_to_wire(item)
    assert out["n"] == {"N": "1.5"}
    assert out["ss"] == {"SS": ["a", "b"]}
    assert item_from_wire(out) == item


def test_from_python() -> None:
    value = attr.from_python({"a": [1, "x", b"y", None, True, {"s"}, {Decimal("2")}]})
    assert to_wire(value) == {
        "M": {
            "a": {
                "L": [
                    {"N": "1"},
                    {"S": "x"},
                    {"B": "eQ=="},
                    {"NULL": True},
                    {"BOOL": True},
                    {"SS": ["s"]},
                    {"NS": ["2"]},
                ]
            }
        }
    }


# --------------------------------------------------------------------------- equality, order


def test_values_equal_is_type_sensitive() -> None:
    assert attr.values_equal(S("1"), S("1"))
    assert not attr.values_equal(S("1"), from_wire({"N": "1"}))
    assert attr.values_equal(from_wire({"N": "1.0"}), from_wire({"N": "1"}))
    assert attr.values_equal(from_wire({"SS": ["a", "b"]}), from_wire({"SS": ["b", "a"]}))
    assert attr.values_equal(
        from_wire({"M": {"a": {"N": "1"}, "b": {"S": "x"}}}),
        from_wire({"M": {"b": {"S": "x"}, "a": {"N": "1.00"}}}),
    )


def test_compare_values() -> None:
    assert attr.compare_values(S("a"), S("b")) == -1
    assert attr.compare_values(N(Decimal(10)), N(Decimal(9))) == 1
    assert attr.compare_values(B(b"\x01"), B(b"\x01")) == 0
    assert attr.compare_values(S("a"), N(Decimal(1))) is None
    assert attr.compare_values(BOOL(True), BOOL(False)) is None
    # UTF-8 byte order: U+FFFF sorts before U+10000 (code point order == UTF-8 order).
    assert attr.compare_values(S("\uffff"), S("\U00010000")) == -1


# --------------------------------------------------------------------------- size


def test_sizes_follow_the_developer_guide() -> None:
    assert attr.value_size(S("héllo")) == 6
    assert attr.value_size(B(b"abc")) == 3
    assert attr.value_size(BOOL(True)) == attr.value_size(NULL()) == 1
    assert attr.value_size(L(())) == 3
    assert attr.value_size(M({})) == 3
    assert attr.value_size(L((S("ab"), S("c")))) == 3 + (1 + 2) + (1 + 1)
    assert attr.value_size(M({"ab": S("xyz")})) == 3 + 1 + 2 + 3
    assert attr.value_size(SS(frozenset({"a", "bb"}))) == 3
    assert attr.value_size(from_wire({"NS": ["1", "-42"]})) == 2 + 3
    assert item_size({"pk": S("k"), "n": from_wire({"N": "3.14159"})}) == 2 + 1 + 1 + 5


def test_item_size_limit_is_inclusive_at_400kb() -> None:
    name = "p"
    fits = {name: S("x" * (attr.MAX_ITEM_SIZE - 1))}
    assert attr.check_item_size(fits) == attr.MAX_ITEM_SIZE
    too_big = {name: S("x" * attr.MAX_ITEM_SIZE)}
    with pytest.raises(ValidationException) as info:
        attr.check_item_size(too_big)
    assert info.value.message == "Item size has exceeded the maximum allowed size"


# --------------------------------------------------------------------------- keys


def test_key_attribute_rules() -> None:
    attr.validate_key_attribute("pk", S("a"), "S")
    with pytest.raises(ValidationException) as info:
        attr.validate_key_attribute("pk", S(""), "S")
    assert info.value.message == (
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty string value. Key: pk"
    )
    with pytest.raises(ValidationException) as info:
        attr.validate_key_attribute("pk", B(b""), "B")
    assert info.value.message.endswith("cannot contain an empty binary value. Key: pk")
    with pytest.raises(ValidationException) as info:
        attr.validate_key_attribute("pk", S("a"), "N")
    assert info.value.message == (
        "One or more parameter values were invalid: Type mismatch for key pk expected: N actual: S"
    )
    attr.validate_key_attribute("pk", S("x" * 2048), "S")
    with pytest.raises(ValidationException, match="Size of hashkey has exceeded"):
        attr.validate_key_attribute("pk", S("x" * 2049), "S")
    attr.validate_key_attribute("sk", S("x" * 1024), "S", is_range=True)
    with pytest.raises(ValidationException, match="range keys has exceeded"):
        attr.validate_key_attribute("sk", S("x" * 1025), "S", is_range=True)


# --------------------------------------------------------------------------- properties

scalars = st.one_of(
    st.text(max_size=8).map(lambda s: {"S": s}),
    st.integers(min_value=-(10**20), max_value=10**20).map(lambda i: {"N": str(i)}),
    st.binary(max_size=8).map(lambda b: {"B": base64.b64encode(b).decode()}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.sets(st.text(max_size=4), min_size=1, max_size=4).map(lambda s: {"SS": sorted(s)}),
)
wire_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(st.text(max_size=4), inner, max_size=3).map(lambda v: {"M": v}),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(wire_values)
def test_wire_round_trip(wire: dict[str, Any]) -> None:
    value = from_wire(wire)
    again = from_wire(to_wire(value))
    assert again == value
    assert to_wire(again) == to_wire(value)
    assert attr.value_size(value) >= 0


junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS", "x"]),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(junk)
def test_any_json_is_either_a_value_or_a_dynamodb_error(data: Any) -> None:
    try:
        from_wire(data)
    except DynamoDBError:
        pass


def test_item_attribute_names_are_not_empty_and_at_most_65535_bytes() -> None:
    assert attr.item_from_wire({"é" * 32767: {"S": "x"}})  # 65534 bytes
    for name, message in (
        ("", "One or more parameter values were invalid: An attribute name cannot be empty"),
        ("x" * 65536, "One or more parameter values were invalid: Attribute name exceeds the "
                      "maximum allowed length of 65535 bytes"),
        ("é" * 32768, "One or more parameter values were invalid: Attribute name exceeds the "
                      "maximum allowed length of 65535 bytes"),
    ):
        with pytest.raises(ValidationException) as info:
            attr.item_from_wire({name: {"S": "x"}})
        assert info.value.message == message
