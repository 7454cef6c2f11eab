"""Reads of large items worked in the worker thread (api/large_reads.py): GetItem with a
projection or ReturnConsumedCapacity, Query and Scan pages, and the item a failed condition
returns, on a real node. The answers must be exactly those of the in-place path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.test_http_node import HttpNode, make_table, start_node

COUNT = 20_000  # ~280 KB of stored JSON: above the 64 KiB from which reads leave the loop


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpNode]:
    started = start_node(tmp_path_factory.mktemp("large-reads"))
    try:
        yield started
    finally:
        started.proc.stop()


@pytest.fixture(scope="module")
def ddb(node: HttpNode) -> Any:
    client = node.client()
    make_table(client, "big")
    for key, n in (("a", "1"), ("b", "2")):
        client.put_item(TableName="big", Item=big_item(key, n))
    client.put_item(TableName="big", Item={"pk": {"S": "small"}, "n": {"N": "3"}})
    return client


def big_item(key: str, n: str) -> dict[str, Any]:
    numbers = [{"N": str(i)} for i in range(COUNT)]
    return {"pk": {"S": key}, "l": {"L": numbers}, "n": {"N": n}}


def test_get_item_projects_a_large_item(ddb: Any) -> None:
    answer = ddb.get_item(TableName="big", Key={"pk": {"S": "a"}}, ConsistentRead=True,
                          ProjectionExpression="n, l[19999], l[3]",
                          ReturnConsumedCapacity="TOTAL")
    assert answer["Item"] == {"n": {"N": "1"}, "l": {"L": [{"N": "3"}, {"N": "19999"}]}}
    # Capacity is charged on the whole item (~88 KB, 4 KB units), not on the projection.
    assert answer["ConsumedCapacity"]["CapacityUnits"] > 10


def test_get_item_sizes_a_large_item_unprojected(ddb: Any) -> None:
    answer = ddb.get_item(TableName="big", Key={"pk": {"S": "b"}},
                          ReturnConsumedCapacity="TOTAL")
    assert answer["Item"] == big_item("b", "2")
    projected = ddb.get_item(TableName="big", Key={"pk": {"S": "b"}}, ProjectionExpression="n",
                             ReturnConsumedCapacity="TOTAL")
    assert answer["ConsumedCapacity"] == projected["ConsumedCapacity"]


def test_query_pages_of_large_items(ddb: Any) -> None:
    whole = ddb.query(TableName="big", KeyConditionExpression="pk = :k",
                      ExpressionAttributeValues={":k": {"S": "a"}})
    assert whole["Items"] == [big_item("a", "1")] and whole["Count"] == 1
    projected = ddb.query(TableName="big", KeyConditionExpression="pk = :k",
                          ExpressionAttributeValues={":k": {"S": "a"}, ":c": {"N": str(COUNT)}},
                          FilterExpression="size(l) = :c", ProjectionExpression="l[1], n")
    assert projected["Items"] == [{"n": {"N": "1"}, "l": {"L": [{"N": "1"}]}}]
    dropped = ddb.query(TableName="big", KeyConditionExpression="pk = :k",
                        ExpressionAttributeValues={":k": {"S": "a"}, ":c": {"N": "1"}},
                        FilterExpression="size(l) = :c")
    assert dropped["Items"] == [] and dropped["Count"] == 0 and dropped["ScannedCount"] == 1


def test_scan_pages_mix_large_and_small_items(ddb: Any) -> None:
    scan = ddb.scan(TableName="big", ProjectionExpression="pk, n", ConsistentRead=True)
    assert sorted(item["n"]["N"] for item in scan["Items"]) == ["1", "2", "3"]
    counted = ddb.scan(TableName="big", Select="COUNT", FilterExpression="attribute_exists(l)")
    assert counted["Count"] == 2 and counted["ScannedCount"] == 3 and "Items" not in counted
    limited = ddb.scan(TableName="big", Limit=1)
    assert limited["Count"] == 1 and "LastEvaluatedKey" in limited


def test_a_failed_condition_returns_the_large_item(ddb: Any) -> None:
    with pytest.raises(ClientError) as failed:
        ddb.put_item(TableName="big", Item={"pk": {"S": "a"}},
                     ConditionExpression="attribute_not_exists(pk)",
                     ReturnValuesOnConditionCheckFailure="ALL_OLD")
    error = failed.value.response
    assert error["Error"]["Code"] == "ConditionalCheckFailedException"
    assert error["Item"] == big_item("a", "1")


def test_updated_old_and_new_of_a_large_list(ddb: Any) -> None:
    ddb.put_item(TableName="big", Item=big_item("c", "5"))
    replacement = {"L": [{"S": "x"}] * COUNT}
    old = ddb.update_item(TableName="big", Key={"pk": {"S": "c"}}, UpdateExpression="SET l = :v",
                          ExpressionAttributeValues={":v": replacement}, ReturnValues="UPDATED_OLD")
    assert old["Attributes"] == {"l": big_item("c", "5")["l"]}
    new = ddb.update_item(TableName="big", Key={"pk": {"S": "c"}},
                          UpdateExpression="SET n = n + :one",
                          ExpressionAttributeValues={":one": {"N": "1"}},
                          ReturnValues="UPDATED_NEW")
    assert new["Attributes"] == {"n": {"N": "6"}}
