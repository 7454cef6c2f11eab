"""Control-plane operations: tables, tags, time to live, endpoints and limits.

Owns: CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable, TagResource,
UntagResource, ListTagsOfResource, DescribeTimeToLive, UpdateTimeToLive, DescribeLimits, and the
TableDescription document they return.
May import: stdlib, :mod:`dynamokv.api.schema.catalog`, :mod:`dynamokv.api.errors`,
:mod:`dynamokv.api.indexes`, :mod:`dynamokv.api.operations.common`,
:mod:`dynamokv.api.streams` (StreamSpecification), :mod:`dynamokv.api.maintenance` (counts),
:mod:`dynamokv.api.schema.table_requests` (request parsing and validation).

Tables are ACTIVE as soon as CreateTable returns (there is nothing to provision), so SDK
waiters finish at once. Throughput settings are stored and echoed back, never enforced.
Secondary indexes are stored with the table. A global index created with the table is ACTIVE at
once (it is empty, like the table); one created by UpdateTable is CREATING until its backfill
(:mod:`dynamokv.api.indexes`) has indexed the existing items. Deleting a table or a global index
drops the index's bucket in the background.
"""

from __future__ import annotations

import copy
from typing import Any

from dynamokv.api import streams
from dynamokv.api.errors import (
    LimitExceededException,
    ResourceInUseException,
    ResourceNotFoundException,
    TableNotFoundException,
    ValidationException,
)
from dynamokv.api.indexes.backfill import (
    BACKFILL_RUNS,
    lease_fields,
    resume_backfills,
    start_backfill,
)
from dynamokv.api.indexes.drop import drop_buckets
from dynamokv.api.indexes.layout import ACTIVE, CREATING, stored_gsi_buckets
from dynamokv.api.indexes.node import work
from dynamokv.api.maintenance import index_counts, table_counts
from dynamokv.api.operations.common import ApiContext, Params, one_error
from dynamokv.api.schema.catalog import INDEX_INTERNAL, TableInfo, gsi_bucket, table_arn
from dynamokv.api.schema.table_requests import (
    INVALID,
    MAX_GSI,
    MAX_TAGS,
    TOO_MANY_TAGS,
    check_definitions,
    check_on_demand_mode,
    index_hints,
    parse_billing,
    parse_definitions,
    parse_index_name,
    parse_index_schemas,
    parse_indexes,
    parse_key_schema,
    parse_on_demand,
    parse_projection,
    parse_tags,
    parse_throughput,
    parse_warm,
    refuse_unsupported,
)

# ------------------------------------------------------------------------------ describe


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
    out.update(streams.describe_fields(ctx, info))
    if d.get("TableClass"):
        out["TableClassSummary"] = {"TableClass": d["TableClass"]}
    if d.get("SSESpecification", {}).get("Enabled"):
        out["SSEDescription"] = {"Status": "ENABLED", "SSEType": "KMS"}
    return out


def _sorted_projection(projection: dict[str, Any]) -> dict[str, Any]:
    if "NonKeyAttributes" not in projection:
        return projection
    return {**projection, "NonKeyAttributes": sorted(projection["NonKeyAttributes"])}


# ------------------------------------------------------------------------------ operations


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
        description["WarmThroughput"] = warm
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
    table_class = params.string("TableClass")
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
    # Table ids are never reused, so the old items are unreachable at once; removing them may
    # take long on a big table and need not delay the answer.
    drop_buckets(ctx, [info.bucket, *stored_gsi_buckets(info.description)],
                 f"drop of table {name}")
    return {"TableDescription": deleted_description(describe(ctx, info, status="DELETING"))}


# DeleteTable answers less than DescribeTable does: no schema, no indexes, no creation time.
_NOT_IN_DELETE = frozenset({
    "CreationDateTime", "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
})


def deleted_description(description: dict[str, Any]) -> dict[str, Any]:
    """The TableDescription of a DeleteTable answer, from the table's full description."""
    return {k: v for k, v in description.items() if k not in _NOT_IN_DELETE}


_ACTIONS = ("Create", "Update", "Delete")
_ONE_ONLINE = ("Subscriber limit exceeded: Only 1 online index can be created or deleted "
               "simultaneously per table")
NO_CHANGE = (
    "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, "
    "GlobalSecondaryIndexUpdates, SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, "
    "ReplicaTransitRoleArn, MultiRegionConsistency, DeletionProtectionEnabled, "
    "OnDemandThroughput, WarmThroughput or TableClass is required"
)


def parse_gsi_actions(params: Params) -> list[tuple[str, str, Params]]:
    """GlobalSecondaryIndexUpdates as (action, index name, its parameters), with the checks
    that need no table: one action per entry, one entry per index, one Create or Delete."""
    raw = params.sequence("GlobalSecondaryIndexUpdates") or []
    actions: list[tuple[str, str, Params]] = []
    for i, element in enumerate(raw, 1):
        p = Params(element, f"globalSecondaryIndexUpdates.{i}.member.")
        present = [a for a in _ACTIONS if p.has(a)]
        if not present:
            raise ValidationException(
                INVALID + "One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate."
                "Create, GlobalSecondaryIndexUpdate.Delete must not be null"
            )
        if len(present) > 1:
            raise ValidationException(
                INVALID + "Only one global secondary index action is allowed per "
                "GlobalSecondaryIndexUpdate object"
            )
        action = present[0]
        nested = p.nested(action)
        assert nested is not None
        actions.append((action, parse_index_name(nested), nested))
    names = [name for _, name, _ in actions]
    for name in names:
        if names.count(name) > 1:
            raise ValidationException(
                INVALID + "Only one global secondary index update per index is allowed "
                f"simultaneously. Index: {name}"
            )
    if sum(action != "Update" for action, _, _ in actions) > 1:
        raise LimitExceededException(_ONE_ONLINE)
    return actions


def _create_index(name: str, p: Params, provisioned: bool,
                  definitions: list[dict[str, str]] | None, creating: dict[str, Any]
                  ) -> dict[str, Any]:
    index: dict[str, Any] = {
        "IndexName": name,
        "KeySchema": parse_key_schema(p, "KeySchema", "", multi=True),
        "Projection": parse_projection(p),
        **creating,
    }
    throughput = parse_throughput(p, "ProvisionedThroughput")
    if provisioned and throughput is None:
        raise ValidationException(
            INVALID + f"Both ReadCapacityUnits and WriteCapacityUnits must be specified for "
            f"index: {name}"
        )
    if not provisioned and throughput is not None:
        raise ValidationException(
            INVALID + f"Neither ReadCapacityUnits nor WriteCapacityUnits can be specified for "
            f"index: {name} when BillingMode is PAY_PER_REQUEST"
        )
    if throughput is not None:
        index["ProvisionedThroughput"] = throughput
    index.update(index_hints(p, name, provisioned))
    if definitions is None:
        raise ValidationException(
            INVALID + f"AttributeDefinitions is not specified for index: {name}"
        )
    defined = {d["AttributeName"] for d in definitions}
    missing = [e["AttributeName"] for e in index["KeySchema"] if e["AttributeName"] not in defined]
    if missing:
        raise ValidationException(
            INVALID + "Some index key attributes are not defined in "
            f"AttributeDefinitions. Keys: [{', '.join(missing)}], AttributeDefinitions: "
            f"[{', '.join(sorted(defined))}]"
        )
    return index


def _gsi_updates(
    actions: list[tuple[str, str, Params]],
    description: dict[str, Any],
    definitions: list[dict[str, str]] | None,
    creating: dict[str, Any],
) -> bool:
    """Apply GlobalSecondaryIndexUpdates to ``description``; a created index gets the members
    in ``creating`` (its status, bucket id and backfill lease). ``definitions``: the request's
    AttributeDefinitions merged with the table's (None: the request has none)."""
    if not actions:
        return False
    gsis: list[dict[str, Any]] = list(description.get("GlobalSecondaryIndexes") or [])
    lsis = {idx["IndexName"] for idx in description.get("LocalSecondaryIndexes") or ()}
    provisioned = description.get("BillingMode", "PROVISIONED") == "PROVISIONED"
    # One index created or deleted at a time: none while another is still being created.
    online = {name for action, name, _ in actions if action != "Update"}
    if online and any(g.get("IndexStatus", CREATING) == CREATING and g["IndexName"] not in online
                      for g in gsis):
        raise LimitExceededException(_ONE_ONLINE)
    for action, name, p in actions:
        existing = {g["IndexName"] for g in gsis}
        if action == "Create":
            if name in existing or name in lsis:
                raise ValidationException("Attempting to create an index which already exists")
            index = _create_index(name, p, provisioned, definitions, creating)
            if len(gsis) >= MAX_GSI:
                raise LimitExceededException(
                    f"Subscriber limit exceeded: Number of global secondary indexes exceeds "
                    f"per-table limit of {MAX_GSI}"
                )
            gsis.append(index)
            continue
        if name in lsis:
            raise ValidationException(
                f"Cannot {action.lower()} an index that is not a GlobalSecondaryIndex: {name}"
            )
        if name not in existing:
            raise ResourceNotFoundException(
                f"Requested resource not found: Index {name} for table "
                f"{description['TableName']}"
            )
        if action == "Update":
            throughput = parse_throughput(p, "ProvisionedThroughput")
            on_demand = parse_on_demand(p, creating=False, subject=f"index : {name}")
            warm = parse_warm(p)
            if not provisioned and (throughput is not None or not (on_demand or warm)):
                raise ValidationException(
                    INVALID + f"The only Updates for index: {name} when TableThroughputMode is "
                    "PAY_PER_REQUEST can be to OnDemandThroughput, WarmThroughput"
                )
            for g in gsis:
                if g["IndexName"] != name:
                    continue
                if throughput is not None:
                    g["ProvisionedThroughput"] = throughput
                if on_demand:
                    _apply_on_demand(g, on_demand, billing=description.get("BillingMode"))
                if warm:
                    _apply_warm(g, warm, subject=f"index {name}")
        else:
            gsis = [g for g in gsis if g["IndexName"] != name]
    if gsis:
        description["GlobalSecondaryIndexes"] = gsis
    else:
        description.pop("GlobalSecondaryIndexes", None)
    return True


async def update_table(ctx: ApiContext, params: Params) -> dict[str, Any]:
    name = params.table_name()
    refuse_unsupported(params, ("ReplicaUpdates", "GlobalTableWitnessUpdates",
                                "MultiRegionConsistency", "GlobalTableSettingsReplicationMode"))
    mode, throughput = parse_billing(params, creating=False)
    on_demand, warm = _capacity_hints(params)
    new_definitions = parse_definitions(params) if params.has("AttributeDefinitions") else None
    params.mapping("SSESpecification")
    stream = streams.parse_spec(params, creating=False)
    params.boolean("DeletionProtectionEnabled")
    params.string("TableClass")
    actions = parse_gsi_actions(params)
    if params.sequence("GlobalSecondaryIndexUpdates") == [] and _other_changes(params):
        raise ValidationException(INVALID + "List of GlobalSecondaryIndexUpdates is empty")
    if any(action != "Update" for action, _, _ in actions):
        _alone_with_an_online_index(params)
    creating = {"IndexStatus": CREATING, "BucketId": ctx.ids().hex[:12],
                **lease_fields(ctx, work(ctx).owner)}
    old_buckets: list[str] = []

    def change(old: dict[str, Any]) -> dict[str, Any]:
        new = copy.deepcopy(old)
        old_buckets[:] = stored_gsi_buckets(old)
        changed = False
        if mode is not None:
            if mode == "PROVISIONED" and throughput is None and (
                old.get("BillingMode") != "PROVISIONED"
            ):
                raise ValidationException(
                    INVALID + "ProvisionedThroughput must be specified when BillingMode is "
                    "PROVISIONED"
                )
            if mode != old.get("BillingMode"):
                new["BillingMode"] = mode
                new["BillingModeUpdated"] = round(ctx.clock(), 3)
                if mode == "PAY_PER_REQUEST":
                    new.pop("ProvisionedThroughput", None)
                else:
                    new.pop("OnDemandThroughput", None)
            changed = True
        if on_demand:
            _apply_on_demand(new, on_demand)
            changed = True
        if warm:
            _apply_warm(new, warm)
            changed = True
        if throughput is not None:
            if new.get("BillingMode") == "PAY_PER_REQUEST":
                raise ValidationException(
                    INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be "
                    "specified when BillingMode is PAY_PER_REQUEST"
                )
            new["ProvisionedThroughput"] = throughput
            changed = True
        definitions = list(new["AttributeDefinitions"])
        if new_definitions is not None:
            # Only a Create uses them; an entry re-typing a defined attribute is ignored, as
            # DynamoDB ignores it (the stored definition stays).
            known = {d["AttributeName"]: d for d in definitions}
            for d in new_definitions:
                known.setdefault(d["AttributeName"], d)
            definitions = list(known.values())
        given = definitions if new_definitions is not None else None
        if _gsi_updates(actions, new, given, creating):
            changed = True
        _index_throughput_follows_billing(old, new)
        used = [e["AttributeName"] for e in new["KeySchema"]]
        for kind in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes"):
            for index in new.get(kind) or ():
                used += [e["AttributeName"] for e in index["KeySchema"]]
        new["AttributeDefinitions"] = [d for d in definitions if d["AttributeName"] in used]
        sse = params.mapping("SSESpecification")
        if sse is not None:
            new["SSESpecification"] = sse
            changed = True
        if stream is not None:
            streams.apply_spec(new, stream, ctx.clock(), updating=True)
            changed = True
        if params.has("DeletionProtectionEnabled"):
            new["DeletionProtectionEnabled"] = params.boolean("DeletionProtectionEnabled")
            changed = True
        if params.has("TableClass"):
            new["TableClass"] = params.string("TableClass")
            changed = True
        if not changed:
            raise ValidationException(NO_CHANGE)
        return new

    info = await ctx.catalog.update(name, change)
    new_buckets = set(stored_gsi_buckets(info.description))
    drop_buckets(ctx, [b for b in old_buckets if b not in new_buckets],
                 f"drop of an index of table {name}")
    for index in info.description.get("GlobalSecondaryIndexes") or ():
        bucket = gsi_bucket(info.table_id, index)
        if bucket not in old_buckets and index.get("IndexStatus") == CREATING:
            start_backfill(ctx, work(ctx), name, index["IndexName"], bucket)
    return {"TableDescription": describe(ctx, info)}


def _index_throughput_follows_billing(old: dict[str, Any], new: dict[str, Any]) -> None:
    """A switch to PROVISIONED needs throughput for every global index (in the same call);
    a switch to PAY_PER_REQUEST drops theirs."""
    if old.get("BillingMode") == new.get("BillingMode"):
        return
    for index in new.get("GlobalSecondaryIndexes") or ():
        if new.get("BillingMode") == "PAY_PER_REQUEST":
            index.pop("ProvisionedThroughput", None)
            continue
        index.pop("OnDemandThroughput", None)
        if "ProvisionedThroughput" not in index:
            raise ValidationException(
                INVALID + f"ProvisionedThroughput must be specified for index: "
                f"{index['IndexName']}"
            )


_NOT_WITH_AN_INDEX = (  # what may not accompany an index Create or Delete, and DynamoDB's words
    ("ProvisionedThroughput", "You cannot create or delete index while updating table IOPS"),
    ("StreamSpecification", "You cannot create or delete index while changing stream status"),
    ("DeletionProtectionEnabled",
     "DeletionProtection modification must be the only operation in the request"),
    ("SSESpecification",
     "Server-Side Encryption modification must be the only operation in the request"),
    ("TableClass", "TableClass modification must be the only operation in the request"),
)


def _alone_with_an_online_index(params: Params) -> None:
    """An index Create or Delete shares an UpdateTable only with BillingMode and index
    Updates."""
    for member, message in _NOT_WITH_AN_INDEX:
        if params.has(member):
            raise ValidationException(INVALID + message)


_UPDATE_MEMBERS = ("BillingMode", "ProvisionedThroughput", "StreamSpecification",
                   "SSESpecification", "DeletionProtectionEnabled", "TableClass",
                   "GlobalSecondaryIndexUpdates", "OnDemandThroughput", "WarmThroughput")


def _capacity_hints(params: Params) -> tuple[dict[str, int] | None, dict[str, int] | None]:
    """UpdateTable's OnDemandThroughput (only with BillingMode) and WarmThroughput (alone)."""
    on_demand = parse_on_demand(params, creating=False)
    warm = parse_warm(params)
    if on_demand is not None and any(params.has(m) for m in _UPDATE_MEMBERS
                                     if m not in ("BillingMode", "OnDemandThroughput")):
        raise ValidationException(
            INVALID + "OnDemandThroughput can only be combined with BillingMode in an "
            "UpdateTable request")
    if warm is not None and any(params.has(m) for m in _UPDATE_MEMBERS if m != "WarmThroughput"):
        raise ValidationException(
            INVALID + "WarmThroughput must be the only operation in the request")
    return on_demand, warm


def _apply_on_demand(new: dict[str, Any], on_demand: dict[str, int], *,
                     billing: str | None = None) -> None:
    """Merge OnDemandThroughput into a table (or, with its table's ``billing``, an index)."""
    check_on_demand_mode(on_demand, billing or new.get("BillingMode", "PROVISIONED"))
    merged = dict(new.get("OnDemandThroughput") or {})
    for member, value in on_demand.items():
        if value == -1:
            merged.pop(member, None)  # -1: no maximum any more
        else:
            merged[member] = value
    if merged:
        new["OnDemandThroughput"] = merged
    else:
        new.pop("OnDemandThroughput", None)


def _apply_warm(new: dict[str, Any], warm: dict[str, int], *, subject: str = "table") -> None:
    current = new.get("WarmThroughput") or {}
    for member, value in warm.items():
        if value < current.get(member, 0):
            raise ValidationException(
                INVALID + f"Requested {member} for WarmThroughput for {subject} is lower than "
                "current WarmThroughput, decreasing WarmThroughput is not supported")
    new["WarmThroughput"] = {**current, **warm}


def _other_changes(params: Params) -> bool:
    """Whether UpdateTable asks for a change besides GlobalSecondaryIndexUpdates."""
    members = ("BillingMode", "ProvisionedThroughput", "StreamSpecification", "SSESpecification",
               "DeletionProtectionEnabled", "TableClass", "OnDemandThroughput", "WarmThroughput")
    return any(params.has(member) for member in members)


# ------------------------------------------------------------------------------ tags, TTL


def _arn_not_found(arn: str) -> ResourceNotFoundException:
    # "ResourcArn" is DynamoDB's own spelling.
    return ResourceNotFoundException(f"Requested resource not found: ResourcArn: {arn} not found")


def _table_of_arn(ctx: ApiContext, arn: str) -> str:
    prefix = f"arn:aws:dynamodb:{ctx.region}:{ctx.account_id}:table/"
    if not arn.startswith("arn:aws:dynamodb:") or ":table/" not in arn:
        raise ValidationException(f"Invalid TableArn: Invalid ResourceArn provided as input {arn}")
    name = arn.split(":table/", 1)[1]
    if "/" in name or not arn.startswith(prefix):
        raise _arn_not_found(arn)
    return name


async def _tagged_table(ctx: ApiContext, params: Params) -> tuple[str, str]:
    arn = params.req_string("ResourceArn")
    name = _table_of_arn(ctx, arn)
    if await ctx.catalog.get(name, fresh=True) is None:
        raise _arn_not_found(arn)
    return arn, name


async def tag_resource(ctx: ApiContext, params: Params) -> dict[str, Any]:
    _, name = await _tagged_table(ctx, params)
    if params.sequence("Tags", required=True) == []:
        raise ValidationException("Atleast one Tag needs to be provided as Input.")
    tags = parse_tags(params)

    def change(old: dict[str, Any]) -> dict[str, Any]:
        merged = {t["Key"]: t["Value"] for t in old.get("Tags") or ()}
        merged.update({t["Key"]: t["Value"] for t in tags})
        if len(merged) > MAX_TAGS:
            raise ValidationException(TOO_MANY_TAGS)
        return {**old, "Tags": [{"Key": k, "Value": v} for k, v in merged.items()]}

    await ctx.catalog.update(name, change)
    return {}


async def untag_resource(ctx: ApiContext, params: Params) -> dict[str, Any]:
    _, name = await _tagged_table(ctx, params)
    keys = params.strings("TagKeys")
    if keys is None:
        raise params.missing("TagKeys")
    if not keys:
        raise ValidationException("Atleast one Tag Key needs to be provided as Input.")
    drop = set(keys)

    def change(old: dict[str, Any]) -> dict[str, Any]:
        kept = [t for t in old.get("Tags") or () if t["Key"] not in drop]
        return {**old, "Tags": kept}

    await ctx.catalog.update(name, change)
    return {}


async def list_tags_of_resource(ctx: ApiContext, params: Params) -> dict[str, Any]:
    _, name = await _tagged_table(ctx, params)
    params.string("NextToken")
    info = await ctx.catalog.require(name, fresh=True)
    return {"Tags": list(info.description.get("Tags") or [])}


async def describe_time_to_live(ctx: ApiContext, params: Params) -> dict[str, Any]:
    info = await ctx.catalog.require(params.table_name(), fresh=True)
    ttl = info.description.get("TimeToLive") or {}
    if ttl.get("Enabled"):
        return {
            "TimeToLiveDescription": {
                "TimeToLiveStatus": "ENABLED",
                "AttributeName": ttl["AttributeName"],
            }
        }
    return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}


async def update_time_to_live(ctx: ApiContext, params: Params) -> dict[str, Any]:
    name = params.table_name()
    spec = params.nested("TimeToLiveSpecification", required=True)
    assert spec is not None
    attribute = spec.req_string("AttributeName")
    if spec.raw("Enabled") is None:
        raise spec.missing("Enabled")
    enabled = spec.boolean("Enabled")
    if not 1 <= len(attribute) <= 255:
        raise one_error(
            f"Value '{attribute}' at 'timeToLiveSpecification.attributeName' failed to satisfy "
            "constraint: Member must have length between 1 and 255"
        )

    def change(old: dict[str, Any]) -> dict[str, Any]:
        current = old.get("TimeToLive") or {}
        if current.get("Enabled") and current.get("AttributeName") != attribute:
            raise ValidationException(
                "TimeToLive is active on a different AttributeName: current AttributeName is "
                + current["AttributeName"]
            )
        if enabled and current.get("Enabled"):
            raise ValidationException("TimeToLive is already enabled")
        if not enabled and not current.get("Enabled"):
            raise ValidationException("TimeToLive is already disabled")
        return {**old, "TimeToLive": {"AttributeName": attribute, "Enabled": enabled}}

    await ctx.catalog.update(name, change)
    return {"TimeToLiveSpecification": {"AttributeName": attribute, "Enabled": enabled}}


async def describe_limits(ctx: ApiContext, params: Params) -> dict[str, Any]:
    return {
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    }


async def describe_continuous_backups(ctx: ApiContext, params: Params) -> dict[str, Any]:
    name = params.table_name()
    if await ctx.catalog.get(name, fresh=True) is None:
        raise TableNotFoundException(f"Table not found: {name}")
    return {
        "ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "DISABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"},
        }
    }
