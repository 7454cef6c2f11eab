"""UpdateTable: billing and throughput, streams, capacity hints, deletion protection, table
class, and global secondary index Create / Update / Delete actions.

Owns: :func:`update_table`, the parsing and checks of GlobalSecondaryIndexUpdates
(:func:`parse_gsi_actions`) and DynamoDB's messages for them (``NO_CHANGE``, ...).
May import: stdlib, :mod:`dynamokv.api.schema.catalog`, :mod:`dynamokv.api.errors`,
:mod:`dynamokv.api.indexes`, :mod:`dynamokv.api.operations.common`,
:mod:`dynamokv.api.operations.table_description`, :mod:`dynamokv.api.streams`,
:mod:`dynamokv.api.schema.table_requests`.

An index created here is CREATING, with this node's backfill lease, until its backfill has
indexed the existing items; the buckets of deleted indexes are dropped in the background.
"""

from __future__ import annotations

import copy
from typing import Any

from dynamokv.api import streams
from dynamokv.api.errors import (
    LimitExceededException,
    ResourceNotFoundException,
    ValidationException,
)
from dynamokv.api.indexes.backfill import lease_fields, start_backfill
from dynamokv.api.indexes.drop import drop_buckets
from dynamokv.api.indexes.layout import CREATING, stored_gsi_buckets
from dynamokv.api.indexes.node import work
from dynamokv.api.operations.common import ApiContext, Params
from dynamokv.api.operations.table_description import describe
from dynamokv.api.schema.catalog import gsi_bucket
from dynamokv.api.schema.table_requests import (
    INVALID,
    MAX_GSI,
    check_on_demand_mode,
    on_demand_warm,
    parse_billing,
    parse_definitions,
    parse_index_name,
    parse_key_schema,
    parse_on_demand,
    parse_projection,
    parse_table_class,
    parse_throughput,
    parse_warm,
    refuse_unsupported,
    set_index_throughput,
)

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
    set_index_throughput(
        index, p, provisioned,
        missing=f"Both ReadCapacityUnits and WriteCapacityUnits must be specified for index: "
        f"{name}",
        unwanted=f"Neither ReadCapacityUnits nor WriteCapacityUnits can be specified for "
        f"index: {name} when BillingMode is PAY_PER_REQUEST")
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


def _schema_text(schema: list[dict[str, str]], types: dict[str, str]) -> str:
    return ", ".join(f"SchemaElement: key{{{e['AttributeName']}:{types[e['AttributeName']]}:"
                     f"{e['KeyType']}}}" for e in schema)


def _refuse_redefined_keys(actions: list[tuple[str, str, Params]], old: dict[str, Any],
                           given: list[dict[str, str]]) -> None:
    """A created index whose key attribute the request defines with another type than the
    table's stored definition (the key of the table or of another index) is refused, as
    DynamoDB refuses it: later writes could not be held to both types."""
    stored = {d["AttributeName"]: d["AttributeType"] for d in old["AttributeDefinitions"]}
    types = {**stored, **{d["AttributeName"]: d["AttributeType"] for d in given}}
    schemas = [old["KeySchema"]] + [
        index["KeySchema"] for kind in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes")
        for index in old.get(kind) or ()]
    for action, _, p in actions:
        if action != "Create":
            continue
        created = parse_key_schema(p, "KeySchema", "", multi=True)
        for element in created:
            name = element["AttributeName"]
            if name not in stored or stored[name] == types[name]:
                continue
            existing = next(s for s in schemas if any(e["AttributeName"] == name for e in s))
            raise ValidationException(
                INVALID + "Attributes cannot be redefined. Please check that your attribute "
                "has the same type as previously defined. Existing schema: Schema:["
                f"{_schema_text(existing, stored)}] New schema: Schema:["
                f"{_schema_text(created, types)}]")


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
    table_class = parse_table_class(params)
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
                    # DescribeTable keeps telling when the table last became on-demand.
                    new["LastPayPerRequest"] = old.get("BillingModeUpdated",
                                                        old.get("CreationDateTime"))
            changed = True
        if on_demand:
            _apply_on_demand(new, on_demand)
            changed = True
        if warm:
            _apply_warm(new, warm)
            if new.get("BillingMode") == "PAY_PER_REQUEST":
                new["WarmThroughput"] = on_demand_warm(warm, new["WarmThroughput"])
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
            _refuse_redefined_keys(actions, old, new_definitions)
            # Only a Create uses them; an entry re-typing a defined attribute that the created
            # index does not use is ignored, as DynamoDB ignores it (the stored one stays).
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
        if table_class is not None:
            if table_class != old.get("TableClass", "STANDARD"):
                new["TableClassUpdated"] = round(ctx.clock(), 3)
            new["TableClass"] = table_class
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
