"""Request validation for the table control-plane operations.

Owns: parsing and validating CreateTable/UpdateTable/TagResource parameters (key schema,
provisioned throughput, projections, secondary index definitions, attribute definitions,
billing mode, tags, OnDemandThroughput and WarmThroughput) and the limits and enumerations they
are checked against; the refusal of members of features dynamokv does not have (global tables,
resource-based policies).
May import: stdlib, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.operations.common`.
"""

from __future__ import annotations

from typing import Any

from dynamokv.api.errors import ValidationException
from dynamokv.api.operations.common import Params, check_table_name, one_error

INVALID = "One or more parameter values were invalid: "
MAX_LSI = 5
MAX_GSI = 20
MAX_TAGS = 50
TOO_MANY_TAGS = "Number of Tags exceed the current limit for the provided ResourceArn"
MAX_KEY_ATTRIBUTES = 4  # HASH (and RANGE) elements of a multi-attribute global index key
MAX_NON_KEY = 20  # NonKeyAttributes of one projection
KEY_TYPES = ("HASH", "RANGE")
ATTRIBUTE_TYPES = ("B", "N", "S")
BILLING_MODES = ("PROVISIONED", "PAY_PER_REQUEST")
PROJECTION_TYPES = ("ALL", "KEYS_ONLY", "INCLUDE")


def parse_key_schema(params: Params, name: str, what: str, *, multi: bool = False
                     ) -> list[dict[str, str]]:
    """A KeySchema: HASH then optional RANGE; ``multi`` (a global index) allows up to
    ``MAX_KEY_ATTRIBUTES`` HASH elements followed by up to as many RANGE elements."""
    raw = params.sequence(name, required=True)
    assert raw is not None
    if not raw or (len(raw) > 2 and not multi):
        raise one_error(
            f"Value '{raw}' at '{params.label(name)}' failed to satisfy constraint: Member must "
            f"have length {'less' if raw else 'greater'} than or equal to {2 if raw else 1}"
        )
    schema: list[dict[str, str]] = []
    for i, element in enumerate(raw, 1):
        p = Params(element, f"{params.label(name)}.{i}.member.")
        attribute = p.req_string("AttributeName")
        if not 1 <= len(attribute) <= 255:
            raise one_error(
                f"Value '{attribute}' at '{p.label('AttributeName')}' failed to satisfy "
                "constraint: Member must have length between 1 and 255"
            )
        key_type = p.enum("KeyType", KEY_TYPES, "")
        if not key_type:
            raise p.missing("KeyType")
        schema.append({"AttributeName": attribute, "KeyType": key_type})
    if multi and len(schema) > 1 and [e["KeyType"] for e in schema] != ["HASH", "RANGE"]:
        _check_multi_schema(schema)
        return schema
    if len(schema) == 2 and schema[0]["AttributeName"] == schema[1]["AttributeName"]:
        raise ValidationException(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name"
        )
    if schema[0]["KeyType"] != "HASH":
        raise ValidationException(
            f"Invalid KeySchema: The first KeySchemaElement is not a HASH key type{what}"
        )
    if len(schema) == 2 and schema[1]["KeyType"] != "RANGE" and not multi:
        raise ValidationException(
            f"Invalid KeySchema: The second KeySchemaElement is not a RANGE key type{what}"
        )
    return schema


def _check_multi_schema(schema: list[dict[str, str]]) -> None:
    """The rules of a multi-attribute global index key (DynamoDB's messages)."""
    names = [e["AttributeName"] for e in schema]
    if len(set(names)) != len(names):
        raise ValidationException(
            "The KeySchema contains multiple key attributes with the same name"
        )
    if schema[0]["KeyType"] != "HASH":
        raise ValidationException(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"
        )
    kinds = [e["KeyType"] for e in schema]
    if kinds != sorted(kinds):  # "HASH" < "RANGE": every HASH before every RANGE
        raise ValidationException(
            INVALID + "All HASH key attributes must precede RANGE key attributes in the KeySchema"
        )
    for kind in KEY_TYPES:
        if kinds.count(kind) > MAX_KEY_ATTRIBUTES:
            raise ValidationException(
                INVALID + "The KeySchema exceeds the maximum allowed number of "
                f"{kind} key attributes"
            )


def parse_throughput(params: Params, name: str) -> dict[str, int] | None:
    p = params.nested(name)
    if p is None:
        return None
    read = p.integer("ReadCapacityUnits", minimum=1)
    write = p.integer("WriteCapacityUnits", minimum=1)
    if read is None:
        raise p.missing("ReadCapacityUnits")
    if write is None:
        raise p.missing("WriteCapacityUnits")
    return {"ReadCapacityUnits": read, "WriteCapacityUnits": write}


def parse_projection(params: Params) -> dict[str, Any]:
    p = params.nested("Projection", required=True)
    assert p is not None
    kind = p.enum("ProjectionType", PROJECTION_TYPES, "")
    non_key = p.strings("NonKeyAttributes")
    shown = f"[{', '.join(non_key)}]" if non_key is not None else ""  # Java's rendering
    if non_key is not None and not 1 <= len(non_key) <= MAX_NON_KEY:
        raise one_error(
            f"Value '{shown}' at '{p.label('NonKeyAttributes')}' failed to satisfy constraint: "
            f"Member must have length {'less' if non_key else 'greater'} than or equal to "
            f"{MAX_NON_KEY if non_key else 1}"
        )
    if non_key is not None and any(not 1 <= len(name) <= 255 for name in non_key):
        raise one_error(
            f"Value '{shown}' at '{p.label('NonKeyAttributes')}' failed to satisfy constraint: "
            "Member must satisfy constraint: [Member must have length less than or equal to 255, "
            "Member must have length greater than or equal to 1]"
        )
    if not kind:
        raise ValidationException(INVALID + "Unknown ProjectionType: null")
    projection: dict[str, Any] = {"ProjectionType": kind}
    if non_key is not None:
        if kind != "INCLUDE":
            raise ValidationException(
                INVALID + "ProjectionType is " + kind + ", but NonKeyAttributes is specified"
            )
        seen: set[str] = set()
        for attribute in non_key:
            if attribute in seen:
                raise ValidationException(
                    INVALID + f"Duplicate element in NonKeyAttributes: {attribute}"
                )
            seen.add(attribute)
        projection["NonKeyAttributes"] = non_key
    elif kind == "INCLUDE":
        raise ValidationException(
            INVALID + "ProjectionType is INCLUDE, but NonKeyAttributes is not specified"
        )
    return projection


def parse_index_name(p: Params) -> str:
    name = p.req_string("IndexName")
    return check_table_name(name, p.label("IndexName"))


IndexEntry = tuple[Params, str, list[dict[str, str]]]  # the request member, name, key schema


def parse_index_schemas(params: Params, name: str, is_global: bool) -> list[IndexEntry]:
    """First pass over Local/GlobalSecondaryIndexes: the list, names and key schemas (checked
    before AttributeDefinitions are matched against the keys, as DynamoDB does)."""
    raw = params.sequence(name)
    if raw is None:
        return []
    if not raw:
        raise ValidationException(INVALID + f"List of {name} is empty")
    limit = MAX_GSI if is_global else MAX_LSI
    if len(raw) > limit:
        what = ("GlobalSecondaryIndex count exceeds the per-table limit of" if is_global
                else "Number of LocalSecondaryIndexes exceeds per-table limit of")
        raise ValidationException(INVALID + f"{what} {limit}")
    out: list[IndexEntry] = []
    for i, element in enumerate(raw, 1):
        p = Params(element, f"{params.label(name)}.{i}.member.")
        out.append((p, parse_index_name(p), parse_key_schema(p, "KeySchema", "", multi=is_global)))
    return out


def set_index_throughput(index: dict[str, Any], p: Params, provisioned: bool, *, missing: str,
                         unwanted: str) -> None:
    """Set a global index's ProvisionedThroughput -- required on a PROVISIONED table (else the
    error ``missing``), refused on a PAY_PER_REQUEST one (``unwanted``: DynamoDB words both
    differently in CreateTable and UpdateTable) -- and its capacity hints."""
    throughput = parse_throughput(p, "ProvisionedThroughput")
    if provisioned and throughput is None:
        raise ValidationException(INVALID + missing)
    if not provisioned and throughput is not None:
        raise ValidationException(INVALID + unwanted)
    if throughput is not None:
        index["ProvisionedThroughput"] = throughput
    index.update(index_hints(p, index["IndexName"], provisioned))


def parse_indexes(
    entries: list[IndexEntry],
    is_global: bool,
    provisioned: bool,
    table_schema: list[dict[str, str]],
) -> list[dict[str, Any]]:
    """Second pass: projections, throughput and the local index rules."""
    out: list[dict[str, Any]] = []
    for p, index_name, schema in entries:
        index: dict[str, Any] = {
            "IndexName": index_name,
            "KeySchema": schema,
            "Projection": parse_projection(p),
        }
        if not is_global:
            _check_local_schema(index_name, schema, table_schema)
        else:
            set_index_throughput(
                index, p, provisioned,
                missing=f"ProvisionedThroughput is not specified for index: {index_name}",
                unwanted=f"ProvisionedThroughput should not be specified for index: "
                f"{index_name} when BillingMode is PAY_PER_REQUEST")
        out.append(index)
    return out


def _check_local_schema(index_name: str, schema: list[dict[str, str]],
                        table_schema: list[dict[str, str]]) -> None:
    if len(table_schema) < 2:
        raise ValidationException(
            INVALID + "Table KeySchema does not have a range key, which is required "
            "when specifying a LocalSecondaryIndex"
        )
    if schema[0]["AttributeName"] != table_schema[0]["AttributeName"]:
        raise ValidationException(
            INVALID + "Index KeySchema does not have the same leading hash key as "
            f"table KeySchema for index: {index_name}. index hash key: "
            f"{schema[0]['AttributeName']}, table hash key: "
            f"{table_schema[0]['AttributeName']}"
        )
    if len(schema) < 2:
        raise ValidationException(
            INVALID + f"Index KeySchema does not have a range key for index: {index_name}"
        )


def parse_tags(params: Params, name: str = "Tags") -> list[dict[str, str]]:
    raw = params.sequence(name)
    if raw is None:
        return []
    tags: list[dict[str, str]] = []
    for i, element in enumerate(raw, 1):
        p = Params(element, f"{params.label(name)}.{i}.member.")
        key = p.req_string("Key")
        value = p.req_string("Value")
        if not 1 <= len(key) <= 128:
            raise one_error(
                f"Value '{key}' at '{p.label('Key')}' failed to satisfy constraint: Member must "
                "have length between 1 and 128"
            )
        if len(value) > 256:
            raise one_error(
                f"Value '{value}' at '{p.label('Value')}' failed to satisfy constraint: Member "
                "must have length less than or equal to 256"
            )
        tags.append({"Key": key, "Value": value})
    for tag in tags:
        if not _tag_text(tag["Key"]):
            raise ValidationException(f"The Tag Key provided is invalid, Key: {tag['Key']}")
        if not _tag_text(tag["Value"]):
            raise ValidationException(
                f"The Tag Value provided is invalid, Value: {tag['Value']}"
            )
        if tag["Key"].startswith("aws:"):
            raise ValidationException(f"Tag Key cannot be prefixed with aws:, Key: {tag['Key']}")
    keys = [tag["Key"] for tag in tags]
    for key in keys:
        if keys.count(key) > 1:
            raise ValidationException(
                f"Duplicate Tag Keys provided as input: Duplicate Tag Key found {key}"
            )
    if len(tags) > MAX_TAGS:
        raise ValidationException(TOO_MANY_TAGS)
    return tags


def _tag_text(text: str) -> bool:
    """Letters, digits and white space of any script, and ``_ . : / = + - @``."""
    return all(ch.isalnum() or ch.isspace() or ch in "_.:/=+-@" for ch in text)


def check_definitions(
    definitions: list[dict[str, str]], key_names: list[str], has_indexes: bool
) -> None:
    defined = [d["AttributeName"] for d in definitions]
    if len(set(defined)) != len(defined):
        duplicate = next(n for n in defined if defined.count(n) > 1)
        raise ValidationException(f"Attribute Name is duplicated: {duplicate}")
    missing = [k for k in dict.fromkeys(key_names) if k not in defined]
    if missing:
        raise ValidationException(
            INVALID + "Some index key attributes are not defined in AttributeDefinitions. "
            f"Keys: [{', '.join(missing)}], AttributeDefinitions: [{', '.join(defined)}]"
        )
    unused = [d for d in defined if d not in key_names]
    if unused:
        if not has_indexes:
            raise ValidationException(
                INVALID + "Number of attributes in KeySchema does not exactly match number of "
                "attributes defined in AttributeDefinitions"
            )
        raise ValidationException(
            INVALID + f"Some AttributeDefinitions are not used. AttributeDefinitions: "
            f"[{', '.join(defined)}], keys used: [{', '.join(dict.fromkeys(key_names))}]"
        )


def parse_definitions(params: Params) -> list[dict[str, str]]:
    raw = params.sequence("AttributeDefinitions", required=True)
    assert raw is not None
    out: list[dict[str, str]] = []
    for i, element in enumerate(raw, 1):
        p = Params(element, f"attributeDefinitions.{i}.member.")
        name = p.req_string("AttributeName")
        if not 1 <= len(name) <= 255:
            raise one_error(
                f"Value '{name}' at '{p.label('AttributeName')}' failed to satisfy "
                "constraint: Member must have length between 1 and 255"
            )
        kind = p.enum("AttributeType", ATTRIBUTE_TYPES, "")
        if not kind:
            raise p.missing("AttributeType")
        out.append({"AttributeName": name, "AttributeType": kind})
    return out


def parse_billing(params: Params, *, creating: bool) -> tuple[str | None, dict[str, int] | None]:
    mode = params.string("BillingMode")
    if mode is not None and mode not in BILLING_MODES:
        raise one_error(
            f"Value '{mode}' at 'billingMode' failed to satisfy constraint: Member must satisfy "
            f"enum value set: [{', '.join(BILLING_MODES)}]"
        )
    throughput = parse_throughput(params, "ProvisionedThroughput")
    effective = mode or ("PROVISIONED" if creating else None)
    if effective == "PROVISIONED" and throughput is None and creating:
        raise ValidationException(
            INVALID + "ReadCapacityUnits and WriteCapacityUnits must both be specified when "
            "BillingMode is PROVISIONED"
        )
    if effective == "PAY_PER_REQUEST" and throughput is not None:
        raise ValidationException(
            INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when "
            "BillingMode is PAY_PER_REQUEST"
        )
    return mode, throughput


# ------------------------------------------------------------------------------ capacity hints

ON_DEMAND_MEMBERS = ("MaxReadRequestUnits", "MaxWriteRequestUnits")
WARM_MEMBERS = ("ReadUnitsPerSecond", "WriteUnitsPerSecond")
# Members of DynamoDB features dynamokv does not have, refused rather than silently dropped:
# the request asks for something (replicas, an access policy) the table would not get.
UNSUPPORTED_MEMBERS = {
    "ResourcePolicy": "dynamokv has no resource-based policies",
    "GlobalTableSourceArn": "dynamokv has no global tables",
    "GlobalTableSettingsReplicationMode": "dynamokv has no global tables",
    "ReplicaUpdates": "dynamokv has no global tables",
    "GlobalTableWitnessUpdates": "dynamokv has no global tables",
    "MultiRegionConsistency": "dynamokv has no global tables",
}


def refuse_unsupported(params: Params, members: tuple[str, ...]) -> None:
    for member in members:
        if params.has(member):
            raise ValidationException(
                INVALID + f"{member} is not supported: {UNSUPPORTED_MEMBERS[member]}")


def parse_on_demand(params: Params, *, creating: bool, subject: str = "table"
                    ) -> dict[str, int] | None:
    """OnDemandThroughput (of the table, or of ``subject`` ``index : NAME``): maximum request
    units (stored and described, never enforced, as ProvisionedThroughput is). On UpdateTable,
    -1 removes a maximum."""
    p = params.nested("OnDemandThroughput")
    if p is None:
        return None
    out: dict[str, int] = {}
    for member in ON_DEMAND_MEMBERS:
        value = p.integer(member)
        if value is None:
            continue
        if value < 1 and not (value == -1 and not creating):
            raise ValidationException(
                INVALID + f"Requested {member} for OnDemandThroughput for {subject} is outside "
                "of valid range")
        out[member] = value
    return out


def check_on_demand_mode(on_demand: dict[str, int], mode: str) -> None:
    """OnDemandThroughput goes with an on-demand table only."""
    if on_demand and mode == "PROVISIONED":
        raise ValidationException(
            INVALID + f"{next(iter(on_demand))} for OnDemandThroughput cannot be specified when "
            "the table BillingMode is PROVISIONED")


TABLE_CLASSES = ("STANDARD", "STANDARD_INFREQUENT_ACCESS")
# The warm throughput every on-demand table has: the least one may configure for such a table.
WARM_BASELINE = {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000}


def parse_table_class(params: Params) -> str | None:
    """TableClass, one of ``TABLE_CLASSES`` (case-sensitive), with DynamoDB's message."""
    value = params.string("TableClass")
    if value is not None and value not in TABLE_CLASSES:
        raise ValidationException(
            "Invalid table-class parameter provided. Please try again with a valid table-class "
            f"value: [{', '.join(TABLE_CLASSES)}].")
    return value


def on_demand_warm(warm: dict[str, int], current: dict[str, int] | None = None
                   ) -> dict[str, int]:
    """An on-demand table's new WarmThroughput: each unit given at least the baseline (a lower
    one is refused, naming the unit), a unit not given keeping its current value or the
    baseline, as DynamoDB fills it."""
    for member, value in warm.items():
        if value < WARM_BASELINE[member]:
            raise ValidationException(
                INVALID + f"Requested {member} for WarmThroughput for table is lower than the "
                f"minimum {member} of {WARM_BASELINE[member]} for an on-demand table")
    return {**WARM_BASELINE, **(current or {}), **warm}


def parse_warm(params: Params) -> dict[str, int] | None:
    """WarmThroughput: the read and write units per second the table is to be ready for
    (stored and described; a node has nothing to pre-warm)."""
    p = params.nested("WarmThroughput")
    if p is None:
        return None
    return {member: value for member in WARM_MEMBERS
            if (value := p.integer(member, minimum=1)) is not None}


def index_hints(p: Params, name: str, provisioned: bool) -> dict[str, Any]:
    """A new global index's OnDemandThroughput and WarmThroughput, as stored."""
    out: dict[str, Any] = {}
    on_demand = parse_on_demand(p, creating=True, subject=f"index : {name}")
    if on_demand:
        check_on_demand_mode(on_demand, "PROVISIONED" if provisioned else "PAY_PER_REQUEST")
        out["OnDemandThroughput"] = on_demand
    warm = parse_warm(p)
    if warm:
        out["WarmThroughput"] = warm
    return out
