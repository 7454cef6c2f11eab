"""Control-plane operations of a table's life: CreateTable, DescribeTable, ListTables and
DeleteTable.

Owns: those four operations. UpdateTable is :mod:`dynamokv.api.operations.table_update`'s; tags,
time to live, limits and backups :mod:`dynamokv.api.operations.table_settings`'s; the
TableDescription they return :mod:`dynamokv.api.operations.table_description`'s.
May import: stdlib, :mod:`dynamokv.api.schema.catalog`, :mod:`dynamokv.api.errors`,
:mod:`dynamokv.api.indexes`, :mod:`dynamokv.api.operations.common`,
:mod:`dynamokv.api.operations.table_description`, :mod:`dynamokv.api.streams`
(StreamSpecification), :mod:`dynamokv.api.maintenance` (counts),
:mod:`dynamokv.api.schema.table_requests` (request parsing and validation).

Tables are ACTIVE as soon as CreateTable returns (there is nothing to provision), so SDK
waiters finish at once. Throughput settings are stored and echoed back, never enforced.
Secondary indexes are stored with the table. A global index created with the table is ACTIVE at
once (it is empty, like the table); one created by UpdateTable is CREATING until its backfill
(:mod:`dynamokv.api.indexes.backfill`) has indexed the existing items. Deleting a table or a
global index drops the index's bucket in the background; a deleted table's streams stay
readable for 24 hours (:func:`dynamokv.api.streams.keep_deleted`).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from dynamokv.api import streams
from dynamokv.api.errors import ResourceInUseException, ValidationException
from dynamokv.api.indexes.backfill import resume_backfills
from dynamokv.api.indexes.drop import drop_buckets
from dynamokv.api.indexes.layout import ACTIVE, CREATING, stored_gsi_buckets
from dynamokv.api.indexes.node import work
from dynamokv.api.indexes.retry import retried
from dynamokv.api.maintenance import index_counts, table_counts
from dynamokv.api.operations.common import ApiContext, Params
from dynamokv.api.operations.table_description import deleted_description, describe
from dynamokv.api.schema.catalog import TableInfo
from dynamokv.api.schema.table_requests import (
    INVALID,
    check_definitions,
    check_on_demand_mode,
    on_demand_warm,
    parse_billing,
    parse_definitions,
    parse_index_schemas,
    parse_indexes,
    parse_key_schema,
    parse_on_demand,
    parse_table_class,
    parse_tags,
    parse_warm,
    refuse_unsupported,
)

log = logging.getLogger("dynamokv.api.operations.tables")


async def create_table(ctx: ApiContext, params: Params) -> dict[str, Any]:
    name = params.table_name()
    definitions = parse_definitions(params)
    schema = parse_key_schema(params, "KeySchema", "")
    local = parse_index_schemas(params, "LocalSecondaryIndexes", False)
    global_ = parse_index_schemas(params, "GlobalSecondaryIndexes", True)
    key_names = [e["AttributeName"] for e in schema]
    for _, _, index_schema in local + global_:
        key_names += [e["AttributeName"] for e in index_schema]
    # DynamoDB matches AttributeDefinitions against the keys before the other index rules.
    check_definitions(definitions, key_names, bool(local or global_))
    mode, throughput = parse_billing(params, creating=True)
    refuse_unsupported(params, ("ResourcePolicy", "GlobalTableSourceArn",
                                "GlobalTableSettingsReplicationMode"))
    on_demand = parse_on_demand(params, creating=True)
    check_on_demand_mode(on_demand or {}, mode or "PROVISIONED")
    warm = parse_warm(params)
    provisioned = (mode or "PROVISIONED") == "PROVISIONED"
    lsis = parse_indexes(local, False, provisioned, schema)
    gsis = parse_indexes(global_, True, provisioned, schema)
    names = [index["IndexName"] for index in lsis + gsis]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ValidationException(INVALID + f"Duplicate index name: {duplicate}")
    tags = parse_tags(params)
    stream = streams.parse_spec(params, creating=True)
    description: dict[str, Any] = {
        "TableName": name,
        "TableId": str(ctx.ids()),
        "KeySchema": schema,
        "AttributeDefinitions": definitions,
        "CreationDateTime": round(ctx.clock(), 3),
        "BillingMode": mode or "PROVISIONED",
    }
    if throughput is not None:
        description["ProvisionedThroughput"] = throughput
    if on_demand:
        description["OnDemandThroughput"] = on_demand
    if warm:
        description["WarmThroughput"] = warm if provisioned else on_demand_warm(warm)
    if lsis:
        description["LocalSecondaryIndexes"] = lsis
    if gsis:
        # Empty like the table: nothing to backfill.
        description["GlobalSecondaryIndexes"] = [{**g, "IndexStatus": ACTIVE} for g in gsis]
    if tags:
        description["Tags"] = tags
    sse = params.mapping("SSESpecification")
    if sse is not None:
        description["SSESpecification"] = sse
    if stream is not None:
        streams.apply_spec(description, stream, ctx.clock(), updating=False)
    table_class = parse_table_class(params)
    if table_class is not None:
        description["TableClass"] = table_class
    if params.boolean("DeletionProtectionEnabled"):
        description["DeletionProtectionEnabled"] = True
    info = await ctx.catalog.create(description)
    return {"TableDescription": describe(ctx, info)}


async def describe_table(ctx: ApiContext, params: Params) -> dict[str, Any]:
    info = await ctx.catalog.require(params.table_name(), fresh=True)
    resume_backfills(ctx, work(ctx), info)  # a CREATING index whose backfill's node is gone
    out = describe(ctx, info)
    out.update(await table_counts(ctx, info))
    counted = await index_counts(ctx, info)
    for kind in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes"):
        for index in out.get(kind) or ():
            items, size = counted.get(index["IndexName"], (0, 0))
            index.update(ItemCount=items, IndexSizeBytes=size)
    return {"Table": out}


async def list_tables(ctx: ApiContext, params: Params) -> dict[str, Any]:
    start = params.string("ExclusiveStartTableName")
    limit = params.integer("Limit", minimum=1, maximum=100) or 100
    names, more = await ctx.catalog.names(start, limit)
    out: dict[str, Any] = {"TableNames": names}
    if more and names:
        out["LastEvaluatedTableName"] = names[-1]
    return out


async def delete_table(ctx: ApiContext, params: Params) -> dict[str, Any]:
    name = params.table_name()

    def check(description: dict[str, Any]) -> None:
        if description.get("DeletionProtectionEnabled"):
            raise ValidationException(
                "Resource cannot be deleted as it is currently protected against deletion. "
                "Disable deletion protection first."
            )
        for index in description.get("GlobalSecondaryIndexes") or ():
            if index.get("IndexStatus", CREATING) != ACTIVE or index.get("RepairNeeded"):
                raise ResourceInUseException(
                    "Attempt to change a resource which is still in use: Cannot delete table "
                    "while indexes are being created, updated, or deleted."
                )

    info = await ctx.catalog.delete(name, check)
    await _keep_streams(ctx, info)
    # Table ids are never reused, so the old items are unreachable at once; removing them may
    # take long on a big table and need not delay the answer.
    drop_buckets(ctx, [info.bucket, *stored_gsi_buckets(info.description)],
                 f"drop of table {name}")
    return {"TableDescription": deleted_description(describe(ctx, info, status="DELETING"))}


async def _keep_streams(ctx: ApiContext, info: TableInfo) -> None:
    """Keep the deleted table's streams readable for 24 hours, as DynamoDB does. The table
    is gone already, so a failure here (after retries) is logged, not answered: the stream
    then ends with the table."""
    if not info.description.get("LatestStreamLabel"):
        return
    try:
        await retried(partial(streams.keep_deleted, ctx, info))
    except Exception:
        log.exception("keeping the streams of deleted table %s failed", info.name)
