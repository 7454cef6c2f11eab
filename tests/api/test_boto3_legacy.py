"""The legacy parameters through boto3: Expected, AttributeUpdates, AttributesToGet,
KeyConditions, QueryFilter, ScanFilter and ConditionalOperator, in every operation that takes
them, with DynamoDB's answers and error wording."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.test_app_harness import make_table
from tests.api.test_gsi import eventually

_names = itertools.count()
_INVALID = "One or more parameter values were invalid: "


@pytest.fixture
def table(ddb: Any) -> str:
    name = f"legacy_{next(_names)}"
    make_table(ddb, name)
    return name


@pytest.fixture(scope="module")
def sorted_table(ddb: Any) -> str:
    """Partition "p" holds sort keys 0..9, each with attribute a = "v<n>" and, for even n,
    e = n; partition "q" holds one item."""
    name = f"legacy_sorted_{next(_names)}"
    make_table(ddb, name, sort=True, sort_type="N")
    for n in range(10):
        item = {"pk": {"S": "p"}, "sk": {"N": str(n)}, "a": {"S": f"v{n}"}}
        if n % 2 == 0:
            item["e"] = {"N": str(n)}
        ddb.put_item(TableName=name, Item=item)
    ddb.put_item(TableName=name, Item={"pk": {"S": "q"}, "sk": {"N": "1"}})
    return name


def failure(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response["Error"]
    return err["Code"], err["Message"]


def get(ddb: Any, table: str, pk: str = "k") -> dict[str, Any]:
    item: dict[str, Any] = ddb.get_item(
        TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True
    ).get("Item", {})
    return item


def update(ddb: Any, table: str, pk: str = "k", **kwargs: Any) -> dict[str, Any]:
    answer: dict[str, Any] = ddb.update_item(TableName=table, Key={"pk": {"S": pk}}, **kwargs)
    return answer


def put_attrs(ddb: Any, table: str, **values: Any) -> None:
    ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, **values})


# ------------------------------------------------------------------------------ AttributeUpdates


def test_attribute_updates_put_delete_and_default_action(ddb: Any, table: str) -> None:
    update(ddb, table, AttributeUpdates={"a": {"Value": {"S": "x"}, "Action": "PUT"},
                                         "b": {"Value": {"N": "1"}}})
    assert get(ddb, table) == {"pk": {"S": "k"}, "a": {"S": "x"}, "b": {"N": "1"}}
    update(ddb, table, AttributeUpdates={"a": {"Action": "DELETE"}})
    assert get(ddb, table) == {"pk": {"S": "k"}, "b": {"N": "1"}}


def test_attribute_updates_empty_map_and_no_update_create_the_item(ddb: Any, table: str) -> None:
    update(ddb, table, AttributeUpdates={})
    assert get(ddb, table) == {"pk": {"S": "k"}}
    update(ddb, table, pk="k2")
    assert get(ddb, table, "k2") == {"pk": {"S": "k2"}}


def test_attribute_updates_only_deletes_do_not_create_the_item(ddb: Any, table: str) -> None:
    update(ddb, table, AttributeUpdates={"a": {"Action": "DELETE"},
                                         "b": {"Action": "DELETE", "Value": {"SS": ["x"]}}})
    assert get(ddb, table) == {}


def test_attribute_updates_add_numbers_sets_and_lists(ddb: Any, table: str) -> None:
    put_attrs(ddb, table, n={"N": "7"}, s={"NS": ["1", "2"]}, l={"L": [{"N": "1"}]})
    update(ddb, table, AttributeUpdates={
        "n": {"Action": "ADD", "Value": {"N": "-3.5"}},
        "s": {"Action": "ADD", "Value": {"NS": ["2", "3"]}},
        "l": {"Action": "ADD", "Value": {"L": [{"S": "x"}]}},
        "new_n": {"Action": "ADD", "Value": {"N": "2"}},
        "new_l": {"Action": "ADD", "Value": {"L": [{"N": "9"}]}},
    })
    item = get(ddb, table)
    assert item["n"] == {"N": "3.5"}
    assert sorted(item["s"]["NS"]) == ["1", "2", "3"]
    assert item["l"] == {"L": [{"N": "1"}, {"S": "x"}]}
    assert item["new_n"] == {"N": "2"} and item["new_l"] == {"L": [{"N": "9"}]}


def test_attribute_updates_delete_from_set_and_drop_emptied_set(ddb: Any, table: str) -> None:
    put_attrs(ddb, table, s={"SS": ["a", "b", "c"]})
    update(ddb, table, AttributeUpdates={"s": {"Action": "DELETE", "Value": {"SS": ["b", "z"]}}})
    assert sorted(get(ddb, table)["s"]["SS"]) == ["a", "c"]
    update(ddb, table, AttributeUpdates={"s": {"Action": "DELETE", "Value": {"SS": ["a", "c"]}}})
    assert "s" not in get(ddb, table)


@pytest.mark.parametrize(
    ("updates", "message"),
    [
        ({"a": {"Action": "PUT"}},
         _INVALID + "Only DELETE action is allowed when no attribute value is specified"),
        ({"a": {"Action": "ADD"}},
         _INVALID + "Only DELETE action is allowed when no attribute value is specified"),
        ({"a": {"Action": "DELETE", "Value": {"S": "x"}}},
         _INVALID + "Action DELETE is not supported for the type S"),
        ({"a": {"Action": "DELETE", "Value": {"L": []}}},
         _INVALID + "Action DELETE is not supported for the type L"),
        ({"a": {"Action": "ADD", "Value": {"S": "x"}}},
         _INVALID + "Action ADD is not supported for the type S"),
        ({"a": {"Action": "ADD", "Value": {"M": {}}}},
         _INVALID + "Action ADD is not supported for the type M"),
        ({"a": {"Action": "NONEXISTENT", "Value": {"S": "x"}}},
         "1 validation error detected: Value 'NONEXISTENT' at 'attributeUpdates.a.member.action' "
         "failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"),
        ({"pk": {"Action": "PUT", "Value": {"S": "x"}}},
         _INVALID + "Cannot update attribute pk. This attribute is part of the key"),
        ({"a": {"Action": "PUT", "Value": {"SS": []}}},
         _INVALID + "An string set  may not be empty"),
    ],
)
def test_attribute_updates_validation(
    ddb: Any, table: str, updates: dict[str, Any], message: str
) -> None:
    assert failure(ddb.update_item, TableName=table, Key={"pk": {"S": "k"}},
                   AttributeUpdates=updates) == ("ValidationException", message)


@pytest.mark.parametrize(
    ("existing", "updates"),
    [
        ({"SS": ["a"]}, {"Action": "ADD", "Value": {"N": "2"}}),
        ({"SS": ["a"]}, {"Action": "ADD", "Value": {"NS": ["2"]}}),
        ({"SS": ["a"]}, {"Action": "ADD", "Value": {"L": [{"S": "b"}]}}),
        ({"N": "1"}, {"Action": "ADD", "Value": {"SS": ["b"]}}),
        ({"S": "x"}, {"Action": "DELETE", "Value": {"NS": ["1"]}}),
        ({"NS": ["1"]}, {"Action": "DELETE", "Value": {"SS": ["1"]}}),
    ],
)
def test_attribute_updates_type_mismatch_at_runtime(
    ddb: Any, table: str, existing: dict[str, Any], updates: dict[str, Any]
) -> None:
    put_attrs(ddb, table, a=existing)
    assert failure(ddb.update_item, TableName=table, Key={"pk": {"S": "k"}},
                   AttributeUpdates={"a": updates}) == (
        "ValidationException", "Type mismatch for attribute to update")
    assert get(ddb, table)["a"] == existing


def test_attribute_updates_return_values(ddb: Any, table: str) -> None:
    put_attrs(ddb, table, b={"S": "a"}, c={"S": "a"}, d={"S": "keep"})
    updates = {"b": {"Value": {"S": "b"}}, "c": {"Action": "DELETE"}}
    assert update(ddb, table, AttributeUpdates=updates, ReturnValues="UPDATED_OLD")[
        "Attributes"] == {"b": {"S": "a"}, "c": {"S": "a"}}
    updates = {"b": {"Value": {"S": "z"}}, "c": {"Action": "DELETE"}}
    assert update(ddb, table, AttributeUpdates=updates, ReturnValues="UPDATED_NEW")[
        "Attributes"] == {"b": {"S": "z"}}
    assert update(ddb, table, AttributeUpdates={"e": {"Value": {"N": "1"}}},
                  ReturnValues="ALL_NEW")["Attributes"] == {
        "pk": {"S": "k"}, "b": {"S": "z"}, "d": {"S": "keep"}, "e": {"N": "1"}}


def test_attribute_updates_mixed_with_update_expression(ddb: Any, table: str) -> None:
    assert failure(ddb.update_item, TableName=table, Key={"pk": {"S": "k"}},
                   AttributeUpdates={"a": {"Value": {"N": "1"}}},
                   UpdateExpression="SET b = :v",
                   ExpressionAttributeValues={":v": {"N": "2"}}) == (
        "ValidationException",
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributeUpdates} Expression parameters: "
        "{UpdateExpression}")


def test_expression_attribute_names_without_expressions_next_to_legacy(
    ddb: Any, table: str
) -> None:
    assert failure(ddb.update_item, TableName=table, Key={"pk": {"S": "k"}},
                   AttributeUpdates={"a": {"Value": {"N": "1"}}},
                   ExpressionAttributeNames={"#n": "x"}) == (
        "ValidationException",
        "ExpressionAttributeNames can only be specified when using expressions")


# ------------------------------------------------------------------------------ Expected

_ITEM = {
    "n": {"N": "2"}, "s": {"S": "cat"}, "b": {"B": b"cat"}, "ns": {"NS": ["2", "4", "7"]},
    "l": {"L": [{"N": "2"}, {"N": "4"}]}, "z": {"NULL": True},
}

# (condition on the item above, whether it holds)
_CASES: list[tuple[dict[str, Any], bool]] = [
    ({"n": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "2"}]}}, True),
    ({"n": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "2"}]}}, False),
    ({"ns": {"ComparisonOperator": "EQ", "AttributeValueList": [{"NS": ["7", "4", "2"]}]}}, True),
    ({"l": {"ComparisonOperator": "EQ", "AttributeValueList": [{"L": [{"N": "2"}, {"N": "4"}]}]}},
     True),
    ({"n": {"ComparisonOperator": "NE", "AttributeValueList": [{"N": "2"}]}}, False),
    ({"n": {"ComparisonOperator": "NE", "AttributeValueList": [{"S": "2"}]}}, True),
    ({"missing": {"ComparisonOperator": "NE", "AttributeValueList": [{"N": "2"}]}}, True),
    ({"n": {"ComparisonOperator": "LE", "AttributeValueList": [{"N": "2"}]}}, True),
    ({"n": {"ComparisonOperator": "LT", "AttributeValueList": [{"N": "2"}]}}, False),
    ({"s": {"ComparisonOperator": "GE", "AttributeValueList": [{"S": "aardvark"}]}}, True),
    ({"b": {"ComparisonOperator": "GT", "AttributeValueList": [{"B": b"dog"}]}}, False),
    ({"n": {"ComparisonOperator": "GT", "AttributeValueList": [{"S": "1"}]}}, False),
    ({"z": {"ComparisonOperator": "NOT_NULL"}}, True),
    ({"missing": {"ComparisonOperator": "NOT_NULL"}}, False),
    ({"missing": {"ComparisonOperator": "NULL", "AttributeValueList": []}}, True),
    ({"z": {"ComparisonOperator": "NULL"}}, False),
    ({"s": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "at"}]}}, True),
    ({"ns": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"N": "4"}]}}, True),
    ({"l": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"N": "4"}]}}, True),
    ({"b": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"B": b"dog"}]}}, False),
    ({"s": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"S": "dog"}]}}, True),
    ({"s": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"N": "1"}]}}, True),
    ({"ns": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"N": "4"}]}}, False),
    ({"missing": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"N": "1"}]}},
     False),
    ({"s": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "ca"}]}}, True),
    ({"n": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "2"}]}}, False),
    ({"n": {"ComparisonOperator": "IN", "AttributeValueList": [{"N": "1"}, {"N": "2"}]}}, True),
    ({"ns": {"ComparisonOperator": "IN", "AttributeValueList": [{"N": "2"}]}}, False),
    ({"n": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "2"}, {"N": "3"}]}},
     True),
    ({"s": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"S": "d"}, {"S": "e"}]}},
     False),
    ({"missing": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "0"}, {"N": "9"}]}},
     False),
    ({"n": {"Value": {"N": "2"}}}, True),
    ({"n": {"Value": {"N": "3"}, "Exists": True}}, False),
    ({"missing": {"Value": {"N": "2"}}}, False),
    ({"missing": {"Exists": False}}, True),
    ({"n": {"Exists": False}}, False),
    ({"n": {"ComparisonOperator": "EQ", "Value": {"N": "2"}}}, True),
]


@pytest.mark.parametrize(("expected", "holds"), _CASES)
def test_expected_every_operator_on_update(
    ddb: Any, table: str, expected: dict[str, Any], holds: bool
) -> None:
    put_attrs(ddb, table, **_ITEM)
    kwargs = {"AttributeUpdates": {"done": {"Value": {"BOOL": True}}}, "Expected": expected}
    if holds:
        update(ddb, table, **kwargs)
        assert get(ddb, table)["done"] == {"BOOL": True}
    else:
        assert failure(ddb.update_item, TableName=table, Key={"pk": {"S": "k"}}, **kwargs)[0] == (
            "ConditionalCheckFailedException")
        assert "done" not in get(ddb, table)


def test_expected_on_put_and_delete(ddb: Any, table: str) -> None:
    put_attrs(ddb, table, a={"N": "1"})
    ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "a": {"N": "2"}},
                 Expected={"a": {"Value": {"N": "1"}}})
    assert failure(ddb.put_item, TableName=table, Item={"pk": {"S": "k"}, "a": {"N": "3"}},
                   Expected={"a": {"Value": {"N": "1"}}})[0] == "ConditionalCheckFailedException"
    assert failure(ddb.delete_item, TableName=table, Key={"pk": {"S": "k"}},
                   Expected={"a": {"Value": {"N": "1"}}},
                   ReturnValuesOnConditionCheckFailure="ALL_OLD")[0] == (
        "ConditionalCheckFailedException")
    old = ddb.delete_item(TableName=table, Key={"pk": {"S": "k"}},
                          Expected={"a": {"Value": {"N": "2"}}}, ReturnValues="ALL_OLD")
    assert old["Attributes"]["a"] == {"N": "2"}
    assert get(ddb, table) == {}
    ddb.put_item(TableName=table, Item={"pk": {"S": "k"}}, Expected={"pk": {"Exists": False}})
    assert get(ddb, table) == {"pk": {"S": "k"}}


def test_expected_conditional_operator(ddb: Any, table: str) -> None:
    put_attrs(ddb, table, a={"N": "1"}, b={"N": "2"})
    both_wrong_but_one = {"a": {"Value": {"N": "9"}}, "b": {"Value": {"N": "2"}}}
    assert failure(ddb.update_item, TableName=table, Key={"pk": {"S": "k"}},
                   Expected=both_wrong_but_one)[0] == "ConditionalCheckFailedException"
    assert failure(ddb.update_item, TableName=table, Key={"pk": {"S": "k"}},
                   Expected=both_wrong_but_one, ConditionalOperator="AND"
                   )[0] == "ConditionalCheckFailedException"
    update(ddb, table, Expected=both_wrong_but_one, ConditionalOperator="OR",
           AttributeUpdates={"c": {"Value": {"N": "3"}}})
    assert get(ddb, table)["c"] == {"N": "3"}


def test_expected_empty_and_conditional_operator_alone(ddb: Any, table: str) -> None:
    update(ddb, table, Expected={}, AttributeUpdates={"a": {"Value": {"N": "1"}}})
    code, message = failure(ddb.update_item, TableName=table, Key={"pk": {"S": "k"}},
                            Expected={}, ConditionalOperator="OR")
    assert code == "ValidationException" and "ConditionalOperator" in message
    assert failure(ddb.put_item, TableName=table, Item={"pk": {"S": "k"}},
                   Expected={"a": {"Value": {"N": "1"}}}, ConditionalOperator="XOR") == (
        "ValidationException",
        "1 validation error detected: Value 'XOR' at 'conditionalOperator' failed to satisfy "
        "constraint: Member must satisfy enum value set: [OR, AND]")


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ({"a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}, {"N": "2"}]}},
         _INVALID + "Invalid number of argument(s) for the EQ ComparisonOperator"),
        ({"a": {"ComparisonOperator": "NULL", "AttributeValueList": [{"N": "1"}]}},
         _INVALID + "Invalid number of argument(s) for the NULL ComparisonOperator"),
        ({"a": {"ComparisonOperator": "IN", "AttributeValueList": []}},
         _INVALID + "Invalid number of argument(s) for the IN ComparisonOperator"),
        ({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}]}},
         _INVALID + "Invalid number of argument(s) for the BETWEEN ComparisonOperator"),
        ({"a": {"ComparisonOperator": "IN", "AttributeValueList": [{"N": "1"}, {"S": "x"}]}},
         _INVALID + "AttributeValues inside AttributeValueList must be of same type"),
        ({"a": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"N": "1"}]}},
         _INVALID + "ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type"),
        ({"a": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"L": []}]}},
         _INVALID + "ComparisonOperator CONTAINS is not valid for L AttributeValue type"),
        ({"a": {"ComparisonOperator": "LT", "AttributeValueList": [{"BOOL": True}]}},
         _INVALID + "ComparisonOperator LT is not valid for BOOL AttributeValue type"),
        ({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "4"}, {"N": "3"}]}},
         "The BETWEEN condition was provided a range where the lower bound is greater than the "
         "upper bound"),
        ({"a": {"ComparisonOperator": "eq", "AttributeValueList": [{"N": "1"}]}},
         "1 validation error detected: Value 'eq' at 'expected.a.member.comparisonOperator' "
         "failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, "
         "LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"),
        ({"a": {"Exists": True}},
         _INVALID + "Value must be provided when Exists is true for Attribute: a"),
        ({"a": {}}, _INVALID + "Value must be provided when Exists is null for Attribute: a"),
        ({"a": {"Exists": False, "Value": {"N": "1"}}},
         _INVALID + "Value cannot be used when Exists is false for Attribute: a"),
        ({"a": {"Exists": False, "ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}},
         _INVALID + "Exists and ComparisonOperator cannot be used together for Attribute: a"),
        ({"a": {"Value": {"N": "1"}, "ComparisonOperator": "EQ",
                "AttributeValueList": [{"N": "1"}]}},
         _INVALID + "Value and AttributeValueList cannot be used together for Attribute: a"),
        ({"a": {"AttributeValueList": [{"N": "1"}]}},
         _INVALID + "AttributeValueList can only be used with a ComparisonOperator for "
         "Attribute: a"),
    ],
)
def test_expected_validation(
    ddb: Any, table: str, expected: dict[str, Any], message: str
) -> None:
    assert failure(ddb.update_item, TableName=table, Key={"pk": {"S": "k"}},
                   Expected=expected) == ("ValidationException", message)


def test_expected_mixed_with_condition_expression(ddb: Any, table: str) -> None:
    assert failure(ddb.put_item, TableName=table, Item={"pk": {"S": "k"}},
                   Expected={"a": {"Exists": False}},
                   ConditionExpression="attribute_not_exists(a)") == (
        "ValidationException",
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}")


# ------------------------------------------------------------------------------ AttributesToGet


def test_attributes_to_get_on_get_and_batch_get(ddb: Any, table: str) -> None:
    put_attrs(ddb, table, a={"S": "x"}, b={"S": "y"})
    got = ddb.get_item(TableName=table, Key={"pk": {"S": "k"}}, AttributesToGet=["a", "zz"])
    assert got["Item"] == {"a": {"S": "x"}}
    batch = ddb.batch_get_item(RequestItems={table: {
        "Keys": [{"pk": {"S": "k"}}], "AttributesToGet": ["b"]}})
    assert batch["Responses"][table] == [{"b": {"S": "y"}}]


def test_attributes_to_get_errors(ddb: Any, table: str) -> None:
    key = {"pk": {"S": "k"}}
    assert failure(ddb.get_item, TableName=table, Key=key, AttributesToGet=["a", "a"]) == (
        "ValidationException", _INVALID + "Duplicate value in attribute name: a")
    assert failure(ddb.get_item, TableName=table, Key=key, AttributesToGet=["a"],
                   ProjectionExpression="a") == (
        "ValidationException",
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributesToGet} Expression parameters: "
        "{ProjectionExpression}")
    assert failure(ddb.batch_get_item, RequestItems={table: {
        "Keys": [key], "AttributesToGet": ["a"], "ProjectionExpression": "a"}})[0] == (
        "ValidationException")


# ------------------------------------------------------------------------------ KeyConditions


def query(ddb: Any, table: str, **kwargs: Any) -> list[int]:
    items = ddb.query(TableName=table, **kwargs)["Items"]
    return [int(item["sk"]["N"]) for item in items]


def eq_p() -> dict[str, Any]:
    return {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}


@pytest.mark.parametrize(
    ("operator", "values", "expected"),
    [
        ("EQ", ["3"], [3]),
        ("LT", ["3"], [0, 1, 2]),
        ("LE", ["3"], [0, 1, 2, 3]),
        ("GT", ["7"], [8, 9]),
        ("GE", ["7"], [7, 8, 9]),
        ("BETWEEN", ["4", "6"], [4, 5, 6]),
    ],
)
def test_key_conditions_sort_operators(
    ddb: Any, sorted_table: str, operator: str, values: list[str], expected: list[int]
) -> None:
    conditions = {"pk": eq_p(), "sk": {"ComparisonOperator": operator,
                                       "AttributeValueList": [{"N": v} for v in values]}}
    assert query(ddb, sorted_table, KeyConditions=conditions) == expected


def test_key_conditions_partition_only_and_begins_with(ddb: Any, table: str,
                                                       sorted_table: str) -> None:
    assert query(ddb, sorted_table, KeyConditions={"pk": eq_p()}) == list(range(10))
    string_sorted = f"legacy_ss_{next(_names)}"
    make_table(ddb, string_sorted, sort=True)
    for sk in ("apple", "apricot", "banana"):
        ddb.put_item(TableName=string_sorted, Item={"pk": {"S": "p"}, "sk": {"S": sk}})
    found = ddb.query(TableName=string_sorted, KeyConditions={
        "pk": eq_p(),
        "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "ap"}]}})
    assert [i["sk"]["S"] for i in found["Items"]] == ["apple", "apricot"]


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"pk": {"ComparisonOperator": "GT", "AttributeValueList": [{"S": "p"}]}},
         "Query key condition not supported"),
        ({"sk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}},
         "Query condition missed key schema element: pk"),
        ({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
          "a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}},
         "Query condition missed key schema element: sk"),
        ({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
          "sk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]},
          "a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}},
         "Conditions can be of length 1 or 2 only"),
        ({"pk": {"ComparisonOperator": "IN", "AttributeValueList": [{"S": "p"}]}},
         "Attempted conditional constraint is not an indexable operation"),
        ({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
          "sk": {"ComparisonOperator": "NOT_NULL"}},
         "Attempted conditional constraint is not an indexable operation"),
        ({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "3"}]}},
         _INVALID + "Condition parameter type does not match schema type"),
        ({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": []}},
         _INVALID + "Invalid number of argument(s) for the EQ ComparisonOperator"),
        ({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
          "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"N": "3"}]}},
         _INVALID + "ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type"),
        ({"pk": {"ComparisonOperator": "DOG", "AttributeValueList": [{"S": "p"}]}},
         "1 validation error detected: Value 'DOG' at 'keyConditions.pk.member."
         "comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: "
         "[IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, "
         "CONTAINS]"),
    ],
)
def test_key_conditions_validation(
    ddb: Any, sorted_table: str, conditions: dict[str, Any], message: str
) -> None:
    assert failure(ddb.query, TableName=sorted_table, KeyConditions=conditions) == (
        "ValidationException", message)


def test_key_conditions_hash_only_table(ddb: Any, table: str) -> None:
    put_attrs(ddb, table, a={"S": "x"})
    found = ddb.query(TableName=table, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "k"}]}})
    assert found["Items"] == [{"pk": {"S": "k"}, "a": {"S": "x"}}]
    assert failure(ddb.query, TableName=table, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "k"}]},
        "a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]}}) == (
        "ValidationException", "Query key condition not supported")


def test_key_conditions_with_expressions(ddb: Any, sorted_table: str) -> None:
    # KeyConditions may go with a FilterExpression, not with a KeyConditionExpression.
    assert query(ddb, sorted_table, KeyConditions={"pk": eq_p()}, FilterExpression="e > :v",
                 ExpressionAttributeValues={":v": {"N": "5"}}) == [6, 8]
    assert failure(ddb.query, TableName=sorted_table, KeyConditions={"pk": eq_p()},
                   KeyConditionExpression="pk = :p",
                   ExpressionAttributeValues={":p": {"S": "p"}}) == (
        "ValidationException",
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {KeyConditions} Expression parameters: "
        "{KeyConditionExpression}")


# ------------------------------------------------------------------------------ QueryFilter


def test_query_filter_operators_and_conditional_operator(ddb: Any, sorted_table: str) -> None:
    def run(**kwargs: Any) -> list[int]:
        return query(ddb, sorted_table, KeyConditions={"pk": eq_p()}, **kwargs)

    assert run(QueryFilter={"e": {"ComparisonOperator": "NULL"}}) == [1, 3, 5, 7, 9]
    assert run(QueryFilter={"e": {"ComparisonOperator": "GE",
                                  "AttributeValueList": [{"N": "6"}]}}) == [6, 8]
    assert run(QueryFilter={"a": {"ComparisonOperator": "IN",
                                  "AttributeValueList": [{"S": "v1"}, {"S": "v2"}]}}) == [1, 2]
    both = {"a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "v1"}]},
            "e": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "4"}]}}
    assert run(QueryFilter=both) == []
    assert run(QueryFilter=both, ConditionalOperator="OR") == [1, 4]
    assert run(QueryFilter={}) == list(range(10))
    page = ddb.query(TableName=sorted_table, KeyConditions={"pk": eq_p()},
                     QueryFilter={"e": {"ComparisonOperator": "NOT_NULL"}}, Select="COUNT")
    assert (page["Count"], page["ScannedCount"]) == (5, 10)


_NO_FILTER = "ConditionalOperator cannot be used without Filter or Expected"
_ONE_CONDITION = (
    "ConditionalOperator can only be used when Filter or Expected has two or more elements"
)


def test_conditional_operator_needs_two_conditions(
    ddb: Any, sorted_table: str, table: str
) -> None:
    one = {"e": {"ComparisonOperator": "NOT_NULL"}}
    for call, kwargs in [
        (ddb.scan, {"ConditionalOperator": "AND"}),
        (ddb.scan, {"ScanFilter": {}, "ConditionalOperator": "OR"}),
        (ddb.query, {"KeyConditions": {"pk": eq_p()}, "ConditionalOperator": "OR"}),
        (ddb.update_item, {"Key": {"pk": {"S": "k"}}, "ConditionalOperator": "AND"}),
    ]:
        name = sorted_table if call != ddb.update_item else table
        assert failure(call, TableName=name, **kwargs) == ("ValidationException", _NO_FILTER)
    for call, kwargs in [
        (ddb.scan, {"ScanFilter": one, "ConditionalOperator": "OR"}),
        (ddb.query, {"KeyConditions": {"pk": eq_p()}, "QueryFilter": one,
                     "ConditionalOperator": "AND"}),
        (ddb.delete_item, {"Key": {"pk": {"S": "k"}}, "Expected": {"a": {"Exists": False}},
                           "ConditionalOperator": "OR"}),
    ]:
        name = sorted_table if call != ddb.delete_item else table
        assert failure(call, TableName=name, **kwargs) == ("ValidationException", _ONE_CONDITION)


def test_query_filter_errors(ddb: Any, sorted_table: str) -> None:
    assert failure(ddb.query, TableName=sorted_table, KeyConditions={"pk": eq_p()},
                   QueryFilter={"sk": {"ComparisonOperator": "EQ",
                                       "AttributeValueList": [{"N": "3"}]}}) == (
        "ValidationException",
        "QueryFilter can only contain non-primary key attributes: Primary key attribute: sk")
    assert failure(ddb.query, TableName=sorted_table,
                   QueryFilter={"a": {"ComparisonOperator": "NOT_NULL"}}) == (
        "ValidationException",
        "Either the KeyConditions or KeyConditionExpression parameter must be specified in the "
        "request.")
    assert failure(ddb.query, TableName=sorted_table, KeyConditions={"pk": eq_p()},
                   QueryFilter={"a": {"ComparisonOperator": "NOT_NULL"}},
                   FilterExpression="attribute_exists(a)") == (
        "ValidationException",
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {QueryFilter} Expression parameters: {FilterExpression}")


def test_query_attributes_to_get_and_select(ddb: Any, sorted_table: str) -> None:
    found = ddb.query(TableName=sorted_table, KeyConditions={"pk": eq_p()},
                      AttributesToGet=["a"], Select="SPECIFIC_ATTRIBUTES", Limit=1)
    assert found["Items"] == [{"a": {"S": "v0"}}]
    assert failure(ddb.query, TableName=sorted_table, KeyConditions={"pk": eq_p()},
                   AttributesToGet=["a"], Select="COUNT") == (
        "ValidationException",
        "Cannot specify the AttributesToGet when choosing to get only the COUNT")


# ------------------------------------------------------------------------------ ScanFilter


def test_scan_filter(ddb: Any, sorted_table: str) -> None:
    found = ddb.scan(TableName=sorted_table, ScanFilter={
        "a": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "v"}]},
        "e": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "2"}, {"N": "4"}]}},
        AttributesToGet=["sk"])
    assert sorted(int(i["sk"]["N"]) for i in found["Items"]) == [2, 4]
    # Unlike QueryFilter, a ScanFilter may test key attributes.
    keys = ddb.scan(TableName=sorted_table, ScanFilter={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "q"}]}})
    assert keys["Items"] == [{"pk": {"S": "q"}, "sk": {"N": "1"}}]
    assert failure(ddb.scan, TableName=sorted_table, ScanFilter={
        "a": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": []}}) == (
        "ValidationException",
        _INVALID + "Invalid number of argument(s) for the NOT_CONTAINS ComparisonOperator")


def test_expression_attribute_values_without_a_value_expression(
    ddb: Any, table: str, sorted_table: str
) -> None:
    values = {":v": {"N": "1"}}
    assert failure(ddb.update_item, TableName=table, Key={"pk": {"S": "k"}},
                   AttributeUpdates={"a": {"Value": {"N": "1"}}},
                   ExpressionAttributeValues=values) == (
        "ValidationException",
        "ExpressionAttributeValues can only be specified when using expressions: "
        "UpdateExpression and ConditionExpression are null")
    assert failure(ddb.put_item, TableName=table, Item={"pk": {"S": "k"}},
                   ExpressionAttributeValues=values) == (
        "ValidationException",
        "ExpressionAttributeValues can only be specified when using expressions: "
        "ConditionExpression is null")
    assert failure(ddb.query, TableName=sorted_table, KeyConditions={"pk": eq_p()},
                   ProjectionExpression="a", ExpressionAttributeValues=values) == (
        "ValidationException",
        "ExpressionAttributeValues can only be specified when using expressions: "
        "FilterExpression and KeyConditionExpression are null")


def test_key_conditions_on_secondary_indexes(ddb: Any) -> None:
    name = f"legacy_idx_{next(_names)}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t}
                              for n, t in (("pk", "S"), ("sk", "S"), ("g", "S"), ("l", "N"))],
        GlobalSecondaryIndexes=[{
            "IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"}}],
        LocalSecondaryIndexes=[{
            "IndexName": "by_l", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                               {"AttributeName": "l", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(3):
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"S": f"s{i}"},
                                           "g": {"S": "x"}, "l": {"N": str(10 - i)}})
    on_lsi = ddb.query(TableName=name, IndexName="by_l", KeyConditions={
        "pk": eq_p(), "l": {"ComparisonOperator": "LE", "AttributeValueList": [{"N": "9"}]}},
        AttributesToGet=["sk"], ConsistentRead=True)
    assert on_lsi["Items"] == [{"sk": {"S": "s2"}}, {"sk": {"S": "s1"}}]

    def on_gsi() -> None:
        # Global index entries are kept up to date in the background: a bounded wait.
        found = ddb.query(TableName=name, IndexName="by_g", KeyConditions={
            "g": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]}})
        assert sorted(i["sk"]["S"] for i in found["Items"]) == ["s0", "s1", "s2"]

    eventually(on_gsi)
    assert failure(ddb.query, TableName=name, IndexName="by_g", KeyConditions={
        "g": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}}) == (
        "ValidationException", _INVALID + "Condition parameter type does not match schema type")
