"""ReturnItemCollectionMetrics=SIZE through boto3 against the in-process app: a table with a
local secondary index answers the written item collection's key and size estimate on PutItem,
UpdateItem, DeleteItem, BatchWriteItem and TransactWriteItems; a table without one answers no
metrics; the parameter's values are checked."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.api.test_app_harness import ServerThread

_names = itertools.count()
SMALL = [0.0, 1.0]  # a collection under one gigabyte


def make(ddb: Any, *, local_index: bool) -> str:
    name = f"collections_{next(_names)}"
    s = {"AttributeType": "S"}
    kwargs: dict[str, Any] = {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "pk", **s}, {"AttributeName": "sk", **s}]}
    if local_index:
        kwargs["AttributeDefinitions"].append({"AttributeName": "l", **s})
        kwargs["LocalSecondaryIndexes"] = [{
            "IndexName": "by_l", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                          {"AttributeName": "l", "KeyType": "RANGE"}]}]
    ddb.create_table(**kwargs)
    return name


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def expected(pk: str) -> dict[str, Any]:
    return {"ItemCollectionKey": {"pk": {"S": pk}}, "SizeEstimateRangeGB": SMALL}


def test_single_item_writes_answer_the_collection(ddb: Any) -> None:
    table = make(ddb, local_index=True)
    put = ddb.put_item(TableName=table, Item={**key("a", "1"), "l": {"S": "x"}},
                       ReturnItemCollectionMetrics="SIZE")
    assert put["ItemCollectionMetrics"] == expected("a")
    update = ddb.update_item(TableName=table, Key=key("a", "1"), UpdateExpression="SET v = :v",
                             ExpressionAttributeValues={":v": {"S": "y"}},
                             ReturnItemCollectionMetrics="SIZE")
    assert update["ItemCollectionMetrics"] == expected("a")
    delete = ddb.delete_item(TableName=table, Key=key("a", "1"),
                             ReturnItemCollectionMetrics="SIZE")
    assert delete["ItemCollectionMetrics"] == expected("a")
    assert "ItemCollectionMetrics" not in ddb.put_item(TableName=table, Item=key("a", "2"))


def test_batch_and_transaction_answer_one_entry_per_collection(ddb: Any) -> None:
    table = make(ddb, local_index=True)
    batch = ddb.batch_write_item(RequestItems={table: [
        {"PutRequest": {"Item": key("a", "1")}}, {"PutRequest": {"Item": key("a", "2")}},
        {"PutRequest": {"Item": key("b", "1")}}]}, ReturnItemCollectionMetrics="SIZE")
    assert sorted(m["ItemCollectionKey"]["pk"]["S"]
                  for m in batch["ItemCollectionMetrics"][table]) == ["a", "b"]
    written = ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": key("c", "1")}},
        {"Delete": {"TableName": table, "Key": key("a", "1")}},
        {"ConditionCheck": {"TableName": table, "Key": key("b", "1"),
                            "ConditionExpression": "attribute_exists(pk)"}}],
        ReturnItemCollectionMetrics="SIZE")
    assert written["ItemCollectionMetrics"] == {table: [expected("c"), expected("a")]}


def test_a_table_without_local_indexes_has_no_collections(ddb: Any) -> None:
    table = make(ddb, local_index=False)
    put = ddb.put_item(TableName=table, Item=key("a", "1"), ReturnItemCollectionMetrics="SIZE")
    assert "ItemCollectionMetrics" not in put
    batch = ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": key("b", "1")}}]},
                                 ReturnItemCollectionMetrics="SIZE")
    assert "ItemCollectionMetrics" not in batch


def test_the_parameter_is_checked(running: ServerThread) -> None:
    ddb = running.client(config=Config(parameter_validation=False,
                                       retries={"max_attempts": 1}))
    table = make(ddb, local_index=True)
    with pytest.raises(ClientError) as info:
        ddb.put_item(TableName=table, Item=key("a", "1"), ReturnItemCollectionMetrics="ALL")
    assert info.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'ALL' at 'returnItemCollectionMetrics' failed to "
        "satisfy constraint: Member must satisfy enum value set: [SIZE, NONE]")
