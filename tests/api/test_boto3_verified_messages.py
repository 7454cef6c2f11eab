"""Error messages whose wording was checked against DynamoDB (see docs/dynamodb-api.md, "Error
wording"), through boto3 against the in-process app: the type and the exact text of
StreamSpecification refusals on CreateTable and UpdateTable, an index Update or Delete of an
index the table lacks, the global-index count through UpdateTable, and the messages of a
legacy or expression Query that users meet most."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.api.test_app_harness import refused

_names = itertools.count()
INVALID = "One or more parameter values were invalid: "


def create_kwargs(name: str, **extra: Any) -> dict[str, Any]:
    return {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}], **extra}


def table(ddb: Any, **extra: Any) -> str:
    name = f"verified_{next(_names)}"
    ddb.create_table(**create_kwargs(name, **extra))
    return name


@pytest.mark.parametrize(("spec", "message"), [
    ({"StreamEnabled": True},
     "Table is being created with a stream enabled, UpdateViewType is required"),
    ({"StreamEnabled": False, "StreamViewType": "KEYS_ONLY"},
     "Table is being created with a stream disabled, UpdateViewType should not be specified"),
])
def test_create_table_stream_specification_messages(ddb: Any, spec: dict[str, Any],
                                                    message: str) -> None:
    kwargs = create_kwargs(f"verified_{next(_names)}", StreamSpecification=spec)
    assert refused(ddb.create_table, **kwargs) == ("ValidationException", INVALID + message)


@pytest.mark.parametrize(("spec", "message"), [
    ({"StreamEnabled": True}, "If stream is being enabled then UpdateViewType is required"),
    ({"StreamEnabled": False, "StreamViewType": "NEW_IMAGE"},
     "If stream is being disabled, then UpdateViewType must not be specified"),
])
def test_update_table_stream_specification_messages(ddb: Any, spec: dict[str, Any],
                                                    message: str) -> None:
    name = table(ddb)
    assert refused(ddb.update_table, TableName=name, StreamSpecification=spec) == (
        "ValidationException", INVALID + message)


@pytest.mark.parametrize("action", [
    {"Delete": {"IndexName": "ghost"}},
    {"Update": {"IndexName": "ghost",
                "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}},
])
def test_an_index_update_or_delete_of_a_missing_index(ddb: Any, action: dict[str, Any]) -> None:
    name = table(ddb, BillingMode="PROVISIONED",
                 ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    assert refused(ddb.update_table, TableName=name, GlobalSecondaryIndexUpdates=[action]) == (
        "ResourceNotFoundException", f"Requested resource not found: Index ghost for table {name}")


def test_a_twenty_first_global_index_through_update_table(ddb: Any) -> None:
    names = [f"g{i:02d}" for i in range(21)]
    definitions = [{"AttributeName": n, "AttributeType": "S"} for n in ["pk", *names]]
    indexes = [{"IndexName": n, "KeySchema": [{"AttributeName": n, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"}} for n in names[:20]]
    name = table(ddb, AttributeDefinitions=definitions[:21], GlobalSecondaryIndexes=indexes)
    extra = {"IndexName": names[20], "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": names[20], "KeyType": "HASH"}]}
    assert refused(ddb.update_table, TableName=name, AttributeDefinitions=definitions[21:],
                   GlobalSecondaryIndexUpdates=[{"Create": extra}]) == (
        "LimitExceededException",
        "Subscriber limit exceeded: Number of global secondary indexes exceeds per-table limit "
        "of 20")


# ------------------------------------------------------------------ features dynamokv lacks


def test_describing_features_dynamokv_lacks_answers_their_empty_state(ddb: Any) -> None:
    """Backups, global tables, exports, imports, Contributor Insights and Kinesis destinations
    do not exist here: describing and listing them says so, in DynamoDB's shapes."""
    name = table(ddb, AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                            {"AttributeName": "g", "AttributeType": "S"}],
                 GlobalSecondaryIndexes=[{"IndexName": "by_g", "Projection": {
                     "ProjectionType": "ALL"}, "KeySchema": [
                     {"AttributeName": "g", "KeyType": "HASH"}]}])
    assert ddb.list_backups(TableName=name)["BackupSummaries"] == []
    assert ddb.list_global_tables()["GlobalTables"] == []
    assert ddb.list_exports()["ExportSummaries"] == []
    assert ddb.list_imports()["ImportSummaryList"] == []
    assert ddb.list_contributor_insights(TableName=name)["ContributorInsightsSummaries"] == []
    insights = ddb.describe_contributor_insights(TableName=name, IndexName="by_g")
    assert (insights["TableName"], insights["IndexName"],
            insights["ContributorInsightsStatus"]) == (name, "by_g", "DISABLED")
    kinesis = ddb.describe_kinesis_streaming_destination(TableName=name)
    assert kinesis["TableName"] == name and kinesis["KinesisDataStreamDestinations"] == []


def test_describing_features_of_a_missing_table_or_index(ddb: Any) -> None:
    name = table(ddb)
    missing = f"missing_{next(_names)}"
    for call in (ddb.describe_contributor_insights, ddb.describe_kinesis_streaming_destination,
                 ddb.list_contributor_insights):
        assert refused(call, TableName=missing) == (
            "ResourceNotFoundException",
            f"Requested resource not found: Table: {missing} not found")
    assert refused(ddb.describe_contributor_insights, TableName=name, IndexName="ghost") == (
        "ResourceNotFoundException",
        f"Requested resource not found: Index: ghost not found for table: {name}")
    code, text = refused(ddb.list_backups, Limit=101)
    assert (code, text) == ("ValidationException", "1 validation error detected: Value '101' at "
                            "'limit' failed to satisfy constraint: Member must have value less "
                            "than or equal to 100")


def test_creating_or_enabling_those_features_stays_an_unknown_operation(ddb: Any) -> None:
    name = table(ddb)
    code, _ = refused(ddb.create_backup, TableName=name, BackupName="backup1")
    assert code == "UnknownOperationException"
    code, _ = refused(ddb.update_contributor_insights, TableName=name,
                      ContributorInsightsAction="ENABLE")
    assert code == "UnknownOperationException"


def test_global_tables_and_resource_policies_are_reported_absent(ddb: Any) -> None:
    name = table(ddb)
    assert refused(ddb.describe_global_table, GlobalTableName=name) == (
        "GlobalTableNotFoundException",
        f"Global table not found: Global table with name: '{name}' does not exist.")
    assert refused(ddb.describe_global_table_settings, GlobalTableName=name) == (
        "GlobalTableNotFoundException", f"Global table with name: '{name}' does not exist.")
    assert refused(ddb.describe_table_replica_auto_scaling, TableName=name) == (
        "ResourceNotFoundException", f"Global table with name: '{name}' does not exist.")
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    assert refused(ddb.get_resource_policy, ResourceArn=arn) == (
        "PolicyNotFoundException",
        f"Resource-based policy not found for the provided ResourceArn: {arn}")
    missing = arn.replace(name, f"missing_{next(_names)}")
    assert refused(ddb.get_resource_policy, ResourceArn=missing)[0] == (
        "ResourceNotFoundException")
    assert refused(ddb.get_resource_policy, ResourceArn=f"{arn}/index/by_g") == (
        "ValidationException", INVALID + "Invalid resource arn provided, only table or stream "
        f"is accepted. Provided resource arn: {arn}/index/by_g")
