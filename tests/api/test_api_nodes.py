"""Small pieces of the expression package used directly by the server."""

from __future__ import annotations

from decimal import Decimal

from dynamokv.api.attributes import B, N, S, item_from_wire
from dynamokv.api.expressions import (
    Path,
    parse_key_condition,
    parse_projection,
    parse_update,
    resolve_path,
)
from dynamokv.api.expressions.nodes import RangeCondition

ITEM = item_from_wire(
    {"a": {"M": {"b": {"L": [{"N": "1"}, {"M": {"c": {"S": "deep"}}}]}}}, "s": {"S": "x"}}
)


def test_resolve_path() -> None:
    assert resolve_path(ITEM, Path(("a", "b", 1, "c"))) == S("deep")
    assert resolve_path(ITEM, Path(("a", "b", 0))) == N(Decimal(1))
    for elements in [("a", "b", 2), ("a", "x"), ("s", "x"), ("s", 0), ("a", 0), ("nope",)]:
        assert resolve_path(ITEM, Path(elements)) is None


def test_path_rendering_and_properties() -> None:
    path = Path(("a", "b", 2, "c"))
    assert str(path) == "[a, b, [2], c]"
    assert path.head == "a" and path.is_nested
    assert not Path(("a",)).is_nested


def test_update_actions_keep_clause_order() -> None:
    update = parse_update(
        "REMOVE r ADD n :n SET s = :s DELETE d :d",
        None,
        {":n": {"N": "1"}, ":s": {"S": "x"}, ":d": {"SS": ["x"]}},
    )
    assert [type(a).__name__ for a in update.actions] == [
        "SetAction",
        "RemoveAction",
        "AddAction",
        "DeleteAction",
    ]


def test_projection_top_level_names() -> None:
    projection = parse_projection("a.b, #c[1], d", {"#c": "c"})
    assert projection.top_level_names == frozenset({"a", "c", "d"})


def test_binary_and_number_keys() -> None:
    condition = parse_key_condition(
        "h = :h AND r BETWEEN :lo AND :hi",
        None,
        {":h": {"B": "AAE="}, ":lo": {"N": "-5"}, ":hi": {"N": "1e3"}},
        "h",
        "r",
        key_types={"h": "B", "r": "N"},
    )
    assert condition.hash_value == B(b"\x00\x01")
    assert condition.range_condition == RangeCondition(
        "BETWEEN", (N(Decimal(-5)), N(Decimal(1000)))
    )
