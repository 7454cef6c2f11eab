"""UpdateExpression: parsing, DynamoDB's errors, and applying it to items."""

from __future__ import annotations

from typing import Any

import pytest

from dynamokv.api.attributes import Item, item_from_wire
from dynamokv.api.expressions import apply_update, parse_update
from tests.api.catalog import error_of, nv, product, sv, wire


def updated(
    text: str,
    item: Item,
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return wire(apply_update(parse_update(text, names, values), item))


def update_error(text: str, names: Any = None, values: Any = None) -> str:
    return error_of(lambda: parse_update(text, names, values))


def apply_error(text: str, item: Item, names: Any = None, values: Any = None) -> str:
    update = parse_update(text, names, values)
    return error_of(lambda: apply_update(update, item))


# --------------------------------------------------------------------------- developer guide


class TestDeveloperGuideExamples:
    def test_set_top_level(self) -> None:
        out = updated(
            "SET ProductCategory = :c, Price = :p",
            product(),
            None,
            {":c": sv("Hardware"), ":p": nv(60)},
        )
        assert out["ProductCategory"] == sv("Hardware")
        assert out["Price"] == nv(60)

    def test_set_list_element(self) -> None:
        out = updated("SET RelatedItems[1] = :ri", product(), None, {":ri": sv("Nails")})
        assert out["RelatedItems"] == {"L": [nv(341), sv("Nails"), nv(649)]}

    def test_set_nested(self) -> None:
        out = updated(
            "SET #pr.FiveStar[1] = :r5, #pr.ThreeStar = :r3",
            product(),
            {"#pr": "ProductReviews"},
            {
                ":r5": sv("Very happy with my purchase"),
                ":r3": {"L": [sv("Just OK - not that great")]},
            },
        )
        reviews = out["ProductReviews"]["M"]
        assert reviews["FiveStar"]["L"][1] == sv("Very happy with my purchase")
        assert reviews["ThreeStar"] == {"L": [sv("Just OK - not that great")]}
        assert reviews["OneStar"] == {"L": [sv("Terrible product! Do not buy this.")]}

    def test_increment_and_decrement(self) -> None:
        assert updated("SET Price = Price - :p", product(), None, {":p": nv(15)})["Price"] == nv(
            485
        )
        assert updated("SET Price = Price + :p", product(), None, {":p": nv(15)})["Price"] == nv(
            515
        )

    def test_list_append_both_ways(self) -> None:
        names = {"#ri": "RelatedItems"}
        out = updated(
            "SET #ri = list_append(#ri, :vals)",
            product(),
            names,
            {":vals": {"L": [sv("Screwdriver")]}},
        )
        assert out["RelatedItems"]["L"][-1] == sv("Screwdriver")
        out = updated(
            "SET #ri = list_append(:vals, #ri)", product(), names, {":vals": {"L": [sv("Chisel")]}}
        )
        assert out["RelatedItems"]["L"][0] == sv("Chisel")
        assert len(out["RelatedItems"]["L"]) == 4

    def test_if_not_exists(self) -> None:
        out = updated("SET Price = if_not_exists(Price, :p)", product(), None, {":p": nv(100)})
        assert out["Price"] == nv(500)
        out = updated("SET Cost = if_not_exists(Cost, :p)", product(), None, {":p": nv(100)})
        assert out["Cost"] == nv(100)

    def test_remove_attributes(self) -> None:
        out = updated("REMOVE Brand, InStock, QuantityOnHand", product())
        assert not {"Brand", "InStock", "QuantityOnHand"} & set(out)
        assert "Title" in out

    def test_remove_list_elements_by_original_index(self) -> None:
        out = updated("REMOVE RelatedItems[1], RelatedItems[2]", product())
        assert out["RelatedItems"] == {"L": [nv(341)]}

    def test_add_number(self) -> None:
        out = updated("ADD Stock :q", product(), None, {":q": nv(5)})
        assert out["Stock"] == nv(5)
        out = updated("ADD Price :q", product(), None, {":q": nv(-5)})
        assert out["Price"] == nv(495)

    def test_add_and_delete_set_members(self) -> None:
        out = updated("ADD Color :c", product(), None, {":c": {"SS": ["Orange", "Purple"]}})
        assert out["Color"] == {"SS": ["Black", "Orange", "Purple", "Red"]}
        out = updated("DELETE Color :p", product(), None, {":p": {"SS": ["Yellow", "Red"]}})
        assert out["Color"] == {"SS": ["Black"]}


# --------------------------------------------------------------------------- semantics

BASE = item_from_wire(
    {
        "pk": sv("k"),
        "n": nv(3),
        "s": sv("old"),
        "l": {"L": [sv("a"), sv("b"), sv("c"), sv("d")]},
        "empty": {"L": []},
        "m": {"M": {"nested": sv("gone"), "keep": sv("stay"), "counter": nv(10)}},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2"]},
    }
)


class TestApply:
    def test_original_item_is_not_modified(self) -> None:
        before = wire(BASE)
        updated(
            "SET m.keep = :v REMOVE l[0] ADD n :one", BASE, None, {":v": sv("z"), ":one": nv(1)}
        )
        assert wire(BASE) == before

    def test_set_values_come_from_the_original_item(self) -> None:
        out = updated("SET s = n, n = s", BASE)
        assert (out["s"], out["n"]) == (nv(3), sv("old"))
        out = updated("ADD n :inc SET snap = n", BASE, None, {":inc": nv(2)})
        assert (out["n"], out["snap"]) == (nv(5), nv(3))

    def test_nested_arithmetic(self) -> None:
        out = updated(
            "SET #m.#c = #m.#c + :inc", BASE, {"#m": "m", "#c": "counter"}, {":inc": nv(5)}
        )
        assert out["m"]["M"]["counter"] == nv(15)

    def test_set_creates_nested_member_under_existing_map(self) -> None:
        out = updated("SET m.child = :v", BASE, None, {":v": sv("nested")})
        assert out["m"]["M"]["child"] == sv("nested")
        assert out["m"]["M"]["keep"] == sv("stay")
        assert "m.child" not in out

    def test_set_past_the_end_appends_in_index_order(self) -> None:
        out = updated("SET l[9] = :a, l[5] = :b", BASE, None, {":a": sv("nine"), ":b": sv("five")})
        assert out["l"]["L"][-2:] == [sv("five"), sv("nine")]
        out = updated("SET #l[0] = :v", BASE, {"#l": "empty"}, {":v": sv("first")})
        assert out["empty"] == {"L": [sv("first")]}

    def test_remove(self) -> None:
        out = updated("REMOVE m.nested, nope, l[10]", BASE)
        assert "nested" not in out["m"]["M"] and out["m"]["M"]["keep"] == sv("stay")
        assert len(out["l"]["L"]) == 4
        out = updated("REMOVE l[3], l[0]", BASE)
        assert out["l"] == {"L": [sv("b"), sv("c")]}

    def test_remove_and_set_in_one_list(self) -> None:
        out = updated("SET l[1] = :v REMOVE l[0]", BASE, None, {":v": sv("B")})
        assert out["l"] == {"L": [sv("B"), sv("c"), sv("d")]}

    def test_add_to_sets_and_numbers(self) -> None:
        out = updated(
            "ADD ss :v, ns :w, m.fresh :w", BASE, None, {":v": {"SS": ["z"]}, ":w": {"NS": ["3"]}}
        )
        assert out["ss"] == {"SS": ["x", "y", "z"]}
        assert out["ns"] == {"NS": ["1", "2", "3"]}
        assert out["m"]["M"]["fresh"] == {"NS": ["3"]}
        out = updated("ADD l[7] :n", BASE, None, {":n": nv(1)})
        assert out["l"]["L"][-1] == nv(1)

    def test_delete_from_sets(self) -> None:
        out = updated("DELETE ss :v", BASE, None, {":v": {"SS": ["x", "nope"]}})
        assert out["ss"] == {"SS": ["y"]}
        out = updated("DELETE ss :v", BASE, None, {":v": {"SS": ["x", "y"]}})
        assert "ss" not in out
        out = updated("DELETE absent :v", BASE, None, {":v": {"SS": ["x"]}})
        assert "absent" not in out

    def test_update_of_a_new_item(self) -> None:
        out = updated("SET a = :v ADD c :n", {}, None, {":v": sv("x"), ":n": nv(1)})
        assert out == {"a": sv("x"), "c": nv(1)}


class TestApplyErrors:
    INVALID_PATH = "The document path provided in the update expression is invalid for update"
    MISSING = "The provided expression refers to an attribute that does not exist in the item"
    BAD_OPERAND = "An operand in the update expression has an incorrect data type"

    @pytest.mark.parametrize(
        "text",
        [
            "SET nope.nested.deep = :v",
            "SET s.x = :v",
            "SET l.x = :v",
            "SET m[0] = :v",
            "SET n[0] = :v",
            "REMOVE nope.x",
            "ADD nope.x :n",
        ],
    )
    def test_invalid_document_paths(self, text: str) -> None:
        values = {":v": sv("x")} if ":v" in text else {":n": nv(1)} if ":n" in text else None
        assert apply_error(text, BASE, None, values) == self.INVALID_PATH

    def test_missing_operands(self) -> None:
        assert apply_error("SET a = nope", BASE) == self.MISSING
        assert apply_error("SET n = nope + :i", BASE, None, {":i": nv(1)}) == self.MISSING
        assert apply_error("SET n = n + nope", BASE) == self.MISSING
        assert apply_error("SET l = list_append(l, nope)", BASE) == self.MISSING

    def test_incorrect_data_types(self) -> None:
        assert apply_error("SET n = n + s", BASE) == self.BAD_OPERAND
        assert apply_error("SET n = s - :i", BASE, None, {":i": nv(1)}) == self.BAD_OPERAND
        assert apply_error("SET l = list_append(l, s)", BASE) == self.BAD_OPERAND
        assert apply_error("ADD s :i", BASE, None, {":i": nv(1)}) == self.BAD_OPERAND
        assert apply_error("ADD ss :v", BASE, None, {":v": {"NS": ["1"]}}) == self.BAD_OPERAND
        assert apply_error("ADD n :v", BASE, None, {":v": {"NS": ["1"]}}) == self.BAD_OPERAND
        assert apply_error("DELETE ns :v", BASE, None, {":v": {"SS": ["1"]}}) == self.BAD_OPERAND

    def test_number_overflow(self) -> None:
        values = {":a": nv("9.9e125"), ":b": nv("9.9e125")}
        assert apply_error("SET n = :a + :b", BASE, None, values).startswith("Number overflow")
        assert apply_error(
            "ADD n :a", item_from_wire({"n": nv("9.9e125")}), None, {":a": nv("9.9e125")}
        ).startswith("Number overflow")
        # DynamoDB words a result needing more than 38 digits as an overflow too.
        assert apply_error("SET n = n + :tiny", BASE, None, {":tiny": nv("1e-40")}).startswith(
            "Number overflow"
        )

    def test_nesting_limit(self) -> None:
        value: dict[str, Any] = {"S": "leaf"}
        for _ in range(30):
            value = {"L": [value]}
        item = item_from_wire({"deep": value})
        path = "deep" + "[0]" * 30
        # 30 lists, then a 2-level value: 32 levels, the limit.
        updated(f"SET {path} = :v", item, None, {":v": {"L": [{"L": []}]}})
        assert apply_error(f"SET {path} = :v", item, None, {":v": {"L": [{"L": [{"L": []}]}]}}) == (
            "Nesting Levels have exceeded supported limits"
        )


# --------------------------------------------------------------------------- parse errors


class TestParseErrors:
    def p(self, message: str) -> str:
        return f"Invalid UpdateExpression: {message}"

    @pytest.mark.parametrize(
        ("text", "token", "near"),
        [
            ("INVALID SYNTAX HERE", "INVALID", "INVALID SYNTAX"),
            ("ADD hits : incr", ":", "hits : incr"),
            ("SET a = ", "<EOF>", "="),
            ("SET = :v", "=", "SET = :v"),
            ("SET a = :v + :v + :v", "+", ":v + :v"),
            ("SET a = :v b = :v", "b", ":v b ="),
            ("SET a :v", ":v", "a :v"),
            ("ADD a b", "b", "a b"),
            ("SET a = :v,", "<EOF>", ","),
            ("REMOVE", "<EOF>", "REMOVE"),
            ("SET set = :v", "set", "SET set ="),
            ("SET a = :v * :v", "*", ":v * :v"),
        ],
    )
    def test_syntax(self, text: str, token: str, near: str) -> None:
        message = update_error(text, None, {":v": nv(1), ":incr": nv(1)})
        assert message == self.p(f'Syntax error; token: "{token}", near: "{near}"')

    def test_empty_and_too_long(self) -> None:
        assert update_error("") == self.p("The expression can not be empty;")
        assert update_error("SET " + "a" * 4100 + " = :v", None, {":v": nv(1)}) == self.p(
            "Expression size has exceeded the maximum allowed size;"
        )

    def test_each_section_at_most_once(self) -> None:
        assert update_error("set a = :v SET b = :v", None, {":v": nv(1)}) == self.p(
            'The "SET" section can only be used once in an update expression;'
        )
        assert update_error("REMOVE a REMOVE b") == self.p(
            'The "REMOVE" section can only be used once in an update expression;'
        )

    def test_clauses_in_any_order_and_case(self) -> None:
        update = parse_update(
            "delete d :s add c :n remove b Set a = :n", None, {":n": nv(1), ":s": {"SS": ["x"]}}
        )
        assert [a.path.head for a in update.actions] == ["a", "b", "c", "d"]

    def test_overlapping_paths(self) -> None:
        assert update_error("SET #v = :a, #v = :b", {"#v": "val"}, {":a": nv(1), ":b": nv(2)}) == (
            self.p(
                "Two document paths overlap with each other; must remove or rewrite one of "
                "these paths; path one: [val], path two: [val]"
            )
        )
        assert update_error("SET a = :v REMOVE a.b[2]", None, {":v": nv(1)}) == self.p(
            "Two document paths overlap with each other; must remove or rewrite one of these "
            "paths; path one: [a], path two: [a, b, [2]]"
        )

    def test_conflicting_paths(self) -> None:
        assert update_error("SET a[1] = :v, a.b = :v", None, {":v": nv(1)}) == self.p(
            "Two document paths conflict with each other; must remove or rewrite one of these "
            "paths; path one: [a, [1]], path two: [a, b]"
        )

    def test_distinct_paths_are_fine(self) -> None:
        parse_update("SET a[1] = :v, a[2] = :v, b.c = :v, b.d = :v", None, {":v": nv(1)})

    @pytest.mark.parametrize(
        ("text", "value", "message"),
        [
            ("ADD a :x", sv("s"), "operator: ADD, operand type: STRING"),
            ("ADD a :x", {"L": []}, "operator: ADD, operand type: LIST"),
            ("ADD a :x", {"M": {}}, "operator: ADD, operand type: MAP"),
            ("ADD a :x", {"BOOL": True}, "operator: ADD, operand type: BOOLEAN"),
            ("ADD a :x", {"B": "AA=="}, "operator: ADD, operand type: BINARY"),
            ("ADD a :x", {"NULL": True}, "operator: ADD, operand type: NULL"),
            ("DELETE a :x", nv(1), "operator: DELETE, operand type: NUMBER"),
        ],
    )
    def test_add_delete_operand_types(self, text: str, value: Any, message: str) -> None:
        assert update_error(text, None, {":x": value}) == self.p(
            "Incorrect operand type for operator or function; " + message
        )

    def test_function_errors(self) -> None:
        v = {":s": sv("x"), ":n": nv(1)}
        assert update_error("SET a = :s + :n", None, v) == self.p(
            "Incorrect operand type for operator or function; operator or function: +, "
            "operand type: S"
        )
        assert update_error("SET a = list_append(:s, b)", None, {":s": sv("x")}) == self.p(
            "Incorrect operand type for operator or function; operator or function: "
            "list_append, operand type: S"
        )
        assert update_error("SET a = if_not_exists(:s, :n)", None, v) == self.p(
            "Operator or function requires a document path; operator or function: if_not_exists"
        )
        assert update_error("SET a = foo(b)") == self.p("Invalid function name; function: foo")
        assert update_error("SET a = size(b)") == self.p(
            "The function is not allowed in an update expression; function: size"
        )
        assert update_error("SET a = list_append(b)") == self.p(
            "Incorrect number of operands for operator or function; operator or function: "
            "list_append, number of operands: 1"
        )

    def test_reserved_and_undefined(self) -> None:
        assert update_error("SET status = :v", None, {":v": nv(1)}) == self.p(
            "Attribute name is a reserved keyword; reserved keyword: status"
        )
        assert update_error("REMOVE Name") == self.p(
            "Attribute name is a reserved keyword; reserved keyword: Name"
        )
        assert update_error("SET attr1 = :v") == self.p(
            "An expression attribute value used in expression is not defined; attribute value: :v"
        )
        assert update_error("SET #x = :v", None, {":v": nv(1)}) == self.p(
            "An expression attribute name used in the document path is not defined; "
            "attribute name: #x"
        )

    def test_priorities(self) -> None:
        # reserved > unknown function > duplicate section > undefined name > undefined value
        assert update_error("SET a = foo(b), status = :v SET c = :v") == self.p(
            "Attribute name is a reserved keyword; reserved keyword: status"
        )
        assert update_error("SET a = foo(b) SET c = :v") == self.p(
            "Invalid function name; function: foo"
        )
        assert update_error("SET #a = :v SET c = :v") == self.p(
            'The "SET" section can only be used once in an update expression;'
        )
        assert update_error("SET a = :v, #b = :w") == self.p(
            "An expression attribute name used in the document path is not defined; "
            "attribute name: #b"
        )

    def test_parenthesised_values(self) -> None:
        v = {":a": nv(1), ":b": nv(2)}
        update = parse_update("SET x = (:a + :b), y = (:a), z = (a) - (:b)", None, v)
        out = wire(apply_update(update, item_from_wire({"a": nv(10)})))
        assert (out["x"], out["y"], out["z"]) == (nv(3), nv(1), nv(8))

    def test_paths_property_lists_every_target(self) -> None:
        update = parse_update("SET a = :v REMOVE b.c ADD d :v", None, {":v": nv(1)})
        assert [str(p) for p in update.paths] == ["[a]", "[b, c]", "[d]"]


@pytest.mark.parametrize("name", ["_123", "_abc"])
def test_names_starting_with_underscore_are_syntax_errors(name: str) -> None:
    assert update_error(f"SET {name} = :v", values={":v": nv("1")}) == (
        f'Invalid UpdateExpression: Syntax error; token: "_", near: "SET {name}"'
    )


def test_nested_list_append_is_refused() -> None:
    values = {":a": {"L": []}, ":b": {"L": []}}
    assert update_error("SET l = list_append(list_append(:a, :b), :a)", values=values) == (
        "Invalid UpdateExpression: The function is not allowed to be used this way in an "
        "expression; function: list_append"
    )
