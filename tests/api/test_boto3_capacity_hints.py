"""OnDemandThroughput and WarmThroughput (stored and described, never enforced, as
ProvisionedThroughput is) with DynamoDB's rules and messages, and the refusal of members of
features dynamokv does not have (global tables, resource-based policies), through boto3 against
the in-process app."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.api.test_app_harness import refused

_names = itertools.count()
INVALID = "One or more parameter values were invalid: "


def kwargs(name: str, billing: str = "PAY_PER_REQUEST", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "TableName": name, "BillingMode": billing,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}], **extra}
    if billing == "PROVISIONED":
        out["ProvisionedThroughput"] = {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}
    return out


def fresh() -> str:
    return f"hints_{next(_names)}"


def test_on_demand_throughput_is_stored_updated_and_cleared(ddb: Any) -> None:
    name = fresh()
    created = ddb.create_table(**kwargs(name, OnDemandThroughput={"MaxReadRequestUnits": 100}))
    assert created["TableDescription"]["OnDemandThroughput"] == {"MaxReadRequestUnits": 100}
    ddb.update_table(TableName=name, OnDemandThroughput={"MaxWriteRequestUnits": 50})
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["OnDemandThroughput"] == {"MaxReadRequestUnits": 100, "MaxWriteRequestUnits": 50}
    ddb.update_table(TableName=name, OnDemandThroughput={"MaxReadRequestUnits": -1,
                                                         "MaxWriteRequestUnits": -1})
    assert "OnDemandThroughput" not in ddb.describe_table(TableName=name)["Table"]


def test_on_demand_throughput_rules(ddb: Any) -> None:
    assert refused(ddb.create_table, **kwargs(fresh(), OnDemandThroughput={
        "MaxReadRequestUnits": 0})) == ("ValidationException", INVALID + (
            "Requested MaxReadRequestUnits for OnDemandThroughput for table is outside of valid "
            "range"))
    assert refused(ddb.create_table, **kwargs(fresh(), "PROVISIONED", OnDemandThroughput={
        "MaxWriteRequestUnits": 5})) == ("ValidationException", INVALID + (
            "MaxWriteRequestUnits for OnDemandThroughput cannot be specified when the table "
            "BillingMode is PROVISIONED"))
    name = fresh()
    ddb.create_table(**kwargs(name))
    assert refused(ddb.update_table, TableName=name, DeletionProtectionEnabled=True,
                   OnDemandThroughput={"MaxReadRequestUnits": 5}) == (
        "ValidationException", INVALID + "OnDemandThroughput can only be combined with "
        "BillingMode in an UpdateTable request")
    # Switching to PROVISIONED drops the on-demand maximums; setting them then is refused.
    ddb.update_table(TableName=name, OnDemandThroughput={"MaxReadRequestUnits": 5})
    ddb.update_table(TableName=name, BillingMode="PROVISIONED", ProvisionedThroughput={
        "ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    assert "OnDemandThroughput" not in ddb.describe_table(TableName=name)["Table"]
    assert refused(ddb.update_table, TableName=name, OnDemandThroughput={
        "MaxReadRequestUnits": 5})[1] == (INVALID + "MaxReadRequestUnits for OnDemandThroughput "
                                          "cannot be specified when the table BillingMode is "
                                          "PROVISIONED")


def test_warm_throughput_is_stored_and_only_raised(ddb: Any) -> None:
    name = fresh()
    ddb.create_table(**kwargs(name, WarmThroughput={"ReadUnitsPerSecond": 13000}))
    ddb.update_table(TableName=name, WarmThroughput={"WriteUnitsPerSecond": 5000})
    assert ddb.describe_table(TableName=name)["Table"]["WarmThroughput"] == {
        "ReadUnitsPerSecond": 13000, "WriteUnitsPerSecond": 5000, "Status": "ACTIVE"}
    assert refused(ddb.update_table, TableName=name, WarmThroughput={
        "ReadUnitsPerSecond": 12000}) == ("ValidationException", INVALID + (
            "Requested ReadUnitsPerSecond for WarmThroughput for table is lower than current "
            "WarmThroughput, decreasing WarmThroughput is not supported"))
    assert refused(ddb.update_table, TableName=name, TableClass="STANDARD", WarmThroughput={
        "ReadUnitsPerSecond": 14000}) == (
        "ValidationException", INVALID + "WarmThroughput must be the only operation in the request")


def test_an_on_demand_tables_warm_throughput_starts_at_the_baseline(ddb: Any) -> None:
    name = fresh()
    ddb.create_table(**kwargs(name, WarmThroughput={"WriteUnitsPerSecond": 4100}))
    assert ddb.describe_table(TableName=name)["Table"]["WarmThroughput"] == {
        "ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4100, "Status": "ACTIVE"}
    for member, low, least in (("ReadUnitsPerSecond", 11999, 12000),
                               ("WriteUnitsPerSecond", 3999, 4000)):
        assert refused(ddb.create_table, **kwargs(fresh(), WarmThroughput={member: low})) == (
            "ValidationException", INVALID + f"Requested {member} for WarmThroughput for table "
            f"is lower than the minimum {member} of {least} for an on-demand table")
    plain = fresh()
    ddb.create_table(**kwargs(plain))
    assert ddb.describe_table(TableName=plain)["Table"]["WarmThroughput"] == {
        "ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000, "Status": "ACTIVE"}
    assert refused(ddb.update_table, TableName=plain, WarmThroughput={
        "ReadUnitsPerSecond": 500})[0] == "ValidationException"
    unconfigured = fresh()
    ddb.create_table(**kwargs(unconfigured, "PROVISIONED"))
    assert "WarmThroughput" not in ddb.describe_table(TableName=unconfigured)["Table"]
    provisioned = fresh()  # a provisioned table's least warm throughput is not this baseline
    ddb.create_table(**kwargs(provisioned, "PROVISIONED", WarmThroughput={
        "ReadUnitsPerSecond": 500}))
    assert ddb.describe_table(TableName=provisioned)["Table"]["WarmThroughput"] == {
        "ReadUnitsPerSecond": 500, "Status": "ACTIVE"}


def test_table_class_values_and_last_update(ddb: Any) -> None:
    name = fresh()
    for wrong in ("standard", "junk"):
        assert refused(ddb.create_table, **kwargs(name, TableClass=wrong)) == (
            "ValidationException", "Invalid table-class parameter provided. Please try again "
            "with a valid table-class value: [STANDARD, STANDARD_INFREQUENT_ACCESS].")
    ddb.create_table(**kwargs(name, TableClass="STANDARD_INFREQUENT_ACCESS"))
    assert ddb.describe_table(TableName=name)["Table"]["TableClassSummary"] == {
        "TableClass": "STANDARD_INFREQUENT_ACCESS"}
    assert refused(ddb.update_table, TableName=name, TableClass="junk")[0] == (
        "ValidationException")
    ddb.update_table(TableName=name, TableClass="STANDARD")
    summary = ddb.describe_table(TableName=name)["Table"]["TableClassSummary"]
    assert summary["TableClass"] == "STANDARD"
    assert summary["LastUpdateDateTime"].year >= 2024


@pytest.mark.parametrize(("member", "value", "why"), [
    ("ResourcePolicy", '{"Version": "2012-10-17", "Statement": []}',
     "dynamokv has no resource-based policies"),
    ("GlobalTableSourceArn", "arn:aws:dynamodb:us-east-1:123456789012:table/elsewhere",
     "dynamokv has no global tables"),
])
def test_create_table_refuses_members_of_missing_features(ddb: Any, member: str, value: str,
                                                         why: str) -> None:
    name = fresh()
    assert refused(ddb.create_table, **kwargs(name, **{member: value})) == (
        "ValidationException", INVALID + f"{member} is not supported: {why}")
    assert name not in ddb.list_tables()["TableNames"]


@pytest.mark.parametrize(("member", "value"), [
    ("ReplicaUpdates", [{"Create": {"RegionName": "us-west-2"}}]),
    ("MultiRegionConsistency", "STRONG"),
    ("GlobalTableWitnessUpdates", [{"Create": {"RegionName": "us-west-2"}}]),
])
def test_update_table_refuses_global_table_members(ddb: Any, member: str, value: Any) -> None:
    name = fresh()
    ddb.create_table(**kwargs(name))
    assert refused(ddb.update_table, TableName=name, **{member: value}) == (
        "ValidationException", INVALID + f"{member} is not supported: dynamokv has no global "
        "tables")


def test_a_global_index_keeps_its_own_on_demand_and_warm_throughput(ddb: Any) -> None:
    name = fresh()
    index = {"IndexName": "by_g", "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
             "OnDemandThroughput": {"MaxReadRequestUnits": 10}}
    ddb.create_table(**kwargs(name, GlobalSecondaryIndexes=[index], AttributeDefinitions=[
        {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g",
                                                        "AttributeType": "S"}]))
    ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {
        "IndexName": "by_g", "WarmThroughput": {"ReadUnitsPerSecond": 15000}}}])
    ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {
        "IndexName": "by_g", "OnDemandThroughput": {"MaxWriteRequestUnits": 7}}}])
    (described,) = ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"]
    assert described["OnDemandThroughput"] == {"MaxReadRequestUnits": 10,
                                               "MaxWriteRequestUnits": 7}
    assert described["WarmThroughput"] == {"ReadUnitsPerSecond": 15000, "Status": "ACTIVE"}
    only = (INVALID + "The only Updates for index: by_g when TableThroughputMode is "
            "PAY_PER_REQUEST can be to OnDemandThroughput, WarmThroughput")
    assert refused(ddb.update_table, TableName=name, GlobalSecondaryIndexUpdates=[
        {"Update": {"IndexName": "by_g"}}]) == ("ValidationException", only)
    assert refused(ddb.update_table, TableName=name, GlobalSecondaryIndexUpdates=[
        {"Update": {"IndexName": "by_g", "OnDemandThroughput": {"MaxReadRequestUnits": 0}}}]
    ) == ("ValidationException", INVALID + "Requested MaxReadRequestUnits for "
          "OnDemandThroughput for index : by_g is outside of valid range")
    assert refused(ddb.update_table, TableName=name, GlobalSecondaryIndexUpdates=[
        {"Update": {"IndexName": "by_g", "WarmThroughput": {"ReadUnitsPerSecond": 100}}}]
    )[1] == (INVALID + "Requested ReadUnitsPerSecond for WarmThroughput for index by_g is "
             "lower than current WarmThroughput, decreasing WarmThroughput is not supported")
