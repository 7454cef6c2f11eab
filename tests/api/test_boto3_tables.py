"""Table lifecycle through boto3: create, describe, list (paged), update, delete, tags, TTL."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.test_app_harness import ServerThread

_names = itertools.count()


def fresh() -> str:
    return f"table_{next(_names)}"


def error(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def simple(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        **extra,
    }


def test_create_describe_delete(ddb: Any) -> None:
    name = fresh()
    created = ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
        Tags=[{"Key": "team", "Value": "storage"}],
    )["TableDescription"]
    assert created["TableStatus"] == "ACTIVE"
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["TableName"] == name
    assert table["KeySchema"][1] == {"AttributeName": "sk", "KeyType": "RANGE"}
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert table["ItemCount"] == 0 and table["TableSizeBytes"] == 0
    assert table["TableArn"] == f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}"
    assert table["TableId"] == created["TableId"]
    assert table["CreationDateTime"].year >= 2024
    ddb.get_waiter("table_exists").wait(TableName=name)
    deleted = ddb.delete_table(TableName=name)["TableDescription"]
    assert deleted["TableStatus"] == "DELETING"
    code, message, status = error(ddb.describe_table, TableName=name)
    assert (code, status) == ("ResourceNotFoundException", 400)
    assert name in message
    ddb.get_waiter("table_not_exists").wait(TableName=name)


def test_create_twice_is_resource_in_use(ddb: Any) -> None:
    name = fresh()
    ddb.create_table(**simple(name))
    code, message, _ = error(ddb.create_table, **simple(name))
    assert code == "ResourceInUseException"
    assert message == f"Table already exists: {name}"


def test_recreated_table_starts_empty(ddb: Any) -> None:
    name = fresh()
    ddb.create_table(**simple(name))
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}})
    ddb.delete_table(TableName=name)
    ddb.create_table(**simple(name))
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "a"}})


@pytest.mark.parametrize(
    ("definitions", "message"),
    [
        (
            [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "x", "AttributeType": "S"},
            ],
            "One or more parameter values were invalid: Number of attributes in KeySchema does not "
            "exactly match number of attributes defined in AttributeDefinitions",
        ),
        (
            [{"AttributeName": "other", "AttributeType": "S"}],
            "One or more parameter values were invalid: Some index key attributes are not "
            "defined in AttributeDefinitions. Keys: [pk], AttributeDefinitions: [other]",
        ),
    ],
)
def test_attribute_definitions_must_match_the_key_schema(
    ddb: Any, definitions: list[dict[str, str]], message: str
) -> None:
    code, text, _ = error(ddb.create_table, **simple(fresh(), AttributeDefinitions=definitions))
    assert (code, text) == ("ValidationException", message)


def test_key_schema_and_billing_validation(ddb: Any) -> None:
    _code, text, _ = error(
        ddb.create_table,
        **simple(fresh(), KeySchema=[{"AttributeName": "pk", "KeyType": "RANGE"}]),
    )
    assert text == "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"
    _code, text, _ = error(ddb.create_table, **{**simple(fresh()), "BillingMode": "PROVISIONED"})
    assert "ReadCapacityUnits and WriteCapacityUnits must both be specified" in text
    _code, text, _ = error(
        ddb.create_table,
        **simple(fresh(), ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}),
    )
    assert "can be specified when BillingMode is PAY_PER_REQUEST" in text


def test_indexes_are_stored_and_described(ddb: Any) -> None:
    name = fresh()
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "g", "l")
        ],
        BillingMode="PAY_PER_REQUEST",
        LocalSecondaryIndexes=[
            {
                "IndexName": "by_l",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "l", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["LocalSecondaryIndexes"][0]["IndexName"] == "by_l"
    assert table["GlobalSecondaryIndexes"][0]["IndexStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ddb.update_table(
        TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_g"}}]
    )
    table = ddb.describe_table(TableName=name)["Table"]
    assert "GlobalSecondaryIndexes" not in table
    ddb.update_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "h", "AttributeType": "N"}],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "by_h",
                    "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            }
        ],
    )
    table = ddb.describe_table(TableName=name)["Table"]
    assert [g["IndexName"] for g in table["GlobalSecondaryIndexes"]] == ["by_h"]
    assert "g" not in {d["AttributeName"] for d in table["AttributeDefinitions"]}


def test_an_index_cannot_redefine_the_type_of_a_key_attribute(ddb: Any) -> None:
    name = fresh()
    defs = [{"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "x", "AttributeType": "S"}]
    ddb.create_table(**simple(name, AttributeDefinitions=defs, GlobalSecondaryIndexes=[{
        "IndexName": "by_x", "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "ALL"}}]))

    def create(index: str, attribute: str, attribute_type: str) -> dict[str, Any]:
        return {"TableName": name,
                "AttributeDefinitions": [{"AttributeName": attribute,
                                          "AttributeType": attribute_type}],
                "GlobalSecondaryIndexUpdates": [{"Create": {
                    "IndexName": index,
                    "KeySchema": [{"AttributeName": attribute, "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"}}}]}

    code, message, _ = error(ddb.update_table, **create("by_x_number", "x", "N"))
    assert code == "ValidationException"
    assert message == (
        "One or more parameter values were invalid: Attributes cannot be redefined. Please "
        "check that your attribute has the same type as previously defined. Existing schema: "
        "Schema:[SchemaElement: key{x:S:HASH}] New schema: Schema:[SchemaElement: "
        "key{x:N:HASH}]")
    code, message, _ = error(ddb.update_table, **create("by_pk", "pk", "B"))
    assert "Existing schema: Schema:[SchemaElement: key{pk:S:HASH}]" in message
    ddb.update_table(**create("by_x_again", "x", "S"))  # the same type is fine
    table = ddb.describe_table(TableName=name)["Table"]
    assert {"AttributeName": "x", "AttributeType": "S"} in table["AttributeDefinitions"]
    assert [g["IndexName"] for g in table["GlobalSecondaryIndexes"]] == ["by_x", "by_x_again"]


def test_list_tables_pages(running: ServerThread) -> None:
    ddb = ServerThread.client(running)
    before = set(ddb.list_tables()["TableNames"])
    mine = sorted(f"list_{i:02d}" for i in range(7))
    for name in mine:
        ddb.create_table(**simple(name))
    seen: list[str] = []
    start: dict[str, Any] = {}
    while True:
        page = ddb.list_tables(Limit=3, **start)
        assert len(page["TableNames"]) <= 3
        seen.extend(page["TableNames"])
        if "LastEvaluatedTableName" not in page:
            break
        start = {"ExclusiveStartTableName": page["LastEvaluatedTableName"]}
    assert seen == sorted(seen)
    assert set(seen) == before | set(mine)
    paginated = [
        n
        for p in ddb.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 2})
        for n in p["TableNames"]
    ]
    assert paginated == seen


def test_update_table_billing_and_throughput(ddb: Any) -> None:
    name = fresh()
    ddb.create_table(**simple(name))
    ddb.update_table(
        TableName=name,
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 3, "WriteCapacityUnits": 4},
    )
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 4
    # Once on-demand, a table keeps a BillingModeSummary ("You may need to switch to on-demand
    # mode at least once in order to return a BillingModeSummary response", API Reference).
    assert table["BillingModeSummary"] == {"BillingMode": "PROVISIONED",
                                           "LastUpdateToPayPerRequestDateTime":
                                           table["CreationDateTime"]}
    provisioned = fresh()
    ddb.create_table(**simple(provisioned, BillingMode="PROVISIONED", ProvisionedThroughput={
        "ReadCapacityUnits": 1, "WriteCapacityUnits": 1}))
    assert "BillingModeSummary" not in ddb.describe_table(TableName=provisioned)["Table"]
    ddb.update_table(TableName=provisioned, BillingMode="PAY_PER_REQUEST")
    on_demand_at = ddb.describe_table(TableName=provisioned)["Table"]["BillingModeSummary"][
        "LastUpdateToPayPerRequestDateTime"]
    ddb.update_table(TableName=provisioned, BillingMode="PROVISIONED", ProvisionedThroughput={
        "ReadCapacityUnits": 2, "WriteCapacityUnits": 2})
    assert ddb.describe_table(TableName=provisioned)["Table"]["BillingModeSummary"] == {
        "BillingMode": "PROVISIONED", "LastUpdateToPayPerRequestDateTime": on_demand_at}
    code, _, _ = error(ddb.update_table, TableName=name)
    assert code == "ValidationException"


def test_deletion_protection(ddb: Any) -> None:
    name = fresh()
    ddb.create_table(**simple(name, DeletionProtectionEnabled=True))
    code, text, _ = error(ddb.delete_table, TableName=name)
    assert code == "ValidationException" and "protected against deletion" in text
    ddb.update_table(TableName=name, DeletionProtectionEnabled=False)
    ddb.delete_table(TableName=name)


def test_tags(ddb: Any) -> None:
    name = fresh()
    arn = ddb.create_table(**simple(name))["TableDescription"]["TableArn"]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "3"}])
    tags = ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("a", "3"), ("b", "2")]
    ddb.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    code, _, _ = error(ddb.list_tags_of_resource, ResourceArn=arn + "nope")
    assert code == "ResourceNotFoundException"


def test_time_to_live(ddb: Any) -> None:
    name = fresh()
    ddb.create_table(**simple(name))
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "DISABLED"
    spec = {"Enabled": True, "AttributeName": "expires"}
    assert (
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=spec)[
            "TimeToLiveSpecification"
        ]
        == spec
    )
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    _code, text, _ = error(ddb.update_time_to_live, TableName=name, TimeToLiveSpecification=spec)
    assert text == "TimeToLive is already enabled"


def test_describe_endpoints_and_limits(ddb: Any) -> None:
    endpoints = ddb.describe_endpoints()["Endpoints"]
    assert endpoints[0]["CachePeriodInMinutes"] == 1440
    assert ddb.describe_limits()["TableMaxReadCapacityUnits"] > 0


def test_table_operations_on_missing_tables(ddb: Any) -> None:
    for call, kwargs in [
        (ddb.describe_table, {"TableName": "missing"}),
        (ddb.delete_table, {"TableName": "missing"}),
        (ddb.update_table, {"TableName": "missing", "BillingMode": "PAY_PER_REQUEST"}),
        (ddb.get_item, {"TableName": "missing", "Key": {"pk": {"S": "a"}}}),
        (ddb.scan, {"TableName": "missing"}),
    ]:
        code, _, status = error(call, **kwargs)
        assert (code, status) == ("ResourceNotFoundException", 400)


def test_delete_table_answers_the_short_description(ddb: Any) -> None:
    name = fresh()
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                              for n in ("pk", "sk", "x")],
        GlobalSecondaryIndexes=[{"IndexName": "by_x", "KeySchema": [
            {"AttributeName": "x", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}],
        LocalSecondaryIndexes=[{"IndexName": "by_pk_x", "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "x", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}],
        BillingMode="PAY_PER_REQUEST",
    )
    got = ddb.delete_table(TableName=name)["TableDescription"]
    assert got["TableName"] == name and got["TableStatus"] == "DELETING"
    assert got["TableArn"].startswith("arn:") and len(got["TableId"]) == 36
    for absent in ("CreationDateTime", "KeySchema", "AttributeDefinitions",
                   "GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        assert absent not in got
    assert got["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert got["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"] is not None
    assert got["ProvisionedThroughput"] == {
        "NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0}
    assert got["ItemCount"] == 0 and got["TableSizeBytes"] == 0
