"""BatchGetItem, BatchWriteItem, TransactWriteItems and TransactGetItems through boto3."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.test_app_harness import ServerThread, make_table

_names = itertools.count()


@pytest.fixture
def table(ddb: Any) -> str:
    name = f"batch_{next(_names)}"
    make_table(ddb, name)
    return name


def key(k: str) -> dict[str, Any]:
    return {"pk": {"S": k}}


def failure(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response: dict[str, Any] = info.value.response
    return response


def test_batch_write_then_batch_get(ddb: Any, table: str) -> None:
    other = f"batch_{next(_names)}"
    make_table(ddb, other)
    ddb.put_item(TableName=table, Item={**key("old"), "v": {"N": "0"}})
    result = ddb.batch_write_item(RequestItems={
        table: [{"PutRequest": {"Item": {**key(str(i)), "v": {"N": str(i)}}}} for i in range(20)]
        + [{"DeleteRequest": {"Key": key("old")}}],
        other: [{"PutRequest": {"Item": key("o")}}],
    }, ReturnConsumedCapacity="TOTAL")
    assert result["UnprocessedItems"] == {}
    assert {c["TableName"] for c in result["ConsumedCapacity"]} == {table, other}
    got = ddb.batch_get_item(RequestItems={
        table: {"Keys": [key(str(i)) for i in range(0, 20, 2)] + [key("old")],
                "ProjectionExpression": "v"},
        other: {"Keys": [key("o")], "ConsistentRead": True},
    })
    assert sorted(int(i["v"]["N"]) for i in got["Responses"][table]) == list(range(0, 20, 2))
    assert got["Responses"][other] == [key("o")]
    assert got["UnprocessedKeys"] == {}


def test_batch_limits_and_duplicates(ddb: Any, table: str) -> None:
    err = failure(ddb.batch_write_item, RequestItems={
        table: [{"PutRequest": {"Item": key(str(i))}} for i in range(26)]})
    assert err["Error"]["Code"] == "ValidationException"
    err = failure(ddb.batch_write_item, RequestItems={
        table: [{"PutRequest": {"Item": key("a")}}, {"DeleteRequest": {"Key": key("a")}}]})
    assert err["Error"]["Message"] == "Provided list of item keys contains duplicates"
    err = failure(ddb.batch_get_item, RequestItems={table: {"Keys": [key("a"), key("a")]}})
    assert err["Error"]["Message"] == "Provided list of item keys contains duplicates"
    err = failure(ddb.batch_get_item, RequestItems={
        table: {"Keys": [key(str(i)) for i in range(101)]}})  # one table's list: a constraint
    assert err["Error"]["Message"].endswith(
        f"at 'requestItems.{table}.member.keys' failed to satisfy constraint: Member must have "
        "length less than or equal to 100")
    err = failure(ddb.batch_get_item, RequestItems={  # 100 + 1 over two tables: the total
        table: {"Keys": [key(str(i)) for i in range(100)]}, "other": {"Keys": [key("x")]}})
    assert err["Error"]["Message"] == "Too many items requested for the BatchGetItem call"
    err = failure(ddb.batch_write_item, RequestItems={"missing_table": [
        {"PutRequest": {"Item": key("a")}}]})
    assert err["Error"]["Code"] == "ResourceNotFoundException"


def test_resource_batch_writer(running: ServerThread, table: str) -> None:
    t = running.resource().Table(table)
    with t.batch_writer() as writer:
        for i in range(60):
            writer.put_item(Item={"pk": f"w{i}", "n": i})
    assert running.client().scan(TableName=table, Select="COUNT")["Count"] == 60


def test_transact_write_applies_everything(ddb: Any, table: str) -> None:
    ddb.put_item(TableName=table, Item={**key("acct1"), "bal": {"N": "100"}})
    ddb.put_item(TableName=table, Item={**key("acct2"), "bal": {"N": "0"}})
    ddb.put_item(TableName=table, Item={**key("gone"), "x": {"N": "1"}})
    ddb.transact_write_items(TransactItems=[
        {"Update": {"TableName": table, "Key": key("acct1"),
                    "UpdateExpression": "SET bal = bal - :amt",
                    "ConditionExpression": "bal >= :amt",
                    "ExpressionAttributeValues": {":amt": {"N": "30"}}}},
        {"Update": {"TableName": table, "Key": key("acct2"),
                    "UpdateExpression": "SET bal = bal + :amt",
                    "ExpressionAttributeValues": {":amt": {"N": "30"}}}},
        {"Put": {"TableName": table, "Item": {**key("log1"), "amt": {"N": "30"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Delete": {"TableName": table, "Key": key("gone")}},
    ])
    got = ddb.transact_get_items(TransactItems=[
        {"Get": {"TableName": table, "Key": key(k)}} for k in ("acct1", "acct2", "log1", "gone")
    ])["Responses"]
    assert got[0]["Item"]["bal"] == {"N": "70"}
    assert got[1]["Item"]["bal"] == {"N": "30"}
    assert got[2]["Item"]["amt"] == {"N": "30"}
    assert got[3] == {}


def test_transact_write_cancels_all_or_nothing(ddb: Any, table: str) -> None:
    ddb.put_item(TableName=table, Item={**key("a"), "bal": {"N": "10"}})
    err = failure(ddb.transact_write_items, TransactItems=[
        {"Put": {"TableName": table, "Item": {**key("new"), "x": {"N": "1"}}}},
        {"ConditionCheck": {"TableName": table, "Key": key("a"),
                            "ConditionExpression": "bal > :v",
                            "ExpressionAttributeValues": {":v": {"N": "50"}},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
    ])
    assert err["Error"]["Code"] == "TransactionCanceledException"
    reasons = err["CancellationReasons"]
    assert reasons[0] == {"Code": "None"}
    assert reasons[1]["Code"] == "ConditionalCheckFailed"
    assert reasons[1]["Item"] == {**key("a"), "bal": {"N": "10"}}
    assert "[None, ConditionalCheckFailed]" in err["Error"]["Message"]
    assert "Item" not in ddb.get_item(TableName=table, Key=key("new"))


def test_transact_validation(ddb: Any, table: str) -> None:
    err = failure(ddb.transact_write_items, TransactItems=[
        {"Put": {"TableName": table, "Item": key("same")}},
        {"Delete": {"TableName": table, "Key": key("same")}},
    ])
    assert err["Error"]["Message"] == (
        "Transaction request cannot include multiple operations on one item")
    err = failure(ddb.transact_write_items, TransactItems=[
        {"Update": {"TableName": table, "Key": key("u"), "UpdateExpression": "SET a = b",
                    }},
    ])
    assert err["Error"]["Code"] == "TransactionCanceledException"
    assert err["CancellationReasons"][0]["Code"] == "ValidationError"


def test_client_request_token_is_idempotent(ddb: Any, table: str) -> None:
    request = [{"Update": {"TableName": table, "Key": key("idem"),
                           "UpdateExpression": "ADD n :one",
                           "ExpressionAttributeValues": {":one": {"N": "1"}}}}]
    ddb.transact_write_items(TransactItems=request, ClientRequestToken="tok-1")
    ddb.transact_write_items(TransactItems=request, ClientRequestToken="tok-1")
    assert ddb.get_item(TableName=table, Key=key("idem"))["Item"]["n"] == {"N": "1"}
    other = [{"Put": {"TableName": table, "Item": key("idem2")}}]
    err = failure(ddb.transact_write_items, TransactItems=other, ClientRequestToken="tok-1")
    assert err["Error"]["Code"] == "IdempotentParameterMismatchException"
    ddb.transact_write_items(TransactItems=request)  # boto3 adds a fresh token itself
    assert ddb.get_item(TableName=table, Key=key("idem"))["Item"]["n"] == {"N": "2"}
