"""DynamoDB's rules that dynamokv skipped or worded differently, through boto3 against the
in-process app: key-size limits on the user's key attributes (not on the composed storage key),
a key-type mismatch inside TransactWriteItems, DescribeContinuousBackups of a missing table,
UpdateTimeToLive, TagResource's tag checks, and a parallel Scan's ExclusiveStartKey."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dynamokv.api.attributes import S
from dynamokv.api.handle import TABLE_BUCKET_PREFIX, compose_key
from dynamokv.api.layout.keycodec import encode_key
from tests.api.test_app_harness import ServerThread

_names = itertools.count()


def error(call: Any, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value


def table(ddb: Any, *, sort: str | None = None) -> str:
    name = f"rules_{next(_names)}"
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sort is not None:
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "sk", "AttributeType": sort})
    ddb.create_table(TableName=name, KeySchema=schema, AttributeDefinitions=attributes,
                     BillingMode="PAY_PER_REQUEST")
    return name


def test_the_largest_legal_keys_are_stored_and_read(ddb: Any) -> None:
    name = table(ddb, sort="B")
    # NUL bytes are escaped to two bytes each: the stored key is far over 2048 bytes.
    key = {"pk": {"S": "\x00" * 2048}, "sk": {"B": b"\x00" * 1024}}
    ddb.put_item(TableName=name, Item={**key, "v": {"S": "kept"}})
    assert ddb.get_item(TableName=name, Key=key)["Item"]["v"] == {"S": "kept"}
    out = ddb.query(TableName=name, KeyConditionExpression="pk = :p AND sk = :s",
                    ExpressionAttributeValues={":p": key["pk"], ":s": key["sk"]})
    assert out["Count"] == 1
    too_long = error(ddb.put_item, TableName=name,
                     Item={"pk": {"S": "x"}, "sk": {"B": b"\x00" * 1025}})
    assert too_long.response["Error"]["Message"] == (
        "One or more parameter values were invalid: Aggregated size of all range keys has "
        "exceeded the size limit of 1024 bytes")


def test_a_key_type_mismatch_cancels_a_transaction_with_a_validation_error(ddb: Any) -> None:
    name = table(ddb)
    cancelled = error(ddb.transact_write_items, TransactItems=[
        {"Put": {"TableName": name, "Item": {"pk": {"S": "fine"}}}},
        {"Put": {"TableName": name, "Item": {"pk": {"N": "1"}}}},
    ])
    assert cancelled.response["Error"]["Code"] == "TransactionCanceledException"
    assert cancelled.response["CancellationReasons"] == [
        {"Code": "None"},
        {"Code": "ValidationError", "Message": "One or more parameter values were invalid: "
         "Type mismatch for key pk expected: S actual: N"},
    ]
    cancelled = error(ddb.transact_write_items, TransactItems=[
        {"Delete": {"TableName": name, "Key": {"pk": {"B": b"k"}}}},
    ])
    assert cancelled.response["CancellationReasons"] == [
        {"Code": "ValidationError", "Message": "The provided key element does not match the "
         "schema"},
    ]
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "fine"}})


def test_describe_continuous_backups_of_a_missing_table(ddb: Any) -> None:
    missing = error(ddb.describe_continuous_backups, TableName="no_such_table")
    assert missing.response["Error"]["Code"] == "TableNotFoundException"
    assert missing.response["Error"]["Message"] == "Table not found: no_such_table"


def test_update_time_to_live_errors(ddb: Any) -> None:
    name = table(ddb)

    def ttl(attribute: str, enabled: bool) -> str:
        return error(ddb.update_time_to_live, TableName=name, TimeToLiveSpecification={
            "AttributeName": attribute, "Enabled": enabled}).response["Error"]["Message"]

    assert ttl("expires", False) == "TimeToLive is already disabled"
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "AttributeName": "expires", "Enabled": True})
    assert ttl("expires", True) == "TimeToLive is already enabled"
    active = "TimeToLive is active on a different AttributeName: current AttributeName is expires"
    assert ttl("other", True) == active
    assert ttl("other", False) == active


def test_tag_checks(ddb: Any, running: ServerThread) -> None:
    name = table(ddb)
    arn = f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}"

    def tag(*pairs: tuple[str, str]) -> tuple[str, str]:
        err = error(ddb.tag_resource, ResourceArn=arn,
                    Tags=[{"Key": k, "Value": v} for k, v in pairs]).response["Error"]
        return err["Code"], err["Message"]

    assert tag(("bad#key", "v")) == ("ValidationException",
                                     "The Tag Key provided is invalid, Key: bad#key")
    assert tag(("k", "bad*value")) == ("ValidationException",
                                       "The Tag Value provided is invalid, Value: bad*value")
    assert tag(("aws:owner", "v")) == ("ValidationException",
                                       "Tag Key cannot be prefixed with aws:, Key: aws:owner")
    assert tag(("k", "1"), ("k", "2")) == (
        "ValidationException", "Duplicate Tag Keys provided as input: Duplicate Tag Key found k")
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i} ü/=+-@", "Value": "v é"}
                                            for i in range(50)])
    assert tag(("one_more", "v")) == (
        "ValidationException", "Number of Tags exceed the current limit for the provided "
        "ResourceArn")


def test_each_kind_of_wrong_arn_has_its_own_error(ddb: Any) -> None:
    name = table(ddb)
    arn = f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}"

    def refusal(resource: str) -> tuple[str, str]:
        err = error(ddb.list_tags_of_resource, ResourceArn=resource).response["Error"]
        return err["Code"], err["Message"]

    assert refusal("I_do_not_exist") == ("ValidationException",
                                         "ARNs must start with 'arn:': I_do_not_exist")
    assert refusal("arn:not/a/good/format")[0] == "ValidationException"
    assert refusal(f"arn:aws:dynamodb:eu-west-1:000000000000:table/{name}") == (
        "ValidationException",
        f"Invalid TableArn: Invalid ResourceArn provided as input "
        f"arn:aws:dynamodb:eu-west-1:000000000000:table/{name}")
    for other in (f"arn:aws:dynamodb:us-east-1:111111111111:table/{name}",
                  "arn:aws:s3:::some-bucket"):
        code, message = refusal(other)
        assert code == "AccessDeniedException"
        assert message.endswith(f"is not authorized to perform: dynamodb:ListTagsOfResource on "
                                f"resource: {other}")
    assert refusal(f"{arn}/index/by_x") == (
        "ValidationException", "One or more parameter values were invalid: Invalid resource "
        f"arn provided, only table or stream is accepted. Provided resource arn: "
        f"{arn}/index/by_x")
    assert refusal(arn + "x") == ("ResourceNotFoundException",
                                  f"Requested resource not found: ResourcArn: {arn}x not found")
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == []


def test_a_parallel_scan_start_key_must_lie_in_its_segment(ddb: Any,
                                                           running: ServerThread) -> None:
    name = table(ddb)
    info = running.call(running.app.context.catalog.require(name))
    bucket = info.bucket
    assert bucket.startswith(TABLE_BUCKET_PREFIX)

    def segment_of(pk: str) -> int:
        return running.handle.segment_of(bucket, compose_key(encode_key(S(pk))), 4)

    inside = next(f"k{i}" for i in range(1000) if segment_of(f"k{i}") == 1)
    outside = next(f"k{i}" for i in range(1000) if segment_of(f"k{i}") != 1)
    ddb.scan(TableName=name, Segment=1, TotalSegments=4,
             ExclusiveStartKey={"pk": {"S": inside}})
    wrong = error(ddb.scan, TableName=name, Segment=1, TotalSegments=4,
                  ExclusiveStartKey={"pk": {"S": outside}})
    assert wrong.response["Error"]["Message"] == (
        "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use "
        "ExclusiveStartKey with correct Segment. TotalSegments: 4 Segment: 1")


def test_attribute_definition_and_projection_names_are_at_most_255_characters(ddb: Any) -> None:
    long = "n" * 256
    base = {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"}
    # A too-long name is refused before any check that the definitions match the keys.
    err = error(ddb.create_table, TableName=f"rules_{next(_names)}", **base,
                AttributeDefinitions=[{"AttributeName": long, "AttributeType": "S"}])
    message = err.response["Error"]["Message"]
    assert err.response["Error"]["Code"] == "ValidationException"
    assert "attributeName" in message and "length between 1 and 255" in message
    err = error(ddb.create_table, TableName=f"rules_{next(_names)}", **base,
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "g", "AttributeType": "S"}],
                GlobalSecondaryIndexes=[{
                    "IndexName": "gsi", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": [long]}}])
    message = err.response["Error"]["Message"]
    assert "nonKeyAttributes" in message and "less than or equal to 255" in message
