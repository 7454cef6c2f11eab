"""Read-only answers for DynamoDB features dynamokv does not have: backups, global tables,
exports and imports, Contributor Insights, Kinesis streaming destinations and resource-based
policies.

Owns: ListBackups, ListGlobalTables, ListExports, ListImports, ListContributorInsights,
DescribeContributorInsights, DescribeKinesisStreamingDestination, DescribeGlobalTable,
DescribeGlobalTableSettings, DescribeTableReplicaAutoScaling and GetResourcePolicy, each
answering the state these features truly are in on dynamokv -- none exist, none are enabled --
with DynamoDB's response shapes and its errors (a missing table or index, no such global table,
no policy). Tools that describe every facet of
a table (infrastructure-as-code providers, consoles, ``aws dynamodb`` describe commands) then
work; the operations that would create or enable these features stay unknown operations.
May import: stdlib, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.operations.common`.
"""

from __future__ import annotations

from typing import Any

from dynamokv.api.errors import DynamoDBError, ResourceNotFoundException, ValidationException
from dynamokv.api.operations.common import ApiContext, Params


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


def _no_global_table(name: str, *, prefix: str = "") -> DynamoDBError:
    return DynamoDBError(f"{prefix}Global table with name: '{name}' does not exist.",
                         error_type="GlobalTableNotFoundException")


async def describe_global_table(ctx: ApiContext, params: Params) -> dict[str, Any]:
    raise _no_global_table(params.table_name("GlobalTableName"),
                           prefix="Global table not found: ")


async def describe_global_table_settings(ctx: ApiContext, params: Params) -> dict[str, Any]:
    raise _no_global_table(params.table_name("GlobalTableName"))


async def describe_table_replica_auto_scaling(ctx: ApiContext,
                                              params: Params) -> dict[str, Any]:
    name = params.table_name()
    raise ResourceNotFoundException(f"Global table with name: '{name}' does not exist.")


_INVALID = "One or more parameter values were invalid: "


async def get_resource_policy(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """No table has a policy here (any key may do everything): PolicyNotFoundException for a
    table or stream that exists."""
    arn = params.req_string("ResourceArn")
    if not arn.startswith("arn:"):
        raise ValidationException(_INVALID + f"ARNs must start with 'arn:': {arn}")
    if not arn.startswith("arn:aws:dynamodb:"):
        raise ValidationException(_INVALID + f"Provided Arn is not a DynamoDB resource arn: {arn}")
    prefix = f"arn:aws:dynamodb:{ctx.region}:{ctx.account_id}:table/"
    if not arn.startswith(prefix):
        raise ValidationException(_INVALID + f"Invalid resource Arn: {arn}")
    name, _, rest = arn[len(prefix):].partition("/")
    if rest and not rest.startswith("stream/"):
        raise ValidationException(
            _INVALID + "Invalid resource arn provided, only table or stream is accepted. "
            f"Provided resource arn: {arn}")
    await _table(ctx, Params({"TableName": name}))
    raise DynamoDBError(f"Resource-based policy not found for the provided ResourceArn: {arn}",
                        error_type="PolicyNotFoundException")


OPERATIONS = {
    "ListBackups": list_backups,
    "ListGlobalTables": list_global_tables,
    "ListExports": list_exports,
    "ListImports": list_imports,
    "ListContributorInsights": list_contributor_insights,
    "DescribeContributorInsights": describe_contributor_insights,
    "DescribeKinesisStreamingDestination": describe_kinesis_streaming_destination,
    "DescribeGlobalTable": describe_global_table,
    "DescribeGlobalTableSettings": describe_global_table_settings,
    "DescribeTableReplicaAutoScaling": describe_table_replica_auto_scaling,
    "GetResourcePolicy": get_resource_policy,
}

__all__ = ["OPERATIONS"]
