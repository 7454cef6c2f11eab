"""Fuzzing the expression parsers and evaluators.

Whatever the input, the only exception that may escape is a DynamoDBError (which the server
turns into a 400); anything else would be a 500. Valid expressions generated from the grammar
must parse back to the tree they were printed from.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamokv.api.attributes import item_from_wire
from dynamokv.api.errors import DynamoDBError
from dynamokv.api.expressions import (
    apply_update,
    evaluate,
    parse_condition,
    parse_filter,
    parse_key_condition,
    parse_projection,
    parse_update,
    project,
)
from dynamokv.api.expressions.context import ExpressionAttributes
from dynamokv.api.expressions.nodes import (
    And,
    Between,
    Comparison,
    Condition,
    FunctionCondition,
    FunctionOperand,
    In,
    Not,
    Operand,
    Or,
    Path,
    PathOperand,
    ValueOperand,
)

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = {"#a": "a", "#b": "b", "#l": "l", "#m": "m"}
VALUE_CHOICES = [
    {"S": "x"},
    {"S": ""},
    {"N": "1"},
    {"N": "-2.5"},
    {"N": "9.9e125"},
    {"B": "AAE="},
    {"BOOL": True},
    {"NULL": True},
    {"SS": ["x", "y"]},
    {"NS": ["1", "2"]},
    {"BS": ["AA=="]},
    {"L": [{"S": "x"}, {"N": "1"}]},
    {"M": {"a": {"N": "1"}}},
]
ITEM = item_from_wire(
    {
        "a": {"N": "1"},
        "b": {"S": "xyz"},
        "l": {"L": [{"N": "1"}, {"M": {"a": {"S": "x"}}}, {"L": []}]},
        "m": {"M": {"a": {"N": "2"}, "l": {"L": [{"S": "q"}]}, "s": {"SS": ["x"]}}},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1"]},
    }
)

TOKENS = [
    "a",
    "b",
    "l",
    "m",
    "ss",
    "ns",
    "c",
    "status",
    "#a",
    "#b",
    "#l",
    "#m",
    "#zz",
    ":a",
    ":b",
    ":c",
    ":zz",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "(",
    ")",
    "[",
    "]",
    "0",
    "1",
    "2",
    "99",
    ",",
    ".",
    "+",
    "-",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "IN",
    "and",
    "SET",
    "REMOVE",
    "ADD",
    "DELETE",
    "set",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
    "if_not_exists",
    "list_append",
    "foo",
    "#",
    ":",
    "!",
    "é",
    "\t",
]


@st.composite
def token_soup(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    words = draw(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14))
    text = draw(st.sampled_from([" ", ""])).join(words)
    values = {
        key: draw(st.sampled_from(VALUE_CHOICES)) for key in (":a", ":b", ":c") if key in text
    }
    return text, values


def names_in(text: str) -> dict[str, str] | None:
    used = {k: v for k, v in NAMES.items() if k in text}
    return used or None


def run_everything(text: str, values: dict[str, Any]) -> None:
    names = names_in(text)
    vals = values or None
    for attempt in (
        lambda: evaluate(parse_condition(text, names, vals), ITEM),
        lambda: evaluate(parse_filter(text, names, vals), {}),
        lambda: apply_update(parse_update(text, names, vals), ITEM),
        lambda: apply_update(parse_update(text, names, vals), {}),
        lambda: project(ITEM, parse_projection(text, names)),
        lambda: parse_key_condition(text, names, vals, "a", "b", key_types={"a": "N", "b": "S"}),
    ):
        try:
            attempt()
        except DynamoDBError:
            pass


@FUZZ
@given(st.text(max_size=40))
def test_random_text_only_raises_dynamodb_errors(text: str) -> None:
    run_everything(text, {})


@FUZZ
@given(token_soup())
def test_token_soup_only_raises_dynamodb_errors(soup: tuple[str, dict[str, Any]]) -> None:
    run_everything(*soup)


# --------------------------------------------------------------------------- grammar round trip

paths = st.lists(
    st.one_of(st.sampled_from(["a", "b", "c", "#a"]), st.integers(0, 3)), min_size=0, max_size=2
).flatmap(lambda rest: st.sampled_from(["a", "b", "c", "#m"]).map(lambda head: [head, *rest]))


def render_path(elements: list[Any]) -> str:
    out = str(elements[0])
    for element in elements[1:]:
        out += f"[{element}]" if isinstance(element, int) else f".{element}"
    return out


def resolve(elements: list[Any]) -> Path:
    return Path(tuple(NAMES.get(e, e) if isinstance(e, str) else e for e in elements))


@st.composite
def operands(draw: st.DrawFn, attrs: ExpressionAttributes) -> tuple[str, Operand]:
    kind = draw(st.sampled_from(["path", "value", "size"]))
    if kind == "value":
        key = draw(st.sampled_from([":a", ":b", ":c"]))
        value = attrs.values[key]
        return key, ValueOperand(key, value)
    elements = draw(paths)
    operand: Operand = PathOperand(resolve(elements))
    if kind == "size":
        return f"size({render_path(elements)})", FunctionOperand("size", (operand,))
    return render_path(elements), operand


@st.composite
def conditions(
    draw: st.DrawFn, attrs: ExpressionAttributes, depth: int = 0
) -> tuple[str, Condition]:
    choice = draw(st.integers(0, 7 if depth < 3 else 3))
    if choice == 0:
        (lt, lo), (rt, ro) = draw(operands(attrs)), draw(operands(attrs))
        op = draw(st.sampled_from(["=", "<>"]))
        return f"{lt} {op} {rt}", Comparison(op, lo, ro)
    if choice == 1:
        elements = draw(paths)
        fn = draw(st.sampled_from(["attribute_exists", "attribute_not_exists"]))
        return f"{fn}({render_path(elements)})", FunctionCondition(
            fn, (PathOperand(resolve(elements)),)
        )
    if choice == 2:
        (t, o) = draw(operands(attrs))
        cands = draw(st.lists(operands(attrs), min_size=1, max_size=3))
        text = f"{t} IN ({', '.join(c for c, _ in cands)})"
        return text, In(o, tuple(c for _, c in cands))
    if choice == 3:
        elements = draw(paths)
        return f"contains({render_path(elements)}, :a)", FunctionCondition(
            "contains", (PathOperand(resolve(elements)), ValueOperand(":a", attrs.values[":a"]))
        )
    left_text, left = draw(conditions(attrs, depth + 1))
    if choice == 4:
        return f"NOT ({left_text})", Not(left)
    right_text, right = draw(conditions(attrs, depth + 1))
    if choice in (5, 6):
        word, node = ("AND", And) if choice == 5 else ("OR", Or)
        return f"({left_text}) {word} ({right_text})", node(left, right)
    (t, o) = draw(operands(attrs))
    return f"{t} BETWEEN :b AND :b", Between(
        o, ValueOperand(":b", attrs.values[":b"]), ValueOperand(":b", attrs.values[":b"])
    )


def same_shape(parsed: Condition, expected: Condition) -> bool:
    return parsed == expected


@FUZZ
@given(st.data())
def test_printed_conditions_parse_back(data: st.DataObject) -> None:
    values = {":a": {"S": "x"}, ":b": {"N": "1"}, ":c": {"L": []}}
    attrs = ExpressionAttributes(NAMES, values)
    text, tree = data.draw(conditions(attrs))
    try:
        parsed = parse_condition(text, attributes=attrs)
    except DynamoDBError as exc:
        # Generated trees may repeat a path on both sides, which DynamoDB forbids, or put the
        # list literal :c in a BETWEEN, which has no order.
        assert "must be distinct" in exc.message or (
            "operator or function: BETWEEN, operand type: L" in exc.message
        ), (text, exc.message)
        return
    assert same_shape(parsed, tree), text
    evaluate(parsed, ITEM)
