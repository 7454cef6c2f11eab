"""ReturnConsumedCapacity through boto3: 4 KB read units, 1 KB write units, eventually
consistent halves, per-key BatchGetItem sums, Query/Scan totals, and the INDEXES breakdown."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.api.test_app_harness import make_table

KB = 1024
_names = itertools.count()


@pytest.fixture
def table(ddb: Any) -> str:
    name = f"capacity_{next(_names)}"
    make_table(ddb, name)
    return name


@pytest.fixture
def indexed(ddb: Any) -> str:
    """pk/sk table with a global index on g (KEYS_ONLY) and a local index on l (ALL)."""
    name = f"capacity_idx_{next(_names)}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                              for n in ("pk", "sk", "g", "l")],
        GlobalSecondaryIndexes=[{
            "IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        LocalSecondaryIndexes=[{
            "IndexName": "by_l", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                               {"AttributeName": "l", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def sized(pk: str, total: int) -> dict[str, Any]:
    """An item of exactly ``total`` bytes by DynamoDB's accounting (names + values)."""
    filler = total - len("pk") - len(pk) - len("v")
    return {"pk": {"S": pk}, "v": {"S": "a" * filler}}


def units(answer: dict[str, Any]) -> float:
    value: float = answer["ConsumedCapacity"]["CapacityUnits"]
    return value


def test_get_item_rounds_to_4kb_and_halves_eventual_reads(ddb: Any, table: str) -> None:
    ddb.put_item(TableName=table, Item=sized("k", 4 * KB))
    key = {"pk": {"S": "k"}}

    def get(**kwargs: Any) -> float:
        return units(ddb.get_item(TableName=table, Key=key, ReturnConsumedCapacity="TOTAL",
                                  **kwargs))

    assert get(ConsistentRead=True) == 1
    assert get() == 0.5
    ddb.put_item(TableName=table, Item=sized("k", 4 * KB + 1))
    assert get(ConsistentRead=True) == 2
    # A projection does not make the read cheaper: the whole item is read.
    assert get(ConsistentRead=True, ProjectionExpression="pk") == 2
    assert get(AttributesToGet=["pk"]) == 1
    # A missing item costs the minimum.
    assert units(ddb.get_item(TableName=table, Key={"pk": {"S": "none"}},
                              ReturnConsumedCapacity="TOTAL")) == 0.5


def test_writes_round_to_1kb(ddb: Any, table: str) -> None:
    def put(item: dict[str, Any], **kwargs: Any) -> float:
        return units(ddb.put_item(TableName=table, Item=item, ReturnConsumedCapacity="TOTAL",
                                  **kwargs))

    assert put(sized("k", KB)) == 1
    assert put(sized("k", KB + 1)) == 2
    assert put(sized("k", 3 * KB)) == 3
    # With ALL_OLD the larger of the old and the new item counts.
    assert put(sized("k", 10), ReturnValues="ALL_OLD") == 3
    assert units(ddb.delete_item(TableName=table, Key={"pk": {"S": "missing"}},
                                 ReturnConsumedCapacity="TOTAL")) == 1
    update = ddb.update_item(TableName=table, Key={"pk": {"S": "u"}},
                             UpdateExpression="SET v = :v",
                             ExpressionAttributeValues={":v": {"S": "a" * (2 * KB)}},
                             ReturnConsumedCapacity="TOTAL")
    assert units(update) == 3


def test_none_and_total_shapes(ddb: Any, table: str) -> None:
    key = {"pk": {"S": "k"}}
    assert "ConsumedCapacity" not in ddb.get_item(TableName=table, Key=key)
    assert "ConsumedCapacity" not in ddb.get_item(TableName=table, Key=key,
                                                  ReturnConsumedCapacity="NONE")
    total = ddb.get_item(TableName=table, Key=key, ReturnConsumedCapacity="TOTAL")
    assert set(total["ConsumedCapacity"]) == {"TableName", "CapacityUnits", "ReadCapacityUnits"}
    indexes = ddb.get_item(TableName=table, Key=key, ReturnConsumedCapacity="INDEXES")
    assert indexes["ConsumedCapacity"]["Table"] == {"CapacityUnits": 0.5,
                                                    "ReadCapacityUnits": 0.5}


def test_batch_get_sums_each_key(ddb: Any, table: str) -> None:
    other = f"capacity_{next(_names)}"
    make_table(ddb, other)
    for i in range(5):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}})
    for i in range(3):
        ddb.put_item(TableName=other, Item={"pk": {"S": f"k{i}"}})
    answer = ddb.batch_get_item(RequestItems={
        table: {"Keys": [{"pk": {"S": f"k{i}"}} for i in range(5)], "ConsistentRead": True},
        other: {"Keys": [{"pk": {"S": f"k{i}"}} for i in range(3)]},
    }, ReturnConsumedCapacity="TOTAL")
    by_table = {c["TableName"]: c["CapacityUnits"] for c in answer["ConsumedCapacity"]}
    assert by_table == {table: 5, other: 1.5}


def test_batch_write_sums_each_request(ddb: Any, table: str) -> None:
    writes = [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}}}} for i in range(3)]
    writes.append({"PutRequest": {"Item": sized("big", KB + 1)}})
    writes.append({"DeleteRequest": {"Key": {"pk": {"S": "gone"}}}})
    answer = ddb.batch_write_item(RequestItems={table: writes}, ReturnConsumedCapacity="TOTAL")
    assert answer["ConsumedCapacity"] == [
        {"TableName": table, "CapacityUnits": 6.0, "WriteCapacityUnits": 6.0}]


def test_query_and_scan_round_the_page_total(ddb: Any, table: str) -> None:
    for i in range(3):
        ddb.put_item(TableName=table, Item=sized(f"k{i}", 2 * KB))
    scan = ddb.scan(TableName=table, ReturnConsumedCapacity="TOTAL")
    assert units(scan) == 1.0  # 6 KB eventually consistent: 2 units, halved
    query = ddb.query(TableName=table, KeyConditionExpression="pk = :p",
                      ExpressionAttributeValues={":p": {"S": "k0"}}, ConsistentRead=True,
                      ReturnConsumedCapacity="TOTAL")
    assert units(query) == 1.0


def test_indexes_breakdown_of_writes(ddb: Any, indexed: str) -> None:
    item = {"pk": {"S": "p"}, "sk": {"S": "s"}, "g": {"S": "x"}, "l": {"S": "y"}}
    answer = ddb.put_item(TableName=indexed, Item=item, ReturnConsumedCapacity="INDEXES")
    assert answer["ConsumedCapacity"] == {
        "TableName": indexed, "CapacityUnits": 3.0, "WriteCapacityUnits": 3.0,
        "Table": {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0},
        "GlobalSecondaryIndexes": {"by_g": {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0}},
        "LocalSecondaryIndexes": {"by_l": {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0}},
    }
    key = {"pk": {"S": "p"}, "sk": {"S": "s"}}
    # A change outside the keys-only projection writes nothing to the global index.
    update = ddb.update_item(TableName=indexed, Key=key, UpdateExpression="SET extra = :v",
                             ExpressionAttributeValues={":v": {"N": "1"}},
                             ReturnConsumedCapacity="INDEXES")["ConsumedCapacity"]
    assert "GlobalSecondaryIndexes" not in update
    assert update["CapacityUnits"] == 2.0
    # Moving the entry deletes the old one and writes the new one.
    moved = ddb.update_item(TableName=indexed, Key=key, UpdateExpression="SET g = :v",
                            ExpressionAttributeValues={":v": {"S": "z"}},
                            ReturnConsumedCapacity="INDEXES")["ConsumedCapacity"]
    assert moved["GlobalSecondaryIndexes"]["by_g"]["CapacityUnits"] == 2.0
    total = ddb.delete_item(TableName=indexed, Key=key, ReturnValues="ALL_OLD",
                            ReturnConsumedCapacity="TOTAL")["ConsumedCapacity"]
    assert total == {"TableName": indexed, "CapacityUnits": 3.0, "WriteCapacityUnits": 3.0}


def test_indexes_breakdown_of_index_reads(ddb: Any, indexed: str) -> None:
    ddb.put_item(TableName=indexed, Item={"pk": {"S": "p"}, "sk": {"S": "s"}, "g": {"S": "x"},
                                          "l": {"S": "y"}})
    on_gsi = ddb.query(TableName=indexed, IndexName="by_g", KeyConditionExpression="g = :g",
                       ExpressionAttributeValues={":g": {"S": "x"}},
                       ReturnConsumedCapacity="INDEXES")["ConsumedCapacity"]
    assert on_gsi["Table"] == {"CapacityUnits": 0.0, "ReadCapacityUnits": 0.0}
    assert on_gsi["GlobalSecondaryIndexes"] == {
        "by_g": {"CapacityUnits": 0.5, "ReadCapacityUnits": 0.5}}
    on_lsi = ddb.query(TableName=indexed, IndexName="by_l", KeyConditionExpression="pk = :p",
                       ExpressionAttributeValues={":p": {"S": "p"}},
                       ReturnConsumedCapacity="INDEXES")["ConsumedCapacity"]
    assert on_lsi["LocalSecondaryIndexes"] == {
        "by_l": {"CapacityUnits": 0.5, "ReadCapacityUnits": 0.5}}
    assert on_lsi["CapacityUnits"] == 0.5


def test_plain_puts_and_deletes_are_charged_on_the_item_they_replace(ddb: Any,
                                                                     indexed: str) -> None:
    """Without a condition or ReturnValues, a put or delete asked for its capacity still
    counts the larger of the old and new item, and the index entries the old one had."""
    key = {"pk": {"S": "p"}, "sk": {"S": "s"}}
    big = {**key, "g": {"S": "x"}, "l": {"S": "y"}, "v": {"S": "a" * (3 * KB)}}
    ddb.put_item(TableName=indexed, Item=big)
    small = ddb.put_item(TableName=indexed, Item=dict(key), ReturnConsumedCapacity="INDEXES")
    assert small["ConsumedCapacity"]["Table"]["CapacityUnits"] == 4.0  # the 3 KB item replaced
    # Both index entries of the old item are deleted: a write on each index.
    assert set(small["ConsumedCapacity"]["GlobalSecondaryIndexes"]) == {"by_g"}
    assert small["ConsumedCapacity"]["LocalSecondaryIndexes"]["by_l"]["CapacityUnits"] == 4.0
    ddb.put_item(TableName=indexed, Item=big)
    gone = ddb.delete_item(TableName=indexed, Key=key, ReturnConsumedCapacity="INDEXES")
    assert gone["ConsumedCapacity"] == {
        "TableName": indexed, "CapacityUnits": 9.0, "WriteCapacityUnits": 9.0,
        "Table": {"CapacityUnits": 4.0, "WriteCapacityUnits": 4.0},
        "GlobalSecondaryIndexes": {"by_g": {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0}},
        "LocalSecondaryIndexes": {"by_l": {"CapacityUnits": 4.0, "WriteCapacityUnits": 4.0}},
    }
    assert "Item" not in ddb.get_item(TableName=indexed, Key=key, ConsistentRead=True)


def test_batch_write_indexes_breakdown(ddb: Any, indexed: str) -> None:
    writes = [{"PutRequest": {"Item": {"pk": {"S": "p"}, "sk": {"S": f"s{i}"},
                                       "g": {"S": "x"}}}} for i in range(3)]
    writes.append({"PutRequest": {"Item": {"pk": {"S": "p"}, "sk": {"S": "n"},
                                           "l": {"S": "y"}}}})
    answer = ddb.batch_write_item(RequestItems={indexed: writes},
                                  ReturnConsumedCapacity="INDEXES")
    assert answer["ConsumedCapacity"] == [{
        "TableName": indexed, "CapacityUnits": 8.0, "WriteCapacityUnits": 8.0,
        "Table": {"CapacityUnits": 4.0, "WriteCapacityUnits": 4.0},
        "GlobalSecondaryIndexes": {"by_g": {"CapacityUnits": 3.0, "WriteCapacityUnits": 3.0}},
        "LocalSecondaryIndexes": {"by_l": {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0}},
    }]


def test_a_multi_attribute_index_counts_only_items_it_holds(ddb: Any) -> None:
    name = f"capacity_multi_{next(_names)}"
    ddb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                              for n in ("pk", "a", "b", "c")],
        GlobalSecondaryIndexes=[{"IndexName": "by_abc", "KeySchema": [
            {"AttributeName": "a", "KeyType": "HASH"}, {"AttributeName": "b", "KeyType": "HASH"},
            {"AttributeName": "c", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}],
        BillingMode="PAY_PER_REQUEST")

    def indexes(item: dict[str, Any]) -> Any:
        return ddb.put_item(TableName=name, Item=item, ReturnConsumedCapacity="INDEXES")[
            "ConsumedCapacity"].get("GlobalSecondaryIndexes")

    # Missing the second partition-key attribute (b): not in the index, nothing written there.
    assert indexes({"pk": {"S": "1"}, "a": {"S": "x"}, "c": {"S": "z"}}) is None
    assert indexes({"pk": {"S": "2"}, "a": {"S": "x"}, "b": {"S": "y"}, "c": {"S": "z"}}) == {
        "by_abc": {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0}}
