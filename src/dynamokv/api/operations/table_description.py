"""The TableDescription document that CreateTable, DescribeTable, UpdateTable and DeleteTable
return.

Owns: :func:`describe` (a table's description as DynamoDB answers it, index statuses included)
and :func:`deleted_description` (the smaller one DeleteTable answers).
May import: stdlib, :mod:`dynamokv.api.schema.catalog`, :mod:`dynamokv.api.indexes.layout`,
:mod:`dynamokv.api.indexes.backfill` (its run bound), :mod:`dynamokv.api.operations.common`,
:mod:`dynamokv.api.streams`, :mod:`dynamokv.api.schema.table_requests` (the warm baseline).
"""

from __future__ import annotations

from typing import Any

from dynamokv.api import streams
from dynamokv.api.indexes.backfill import BACKFILL_RUNS
from dynamokv.api.indexes.layout import ACTIVE, CREATING
from dynamokv.api.operations.common import ApiContext
from dynamokv.api.schema.catalog import INDEX_INTERNAL, TableInfo, table_arn
from dynamokv.api.schema.table_requests import WARM_BASELINE


def describe(ctx: ApiContext, info: TableInfo, status: str = "ACTIVE") -> dict[str, Any]:
    """The TableDescription DynamoDB returns for a table."""
    d = info.description
    arn = table_arn(ctx.region, ctx.account_id, info.name)
    created = d["CreationDateTime"]
    throughput = d.get("ProvisionedThroughput") or {}
    out: dict[str, Any] = {
        # DynamoDB answers AttributeDefinitions (and NonKeyAttributes) sorted by name.
        "AttributeDefinitions": sorted(d["AttributeDefinitions"],
                                       key=lambda a: a["AttributeName"]),
        "TableName": info.name,
        "KeySchema": d["KeySchema"],
        "TableStatus": status,
        "CreationDateTime": created,
        "ProvisionedThroughput": {
            "NumberOfDecreasesToday": 0,
            "ReadCapacityUnits": throughput.get("ReadCapacityUnits", 0),
            "WriteCapacityUnits": throughput.get("WriteCapacityUnits", 0),
        },
        "TableSizeBytes": 0,
        "ItemCount": 0,
        "TableArn": arn,
        "TableId": info.table_id,
        "DeletionProtectionEnabled": bool(d.get("DeletionProtectionEnabled")),
    }
    if d.get("BillingMode") == "PAY_PER_REQUEST":
        out["BillingModeSummary"] = {
            "BillingMode": "PAY_PER_REQUEST",
            "LastUpdateToPayPerRequestDateTime": d.get("BillingModeUpdated", created),
        }
    elif d.get("LastPayPerRequest"):  # provisioned again after being on-demand
        out["BillingModeSummary"] = {
            "BillingMode": "PROVISIONED",
            "LastUpdateToPayPerRequestDateTime": d["LastPayPerRequest"],
        }
    if d.get("LocalSecondaryIndexes"):
        out["LocalSecondaryIndexes"] = [
            {**{k: v for k, v in index.items() if k not in INDEX_INTERNAL},
             "Projection": _sorted_projection(index["Projection"]),
             "IndexSizeBytes": 0, "ItemCount": 0,
             "IndexArn": f"{arn}/index/{index['IndexName']}"}
            for index in d["LocalSecondaryIndexes"]
        ]
    if d.get("GlobalSecondaryIndexes"):
        gsis = []
        for index in d["GlobalSecondaryIndexes"]:
            entry = {key: value for key, value in index.items()
                     if key != "ProvisionedThroughput" and key not in INDEX_INTERNAL}
            entry["Projection"] = _sorted_projection(index["Projection"])
            index_throughput = index.get("ProvisionedThroughput") or {}
            # An index stored without a status predates stored indexes: it is backfilled.
            index_status = index.get("IndexStatus", CREATING)
            if index_status == ACTIVE and index.get("RepairNeeded"):
                index_status = "UPDATING"  # being rebuilt after its upkeep gave up; readable
            if index_status == CREATING:
                # A backfill that failed BACKFILL_RUNS times stopped: the index stays CREATING
                # with its last error (BackfillError) until it is deleted.
                entry["Backfilling"] = index.get("BackfillFailures", 0) < BACKFILL_RUNS
            entry.update(
                IndexStatus=index_status,
                ProvisionedThroughput={
                    "NumberOfDecreasesToday": 0,
                    "ReadCapacityUnits": index_throughput.get("ReadCapacityUnits", 0),
                    "WriteCapacityUnits": index_throughput.get("WriteCapacityUnits", 0),
                },
                IndexSizeBytes=0,
                ItemCount=0,
                IndexArn=f"{arn}/index/{index['IndexName']}",
            )
            if index.get("WarmThroughput"):
                entry["WarmThroughput"] = {**index["WarmThroughput"], "Status": "ACTIVE"}
            gsis.append(entry)
        out["GlobalSecondaryIndexes"] = gsis
    if d.get("OnDemandThroughput"):
        out["OnDemandThroughput"] = dict(d["OnDemandThroughput"])
    if d.get("WarmThroughput"):
        out["WarmThroughput"] = {**d["WarmThroughput"], "Status": "ACTIVE"}
    elif d.get("BillingMode") == "PAY_PER_REQUEST":  # the baseline every on-demand table has
        out["WarmThroughput"] = {**WARM_BASELINE, "Status": "ACTIVE"}
    out.update(streams.describe_fields(ctx, info))
    if d.get("TableClass"):
        out["TableClassSummary"] = {"TableClass": d["TableClass"]}
        if d.get("TableClassUpdated"):  # set by an UpdateTable that changed the class
            out["TableClassSummary"]["LastUpdateDateTime"] = d["TableClassUpdated"]
    if d.get("SSESpecification", {}).get("Enabled"):
        out["SSEDescription"] = {"Status": "ENABLED", "SSEType": "KMS"}
    return out


def _sorted_projection(projection: dict[str, Any]) -> dict[str, Any]:
    if "NonKeyAttributes" not in projection:
        return projection
    return {**projection, "NonKeyAttributes": sorted(projection["NonKeyAttributes"])}


# DeleteTable answers less than DescribeTable does: no schema, no indexes, no creation time.
_NOT_IN_DELETE = frozenset({
    "CreationDateTime", "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
})


def deleted_description(description: dict[str, Any]) -> dict[str, Any]:
    """The TableDescription of a DeleteTable answer, from the table's full description."""
    return {k: v for k, v in description.items() if k not in _NOT_IN_DELETE}
