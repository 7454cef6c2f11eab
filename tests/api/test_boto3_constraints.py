"""Model-constraint violations over HTTP, as a client sees them: every violation of a request
in one ValidationException, before any semantic check or table lookup, which still come alone.

The client skips botocore's own checks (``parameter_validation=False``) so the server judges."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.api.test_app_harness import ServerThread, make_table

_names = itertools.count()


@pytest.fixture(scope="module")
def raw(running: ServerThread) -> Any:
    return running.client(config=Config(parameter_validation=False,
                                        retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def table(raw: Any) -> str:
    name = f"constraints_{next(_names)}"
    make_table(raw, name)
    return name


def refused(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def test_create_table_reports_every_violation(raw: Any) -> None:
    code, text = refused(raw.create_table, TableName="ab;", AttributeDefinitions=[
        {"AttributeName": "pk", "AttributeType": "X"}], KeySchema=[],
        ProvisionedThroughput={"ReadCapacityUnits": 0, "WriteCapacityUnits": 1})
    assert code == "ValidationException"
    assert text == (
        "4 validation errors detected: "
        "Value 'X' at 'attributeDefinitions.1.member.attributeType' failed to satisfy "
        "constraint: Member must satisfy enum value set: [B, N, S]; "
        "Value 'ab;' at 'tableName' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: [a-zA-Z0-9_.-]+; "
        "Value '0' at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1; "
        "Value '[]' at 'keySchema' failed to satisfy constraint: Member must have length "
        "greater than or equal to 1")


def test_create_table_semantic_check_comes_after_and_alone(raw: Any) -> None:
    code, text = refused(raw.create_table, TableName=f"constraints_{next(_names)}",
                         AttributeDefinitions=[{"AttributeName": "b", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "a", "KeyType": "HASH"}],
                         BillingMode="PAY_PER_REQUEST")
    assert (code, text) == ("ValidationException", (
        "One or more parameter values were invalid: Some index key attributes are not defined "
        "in AttributeDefinitions. Keys: [a], AttributeDefinitions: [b]"))


def test_put_item_violations_before_the_table_is_looked_up(raw: Any) -> None:
    code, text = refused(raw.put_item, TableName="n;", ReturnValues="ALL_NEW!",
                         ReturnConsumedCapacity="ALL")
    assert code == "ValidationException"
    assert text == (
        "5 validation errors detected: "
        "Value 'ALL' at 'returnConsumedCapacity' failed to satisfy constraint: Member must "
        "satisfy enum value set: [INDEXES, TOTAL, NONE]; "
        "Value 'n;' at 'tableName' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: [a-zA-Z0-9_.-]+; "
        "Value 'n;' at 'tableName' failed to satisfy constraint: Member must have length "
        "greater than or equal to 3; "
        "Value null at 'item' failed to satisfy constraint: Member must not be null; "
        "Value 'ALL_NEW!' at 'returnValues' failed to satisfy constraint: Member must satisfy "
        "enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]")
    # Valid members, a missing table: the lookup answers.
    code, _ = refused(raw.put_item, TableName="missing_table", Item={"pk": {"S": "a"}})
    assert code == "ResourceNotFoundException"


def test_query_one_and_two_violations(raw: Any, table: str) -> None:
    assert refused(raw.query, TableName=table, Limit=0, KeyConditionExpression="pk = :p",
                   ExpressionAttributeValues={":p": {"S": "a"}}) == (
        "ValidationException",
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member "
        "must have value greater than or equal to 1")
    assert refused(raw.query, TableName=table, Limit=0, Select="ALL",
                   KeyConditionExpression="pk = :p",
                   ExpressionAttributeValues={":p": {"S": "a"}}) == (
        "ValidationException",
        "2 validation errors detected: Value 'ALL' at 'select' failed to satisfy constraint: "
        "Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, "
        "ALL_PROJECTED_ATTRIBUTES]; Value '0' at 'limit' failed to satisfy constraint: Member "
        "must have value greater than or equal to 1")


def test_batch_write_limits(raw: Any, table: str) -> None:
    def put(i: int) -> dict[str, Any]:
        return {"PutRequest": {"Item": {"pk": {"S": str(i)}}}}

    code, text = refused(raw.batch_write_item,
                         RequestItems={table: [put(i) for i in range(26)]})
    assert code == "ValidationException"
    assert text.startswith(f"1 validation error detected: Value '{{{table}=[WriteRequest(")
    assert text.endswith(
        "' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: "
        "[Member must have length less than or equal to 25, Member must have length greater "
        "than or equal to 1]")
    code, text = refused(raw.batch_write_item, RequestItems={table: []},
                         ReturnConsumedCapacity="hi")
    assert text == (
        "2 validation errors detected: Value 'hi' at 'returnConsumedCapacity' failed to "
        "satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]; "
        f"Value '{{{table}=[]}}' at 'requestItems' failed to satisfy constraint: Map value must "
        "satisfy constraint: [Member must have length less than or equal to 25, Member must "
        "have length greater than or equal to 1]")
    # 25 + 1 over two tables meets every constraint: the total is a semantic check.
    other = f"constraints_{next(_names)}"
    make_table(raw, other)
    assert refused(raw.batch_write_item, RequestItems={
        table: [put(i) for i in range(25)], other: [put(99)]}) == (
        "ValidationException", "Too many items requested for the BatchWriteItem call")
