"""The legacy ``KeyConditions`` parameter of Query on global indexes with multi-attribute keys,
through boto3 against the in-process server of test_boto3_gsi_multi: the same rules as a
KeyConditionExpression on that key (EQ on every partition-key attribute, sort-key attributes
left to right, EQ on all but the last), with DynamoDB's messages, plus the legacy operand
checks; and QueryFilter beside it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.test_boto3_gsi_multi import ddb, server, tournament_table

__all__ = ["ddb", "server"]  # the fixtures, shared with test_boto3_gsi_multi


def cond(op: str, *values: str | int) -> dict[str, Any]:
    wire = [{"N": str(v)} if isinstance(v, int) else {"S": v} for v in values]
    return {"ComparisonOperator": op, "AttributeValueList": wire}


def legacy(ddb: Any, table: str, **conditions: dict[str, Any]) -> list[str]:
    """The table keys a legacy Query of index by_t answers, in order."""
    found = ddb.query(TableName=table, IndexName="by_t", KeyConditions=conditions)
    return [item["pk"]["S"] for item in found["Items"]]


def refused(ddb: Any, table: str, **conditions: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        legacy(ddb, table, **conditions)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_key_conditions_select_like_the_expression_on_a_multi_attribute_key(ddb: Any) -> None:
    table = tournament_table(ddb)
    w24, eu = cond("EQ", "W24"), cond("EQ", "EU")
    assert legacy(ddb, table, t=w24, r=eu) == ["m2", "m1", "m3", "m4"]
    assert legacy(ddb, table, t=w24, r=eu, round=cond("EQ", 1)) == ["m2", "m1"]
    assert legacy(ddb, table, t=w24, r=eu, round=cond("GT", 1)) == ["m3", "m4"]
    assert legacy(ddb, table, t=w24, r=eu, round=cond("LE", 2)) == ["m2", "m1", "m3"]
    assert legacy(ddb, table, t=w24, r=eu, round=cond("BETWEEN", 2, 3)) == ["m3", "m4"]
    assert legacy(ddb, table, t=w24, r=eu, round=cond("EQ", 1),
                  bracket=cond("BEGINS_WITH", "lo")) == ["m2"]
    assert legacy(ddb, table, t=w24, r=eu, round=cond("EQ", 1),
                  bracket=cond("EQ", "upper")) == ["m1"]
    assert legacy(ddb, table, t=w24, r=cond("EQ", "NA")) == ["m5"]
    assert legacy(ddb, table, t=cond("EQ", "S25"), r=cond("EQ", "NA")) == []


def test_key_conditions_page_and_filter_on_a_multi_attribute_key(ddb: Any) -> None:
    table = tournament_table(ddb)
    keys = {"t": cond("EQ", "W24"), "r": cond("EQ", "EU")}
    seen: list[str] = []
    start: dict[str, Any] = {}
    while True:
        page = ddb.query(TableName=table, IndexName="by_t", KeyConditions=keys, Limit=1,
                         ScanIndexForward=False, **start)
        seen += [item["pk"]["S"] for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    assert seen == ["m4", "m3", "m1", "m2"]
    filtered = ddb.query(TableName=table, IndexName="by_t", KeyConditions=keys,
                         QueryFilter={"pk": cond("BEGINS_WITH", "m1")})
    assert [item["pk"]["S"] for item in filtered["Items"]] == ["m1"]
    code, text = refused_filter(ddb, table, keys, {"round": cond("EQ", 1)})
    assert (code, text) == ("ValidationException", "QueryFilter can only contain non-primary "
                            "key attributes: Primary key attribute: round")


def refused_filter(ddb: Any, table: str, keys: dict[str, Any],
                   query_filter: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        ddb.query(TableName=table, IndexName="by_t", KeyConditions=keys,
                  QueryFilter=query_filter)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


MISSED = "Query condition missed key schema element: "
NOT_SUPPORTED = "Query key condition not supported"


@pytest.mark.parametrize(("conditions", "message"), [
    ({"t": cond("EQ", "W24")}, MISSED + "r"),
    ({"r": cond("EQ", "EU")}, MISSED + "t"),
    ({"t": cond("EQ", "W24"), "r": cond("EQ", "EU"), "bracket": cond("EQ", "upper")},
     MISSED + "round"),
    ({"t": cond("EQ", "W24"), "r": cond("EQ", "EU"), "round": cond("GT", 1),
      "bracket": cond("EQ", "upper")}, NOT_SUPPORTED),
    ({"t": cond("EQ", "W24"), "r": cond("GE", "EU")}, NOT_SUPPORTED),
    ({"t": cond("EQ", "W24"), "r": cond("EQ", "EU"), "other": cond("EQ", "x")},
     MISSED + "round"),
    ({"t": cond("EQ", "W24"), "r": cond("EQ", "EU"), "round": cond("EQ", "one")},
     "One or more parameter values were invalid: Condition parameter type does not match "
     "schema type"),
    ({"t": cond("EQ", "W24"), "r": cond("NE", "EU")},
     "Attempted conditional constraint is not an indexable operation"),
    ({"t": cond("EQ", "W24"), "r": cond("EQ", "EU", "NA")},
     "One or more parameter values were invalid: Invalid number of argument(s) for the EQ "
     "ComparisonOperator"),
    ({"t": cond("EQ", "W24"), "r": cond("EQ", "EU"), "round": cond("BETWEEN", 3, 1)},
     "The BETWEEN condition was provided a range where the lower bound is greater than the "
     "upper bound"),
])
def test_key_conditions_errors_on_a_multi_attribute_key(ddb: Any,
                                                        conditions: dict[str, Any],
                                                        message: str) -> None:
    table = tournament_table(ddb)
    assert refused(ddb, table, **conditions) == ("ValidationException", message)


def test_key_conditions_with_key_condition_expression_is_refused(ddb: Any) -> None:
    table = tournament_table(ddb)
    with pytest.raises(ClientError) as info:
        ddb.query(TableName=table, IndexName="by_t", KeyConditions={"t": cond("EQ", "W24")},
                  KeyConditionExpression="t = :t AND r = :r",
                  ExpressionAttributeValues={":t": {"S": "W24"}, ":r": {"S": "EU"}})
    assert info.value.response["Error"]["Message"] == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {KeyConditions} Expression parameters: "
        "{KeyConditionExpression}")
