"""Inputs that once crashed the parsers (RecursionError) or were otherwise mishandled.

Each must now produce DynamoDB's error -- or parse and evaluate -- without exhausting the stack.
"""

from __future__ import annotations

from decimal import Decimal

from dynamokv.api.attributes import L, N, item_from_wire
from dynamokv.api.expressions import apply_update, evaluate, parse_condition, parse_update
from tests.api.catalog import error_of

V = {":v": {"N": "1"}}
TOO_MANY = "The expression contains too many operators; operator count: 301"


def test_2000_nested_group_parentheses() -> None:
    text = "(" * 2000 + "a = :v" + ")" * 2000
    assert error_of(lambda: parse_condition(text, None, V)) == (
        "Invalid ConditionExpression: The expression has redundant parentheses;"
    )


def test_2000_nested_operand_parentheses() -> None:
    text = "a = " + "(" * 2000 + ":v" + ")" * 2000
    assert error_of(lambda: parse_condition(text, None, V)) == (
        "Invalid ConditionExpression: The expression has redundant parentheses;"
    )


def test_2040_unclosed_parentheses() -> None:
    assert error_of(lambda: parse_condition("(" * 2040)) == (
        'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "("'
    )


def test_1000_nots() -> None:
    text = "NOT " * 1000 + "a = :v"
    assert error_of(lambda: parse_condition(text, None, V)) == (
        f"Invalid ConditionExpression: {TOO_MANY}"
    )


def test_299_nots_parse_and_evaluate() -> None:
    condition = parse_condition("NOT " * 299 + "a = :v", None, V)
    assert evaluate(condition, item_from_wire({"a": {"N": "1"}})) is False


def test_deeply_nested_size_calls() -> None:
    text = "size(" * 400 + "a" + ")" * 400 + " = :v"
    assert error_of(lambda: parse_condition(text, None, V)) == (
        f"Invalid ConditionExpression: {TOO_MANY}"
    )


def nested(levels: int) -> str:
    return "a < b AND (" * levels + "a < b" + ")" * levels


def test_operator_limit_allows_300() -> None:
    condition = parse_condition(nested(149))  # 2 * 149 + 1 = 299 operators
    assert evaluate(condition, item_from_wire({"a": {"N": "1"}, "b": {"N": "2"}})) is True


def test_operator_limit_rejects_301() -> None:
    assert error_of(lambda: parse_condition(nested(150))) == (
        f"Invalid ConditionExpression: {TOO_MANY}"
    )


def test_deep_update_value_parentheses() -> None:
    text = "SET a = " + "(" * 2000 + ":v" + ")" * 2000
    assert error_of(lambda: parse_update(text, None, V)) == (
        "Invalid UpdateExpression: The expression has redundant parentheses;"
    )


def test_200_nested_list_appends_are_refused_not_crashed_on() -> None:
    # DynamoDB parses a list_append nested in another but refuses it; 200 levels must still
    # get that answer, not a recursion error.
    text = "SET a = " + "list_append(" * 200 + ":v" + ", :v)" * 200
    assert error_of(lambda: parse_update(text, None, {":v": {"L": [{"N": "1"}]}})) == (
        "Invalid UpdateExpression: The function is not allowed to be used this way in an "
        "expression; function: list_append"
    )


def test_list_append_of_if_not_exists_applies() -> None:
    text = "SET a = list_append(if_not_exists(a, :v), :v)"
    update = parse_update(text, None, {":v": {"L": [{"N": "1"}]}})
    assert apply_update(update, {})["a"] == L(tuple(N(Decimal(1)) for _ in range(2)))
