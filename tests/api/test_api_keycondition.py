"""KeyConditionExpression: the shapes a Query accepts, DynamoDB's errors, range matching."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from dynamokv.api.attributes import B, N, S
from dynamokv.api.expressions import KeyCondition, parse_key_condition, range_matches
from dynamokv.api.expressions.nodes import RangeCondition
from tests.api.catalog import error_of, nv, sv

TYPES = {"pk": "S", "sk": "S", "n": "N"}
MULTIPLE = (
    "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"
)


def key(
    text: str,
    values: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
    range_key: str | None = "sk",
) -> KeyCondition:
    return parse_key_condition(text, names, values, "pk", range_key, key_types=TYPES)


def key_error(
    text: str,
    values: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
    range_key: str | None = "sk",
) -> str:
    return error_of(lambda: key(text, values, names, range_key))


def test_hash_only() -> None:
    condition = key("pk = :p", {":p": sv("a")})
    assert condition == KeyCondition("pk", S("a"), "sk", None)


@pytest.mark.parametrize(
    ("text", "op", "count"),
    [
        ("pk = :p AND sk = :a", "=", 1),
        ("pk = :p AND sk < :a", "<", 1),
        ("pk = :p AND sk <= :a", "<=", 1),
        ("pk = :p AND sk > :a", ">", 1),
        ("pk = :p AND sk >= :a", ">=", 1),
        ("pk = :p AND sk BETWEEN :a AND :b", "BETWEEN", 2),
        ("pk = :p AND begins_with(sk, :a)", "BEGINS_WITH", 1),
        ("sk > :a AND pk = :p", ">", 1),
        (":a < sk AND :p = pk", ">", 1),
        (":a >= sk AND pk = :p", "<=", 1),
        ("(pk = :p) AND (sk = :a)", "=", 1),
        ("(pk = :p AND sk = :a)", "=", 1),
        ("(pk = :p AND (sk = :a))", "=", 1),
        ("PK = :p and SK = :a", None, 0),
    ],
)
def test_accepted_shapes(text: str, op: str | None, count: int) -> None:
    values = {":p": sv("h"), ":a": sv("a"), ":b": sv("b")}
    used = {k: v for k, v in values.items() if k in text}
    if op is None:
        # Attribute names are case-sensitive: PK is not the key.
        assert key_error(text, used) == "Query condition missed key schema element: pk"
        return
    condition = key(text, used)
    assert condition.hash_value == S("h")
    assert condition.range_condition is not None
    assert condition.range_condition.op == op
    assert len(condition.range_condition.values) == count


def test_placeholder_names() -> None:
    condition = key(
        "#pk = :pk AND :lo <= #sk", {":pk": sv("x"), ":lo": sv("a")}, {"#pk": "pk", "#sk": "sk"}
    )
    assert condition.range_condition == RangeCondition(">=", (S("a"),))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pk = :a OR sk = :a", "Invalid operator used in KeyConditionExpression: OR"),
        ("pk IN (:a, :a)", "Invalid operator used in KeyConditionExpression: IN"),
        (
            "attribute_exists(pk)",
            "Invalid operator used in KeyConditionExpression: attribute_exists",
        ),
        (
            "attribute_not_exists(pk)",
            "Invalid operator used in KeyConditionExpression: attribute_not_exists",
        ),
        ("contains(pk, :a)", "Invalid operator used in KeyConditionExpression: contains"),
        ("NOT pk = :a", "Invalid operator used in KeyConditionExpression: NOT"),
        ("pk <> :a", "Invalid operator used in KeyConditionExpression: <>"),
        (
            "attribute_type(pk, :a)",
            "Invalid operator used in KeyConditionExpression: attribute_type",
        ),
        (
            ":a between size(b) and size(a) and b > :a",
            "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key "
            "attribute as its first operand",
        ),
        (
            "begins_with(:a, b) and a > :a",
            "Invalid condition in KeyConditionExpression: begins_with operator must have the key "
            "attribute as its first operand",
        ),
        (
            "size(b) > a AND a.b > b AND b > c",
            "KeyConditionExpressions cannot contain nested operations",
        ),
        ("a > size(b.d)", "KeyConditionExpressions cannot contain nested operations"),
        (
            "a between size(b) and size(a)",
            "KeyConditionExpressions cannot contain nested operations",
        ),
        (
            "b > a.b",
            MULTIPLE,
        ),
        (
            "b between c[1] and d",
            MULTIPLE,
        ),
        (
            "a between b and size(a)",
            MULTIPLE,
        ),
        (
            "begins_with(a, b)",
            MULTIPLE,
        ),
        (
            "b.d > a AND c.d > e.f",
            "KeyConditionExpressions cannot have conditions on nested attributes",
        ),
        ("a.d > :a", "KeyConditionExpressions cannot have conditions on nested attributes"),
        ("b[0] > :a", "KeyConditionExpressions cannot have conditions on nested attributes"),
        (
            ":a > :a AND a < :a",
            "Invalid condition in KeyConditionExpression: No key attribute specified",
        ),
        (
            "b > :a AND b < :a and c = :a and d = :a",
            "KeyConditionExpressions must only contain one condition per key",
        ),
        (
            "(a > :a and b > :a) and (b > :a and c > :a)",
            "KeyConditionExpressions must only contain one condition per key",
        ),
        (":a = a and b = :a and :a = c", "Conditions can be of length 1 or 2 only"),
        (
            "(a > :a and b > :a) and (c > :a and d > :a) and (e > :a and f > :a)",
            "Conditions can be of length 1 or 2 only",
        ),
    ],
)
def test_table_independent_errors(text: str, message: str) -> None:
    values = {":a": sv("S")} if ":a" in text else None
    assert key_error(text, values) == message


def test_generic_condition_errors_come_first() -> None:
    assert key_error(
        "pk = :p AND sk between :b and :a", {":p": sv("p"), ":a": sv("a"), ":b": nv(1)}
    ) == (
        "Invalid KeyConditionExpression: The BETWEEN operator requires same data type for lower "
        "and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: "
        "AttributeValue: {S:a}"
    )
    assert key_error(
        "pk = :p AND sk between :b and :a", {":p": sv("p"), ":a": sv("a"), ":b": sv("b")}
    ) == (
        "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater "
        "than or equal to lower bound; lower bound operand: AttributeValue: {S:b}, upper bound "
        "operand: AttributeValue: {S:a}"
    )
    assert key_error(
        "pk = :p AND begins_with(n, :n)", {":p": sv("p"), ":n": nv(1)}, range_key="n"
    ) == (
        "Invalid KeyConditionExpression: Incorrect operand type for operator or function; "
        "operator or function: begins_with, operand type: N"
    )
    assert key_error("((pk = :v))", {":v": sv("v")}) == (
        "Invalid KeyConditionExpression: The expression has redundant parentheses;"
    )
    assert key_error("") == "Invalid KeyConditionExpression: The expression can not be empty;"
    assert key_error("things are not gonna be ok").startswith(
        "Invalid KeyConditionExpression: Syntax error; "
    )
    assert key_error("pk = :p AND #nested.x = :v", {":p": sv("p"), ":v": sv("v")}) == (
        "Invalid KeyConditionExpression: An expression attribute name used in the document path "
        "is not defined; attribute name: #nested"
    )


@pytest.mark.parametrize(
    ("text", "range_key", "message"),
    [
        ("sk = :v", "sk", "Query condition missed key schema element: pk"),
        ("attr1 = :v", "sk", "Query condition missed key schema element: pk"),
        ("pk = :v AND attr1 = :v", "sk", "Query condition missed key schema element: sk"),
        ("pk = :v AND sk = :v", None, "Query key condition not supported"),
        ("y = :v and z = :v", None, "Query key condition not supported"),
        ("pk > :v", None, "Query key condition not supported"),
        ("pk > :v AND sk = :v", "sk", "Query key condition not supported"),
        ("begins_with(pk, :v)", None, "Query key condition not supported"),
        ("pk between :v and :v", None, "Query key condition not supported"),
    ],
)
def test_schema_errors(text: str, range_key: str | None, message: str) -> None:
    assert key_error(text, {":v": sv("v")}, range_key=range_key) == message


def test_type_mismatch() -> None:
    mismatch = (
        "One or more parameter values were invalid: Condition parameter type does not match "
        "schema type"
    )
    assert key_error("pk = :v", {":v": nv(1)}) == mismatch
    assert key_error(":v > pk", {":v": nv(1)}, range_key=None) == mismatch
    assert key_error("pk = :p AND sk > :v", {":p": sv("p"), ":v": {"BOOL": True}}) == (
        "Invalid KeyConditionExpression: Incorrect operand type for operator or function; "
        "operator or function: >, operand type: BOOL"
    )
    assert (
        key_error("pk = :p AND n > :v", {":p": sv("p"), ":v": sv("1")}, range_key="n") == mismatch
    )


def test_unused_and_undefined_placeholders() -> None:
    assert key_error("pk = :v", {":v": sv("v"), ":x": sv("x")}) == (
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}"
    )
    assert (
        error_of(lambda: parse_key_condition("pk = :v", {"#unused": "x"}, {":v": sv("v")}, "pk"))
        == "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}"
    )


def test_hash_key_required() -> None:
    with pytest.raises(TypeError):
        parse_key_condition("pk = :v", None, {":v": sv("v")})


class TestRangeMatches:
    def test_no_condition_matches_everything(self) -> None:
        assert range_matches(None, S("x"))

    @pytest.mark.parametrize(
        ("op", "bound", "value", "expected"),
        [
            ("=", 5, 5, True),
            ("=", 5, 6, False),
            ("<", 5, 4, True),
            ("<", 5, 5, False),
            ("<=", 5, 5, True),
            (">", 5, 6, True),
            (">", 5, 5, False),
            (">=", 5, 5, True),
        ],
    )
    def test_comparisons(self, op: str, bound: int, value: int, expected: bool) -> None:
        condition = RangeCondition(op, (N(Decimal(bound)),))
        assert range_matches(condition, N(Decimal(value))) is expected

    def test_between_and_begins_with(self) -> None:
        between = RangeCondition("BETWEEN", (S("b"), S("d")))
        assert [range_matches(between, S(x)) for x in "abcde"] == [False, True, True, True, False]
        prefix = RangeCondition("BEGINS_WITH", (S("ab"),))
        assert range_matches(prefix, S("abc")) and not range_matches(prefix, S("a"))
        binary = RangeCondition("BEGINS_WITH", (B(b"\x01"),))
        assert range_matches(binary, B(b"\x01\x02")) and not range_matches(binary, S("\x01"))
        assert not range_matches(prefix, None)
        assert not range_matches(RangeCondition("<", (S("a"),)), N(Decimal(1)))
