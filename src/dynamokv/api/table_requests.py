"""Request validation for the table control-plane operations.

Owns: parsing and validating CreateTable/UpdateTable/TagResource parameters (key schema,
provisioned throughput, projections, secondary index definitions, attribute definitions,
billing mode and tags) and the limits and enumerations they are checked against.
May import: stdlib, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.operations_common`.
"""

from __future__ import annotations

from typing import Any

from dynamokv.api.errors import LimitExceededException, ValidationException
from dynamokv.api.operations_common import Params, check_table_name, one_error

INVALID = "One or more parameter values were invalid: "
MAX_LSI = 5
MAX_GSI = 20
MAX_TAGS = 50
KEY_TYPES = ("HASH", "RANGE")
ATTRIBUTE_TYPES = ("B", "N", "S")
BILLING_MODES = ("PROVISIONED", "PAY_PER_REQUEST")
PROJECTION_TYPES = ("ALL", "KEYS_ONLY", "INCLUDE")


def parse_key_schema(params: Params, name: str, what: str) -> list[dict[str, str]]:
    raw = params.sequence(name, required=True)
    assert raw is not None
    if not 1 <= len(raw) <= 2:
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
    if schema[0]["KeyType"] != "HASH":
        raise ValidationException(
            f"Invalid KeySchema: The first KeySchemaElement is not a HASH key type{what}"
        )
    if len(schema) == 2:
        if schema[1]["KeyType"] != "RANGE":
            raise ValidationException(
                f"Invalid KeySchema: The second KeySchemaElement is not a RANGE key type{what}"
            )
        if schema[0]["AttributeName"] == schema[1]["AttributeName"]:
            raise ValidationException(
                "Both the Hash Key and the Range Key element in the KeySchema have the same name"
            )
    return schema


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
    kind = p.enum("ProjectionType", PROJECTION_TYPES, "ALL")
    non_key = p.strings("NonKeyAttributes")
    projection: dict[str, Any] = {"ProjectionType": kind}
    if non_key is not None:
        if kind != "INCLUDE":
            raise ValidationException(
                INVALID + "ProjectionType is " + kind + ", but NonKeyAttributes is specified"
            )
        projection["NonKeyAttributes"] = non_key
    elif kind == "INCLUDE":
        raise ValidationException(
            INVALID + "NonKeyAttributes must not be empty when ProjectionType is INCLUDE"
        )
    return projection


def parse_index_name(p: Params) -> str:
    name = p.req_string("IndexName")
    return check_table_name(name, p.label("IndexName"))


def parse_indexes(
    params: Params,
    name: str,
    is_global: bool,
    provisioned: bool,
    table_schema: list[dict[str, str]],
) -> list[dict[str, Any]]:
    raw = params.sequence(name)
    if raw is None:
        return []
    if not raw:
        raise ValidationException(INVALID + f"List of {name} is empty")
    limit = MAX_GSI if is_global else MAX_LSI
    if len(raw) > limit:
        raise LimitExceededException(
            f"One or more parameter values were invalid: Number of {name} exceeds per-table "
            f"limit of {limit}"
        )
    out: list[dict[str, Any]] = []
    for i, element in enumerate(raw, 1):
        p = Params(element, f"{params.label(name)}.{i}.member.")
        index_name = parse_index_name(p)
        schema = parse_key_schema(p, "KeySchema", "")
        index: dict[str, Any] = {
            "IndexName": index_name,
            "KeySchema": schema,
            "Projection": parse_projection(p),
        }
        if not is_global:
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
                    INVALID + f"Index KeySchema does not have a range key for index: "
                    f"{index_name}"
                )
        else:
            throughput = parse_throughput(p, "ProvisionedThroughput")
            if provisioned and throughput is None:
                raise ValidationException(
                    INVALID + f"ProvisionedThroughput must be specified for index: {index_name}"
                )
            if throughput is not None:
                index["ProvisionedThroughput"] = throughput
        out.append(index)
    return out


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
    return tags


def check_definitions(
    definitions: list[dict[str, str]], key_names: list[str], has_indexes: bool
) -> None:
    defined = [d["AttributeName"] for d in definitions]
    if len(set(defined)) != len(defined):
        raise ValidationException("Cannot have two attributes with the same name")
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
