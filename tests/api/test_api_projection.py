"""ProjectionExpression: parsing, errors and projecting items."""

from __future__ import annotations

from typing import Any

import pytest

from dynamokv.api.attributes import item_from_wire
from dynamokv.api.expressions import parse_projection, project
from tests.api.catalog import error_of, nv, product, sv, wire


def projected(text: str, item: Any, names: dict[str, str] | None = None) -> dict[str, Any]:
    return wire(project(item, parse_projection(text, names)))


def projection_error(text: str, names: Any = None) -> str:
    return error_of(lambda: parse_projection(text, names))


def test_developer_guide_example() -> None:
    out = projected("Description, RelatedItems[0], ProductReviews.FiveStar", product())
    assert out == {
        "Description": sv("123 description"),
        "RelatedItems": {"L": [nv(341)]},
        "ProductReviews": {
            "M": {
                "FiveStar": {
                    "L": [
                        sv("Excellent! Can't recommend it highly enough! Buy it!"),
                        sv("Do yourself a favor and buy this."),
                    ]
                }
            }
        },
    }


ITEM = item_from_wire(
    {
        "pk": sv("p"),
        "a": {"M": {"b": sv("bb"), "c": sv("cc"), "d": {"M": {"e": nv(1)}}}},
        "l": {"L": [sv("l0"), sv("l1"), sv("l2")]},
        "lm": {"L": [{"M": {"k": sv("v0"), "j": sv("w0")}}, {"M": {"k": sv("v1")}}]},
    }
)


def test_list_indexes_are_compacted_in_index_order() -> None:
    assert projected("#l[2], #l[0]", ITEM, {"#l": "l"}) == {"l": {"L": [sv("l0"), sv("l2")]}}


def test_members_of_one_map_are_merged() -> None:
    assert projected("a.c, a.d.e, pk", ITEM) == {
        "a": {"M": {"c": sv("cc"), "d": {"M": {"e": nv(1)}}}},
        "pk": sv("p"),
    }


def test_paths_through_lists_of_maps() -> None:
    assert projected("lm[1].k, lm[0].j", ITEM) == {
        "lm": {"L": [{"M": {"j": sv("w0")}}, {"M": {"k": sv("v1")}}]}
    }


def test_unresolvable_paths_are_skipped() -> None:
    for text in ("nope", "a.nope", "l[7]", "a[0]", "l.x", "pk.x", "nope, l[7], pk.x"):
        assert projected(text, ITEM) == {}
    assert projected("a.nope, a.b", ITEM) == {"a": {"M": {"b": sv("bb")}}}


def test_projection_of_missing_item_is_empty() -> None:
    assert projected("a, b", {}) == {}


class TestErrors:
    def p(self, message: str) -> str:
        return f"Invalid ProjectionExpression: {message}"

    def test_overlaps(self) -> None:
        assert projection_error("a, a") == self.p(
            "Two document paths overlap with each other; must remove or rewrite one of these "
            "paths; path one: [a], path two: [a]"
        )
        assert projection_error("#a, #b", {"#a": "a", "#b": "a"}) == self.p(
            "Two document paths overlap with each other; must remove or rewrite one of these "
            "paths; path one: [a], path two: [a]"
        )
        assert projection_error("a, a.b") == self.p(
            "Two document paths overlap with each other; must remove or rewrite one of these "
            "paths; path one: [a], path two: [a, b]"
        )

    def test_conflict(self) -> None:
        assert projection_error("a[0], a.b") == self.p(
            "Two document paths conflict with each other; must remove or rewrite one of these "
            "paths; path one: [a, [0]], path two: [a, b]"
        )

    def test_reserved_and_undefined(self) -> None:
        assert projection_error("pk, status") == self.p(
            "Attribute name is a reserved keyword; reserved keyword: status"
        )
        assert projection_error("#undef") == self.p(
            "An expression attribute name used in the document path is not defined; "
            "attribute name: #undef"
        )
        # A reserved word is reported before an undefined name.
        assert projection_error("#undef, count") == self.p(
            "Attribute name is a reserved keyword; reserved keyword: count"
        )

    @pytest.mark.parametrize(
        ("text", "token", "near"),
        [
            ("a b", "b", "a b"),
            ("a,", "<EOF>", ","),
            ("user-id", "-", "user-id"),
            ("a.", "<EOF>", "."),
            ("a[]", "]", "[]"),
            ("a[-1]", "-", "[-1"),
            (":v", ":v", ":v"),
            ("size(a)", "(", "size(a"),
        ],
    )
    def test_syntax(self, text: str, token: str, near: str) -> None:
        assert projection_error(text) == self.p(f'Syntax error; token: "{token}", near: "{near}"')

    def test_size_limit_has_no_size_suffix(self) -> None:
        assert projection_error("a" + "z" * 4096) == self.p(
            "Expression size has exceeded the maximum allowed size;"
        )
        parse_projection("a" + "z" * 4095)

    def test_empty(self) -> None:
        assert projection_error("") == self.p("The expression can not be empty;")


def test_path_nesting_limit_is_32_levels() -> None:
    assert projected("a" + ".b" * 31, {}) == {}
    assert projection_error("a" + ".b" * 32) == (
        "Invalid ProjectionExpression: The document path has too many nesting levels; "
        "nesting levels: 33"
    )


def test_list_index_past_32_bits_is_out_of_range() -> None:
    assert projected("l[2147483647]", {}) == {}
    assert projection_error("l[2147483648]") == (
        "Invalid ProjectionExpression: List index is not within the allowable range; "
        "index: [2147483648]"
    )
    assert projection_error("l[99999999999999999999]") == (
        "Invalid ProjectionExpression: List index is not within the allowable range; "
        "index: [99999999999999999999]"
    )
