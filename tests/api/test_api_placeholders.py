"""ExpressionAttributeNames / ExpressionAttributeValues validation and request-wide usage."""

from __future__ import annotations

import pytest

from dynamokv.api.errors import DynamoDBError
from dynamokv.api.expressions import (
    ExpressionAttributes,
    parse_condition,
    parse_projection,
    parse_update,
)
from tests.api.catalog import error_of


def test_empty_maps() -> None:
    assert error_of(lambda: ExpressionAttributes({}, None)) == (
        "ExpressionAttributeNames must not be empty"
    )
    assert error_of(lambda: ExpressionAttributes(None, {})) == (
        "ExpressionAttributeValues must not be empty"
    )


@pytest.mark.parametrize("key", ["a", "#", "#a-b", "s", ""])
def test_invalid_name_keys(key: str) -> None:
    assert error_of(lambda: ExpressionAttributes({key: "x"}, None)) == (
        f'ExpressionAttributeNames contains invalid key: Syntax error; key: "{key}"'
    )


@pytest.mark.parametrize("key", ["v", ":", ":a b", "#v"])
def test_invalid_value_keys(key: str) -> None:
    assert error_of(lambda: ExpressionAttributes(None, {key: {"S": "x"}})) == (
        f'ExpressionAttributeValues contains invalid key: Syntax error; key: "{key}"'
    )


def test_invalid_values_name_their_key() -> None:
    assert error_of(lambda: ExpressionAttributes(None, {":v": {"SS": []}})) == (
        "ExpressionAttributeValues contains invalid value: One or more parameter values were "
        "invalid: An string set  may not be empty for key :v"
    )
    assert error_of(lambda: ExpressionAttributes(None, {":v": {"N": "x"}})) == (
        "ExpressionAttributeValues contains invalid value: The parameter cannot be converted "
        "to a numeric value: x for key :v"
    )
    assert error_of(lambda: ExpressionAttributes({"#n": ""}, None)) == (
        "ExpressionAttributeNames contains invalid value: Empty attribute name for key #n"
    )


def test_unused_lists_all_keys_in_request_order() -> None:
    attrs = ExpressionAttributes({"#a": "a", "#b": "b", "#c": "c"}, {":x": {"N": "1"}})
    parse_projection("#b", attributes=attrs)
    assert error_of(attrs.check_unused) == (
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #c}"
    )


def test_names_reported_before_values() -> None:
    attrs = ExpressionAttributes({"#a": "a"}, {":x": {"N": "1"}})
    assert "ExpressionAttributeNames" in error_of(attrs.check_unused)


def test_usage_is_pooled_across_the_request() -> None:
    attrs = ExpressionAttributes({"#k": "k", "#p": "p"}, {":one": {"N": "1"}, ":k": {"S": "x"}})
    parse_update("ADD #p :one", attributes=attrs)
    parse_condition("#k = :k", attributes=attrs)
    attrs.check_unused()


def test_a_value_used_only_by_a_failing_parse_is_not_counted() -> None:
    attrs = ExpressionAttributes(None, {":v": {"N": "1"}})
    with pytest.raises(DynamoDBError):
        parse_condition("a = ", attributes=attrs)
    assert attrs.unused_values == [":v"]


def test_maps_without_any_expression() -> None:
    assert error_of(ExpressionAttributes({"#a": "a"}, None).check_given_without_expressions) == (
        "ExpressionAttributeNames can only be specified when using expressions"
    )
    assert (
        error_of(ExpressionAttributes(None, {":a": {"S": "a"}}).check_given_without_expressions)
        == "ExpressionAttributeValues can only be specified when using expressions"
    )
    ExpressionAttributes().check_given_without_expressions()


def test_either_maps_or_tracker() -> None:
    attrs = ExpressionAttributes()
    with pytest.raises(TypeError):
        parse_projection("a", {"#a": "a"}, attributes=attrs)


def test_name_values_must_be_strings_up_to_65535_bytes() -> None:
    with pytest.raises(DynamoDBError) as info:
        ExpressionAttributes({"#a": 1})
    assert (info.value.error_type, info.value.message) == (
        "SerializationException", "NUMBER_VALUE cannot be converted to String")
    ExpressionAttributes({"#a": "x" * 65535})
    assert error_of(lambda: ExpressionAttributes({"#a": "x" * 65536})) == (
        "ExpressionAttributeNames contains invalid value: Attribute name exceeds the maximum "
        "allowed length of 65535 bytes for key #a"
    )
