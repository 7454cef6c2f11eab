"""The legacy parameters' translation into expression trees (dynamokv.api.expressions.legacy),
evaluated with the expression machinery, and their validation messages."""

from __future__ import annotations

from typing import Any

import pytest

from dynamokv.api.attributes import item_from_wire
from dynamokv.api.errors import DynamoDBError
from dynamokv.api.expressions import apply_update, evaluate, legacy, range_matches
from dynamokv.api.expressions.nodes import RangeCondition
from tests.api.catalog import error_of, wire

ITEM = item_from_wire({
    "n": {"N": "2"}, "s": {"S": "hello"}, "ns": {"NS": ["2", "4"]}, "l": {"L": [{"S": "x"}]},
})
_INVALID = "One or more parameter values were invalid: "


def holds(expected: dict[str, Any], operator: str | None = None) -> bool:
    condition = legacy.expected_condition(expected, operator)
    assert condition is not None
    return evaluate(condition, ITEM)


def cond(op: str, *values: dict[str, Any]) -> dict[str, Any]:
    return {"ComparisonOperator": op, "AttributeValueList": list(values)}


@pytest.mark.parametrize(
    ("name", "condition", "expected"),
    [
        ("n", cond("EQ", {"N": "2.0"}), True),
        ("n", cond("NE", {"N": "2"}), False),
        ("zz", cond("NE", {"N": "2"}), True),
        ("n", cond("LT", {"N": "3"}), True),
        ("n", cond("LE", {"N": "1"}), False),
        ("s", cond("GT", {"S": "a"}), True),
        ("s", cond("GE", {"S": "i"}), False),
        ("zz", cond("NULL"), True),
        ("n", cond("NOT_NULL"), True),
        ("s", cond("CONTAINS", {"S": "ell"}), True),
        ("l", cond("CONTAINS", {"S": "x"}), True),
        ("ns", cond("NOT_CONTAINS", {"N": "3"}), True),
        ("zz", cond("NOT_CONTAINS", {"N": "3"}), False),
        ("s", cond("BEGINS_WITH", {"S": "he"}), True),
        ("n", cond("IN", {"N": "1"}, {"N": "2"}), True),
        ("n", cond("BETWEEN", {"N": "3"}, {"N": "5"}), False),
    ],
)
def test_each_comparison_operator(name: str, condition: dict[str, Any], expected: bool) -> None:
    assert holds({name: condition}) is expected
    assert evaluate(legacy.filter_condition({name: condition}, None, "ScanFilter") or
                    legacy.comparison("n", "NOT_NULL", []), ITEM) is expected


def test_value_and_exists_forms_and_conditional_operator() -> None:
    assert holds({"n": {"Value": {"N": "2"}}})
    assert holds({"n": {"Value": {"N": "2"}, "Exists": True}})
    assert holds({"zz": {"Exists": False}})
    assert not holds({"n": {"Exists": False}})
    both = {"n": {"Value": {"N": "9"}}, "s": {"Value": {"S": "hello"}}}
    assert not holds(both) and not holds(both, "AND") and holds(both, "OR")
    assert legacy.expected_condition({}, None) is None


def test_expected_validation_messages() -> None:
    assert error_of(lambda: legacy.expected_condition({}, "OR")) == (
        "ConditionalOperator cannot be used without Filter or Expected")
    assert error_of(lambda: legacy.expected_condition({"a": {"Value": {"N": "1"}}}, "AND")) == (
        "ConditionalOperator can only be used when Filter or Expected has two or more elements")
    assert error_of(lambda: legacy.expected_condition({"a": {"Exists": True}}, None)) == (
        _INVALID + "Value must be provided when Exists is true for Attribute: a")


def test_filter_operator_is_required_and_from_the_enum() -> None:
    assert error_of(lambda: legacy.filter_condition({"a": {}}, None, "QueryFilter")) == (
        "1 validation error detected: Value null at 'queryFilter.a.member.comparisonOperator' "
        "failed to satisfy constraint: Member must not be null")
    message = error_of(lambda: legacy.filter_condition({"a": cond("eq")}, None, "ScanFilter"))
    assert message.startswith("1 validation error detected: Value 'eq' at "
                              "'scanFilter.a.member.comparisonOperator'")


def test_filter_shapes_are_serialization_errors() -> None:
    with pytest.raises(DynamoDBError) as info:
        legacy.filter_condition({"a": {"ComparisonOperator": "EQ", "AttributeValueList": {}}},
                                None, "ScanFilter")
    assert info.value.type == "SerializationException"


def test_key_conditions_become_key_condition() -> None:
    key = legacy.key_conditions(
        {"pk": cond("EQ", {"S": "p"}), "sk": cond("BETWEEN", {"N": "1"}, {"N": "3"})},
        "pk", "sk", {"pk": "S", "sk": "N"},
    )
    assert key.hash_value == ITEM["s"].__class__("p")
    assert key.range_condition is not None and key.range_condition.op == "BETWEEN"
    assert range_matches(key.range_condition, ITEM["n"])
    only_hash = legacy.key_conditions({"pk": cond("EQ", {"S": "p"})}, "pk", "sk", {})
    assert only_hash.range_condition is None
    begins = legacy.key_conditions({"pk": cond("EQ", {"S": "p"}), "sk": cond("BEGINS_WITH",
                                   {"S": "ab"})}, "pk", "sk", {"pk": "S", "sk": "S"})
    assert begins.range_condition == RangeCondition("BEGINS_WITH", (item_from_wire(
        {"v": {"S": "ab"}})["v"],))


def test_attribute_updates_translate_each_action() -> None:
    update = legacy.attribute_updates({
        "n": {"Action": "ADD", "Value": {"N": "3"}},
        "s": {"Value": {"S": "bye"}},
        "ns": {"Action": "DELETE", "Value": {"NS": ["2"]}},
        "l": {"Action": "ADD", "Value": {"L": [{"S": "y"}]}},
        "new": {"Action": "ADD", "Value": {"L": [{"N": "1"}]}},
        "gone": {"Action": "DELETE"},
    })
    assert update is not None
    assert wire(apply_update(update, ITEM | item_from_wire({"gone": {"N": "1"}}))) == {
        "n": {"N": "5"}, "s": {"S": "bye"}, "ns": {"NS": ["4"]},
        "l": {"L": [{"S": "x"}, {"S": "y"}]}, "new": {"L": [{"N": "1"}]},
    }
    assert legacy.attribute_updates({}) is None


def test_attribute_update_runtime_errors_are_type_mismatches() -> None:
    update = legacy.attribute_updates({"s": {"Action": "ADD", "Value": {"N": "1"}}})
    assert update is not None
    with pytest.raises(DynamoDBError) as info:
        apply_update(update, ITEM)
    assert legacy.update_error(info.value).message == "Type mismatch for attribute to update"


def test_mixing_names_both_sets_in_dynamodb_order() -> None:
    legacy.check_not_mixed({"KeyConditions": True, "FilterExpression": True})
    assert error_of(lambda: legacy.check_not_mixed({
        "QueryFilter": True, "AttributesToGet": True, "ConditionalOperator": True,
        "KeyConditions": True, "KeyConditionExpression": True, "ProjectionExpression": True,
    })) == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributesToGet, QueryFilter, ConditionalOperator, "
        "KeyConditions} Expression parameters: {ProjectionExpression, KeyConditionExpression}")


def test_attributes_to_get_paths() -> None:
    assert [p.head for p in legacy.attributes_to_get(["a.b", "c"])] == ["a.b", "c"]
    assert error_of(lambda: legacy.attributes_to_get([])) == (
        "1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1")
