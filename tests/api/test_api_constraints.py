"""The model-constraint pass of :mod:`dynamokv.api.constraints`: every violation of a request
at once, in DynamoDB's order, at most ten, values rendered as DynamoDB renders them.

The expected texts are those dynalite's tests record from AWS (its many-violation requests)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dynamokv.api import constraints
from dynamokv.api.errors import ValidationException
from dynamokv.api.operations.common import check_table_name

PATTERN = "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
NULL = "failed to satisfy constraint: Member must not be null"


def refusal(operation: str, body: dict[str, Any]) -> str:
    with pytest.raises(ValidationException) as info:
        constraints.check(operation, body)
    return info.value.message


def listed(message: str) -> list[str]:
    head, _, rest = message.partition(" detected: ")
    count = int(head.split()[0])
    errors = rest.split("; ")
    assert count == len(errors)
    assert head.endswith("validation error" if count == 1 else "validation errors")
    return errors


def test_one_violation_keeps_the_single_message() -> None:
    assert refusal("GetItem", {"TableName": "ab", "Key": {}}) == (
        "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3")
    assert refusal("Query", {"TableName": "abc", "Limit": 0}) == (
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1")


def test_two_rules_of_one_member_are_both_listed() -> None:
    assert refusal("Scan", {"TableName": "a;"}) == (
        "2 validation errors detected: "
        f"Value 'a;' at 'tableName' failed to satisfy constraint: {PATTERN}; "
        "Value 'a;' at 'tableName' failed to satisfy constraint: Member must have length "
        "greater than or equal to 3")


def test_create_table_lists_every_violation_in_order() -> None:
    assert listed(refusal("CreateTable", {"TableName": "abc;"})) == [
        f"Value null at 'attributeDefinitions' {NULL}",
        f"Value 'abc;' at 'tableName' failed to satisfy constraint: {PATTERN}",
        f"Value null at 'keySchema' {NULL}",
    ]
    assert listed(refusal("CreateTable", {
        "TableName": "abc", "AttributeDefinitions": [], "KeySchema": [],
        "ProvisionedThroughput": {"ReadCapacityUnits": -1, "WriteCapacityUnits": -1}})) == [
        "Value '-1' at 'provisionedThroughput.writeCapacityUnits' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
        "Value '-1' at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
        "Value '[]' at 'keySchema' failed to satisfy constraint: Member must have length "
        "greater than or equal to 1",
    ]


def test_list_members_are_numbered_from_one_and_rendered_as_java_does() -> None:
    errors = listed(refusal("CreateTable", {
        "TableName": "abc", "AttributeDefinitions": [],
        "KeySchema": [{"KeyType": "HASH"}, {"AttributeName": "a"},
                      {"KeyType": "Woop", "AttributeName": "a"}]}))
    assert errors == [
        "Value '[KeySchemaElement(attributeName=null, keyType=HASH), "
        "KeySchemaElement(attributeName=a, keyType=null), KeySchemaElement(attributeName=a, "
        "keyType=Woop)]' at 'keySchema' failed to satisfy constraint: Member must have length "
        "less than or equal to 2",
        f"Value null at 'keySchema.1.member.attributeName' {NULL}",
        f"Value null at 'keySchema.2.member.keyType' {NULL}",
        "Value 'Woop' at 'keySchema.3.member.keyType' failed to satisfy constraint: Member must "
        "satisfy enum value set: [HASH, RANGE]",
    ]


def test_at_most_ten_violations_are_listed_and_counted() -> None:
    message = refusal("CreateTable", {
        "TableName": "abc", "AttributeDefinitions": [],
        "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}],
        "LocalSecondaryIndexes": [{} for _ in range(9)]})  # 27 violations
    assert message.startswith("10 validation errors detected: ")
    errors = listed(message)
    assert errors[:3] == [f"Value null at 'localSecondaryIndexes.1.member.{m}' {NULL}"
                          for m in ("indexName", "keySchema", "projection")]
    assert errors[-1] == f"Value null at 'localSecondaryIndexes.4.member.indexName' {NULL}"


def test_put_item_order() -> None:
    assert listed(refusal("PutItem", {
        "TableName": "abc;", "ReturnConsumedCapacity": "hi", "ReturnItemCollectionMetrics": "hi",
        "ReturnValues": "hi"})) == [
        "Value 'hi' at 'returnConsumedCapacity' failed to satisfy constraint: Member must "
        "satisfy enum value set: [INDEXES, TOTAL, NONE]",
        f"Value 'abc;' at 'tableName' failed to satisfy constraint: {PATTERN}",
        f"Value null at 'item' {NULL}",
        "Value 'hi' at 'returnValues' failed to satisfy constraint: Member must satisfy enum "
        "value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]",
        "Value 'hi' at 'returnItemCollectionMetrics' failed to satisfy constraint: Member must "
        "satisfy enum value set: [SIZE, NONE]",
    ]


def test_query_lists_ten_of_eleven() -> None:
    errors = listed(refusal("Query", {
        "TableName": "abc;", "ReturnConsumedCapacity": "hi", "AttributesToGet": [],
        "IndexName": "abc;", "Select": "hi", "Limit": -1,
        "KeyConditions": {"a": {}, "b": {"ComparisonOperator": ""}},
        "ConditionalOperator": "AN", "QueryFilter": {"a": {}, "b": {"ComparisonOperator": ""}}}))
    paths = [m.group(1) for e in errors if (m := re.search(r"at '([^']*)' failed", e))]
    assert paths == [
        "select", "indexName", "returnConsumedCapacity", "queryFilter.a.member.comparisonOperator",
        "queryFilter.b.member.comparisonOperator", "tableName", "conditionalOperator",
        "attributesToGet", "limit", "keyConditions.a.member.comparisonOperator"]


def test_batch_write_map_constraints() -> None:
    writes = [{"PutRequest": {"Item": {"a": {"S": str(i)}}}} for i in range(26)]
    message = refusal("BatchWriteItem", {"RequestItems": {"abc": writes}})
    assert message.startswith("1 validation error detected: Value '{abc=[WriteRequest(putRequest="
                              "PutRequest(item={a=com.amazonaws.dynamodb.v20120810.AttributeValue@")
    assert message.endswith(
        "deleteRequest=null)]}' at 'requestItems' failed to satisfy constraint: Map value must "
        "satisfy constraint: [Member must have length less than or equal to 25, Member must "
        "have length greater than or equal to 1]")
    errors = listed(refusal("BatchWriteItem", {
        "RequestItems": {"aa;": [{"PutRequest": {}, "DeleteRequest": {}}]},
        "ReturnConsumedCapacity": "hi", "ReturnItemCollectionMetrics": "hi"}))
    assert errors[2] == (
        "Value '{aa;=[WriteRequest(putRequest=PutRequest(item=null), "
        "deleteRequest=DeleteRequest(key=null))]}' at 'requestItems' failed to satisfy "
        "constraint: Map keys must satisfy constraint: [Member must have length less than or "
        f"equal to 255, Member must have length greater than or equal to 3, {PATTERN}]")
    member = "requestItems.aa;.member.1.member"
    assert errors[3:] == [f"Value null at '{member}.putRequest.item' {NULL}",
                          f"Value null at '{member}.deleteRequest.key' {NULL}"]
    assert refusal("BatchWriteItem", {"RequestItems": {}}) == (
        "1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1")


def test_batch_get_keys_over_100_in_one_table() -> None:
    keys = [{"a": {"S": str(i)}} for i in range(101)]
    message = refusal("BatchGetItem", {"RequestItems": {"abc": {"Keys": keys}}})
    assert message.startswith("1 validation error detected: Value '[{a=com.amazonaws.")
    assert message.endswith("at 'requestItems.abc.member.keys' failed to satisfy constraint: "
                            "Member must have length less than or equal to 100")


def test_what_the_pass_leaves_to_the_handlers() -> None:
    # A wrong JSON type is the handler's SerializationException, whatever else is wrong.
    constraints.check("Query", {"TableName": "a;", "Limit": "ten"})
    # A table ARN is judged by its table name.
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/orders"
    constraints.check("GetItem", {"TableName": arn, "Key": {}})
    constraints.check("BatchGetItem", {"RequestItems": {arn: {"Keys": [{}]}}})
    # Semantic rules are not constraints; an operation without a shape is the handler's.
    constraints.check("CreateTable", {
        "TableName": "abc", "AttributeDefinitions": [], "KeySchema": [
            {"AttributeName": "a", "KeyType": "HASH"}]})
    constraints.check("ListTagsOfResource", {})


def test_the_handlers_table_name_check_agrees() -> None:
    # Operations and members outside the pass (an UpdateTable index, the feature operations)
    # judge names with ``check_table_name``: the same rules, the same order, all listed.
    with pytest.raises(ValidationException) as info:
        check_table_name("a;", "globalSecondaryIndexUpdates.1.member.create.indexName")
    assert listed(info.value.message) == [
        "Value 'a;' at 'globalSecondaryIndexUpdates.1.member.create.indexName' failed to satisfy "
        f"constraint: {rule}"
        for rule in (PATTERN, "Member must have length greater than or equal to 3")]
    assert check_table_name("abc") == "abc"


def test_update_table_index_updates() -> None:
    errors = listed(refusal("UpdateTable", {"TableName": "abc", "GlobalSecondaryIndexUpdates": [
        {"Create": {"IndexName": "by_x", "KeySchema": []}}, {"Delete": {}}]}))
    assert errors == [
        "Value '[]' at 'globalSecondaryIndexUpdates.1.member.create.keySchema' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1",
        f"Value null at 'globalSecondaryIndexUpdates.1.member.create.projection' {NULL}",
        f"Value null at 'globalSecondaryIndexUpdates.2.member.delete.indexName' {NULL}",
    ]
