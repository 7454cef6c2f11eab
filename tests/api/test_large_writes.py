"""Conditional writes and updates of large items, decided off the event loop (api/large_writes.py),
and GetItem answering with the stored bytes (api/response_json.py), on a real node."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.test_http_node import HttpNode, make_table, start_node

NULLS = 20_000  # ~280 KB of stored JSON: above the 64 KiB where decisions leave the loop


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpNode]:
    started = start_node(tmp_path_factory.mktemp("large-writes"))
    try:
        yield started
    finally:
        started.proc.stop()


def big_item(key: str) -> dict[str, Any]:
    return {"pk": {"S": key}, "l": {"L": [{"NULL": True}] * NULLS}, "n": {"N": "0"}}


def test_updates_and_conditions_on_a_large_item(node: HttpNode) -> None:
    ddb = node.client()
    make_table(ddb, "big")
    ddb.put_item(TableName="big", Item=big_item("a"))
    answer = ddb.update_item(TableName="big", Key={"pk": {"S": "a"}},
                             UpdateExpression="SET n = n + :one",
                             ExpressionAttributeValues={":one": {"N": "1"},
                                                        ":size": {"N": str(NULLS)}},
                             ConditionExpression="size(l) = :size",
                             ReturnValues="UPDATED_NEW")
    assert answer["Attributes"] == {"n": {"N": "1"}}
    with pytest.raises(ClientError) as failed:
        ddb.update_item(TableName="big", Key={"pk": {"S": "a"}}, UpdateExpression="SET n = :z",
                        ExpressionAttributeValues={":z": {"N": "9"}, ":size": {"N": "1"}},
                        ConditionExpression="size(l) = :size",
                        ReturnValuesOnConditionCheckFailure="ALL_OLD")
    error = failed.value.response
    assert error["Error"]["Code"] == "ConditionalCheckFailedException"
    assert error["Item"]["n"] == {"N": "1"} and len(error["Item"]["l"]["L"]) == NULLS
    item = ddb.get_item(TableName="big", Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]
    assert item["n"] == {"N": "1"} and item["l"] == big_item("a")["l"]


def test_a_large_update_value_on_a_small_item(node: HttpNode) -> None:
    ddb = node.client()
    make_table(ddb, "big2")
    ddb.put_item(TableName="big2", Item={"pk": {"S": "s"}, "n": {"N": "5"}})
    value = {"L": [{"N": str(i)} for i in range(20_000)]}  # a large body: api/bodies.py
    old = ddb.update_item(TableName="big2", Key={"pk": {"S": "s"}}, UpdateExpression="SET l = :v",
                          ExpressionAttributeValues={":v": value}, ReturnValues="ALL_OLD")
    assert old["Attributes"] == {"pk": {"S": "s"}, "n": {"N": "5"}}
    item = ddb.get_item(TableName="big2", Key={"pk": {"S": "s"}})["Item"]
    assert item["l"] == value and item["n"] == {"N": "5"}


def test_racing_increments_of_a_large_item_all_count(node: HttpNode) -> None:
    """Each update is decided on a value the item may no longer have when the write reaches
    the leader: such a decision is made again, never applied to another value."""
    ddb = node.client()
    make_table(ddb, "big3")
    ddb.put_item(TableName="big3", Item=big_item("c"))
    errors: list[BaseException] = []

    def bump() -> None:
        client = node.client()
        try:
            for _ in range(3):
                client.update_item(TableName="big3", Key={"pk": {"S": "c"}},
                                   UpdateExpression="ADD n :one",
                                   ExpressionAttributeValues={":one": {"N": "1"}})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    item = ddb.get_item(TableName="big3", Key={"pk": {"S": "c"}}, ConsistentRead=True)["Item"]
    assert item["n"] == {"N": "9"} and len(item["l"]["L"]) == NULLS


def test_conditional_put_and_delete_over_a_large_item(node: HttpNode) -> None:
    ddb = node.client()
    make_table(ddb, "big4")
    ddb.put_item(TableName="big4", Item=big_item("d"))
    ddb.put_item(TableName="big4", Item={"pk": {"S": "d"}, "v": {"S": "small"}},
                 ConditionExpression="attribute_exists(l)")
    ddb.put_item(TableName="big4", Item=big_item("d"))
    old = ddb.delete_item(TableName="big4", Key={"pk": {"S": "d"}}, ReturnValues="ALL_OLD",
                          ConditionExpression="attribute_exists(l)")
    assert len(old["Attributes"]["l"]["L"]) == NULLS
    assert "Item" not in ddb.get_item(TableName="big4", Key={"pk": {"S": "d"}})
