"""ConditionExpression / FilterExpression: parsing, DynamoDB's errors, and evaluation."""

from __future__ import annotations

from typing import Any

import pytest

from dynamokv.api.attributes import Item, item_from_wire
from dynamokv.api.expressions import ExpressionAttributes, evaluate, parse_condition, parse_filter
from tests.api.catalog import error_of, nv, product, sv


def holds(
    text: str,
    item: Item,
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> bool:
    return evaluate(parse_condition(text, names, values), item)


def cond_error(text: str, names: Any = None, values: Any = None) -> str:
    return error_of(lambda: parse_condition(text, names, values))


# --------------------------------------------------------------------------- developer guide


class TestDeveloperGuideExamples:
    """The condition examples of the guide, against its ProductCatalog item 123."""

    def test_attribute_not_exists(self) -> None:
        assert not holds("attribute_not_exists(Price)", product())
        assert holds("attribute_not_exists(Discount)", product())

    def test_attribute_exists_nested(self) -> None:
        names = {"#pr": "ProductReviews"}
        assert holds("attribute_exists(#pr.FiveStar)", product(), names)
        assert holds(
            "attribute_exists(#pr.FiveStar) AND attribute_exists(#pr.OneStar)", product(), names
        )
        assert not holds("attribute_exists(#pr.ThreeStar)", product(), names)

    def test_begins_with(self) -> None:
        assert holds(
            "begins_with(Pictures.FrontView, :v_sub)", product(), None, {":v_sub": sv("http://")}
        )
        assert not holds(
            "begins_with(Pictures.FrontView, :v_sub)", product(), None, {":v_sub": sv("ftp://")}
        )

    def test_contains_on_a_string_set(self) -> None:
        assert holds("contains(Color, :v_sub)", product(), None, {":v_sub": sv("Red")})
        assert not holds("contains(Color, :v_sub)", product(), None, {":v_sub": sv("Blue")})

    def test_size_of_missing_attribute_is_false(self) -> None:
        assert not holds("size(VideoClip) > :v_sub", product(), None, {":v_sub": nv(64000)})

    def test_size_of_string(self) -> None:
        assert holds("size(Brand) <= :v_sub", product(), None, {":v_sub": nv(20)})

    def test_between(self) -> None:
        values = {":lo": nv(500), ":hi": nv(600)}
        assert holds("Price between :lo and :hi", product(), None, values)
        assert not holds(
            "Price between :lo and :hi", product(), None, {":lo": nv(1), ":hi": nv(499)}
        )

    def test_in(self) -> None:
        values = {":cat1": sv("Sporting Goods"), ":cat2": sv("Gardening Supplies")}
        assert not holds("ProductCategory IN (:cat1, :cat2)", product(), None, values)
        assert holds("ProductCategory IN (:c)", product(), None, {":c": sv("Bicycle")})

    def test_parenthesised_combination(self) -> None:
        values = {":cat1": sv("Bicycle"), ":cat2": sv("x"), ":lo": nv(100), ":hi": nv(600)}
        text = "(ProductCategory IN (:cat1, :cat2)) and (Price between :lo and :hi)"
        assert holds(text, product(), None, values)

    def test_attribute_type(self) -> None:
        assert holds(
            "attribute_type(ProductReviews.FiveStar, :v_sub)", product(), None, {":v_sub": sv("L")}
        )
        assert not holds("attribute_type(Price, :t)", product(), None, {":t": sv("S")})

    def test_price_comparison(self) -> None:
        assert not holds("Price > :limit", product(), None, {":limit": nv(500)})
        assert holds("Price >= :limit", product(), None, {":limit": nv(500)})

    def test_name_with_a_dot_needs_a_placeholder(self) -> None:
        names = {"#sw": "Safety.Warning"}
        assert holds("#sw = :v", product(), names, {":v": sv("Always wear a helmet")})
        # Without it, Safety.Warning is a path into a map "Safety", which does not exist.
        assert not holds("attribute_exists(Safety.Warning)", product())

    def test_list_elements(self) -> None:
        assert holds("RelatedItems[1] = :v", product(), None, {":v": nv(472)})
        assert not holds("attribute_exists(RelatedItems[3])", product())
        assert holds("ProductReviews.FiveStar[0] <> :v", product(), None, {":v": sv("meh")})


# --------------------------------------------------------------------------- semantics

ITEM = item_from_wire(
    {
        "s": sv("hello"),
        "n": nv(10),
        "b": {"B": "AAEC"},  # 00 01 02
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2", "3"]},
        "bs": {"BS": ["AA==", "AQ=="]},
        "l": {"L": [sv("x"), nv(1), {"M": {"k": sv("v")}}]},
        "m": {"M": {"a": nv(1), "b": {"L": [nv(5)]}}},
        "blank": sv(""),
    }
)


class TestComparisons:
    def test_equality_is_type_sensitive(self) -> None:
        assert holds("n = :v", ITEM, None, {":v": nv("10.0")})
        assert not holds("n = :v", ITEM, None, {":v": sv("10")})
        assert holds("n <> :v", ITEM, None, {":v": sv("10")})

    def test_missing_attribute(self) -> None:
        for op in ("=", "<", "<=", ">", ">="):
            assert not holds(f"nope {op} :v", ITEM, None, {":v": nv(1)})
        assert holds("nope <> :v", ITEM, None, {":v": nv(1)})

    def test_ordering_of_each_scalar_type(self) -> None:
        assert holds("s < :v", ITEM, None, {":v": sv("world")})
        assert holds("n > :v", ITEM, None, {":v": nv(9.5)})
        assert holds("b < :v", ITEM, None, {":v": {"B": "AAED"}})
        assert holds("s >= :v", ITEM, None, {":v": sv("hello")})

    def test_mismatched_types_are_false_not_errors(self) -> None:
        assert not holds("s < :v", ITEM, None, {":v": nv(1)})
        assert not holds("n >= :v", ITEM, None, {":v": sv("a")})
        assert not holds("ss > :v", ITEM, None, {":v": sv("a")})

    def test_documents_and_sets_compare_for_equality(self) -> None:
        assert holds("ss = :v", ITEM, None, {":v": {"SS": ["b", "a"]}})
        assert holds("m = :v", ITEM, None, {":v": {"M": {"b": {"L": [nv(5)]}, "a": nv("1.00")}}})
        assert holds("l[2] = :v", ITEM, None, {":v": {"M": {"k": sv("v")}}})
        assert holds("z = :v", ITEM, None, {":v": {"NULL": True}})
        assert holds("t = :v", ITEM, None, {":v": {"BOOL": True}})

    def test_path_to_path_and_value_to_value(self) -> None:
        assert holds("m.a = l[1]", ITEM)
        assert holds(":a < :b", ITEM, None, {":a": nv(1), ":b": nv(2)})

    def test_between_rules(self) -> None:
        assert holds("n BETWEEN :a AND :b", ITEM, None, {":a": nv(10), ":b": nv(10)})
        assert not holds("s BETWEEN :a AND :b", ITEM, None, {":a": nv(1), ":b": nv(20)})
        assert not holds("nope BETWEEN :a AND :b", ITEM, None, {":a": nv(1), ":b": nv(20)})
        # Bounds taken from the item may be reversed at run time: simply false.
        assert not holds("n BETWEEN m.a AND l[1]", ITEM)

    def test_in(self) -> None:
        values = {":a": sv("x"), ":b": nv(10), ":c": {"SS": ["a"]}}
        assert holds("n IN (:a, :b, :c)", ITEM, None, values)
        assert not holds("nope IN (:a, :b, :c)", ITEM, None, values)
        assert holds("l[0] IN (:a)", ITEM, None, {":a": sv("x")})

    def test_in_accepts_exactly_100_operands(self) -> None:
        values = {f":v{i}": nv(i) for i in range(100)}
        text = "n IN (" + ", ".join(values) + ")"
        assert holds(text, ITEM, None, values)
        values[":v100"] = nv(100)
        text = "n IN (" + ", ".join(values) + ")"
        assert cond_error(text, None, values) == (
            "Invalid ConditionExpression: The IN operator is provided with too many operands; "
            "number of operands: 101"
        )


class TestLogic:
    def test_precedence_not_and_or(self) -> None:
        v = {":t": {"BOOL": True}, ":f": {"BOOL": False}}
        # AND binds tighter than OR.
        assert holds("t = :t OR t = :f AND t = :f", ITEM, None, v)
        assert not holds("(t = :t OR t = :f) AND t = :f", ITEM, None, v)
        # NOT binds tighter than AND.
        assert holds("NOT t = :f AND t = :t", ITEM, None, v)
        assert not holds("NOT (t = :f OR t = :t)", ITEM, None, v)
        assert holds("NOT NOT t = :t", ITEM, None, {":t": {"BOOL": True}})

    def test_keywords_any_case(self) -> None:
        v = {":a": nv(1), ":b": nv(20)}
        assert holds("n between :a and :b aNd NOT n In (:a)", ITEM, None, v)

    def test_whitespace_is_free(self) -> None:
        assert holds("  m . b [ 0 ]\t=\n:v ", ITEM, None, {":v": nv(5)})
        assert holds("m.b[0]=:v", ITEM, None, {":v": nv(5)})


class TestFunctions:
    @pytest.mark.parametrize(
        ("path", "size"),
        [("s", 5), ("b", 3), ("ss", 2), ("ns", 3), ("bs", 2), ("l", 3), ("m", 2), ("blank", 0)],
    )
    def test_size_of_each_type(self, path: str, size: int) -> None:
        assert holds(f"size({path}) = :v", ITEM, None, {":v": nv(size)})

    def test_size_of_string_counts_utf8_bytes(self) -> None:
        item = item_from_wire({"s": sv("héllo")})
        assert holds("size(s) = :v", item, None, {":v": nv(6)})

    @pytest.mark.parametrize("path", ["n", "t", "z", "nope"])
    def test_size_undefined_types_are_false(self, path: str) -> None:
        assert not holds(f"size({path}) >= :v", ITEM, None, {":v": nv(0)})

    def test_contains(self) -> None:
        assert holds("contains(s, :v)", ITEM, None, {":v": sv("ell")})
        assert holds("contains(ss, :v)", ITEM, None, {":v": sv("a")})
        assert holds("contains(ns, :v)", ITEM, None, {":v": nv("2.0")})
        assert holds("contains(bs, :v)", ITEM, None, {":v": {"B": "AQ=="}})
        assert holds("contains(l, :v)", ITEM, None, {":v": nv(1)})
        assert holds("contains(l, :v)", ITEM, None, {":v": {"M": {"k": sv("v")}}})
        assert holds("contains(b, :v)", ITEM, None, {":v": {"B": "AQI="}})
        assert not holds("contains(ns, :v)", ITEM, None, {":v": sv("2")})
        assert not holds("contains(n, :v)", ITEM, None, {":v": nv(1)})
        assert not holds("contains(nope, :v)", ITEM, None, {":v": nv(1)})
        assert holds("contains(s, m.nope) OR contains(l, l[0])", ITEM)

    def test_begins_with(self) -> None:
        assert holds("begins_with(s, :v)", ITEM, None, {":v": sv("he")})
        assert holds("begins_with(s, :v)", ITEM, None, {":v": sv("")})
        assert holds("begins_with(b, :v)", ITEM, None, {":v": {"B": "AAE="}})
        assert not holds("begins_with(ss, :v)", ITEM, None, {":v": sv("a")})
        assert not holds("begins_with(b, :v)", ITEM, None, {":v": sv("a")})

    @pytest.mark.parametrize(
        ("path", "kind"),
        [
            ("s", "S"),
            ("n", "N"),
            ("b", "B"),
            ("t", "BOOL"),
            ("z", "NULL"),
            ("ss", "SS"),
            ("ns", "NS"),
            ("bs", "BS"),
            ("l", "L"),
            ("m", "M"),
        ],
    )
    def test_attribute_type(self, path: str, kind: str) -> None:
        assert holds(f"attribute_type({path}, :t)", ITEM, None, {":t": sv(kind)})
        other = "S" if kind != "S" else "N"
        assert not holds(f"attribute_type({path}, :t)", ITEM, None, {":t": sv(other)})

    def test_nonexistent_item(self) -> None:
        assert holds("attribute_not_exists(pk)", {})
        assert not holds("attribute_exists(pk)", {})


# --------------------------------------------------------------------------- errors


class TestSyntaxErrors:
    @pytest.mark.parametrize(
        ("text", "token", "near"),
        [
            ("a = ", "<EOF>", "="),
            ("a x b", "x", "a x b"),
            ("a == :v", "=", "== :v"),
            ("a != :v", "!", "a !="),
            ("a > 4", "4", "> 4"),
            ("a = :v AND", "<EOF>", "AND"),
            ("(a = :v", "<EOF>", ":v"),
            ("a = :v)", ")", ":v)"),
            ("a[x] = :v", "x", "[x]"),
            ("a = :v :w", ":w", ":v :w"),
            ("and = :v", "and", "and ="),
            ("a.and = :v", "and", ".and ="),
            ("size(a)[0] > :v", "[", ")[0"),
            ("attribute_exists()", ")", "()"),
            ("a IN :v", ":v", "IN :v"),
            ("a BETWEEN :v", "<EOF>", ":v"),
            ("# = :v", "#", "# ="),
            ("a = : v", ":", "= : v"),
        ],
    )
    def test_token_and_near(self, text: str, token: str, near: str) -> None:
        values = {":v": sv("x"), ":w": sv("y")}
        message = cond_error(text, None, values)
        assert message == (
            f'Invalid ConditionExpression: Syntax error; token: "{token}", near: "{near}"'
        )

    def test_filter_label(self) -> None:
        assert error_of(lambda: parse_filter("a =", None, None)) == (
            'Invalid FilterExpression: Syntax error; token: "<EOF>", near: "="'
        )

    def test_empty(self) -> None:
        assert cond_error("") == "Invalid ConditionExpression: The expression can not be empty;"
        assert cond_error("   ") == "Invalid ConditionExpression: The expression can not be empty;"

    def test_size_limit_counts_bytes_and_reports_size(self) -> None:
        path = "a" + "z" * 4096
        text = f"attribute_not_exists({path})"
        assert cond_error(text) == (
            "Invalid ConditionExpression: Expression size has exceeded the maximum allowed "
            f"size; expression size: {len(text)}"
        )
        ok = "attribute_not_exists(" + "a" * (4096 - 22) + ")"
        assert len(ok) == 4096
        parse_condition(ok)


class TestRedundantParentheses:
    REDUNDANT = "Invalid ConditionExpression: The expression has redundant parentheses;"

    @pytest.mark.parametrize(
        "text",
        [
            "((attribute_not_exists(pk)))",
            "((a = :v))",
            "((a = :v AND b = :v))",
            "(a = :v) AND ((b = :v OR c = :v))",
            "((a)) = :v",
            "NOT ((a = :v))",
        ],
    )
    def test_rejected(self, text: str) -> None:
        assert cond_error(text, None, {":v": nv(1)}) == self.REDUNDANT

    @pytest.mark.parametrize(
        "text",
        [
            "(a = :v)",
            "(attribute_not_exists(pk)) AND (attribute_not_exists(#s))",
            "(attribute_not_exists(pk) AND attribute_not_exists(#s))",
            "(attribute_not_exists(pk) AND (attribute_not_exists(#s)))",
            "(#s = :v) AND ((#s = :v) OR (#s = :v))",
            "((a = :v AND a = :v) AND a = :v)",
            "(NOT (#s = :v))",
            "(a) = :v",
            "(size(a)) > :v",
            "a BETWEEN (:v) AND (:v)",
        ],
    )
    def test_accepted(self, text: str) -> None:
        names = {"#s": "status"} if "#s" in text else None
        values = {":v": nv(1)} if ":v" in text else None
        parse_condition(text, names, values)

    def test_reported_before_other_problems(self) -> None:
        assert cond_error("((#undefined = :v))", None, {":v": nv(1)}) == self.REDUNDANT


class TestSemanticErrors:
    def prefixed(self, message: str) -> str:
        return f"Invalid ConditionExpression: {message}"

    def test_reserved_word(self) -> None:
        assert cond_error("status = :v", None, {":v": sv("a")}) == self.prefixed(
            "Attribute name is a reserved keyword; reserved keyword: status"
        )
        assert cond_error("a.Date = :v", None, {":v": sv("a")}) == self.prefixed(
            "Attribute name is a reserved keyword; reserved keyword: Date"
        )

    def test_undefined_placeholders(self) -> None:
        assert cond_error("#n = :v", None, {":v": sv("a")}) == self.prefixed(
            "An expression attribute name used in the document path is not defined; "
            "attribute name: #n"
        )
        assert cond_error("a = :v") == self.prefixed(
            "An expression attribute value used in expression is not defined; attribute value: :v"
        )

    def test_unknown_function(self) -> None:
        assert cond_error("foo(a)") == self.prefixed("Invalid function name; function: foo")
        assert cond_error("ATTRIBUTE_EXISTS(a)") == self.prefixed(
            "Invalid function name; function: ATTRIBUTE_EXISTS"
        )
        assert cond_error("if_not_exists(a, :v) = :v", None, {":v": nv(1)}) == self.prefixed(
            "The function is not allowed in a condition expression; function: if_not_exists"
        )
        assert cond_error("list_append(a, a) = :v", None, {":v": nv(1)}) == self.prefixed(
            "The function is not allowed in a condition expression; function: list_append"
        )

    def test_misused_functions(self) -> None:
        misused = "The function is not allowed to be used this way in an expression; function: "
        assert cond_error("size(a)") == self.prefixed(misused + "size")
        assert cond_error("attribute_exists(a) = :v", None, {":v": nv(1)}) == self.prefixed(
            misused + "attribute_exists"
        )
        assert cond_error("begins_with(attribute_type(a, :t), :t)", None, {":t": sv("S")}) == (
            self.prefixed(misused + "attribute_type")
        )
        assert cond_error("a IN (:v, contains(b, :v))", None, {":v": sv("x")}) == self.prefixed(
            misused + "contains"
        )

    def test_operand_counts(self) -> None:
        assert cond_error("attribute_exists(a, b)") == self.prefixed(
            "Incorrect number of operands for operator or function; "
            "operator or function: attribute_exists, number of operands: 2"
        )
        assert cond_error("begins_with(a)") == self.prefixed(
            "Incorrect number of operands for operator or function; "
            "operator or function: begins_with, number of operands: 1"
        )

    def test_distinct_operands(self) -> None:
        assert cond_error("contains(#a, #a)", {"#a": "data"}) == self.prefixed(
            "The first operand must be distinct from the remaining operands for this operator "
            "or function; operator: contains, first operand: [data]"
        )
        assert cond_error("a.b[1] = a.b[1]") == self.prefixed(
            "The first operand must be distinct from the remaining operands for this operator "
            "or function; operator: =, first operand: [a, b, [1]]"
        )

    def test_function_operand_rules(self) -> None:
        assert cond_error("attribute_exists(:v)", None, {":v": sv("a")}) == self.prefixed(
            "Operator or function requires a document path; operator or function: attribute_exists"
        )
        assert cond_error("begins_with(a, :v)", None, {":v": nv(5)}) == self.prefixed(
            "Incorrect operand type for operator or function; operator or function: "
            "begins_with, operand type: N"
        )
        assert cond_error("begins_with(size(a), :v)", None, {":v": sv("5")}) == self.prefixed(
            "Incorrect operand type for operator or function; operator or function: "
            "begins_with, operand type: N"
        )
        assert cond_error("attribute_type(a, :t)", None, {":t": sv("STRING")}) == self.prefixed(
            "Invalid attribute type name found; type: STRING, valid types: "
            "{B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
        )
        assert cond_error("attribute_type(a, :t)", None, {":t": nv(1)}) == self.prefixed(
            "Incorrect operand type for operator or function; operator or function: "
            "attribute_type, operand type: N"
        )
        assert cond_error("size(:v) > :v", None, {":v": nv(1)}) == self.prefixed(
            "Incorrect operand type for operator or function; operator or function: size, "
            "operand type: N"
        )
        assert cond_error("a < :v", None, {":v": {"BOOL": True}}) == self.prefixed(
            "Incorrect operand type for operator or function; operator or function: <, "
            "operand type: BOOL"
        )

    def test_between_bounds(self) -> None:
        assert cond_error("a between :b and :a", None, {":a": sv("a"), ":b": nv(1)}) == (
            self.prefixed(
                "The BETWEEN operator requires same data type for lower and upper bounds; "
                "lower bound operand: AttributeValue: {N:1}, upper bound operand: "
                "AttributeValue: {S:a}"
            )
        )
        assert cond_error("a between :b and :a", None, {":a": sv("a"), ":b": sv("b")}) == (
            self.prefixed(
                "The BETWEEN operator requires upper bound to be greater than or equal to lower "
                "bound; lower bound operand: AttributeValue: {S:b}, upper bound operand: "
                "AttributeValue: {S:a}"
            )
        )
        booleans = {":a": {"BOOL": True}, ":b": {"BOOL": False}}
        assert cond_error("a between :b and :a", None, booleans) == self.prefixed(
            "Incorrect operand type for operator or function; operator or function: BETWEEN, "
            "operand type: BOOL"
        )

    def test_between_bounds_must_be_scalars(self) -> None:
        lists = {":a": {"L": [nv(1)]}, ":b": {"L": [nv(2)]}}
        assert cond_error("a between :a and :b", None, lists) == self.prefixed(
            "Incorrect operand type for operator or function; operator or function: BETWEEN, "
            "operand type: L"
        )

    def test_priority_reserved_before_undefined(self) -> None:
        assert cond_error("#x = :v AND status = :v", None, {":v": nv(1)}) == self.prefixed(
            "Attribute name is a reserved keyword; reserved keyword: status"
        )

    def test_priority_unknown_function_before_reserved(self) -> None:
        assert cond_error("status = :v AND foo(a)", None, {":v": nv(1)}) == self.prefixed(
            "Invalid function name; function: foo"
        )

    def test_operand_problems_are_reported_in_reading_order(self) -> None:
        assert cond_error("attribute_type(a, size(a)) AND a = a AND a = :v", None,
                          {":v": nv(1)}) == self.prefixed(
            "Incorrect operand type for operator or function; operator or function: "
            "attribute_type, operand type: N"
        )
        assert cond_error("attribute_exists(:v) AND a = a", None, {":v": sv("x")}) == (
            self.prefixed("Operator or function requires a document path; operator or "
                          "function: attribute_exists")
        )
        assert cond_error("a = a AND #a = b AND :nope > a", {"#a": "a"}) == self.prefixed(
            "The first operand must be distinct from the remaining operands for this operator "
            "or function; operator: =, first operand: [a]"
        )
        assert cond_error("begins_with(x.#nope)") == self.prefixed(
            "An expression attribute name used in the document path is not defined; "
            "attribute name: #nope"
        )


def test_placeholders_shared_across_expressions() -> None:
    attrs = ExpressionAttributes({"#a": "a", "#b": "b"}, {":v": nv(1)})
    parse_condition("#a = :v", attributes=attrs)
    assert attrs.unused_names == ["#b"]
    parse_filter("#b = :v", attributes=attrs)
    attrs.check_unused()
