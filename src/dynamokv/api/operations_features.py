"""Read-only answers for DynamoDB features dynamokv does not have: backups, global tables,
exports and imports, Contributor Insights and Kinesis streaming destinations.

Owns: ListBackups, ListGlobalTables, ListExports, ListImports, ListContributorInsights,
DescribeContributorInsights and DescribeKinesisStreamingDestination, each answering the state
these features truly are in on dynamokv -- none exist, none are enabled -- with DynamoDB's
response shapes and its errors for a missing table or index. Tools that describe every facet of
a table (infrastructure-as-code providers, consoles, ``aws dynamodb`` describe commands) then
work; the operations that would create or enable these features stay unknown operations.
May import: stdlib, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.operations_common`.
"""

from __future__ import annotations

from typing import Any

from dynamokv.api.errors import ResourceNotFoundException
from dynamokv.api.operations_common import ApiContext, Params


async def _table(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """The description of the request's table (a consistent catalog read)."""
    name = params.table_name()
    info = await ctx.catalog.get(name, fresh=True)
    if info is None:
        raise ResourceNotFoundException(f"Requested resource not found: Table: {name} not found")
    return info.description


async def list_backups(ctx: ApiContext, params: Params) -> dict[str, Any]:
    params.integer("Limit", minimum=1, maximum=100)
    if params.has("TableName"):
        params.table_name()
    params.enum("BackupType", ("USER", "SYSTEM", "AWS_BACKUP", "ALL"), "USER")
    return {"BackupSummaries": []}


async def list_global_tables(ctx: ApiContext, params: Params) -> dict[str, Any]:
    params.integer("Limit", minimum=1)
    params.string("RegionName")
    return {"GlobalTables": []}


async def list_exports(ctx: ApiContext, params: Params) -> dict[str, Any]:
    params.integer("MaxResults", minimum=1, maximum=25)
    params.string("TableArn")
    return {"ExportSummaries": []}


async def list_imports(ctx: ApiContext, params: Params) -> dict[str, Any]:
    params.integer("PageSize", minimum=1, maximum=25)
    params.string("TableArn")
    return {"ImportSummaryList": []}


async def list_contributor_insights(ctx: ApiContext, params: Params) -> dict[str, Any]:
    params.integer("MaxResults", maximum=100)
    if params.has("TableName"):
        await _table(ctx, params)
    return {"ContributorInsightsSummaries": []}


async def describe_contributor_insights(ctx: ApiContext, params: Params) -> dict[str, Any]:
    description = await _table(ctx, params)
    out: dict[str, Any] = {"TableName": description["TableName"]}
    index = params.string("IndexName")
    if index is not None:
        names = {i["IndexName"] for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes")
                 for i in description.get(kind) or ()}
        if index not in names:
            raise ResourceNotFoundException(
                f"Requested resource not found: Index: {index} not found for table: "
                f"{description['TableName']}")
        out["IndexName"] = index
    out["ContributorInsightsStatus"] = "DISABLED"
    return out


async def describe_kinesis_streaming_destination(ctx: ApiContext,
                                                 params: Params) -> dict[str, Any]:
    description = await _table(ctx, params)
    return {"TableName": description["TableName"], "KinesisDataStreamDestinations": []}


OPERATIONS = {
    "ListBackups": list_backups,
    "ListGlobalTables": list_global_tables,
    "ListExports": list_exports,
    "ListImports": list_imports,
    "ListContributorInsights": list_contributor_insights,
    "DescribeContributorInsights": describe_contributor_insights,
    "DescribeKinesisStreamingDestination": describe_kinesis_streaming_destination,
}

__all__ = ["OPERATIONS"]
