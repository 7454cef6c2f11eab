"""Item operations through boto3: PutItem, GetItem, UpdateItem, DeleteItem, their conditions,
ReturnValues, projections, capacity and validation."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from tests.api.test_app_harness import ServerThread, make_table, served

_names = itertools.count()


@pytest.fixture(scope="module")
def running() -> Iterator[ServerThread]:
    with served(yield_points=True) as server:
        yield server


@pytest.fixture
def ddb(running: ServerThread) -> Any:
    return running.client()


@pytest.fixture
def table(ddb: Any) -> str:
    name = f"items_{next(_names)}"
    make_table(ddb, name)
    return name


@pytest.fixture
def sorted_table(ddb: Any) -> str:
    name = f"sorted_{next(_names)}"
    make_table(ddb, name, sort=True, sort_type="N")
    return name


def error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response: dict[str, Any] = info.value.response
    return response


def code_message(call: Any, **kwargs: Any) -> tuple[str, str]:
    err = error(call, **kwargs)["Error"]
    return err["Code"], err["Message"]


def test_put_get_delete_roundtrip_every_type(ddb: Any, table: str) -> None:
    item = {
        "pk": {"S": "k"},
        "s": {"S": "héllo"},
        "n": {"N": "-12.500"},
        "b": {"B": b"\x00\x01"},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "ss": {"SS": ["b", "a"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [b"x"]},
        "l": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"L": []}}}]},
        "m": {"M": {"a": {"S": "b"}}},
    }
    ddb.put_item(TableName=table, Item=item)
    got = ddb.get_item(TableName=table, Key={"pk": {"S": "k"}}, ConsistentRead=True)["Item"]
    assert got["n"] == {"N": "-12.5"}
    assert sorted(got["ss"]["SS"]) == ["a", "b"]
    assert got["b"] == {"B": b"\x00\x01"}
    assert got["l"] == item["l"] and got["m"] == item["m"]
    ddb.delete_item(TableName=table, Key={"pk": {"S": "k"}})
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "k"}})


def test_resource_api_roundtrip(running: ServerThread, table: str) -> None:
    t = running.resource().Table(table)
    t.put_item(Item={"pk": "r", "count": 3, "tags": {"x", "y"}, "doc": {"a": [1, "two"]}})
    item = t.get_item(Key={"pk": "r"})["Item"]
    assert item["count"] == 3 and item["tags"] == {"x", "y"} and item["doc"]["a"][1] == "two"
    t.update_item(Key={"pk": "r"}, UpdateExpression="ADD #c :one",
                  ExpressionAttributeNames={"#c": "count"}, ExpressionAttributeValues={":one": 1})
    assert t.get_item(Key={"pk": "r"})["Item"]["count"] == 4
    with pytest.raises(ClientError):
        t.put_item(Item={"pk": "r"}, ConditionExpression=Attr("pk").not_exists())


def test_projection_expression(ddb: Any, table: str) -> None:
    ddb.put_item(TableName=table, Item={
        "pk": {"S": "p"}, "a": {"S": "1"}, "b": {"M": {"c": {"N": "2"}, "d": {"N": "3"}}},
        "l": {"L": [{"S": "x"}, {"S": "y"}]},
    })
    got = ddb.get_item(TableName=table, Key={"pk": {"S": "p"}},
                       ProjectionExpression="a, b.c, l[1], #m",
                       ExpressionAttributeNames={"#m": "missing"})["Item"]
    assert got == {"a": {"S": "1"}, "b": {"M": {"c": {"N": "2"}}}, "l": {"L": [{"S": "y"}]}}
    got = ddb.get_item(TableName=table, Key={"pk": {"S": "p"}}, AttributesToGet=["a"])["Item"]
    assert got == {"a": {"S": "1"}}


def test_put_return_values_and_conditions(ddb: Any, table: str) -> None:
    key = {"pk": {"S": "c"}}
    first = ddb.put_item(TableName=table, Item={**key, "v": {"N": "1"}}, ReturnValues="ALL_OLD")
    assert "Attributes" not in first
    second = ddb.put_item(TableName=table, Item={**key, "v": {"N": "2"}}, ReturnValues="ALL_OLD")
    assert second["Attributes"] == {**key, "v": {"N": "1"}}
    err = error(ddb.put_item, TableName=table, Item={**key, "v": {"N": "3"}},
                ConditionExpression="v = :one", ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert err["Error"]["Code"] == "ConditionalCheckFailedException"
    assert err["Error"]["Message"] == "The conditional request failed"
    assert err["Item"] == {**key, "v": {"N": "2"}}
    ddb.put_item(TableName=table, Item={**key, "v": {"N": "3"}},
                 ConditionExpression="v = :two", ExpressionAttributeValues={":two": {"N": "2"}})
    assert code_message(ddb.put_item, TableName=table, Item=key, ReturnValues="ALL_NEW") == (
        "ValidationException", "Return values set to invalid value")


def test_conditional_delete(ddb: Any, table: str) -> None:
    key = {"pk": {"S": "d"}}
    ddb.put_item(TableName=table, Item={**key, "state": {"S": "open"}})
    code, _ = code_message(ddb.delete_item, TableName=table, Key=key,
                           ConditionExpression="#s = :c", ExpressionAttributeNames={"#s": "state"},
                           ExpressionAttributeValues={":c": {"S": "closed"}})
    assert code == "ConditionalCheckFailedException"
    gone = ddb.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD",
                           ConditionExpression="attribute_exists(pk)")
    assert gone["Attributes"]["state"] == {"S": "open"}
    code, _ = code_message(ddb.delete_item, TableName=table, Key=key,
                           ConditionExpression="attribute_exists(pk)")
    assert code == "ConditionalCheckFailedException"


def test_update_item_return_values(ddb: Any, table: str) -> None:
    key = {"pk": {"S": "u"}}
    created = ddb.update_item(
        TableName=table, Key=key, UpdateExpression="SET a = :a, b = :b",
        ExpressionAttributeValues={":a": {"N": "1"}, ":b": {"S": "x"}}, ReturnValues="ALL_NEW")
    assert created["Attributes"] == {**key, "a": {"N": "1"}, "b": {"S": "x"}}
    cases = {
        "ALL_OLD": {**key, "a": {"N": "1"}, "b": {"S": "x"}},
        "UPDATED_OLD": {"a": {"N": "2"}},
        "UPDATED_NEW": {"a": {"N": "4"}},
        "ALL_NEW": {**key, "a": {"N": "5"}, "b": {"S": "x"}},
    }
    for returns, expected in cases.items():
        answer = ddb.update_item(TableName=table, Key=key, UpdateExpression="SET a = a + :one",
                                 ExpressionAttributeValues={":one": {"N": "1"}},
                                 ReturnValues=returns)
        if returns == "ALL_OLD":
            assert answer["Attributes"] == expected
        else:
            assert answer["Attributes"] == expected, returns
    none = ddb.update_item(TableName=table, Key=key, UpdateExpression="REMOVE b")
    assert "Attributes" not in none
    item = ddb.get_item(TableName=table, Key=key)["Item"]
    assert "b" not in item


def test_return_values_enum_messages_list_dynamodb_order(ddb: Any, table: str) -> None:
    key = {"pk": {"S": "enum"}}
    with pytest.raises(ClientError) as info:
        ddb.update_item(TableName=table, Key=key, ReturnValues="DOG")
    assert info.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'DOG' at 'returnValues' failed to satisfy "
        "constraint: Member must satisfy enum value set: "
        "[ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]")
    with pytest.raises(ClientError) as info:
        ddb.delete_item(TableName=table, Key=key, ReturnValuesOnConditionCheckFailure="none")
    assert info.value.response["Error"]["Message"].endswith("enum value set: [ALL_OLD, NONE]")
    with pytest.raises(ClientError) as info:
        ddb.put_item(TableName=table, Item=key, ReturnValues="ALL_NEW")
    assert info.value.response["Error"]["Message"] == "Return values set to invalid value"


def test_update_item_conditions_and_errors(ddb: Any, table: str) -> None:
    key = {"pk": {"S": "e"}}
    ddb.put_item(TableName=table, Item={**key, "n": {"N": "1"}, "s": {"S": "x"}})
    err = error(ddb.update_item, TableName=table, Key=key, UpdateExpression="SET n = :v",
                ConditionExpression="n > :v", ExpressionAttributeValues={":v": {"N": "5"}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert err["Error"]["Code"] == "ConditionalCheckFailedException"
    assert err["Item"]["n"] == {"N": "1"}
    code, text = code_message(ddb.update_item, TableName=table, Key=key,
                              UpdateExpression="SET s = s + :v",
                              ExpressionAttributeValues={":v": {"N": "5"}})
    assert code == "ValidationException"
    assert "incorrect data type" in text
    code, text = code_message(ddb.update_item, TableName=table, Key=key,
                              UpdateExpression="SET pk = :v",
                              ExpressionAttributeValues={":v": {"S": "y"}})
    assert text == ("One or more parameter values were invalid: Cannot update attribute pk. "
                    "This attribute is part of the key")
    # Nothing was changed by the failed updates.
    assert ddb.get_item(TableName=table, Key=key)["Item"]["s"] == {"S": "x"}


def test_update_with_only_remove_does_not_create(ddb: Any, table: str) -> None:
    key = {"pk": {"S": "ghost"}}
    ddb.update_item(TableName=table, Key=key, UpdateExpression="REMOVE a")
    assert "Item" not in ddb.get_item(TableName=table, Key=key)
    ddb.update_item(TableName=table, Key=key)
    assert ddb.get_item(TableName=table, Key=key)["Item"] == key


def test_key_validation(ddb: Any, sorted_table: str) -> None:
    t = sorted_table
    assert code_message(ddb.put_item, TableName=t, Item={"pk": {"S": "a"}}) == (
        "ValidationException",
        "One or more parameter values were invalid: Missing the key sk in the item")
    assert code_message(ddb.put_item, TableName=t, Item={"pk": {"S": "a"}, "sk": {"S": "1"}}) == (
        "ValidationException",
        "One or more parameter values were invalid: Type mismatch for key sk expected: N "
        "actual: S")
    _, text = code_message(ddb.put_item, TableName=t, Item={"pk": {"S": ""}, "sk": {"N": "1"}})
    assert "cannot contain an empty string value. Key: pk" in text
    for key in ({"pk": {"S": "a"}}, {"pk": {"S": "a"}, "sk": {"S": "1"}},
                {"pk": {"S": "a"}, "sk": {"N": "1"}, "x": {"S": "1"}}):
        assert code_message(ddb.get_item, TableName=t, Key=key) == (
            "ValidationException", "The provided key element does not match the schema")
    _, text = code_message(ddb.put_item, TableName=t,
                           Item={"pk": {"S": "h" * 2049}, "sk": {"N": "1"}})
    assert "Size of hashkey has exceeded the maximum size limit of2048 bytes" in text
    ddb.put_item(TableName=t, Item={"pk": {"S": "h" * 2048}, "sk": {"N": "1"}})


def test_item_size_limit(ddb: Any, table: str) -> None:
    big = "x" * (400 * 1024 - 10)
    ddb.put_item(TableName=table, Item={"pk": {"S": "ok"}, "d": {"S": big}})
    assert code_message(ddb.put_item, TableName=table,
                        Item={"pk": {"S": "big"}, "d": {"S": big + "y" * 20}}) == (
        "ValidationException", "Item size has exceeded the maximum allowed size")
    _code, text = code_message(ddb.update_item, TableName=table, Key={"pk": {"S": "ok"}},
                              UpdateExpression="SET e = :e",
                              ExpressionAttributeValues={":e": {"S": "y" * 100}})
    assert text == "Item size to update has exceeded the maximum allowed size"


def test_reserved_word_needs_a_placeholder(ddb: Any, table: str) -> None:
    code, text = code_message(ddb.update_item, TableName=table, Key={"pk": {"S": "r"}},
                              UpdateExpression="SET status = :s",
                              ExpressionAttributeValues={":s": {"S": "x"}})
    assert code == "ValidationException"
    assert "reserved keyword" in text and "status" in text
    code, text = code_message(ddb.get_item, TableName=table, Key={"pk": {"S": "r"}},
                              ProjectionExpression="pk", ExpressionAttributeNames={"#u": "x"})
    assert "unused in expressions" in text


def test_consumed_capacity(ddb: Any, table: str) -> None:
    answer = ddb.put_item(TableName=table, Item={"pk": {"S": "cap"}, "d": {"S": "x" * 3000}},
                          ReturnConsumedCapacity="TOTAL")
    assert answer["ConsumedCapacity"] == {"TableName": table, "CapacityUnits": 3.0,
                                          "WriteCapacityUnits": 3.0}
    answer = ddb.get_item(TableName=table, Key={"pk": {"S": "cap"}},
                          ReturnConsumedCapacity="INDEXES")
    assert answer["ConsumedCapacity"]["CapacityUnits"] == 0.5
    assert answer["ConsumedCapacity"]["Table"]["CapacityUnits"] == 0.5
    answer = ddb.get_item(TableName=table, Key={"pk": {"S": "cap"}}, ConsistentRead=True,
                          ReturnConsumedCapacity="TOTAL")
    assert answer["ConsumedCapacity"]["CapacityUnits"] == 1.0


def test_racing_conditional_puts_exactly_one_wins(running: ServerThread, table: str) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def contender(i: int) -> None:
        client = running.client()
        barrier.wait()
        try:
            client.put_item(TableName=table, Item={"pk": {"S": "race"}, "who": {"N": str(i)}},
                            ConditionExpression="attribute_not_exists(pk)")
            outcomes.append(f"won:{i}")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1
    assert outcomes.count("ConditionalCheckFailedException") == 7
    stored = running.client().get_item(TableName=table, Key={"pk": {"S": "race"}})["Item"]
    assert f"won:{stored['who']['N']}" == winners[0]


def test_racing_counters_lose_no_increment(running: ServerThread, table: str) -> None:
    def bump() -> None:
        client = running.client()
        for _ in range(10):
            client.update_item(TableName=table, Key={"pk": {"S": "ctr"}},
                               UpdateExpression="ADD n :one",
                               ExpressionAttributeValues={":one": {"N": "1"}})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    item = running.client().get_item(TableName=table, Key={"pk": {"S": "ctr"}})["Item"]
    assert item["n"] == {"N": "40"}
