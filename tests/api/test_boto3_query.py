"""Query and Scan through boto3: key conditions, filters, Limit semantics, paging, 1 MB pages,
Select, segments, and reads of secondary indexes."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.api.test_app_harness import ServerThread, make_table

_names = itertools.count()


@pytest.fixture(scope="module")
def numbers(running: ServerThread) -> str:
    """Partition "a" holds sk -5..14 (v = sk % 3); partition "b" holds 3 items."""
    ddb = running.client()
    name = "numbers"
    make_table(ddb, name, sort=True, sort_type="N")
    for i in range(-5, 15):
        ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "sk": {"N": str(i)},
                                          "v": {"N": str(i % 3)}})
    for i in range(3):
        ddb.put_item(TableName=name, Item={"pk": {"S": "b"}, "sk": {"N": str(i)}})
    return name


def sks(items: list[dict[str, Any]]) -> list[int]:
    return [int(item["sk"]["N"]) for item in items]


def q(ddb: Any, table: str, cond: str, values: dict[str, Any], **kw: Any) -> dict[str, Any]:
    result: dict[str, Any] = ddb.query(TableName=table, KeyConditionExpression=cond,
                                       ExpressionAttributeValues=values, **kw)
    return result


A = {":p": {"S": "a"}}


@pytest.mark.parametrize(
    ("cond", "extra", "expected"),
    [
        ("pk = :p", {}, list(range(-5, 15))),
        ("pk = :p AND sk = :x", {":x": {"N": "3"}}, [3]),
        ("pk = :p AND sk < :x", {":x": {"N": "-3"}}, [-5, -4]),
        ("pk = :p AND sk <= :x", {":x": {"N": "-3"}}, [-5, -4, -3]),
        ("pk = :p AND sk > :x", {":x": {"N": "12"}}, [13, 14]),
        ("pk = :p AND :x <= sk", {":x": {"N": "12"}}, [12, 13, 14]),
        ("pk = :p AND sk BETWEEN :x AND :y", {":x": {"N": "-1"}, ":y": {"N": "1.5"}},
         [-1, 0, 1]),
    ],
)
def test_key_conditions(ddb: Any, numbers: str, cond: str, extra: dict[str, Any],
                        expected: list[int]) -> None:
    result = q(ddb, numbers, cond, {**A, **extra})
    assert sks(result["Items"]) == expected
    assert result["Count"] == result["ScannedCount"] == len(expected)
    backwards = q(ddb, numbers, cond, {**A, **extra}, ScanIndexForward=False)
    assert sks(backwards["Items"]) == expected[::-1]


def test_begins_with_on_strings(ddb: Any) -> None:
    make_table(ddb, "words", sort=True)
    for word in ("app", "apple", "apply", "apq", "ap", "b", "ap\x00x"):
        ddb.put_item(TableName="words", Item={"pk": {"S": "w"}, "sk": {"S": word}})
    result = q(ddb, "words", "pk = :p AND begins_with(sk, :b)",
               {":p": {"S": "w"}, ":b": {"S": "app"}})
    assert [i["sk"]["S"] for i in result["Items"]] == ["app", "apple", "apply"]
    result = q(ddb, "words", "pk = :p AND begins_with(sk, :b)",
               {":p": {"S": "w"}, ":b": {"S": "ap"}})
    assert [i["sk"]["S"] for i in result["Items"]] == ["ap", "ap\x00x", "app", "apple", "apply",
                                                       "apq"]


def test_limit_counts_items_before_the_filter(ddb: Any, numbers: str) -> None:
    result = q(ddb, numbers, "pk = :p", {**A, ":z": {"N": "0"}}, FilterExpression="v = :z",
               Limit=6)
    assert result["ScannedCount"] == 6
    assert sks(result["Items"]) == [-3, 0]
    assert result["LastEvaluatedKey"] == {"pk": {"S": "a"}, "sk": {"N": "0"}}


def test_query_paging_visits_everything_once(ddb: Any, numbers: str) -> None:
    for forward in (True, False):
        seen: list[int] = []
        start: dict[str, Any] = {}
        pages = 0
        while True:
            result = q(ddb, numbers, "pk = :p AND sk >= :lo", {**A, ":lo": {"N": "-2"}}, Limit=4,
                       ScanIndexForward=forward, **start)
            seen += sks(result["Items"])
            pages += 1
            if "LastEvaluatedKey" not in result:
                break
            start = {"ExclusiveStartKey": result["LastEvaluatedKey"]}
        expected = list(range(-2, 15))
        assert seen == (expected if forward else expected[::-1])
        assert pages == 5
    paginator = ddb.get_paginator("query")
    items = [i for p in paginator.paginate(TableName=numbers, KeyConditionExpression="pk = :p",
                                           ExpressionAttributeValues=A,
                                           PaginationConfig={"PageSize": 3})
             for i in p["Items"]]
    assert sks(items) == list(range(-5, 15))


def test_select_count_and_projection(ddb: Any, numbers: str) -> None:
    result = ddb.query(TableName=numbers, KeyConditionExpression="pk = :p",
                       FilterExpression="#v = :one", Select="COUNT",
                       ExpressionAttributeNames={"#v": "v"},
                       ExpressionAttributeValues={**A, ":one": {"N": "1"}})
    assert "Items" not in result
    assert result["Count"] == 7 and result["ScannedCount"] == 20
    result = q(ddb, numbers, "pk = :p", A, ProjectionExpression="sk", Limit=2)
    assert result["Items"] == [{"sk": {"N": "-5"}}, {"sk": {"N": "-4"}}]


def test_query_validation(ddb: Any, numbers: str) -> None:
    def code_message(**kw: Any) -> tuple[str, str]:
        with pytest.raises(ClientError) as info:
            ddb.query(TableName=numbers, **kw)
        return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]

    _, text = code_message(KeyConditionExpression="sk = :x", ExpressionAttributeValues={
        ":x": {"N": "1"}})
    assert text == "Query condition missed key schema element: pk"
    _, text = code_message(KeyConditionExpression="pk = :p", FilterExpression="sk = :x",
                           ExpressionAttributeValues={**A, ":x": {"N": "1"}})
    assert "Filter Expression can only contain non-primary key attributes" in text
    _, text = code_message(KeyConditionExpression="pk = :p", ExpressionAttributeValues={
        ":p": {"N": "1"}})
    assert "Condition parameter type does not match schema type" in text
    _, text = code_message(KeyConditionExpression="pk = :p", ExpressionAttributeValues=A,
                           ExclusiveStartKey={"pk": {"S": "b"}, "sk": {"N": "1"}})
    assert "outside query boundaries" in text
    _, text = code_message(KeyConditionExpression="pk = :p", ExpressionAttributeValues=A,
                           IndexName="nope")
    assert text == "The table does not have the specified index: nope"


def test_exclusive_start_key_must_satisfy_the_sort_key_condition(
    ddb: Any, numbers: str
) -> None:
    above_two = {**A, ":x": {"N": "2"}}
    with pytest.raises(ClientError) as info:
        q(ddb, numbers, "pk = :p AND sk > :x", above_two,
          ExclusiveStartKey={"pk": {"S": "a"}, "sk": {"N": "2"}})
    assert info.value.response["Error"]["Message"] == (
        "The provided starting key does not match the range key predicate")
    inside = q(ddb, numbers, "pk = :p AND sk > :x", above_two, Limit=2,
               ExclusiveStartKey={"pk": {"S": "a"}, "sk": {"N": "3"}})
    assert sks(inside["Items"]) == [4, 5]
    backwards = q(ddb, numbers, "pk = :p AND sk > :x", above_two, Limit=2,
                  ScanIndexForward=False, ExclusiveStartKey={"pk": {"S": "a"}, "sk": {"N": "5"}})
    assert sks(backwards["Items"]) == [4, 3]


def test_a_filter_may_not_look_inside_a_key_attribute(ddb: Any, numbers: str) -> None:
    for expression in ["attribute_exists(pk.b) AND v = :v", "sk[0] = :v"]:
        with pytest.raises(ClientError) as info:
            ddb.scan(TableName=numbers, FilterExpression=expression,
                     ExpressionAttributeValues={":v": {"N": "1"}})
        head = expression.split("(")[-1][:2]
        assert info.value.response["Error"]["Message"] == (
            "Key attributes must be scalars; list random access '[]' and map lookup '.' are not "
            f"allowed: Key: {head}")
    assert ddb.scan(TableName=numbers, FilterExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": "b"}})["Count"] == 3


def test_scan_filter_limit_and_paging(ddb: Any, numbers: str) -> None:
    everything = ddb.scan(TableName=numbers)
    assert everything["Count"] == 23 and "LastEvaluatedKey" not in everything
    seen: list[tuple[str, int]] = []
    start: dict[str, Any] = {}
    while True:
        page = ddb.scan(TableName=numbers, Limit=5, FilterExpression="attribute_exists(v)",
                        **start)
        assert page["ScannedCount"] <= 5
        seen += [(i["pk"]["S"], int(i["sk"]["N"])) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    assert sorted(seen) == [("a", i) for i in range(-5, 15)]


def test_parallel_scan_segments_cover_the_table(ddb: Any, numbers: str) -> None:
    found: list[tuple[str, str]] = []
    for segment in range(3):
        for page in ddb.get_paginator("scan").paginate(
            TableName=numbers, Segment=segment, TotalSegments=3, PaginationConfig={"PageSize": 4}
        ):
            found += [(i["pk"]["S"], i["sk"]["N"]) for i in page["Items"]]
    assert len(found) == len(set(found)) == 23
    with pytest.raises(ClientError) as info:
        ddb.scan(TableName=numbers, Segment=3, TotalSegments=3)
    assert "must be less than parameter TotalSegments" in info.value.response["Error"]["Message"]


def test_parameter_constraints_come_before_the_table_and_expressions(
    running: ServerThread,
) -> None:
    ddb = running.client(config=Config(parameter_validation=False, retries={"max_attempts": 1}))

    def message(call: Any, **kw: Any) -> str:
        with pytest.raises(ClientError) as info:
            call(**kw)
        text: str = info.value.response["Error"]["Message"]
        return text

    assert message(ddb.scan, TableName="no_such_table", Segment=1, TotalSegments=1,
                   FilterExpression="", ExpressionAttributeNames={}) == (
        "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
        "Segment: 1 is not less than TotalSegments: 1")
    for call, extra in [(ddb.scan, {}), (ddb.query, {"KeyConditionExpression": "pk = :p"})]:
        assert message(call, TableName="no_such_table", Limit=0, **extra) == (
            "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1")
    assert message(ddb.scan, TableName="no_such_table", FilterExpression="a = :v") == (
        "Invalid FilterExpression: An expression attribute value used in expression is not "
        "defined; attribute value: :v")
    assert message(ddb.get_item, TableName="no_such_table", Key={},
                   AttributesToGet=["a", "a"]) == (
        "One or more parameter values were invalid: Duplicate value in attribute name: a")
    assert message(ddb.get_item, TableName="no_such_table", Key={}) == (
        "Requested resource not found: Table: no_such_table not found")

    def query_message(**kw: Any) -> str:
        return message(ddb.query, TableName="no_such_table", **kw)

    assert query_message(KeyConditionExpression="pk = :p") == (
        "Invalid KeyConditionExpression: An expression attribute value used in expression is not "
        "defined; attribute value: :p")
    null_with_value = {"ComparisonOperator": "NULL", "AttributeValueList": [{"S": "a"}]}
    assert query_message(KeyConditions={"pk": null_with_value}) == (
        "One or more parameter values were invalid: Invalid number of argument(s) for the NULL "
        "ComparisonOperator")
    three = {name: {"ComparisonOperator": "NULL"} for name in "abc"}
    assert query_message(KeyConditions=three) == "Conditions can be of length 1 or 2 only"
    eq_a = {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}}
    assert query_message(KeyConditions=eq_a, Select="SPECIFIC_ATTRIBUTES") == (
        "One or more parameter values were invalid: Select type SPECIFIC_ATTRIBUTES requires "
        "AttributesToGet or ProjectionExpression")
    assert query_message(KeyConditions=eq_a, ExclusiveStartKey={"pk": {"N": "b"}}) == (
        "The provided starting key is invalid: The parameter cannot be converted to a numeric "
        "value: b")
    assert query_message(KeyConditions=eq_a) == (
        "Requested resource not found: Table: no_such_table not found")
    assert query_message(KeyConditions=eq_a, Select="count") == (
        "1 validation error detected: Value 'count' at 'select' failed to satisfy constraint: "
        "Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, "
        "ALL_PROJECTED_ATTRIBUTES]")


def test_one_megabyte_pages(ddb: Any) -> None:
    make_table(ddb, "fat", sort=True, sort_type="N")
    blob = "x" * (200 * 1024)
    for i in range(12):
        ddb.put_item(TableName="fat", Item={"pk": {"S": "f"}, "sk": {"N": str(i)},
                                           "d": {"S": blob}})
    first = q(ddb, "fat", "pk = :p", {":p": {"S": "f"}})
    assert first["Count"] == 6  # 6 x 200 KB crosses 1 MB
    assert first["LastEvaluatedKey"] == {"pk": {"S": "f"}, "sk": {"N": "5"}}
    scanned = ddb.scan(TableName="fat", Select="COUNT")
    assert scanned["ScannedCount"] == 6 and "LastEvaluatedKey" in scanned


def test_secondary_indexes_are_queryable(ddb: Any) -> None:
    ddb.create_table(
        TableName="people",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"},
                              {"AttributeName": "city", "AttributeType": "S"},
                              {"AttributeName": "age", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[{
            "IndexName": "by_city",
            "KeySchema": [{"AttributeName": "city", "KeyType": "HASH"},
                          {"AttributeName": "age", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
        LocalSecondaryIndexes=[{
            "IndexName": "by_age",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                          {"AttributeName": "age", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    )
    people = [("x", "1", "paris", 30), ("x", "2", "oslo", 20), ("y", "1", "paris", 25),
              ("y", "2", "paris", 41), ("z", "1", None, 50)]
    for pk, sk, city, age in people:
        item = {"pk": {"S": pk}, "sk": {"S": sk}, "age": {"N": str(age)}, "name": {"S": pk + sk}}
        if city:
            item["city"] = {"S": city}
        ddb.put_item(TableName="people", Item=item)
    result = ddb.query(TableName="people", IndexName="by_city",
                       KeyConditionExpression="city = :c AND age > :a",
                       ExpressionAttributeValues={":c": {"S": "paris"}, ":a": {"N": "26"}})
    assert [(i["pk"]["S"], i["age"]["N"]) for i in result["Items"]] == [("x", "30"), ("y", "41")]
    assert "name" not in result["Items"][0]  # KEYS_ONLY
    pages = list(ddb.get_paginator("query").paginate(
        TableName="people", IndexName="by_city", KeyConditionExpression="city = :c",
        ExpressionAttributeValues={":c": {"S": "paris"}}, ScanIndexForward=False,
        PaginationConfig={"PageSize": 1}))
    ages = [i["age"]["N"] for p in pages for i in p["Items"]]
    assert ages == ["41", "30", "25"]
    local = ddb.query(TableName="people", IndexName="by_age",
                      KeyConditionExpression="pk = :p", ExpressionAttributeValues={
                          ":p": {"S": "x"}})
    assert [i["age"]["N"] for i in local["Items"]] == ["20", "30"]
    assert local["Items"][0]["name"] == {"S": "x2"}
    scanned = ddb.scan(TableName="people", IndexName="by_city")
    assert scanned["Count"] == 4
    with pytest.raises(ClientError) as info:
        ddb.query(TableName="people", IndexName="by_city", ConsistentRead=True,
                  KeyConditionExpression="city = :c",
                  ExpressionAttributeValues={":c": {"S": "paris"}})
    assert "Consistent reads are not supported on global secondary indexes" in (
        info.value.response["Error"]["Message"])
