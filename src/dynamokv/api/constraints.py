"""DynamoDB's model constraints on a request's members, all checked before anything else.

Owns: the constraint shapes of each operation's request (members that must not be null, string
lengths and patterns, enum value sets, list and map lengths, number ranges), kept in the order
DynamoDB lists their violations, the way DynamoDB renders the offending values (Java's
``toString``: ``[a, b]``, ``{k=v}``, ``KeySchemaElement(attributeName=pk, keyType=HASH)``), and
:func:`check`, which reports every violation of a request -- at most ten -- in one
``N validation errors detected: ...; ...`` ValidationException, as DynamoDB does before any
semantic check ("One or more parameter values were invalid: ..." and the like come after,
alone, from the handlers).
May import: stdlib, orjson, :func:`dynamokv.api.operations.common.validation_errors`, and the
enumerations of :mod:`dynamokv.api.expressions.legacy`, :mod:`dynamokv.api.schema.table_requests`,
:mod:`dynamokv.api.streams` and :mod:`dynamokv.api.operations.items`.

The handlers keep their own checks (they read every member through ``Params``), so an operation
without a shape here, or a member whose shape says nothing, is refused exactly as before, one
violation at a time. A member of the wrong JSON type stops this pass: DynamoDB answers that with
a SerializationException while reading the request, before validating it, and the handler does.
Where DynamoDB's order was recorded (dynalite's tests, written against AWS, list the messages
of many-violation requests) the members are in that order; the rest follow the API model.
"""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from dynamokv.api.expressions.legacy import ACTIONS, CONDITIONAL_OPERATORS, OPERATORS
from dynamokv.api.operations.common import validation_errors
from dynamokv.api.operations.items import RETURN_ON_FAILURE, RETURN_VALUES
from dynamokv.api.schema.table_requests import (
    ATTRIBUTE_TYPES,
    BILLING_MODES,
    KEY_TYPES,
    MAX_NON_KEY,
    PROJECTION_TYPES,
)
from dynamokv.api.streams import VIEW_TYPES

NAME_PATTERN = "[a-zA-Z0-9_.-]+"
_MODEL = "com.amazonaws.dynamodb.v20120810."


# ------------------------------------------------------------------------------ shapes


@dataclass(frozen=True)
class Str:
    pattern: str | None = None
    min: int | None = None
    max: int | None = None
    enum: tuple[str, ...] | None = None
    table: bool = False  # a table name: an ARN's table part is what the rules judge


@dataclass(frozen=True)
class Num:
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class Lst:
    item: Shape | None = None
    min: int | None = None
    max: int | None = None
    bare: bool = False  # DynamoDB words this member's length errors without the value


@dataclass(frozen=True)
class Mp:
    value: Shape | None = None
    min: int | None = None
    keys: Str | None = None  # every key's rules, one "Map keys must satisfy" error for the map
    values: tuple[int, int] | None = None  # each value's list length, one "Map value" error


@dataclass(frozen=True)
class Attr:
    """An AttributeValue: no constraint of the model's, rendered as Java's object reference."""


@dataclass(frozen=True)
class Member:
    name: str
    shape: Shape | None = None
    required: bool = False


@dataclass(frozen=True)
class Struct:
    java: str  # the model class, as DynamoDB's rendering names it
    members: tuple[Member, ...]
    shown: tuple[str, ...] = ()  # the rendering's member order, when not ``members``'


Shape = Str | Num | Lst | Mp | Attr | Struct


class _WrongType(Exception):
    """A member of the wrong JSON type: the handler answers with a SerializationException."""


# ------------------------------------------------------------------------------ the pass


def check(operation: str, body: dict[str, Any]) -> None:
    """Raise one ValidationException naming every constraint ``body`` violates (at most ten)."""
    shape = REQUESTS.get(operation)
    if shape is None:
        return
    errors: list[str] = []
    try:
        _struct(body, shape, "", errors)
    except _WrongType:
        return
    if errors:
        raise validation_errors(errors)


def violation(value: Any, shape: Shape | None, path: str, rule: str, *, bare: bool = False
              ) -> str:
    shown = "" if bare else "null " if value is None else f"'{render(value, shape)}' "
    return f"Value {shown}at '{path}' failed to satisfy constraint: {rule}"


def _label(name: str) -> str:
    return name[:1].lower() + name[1:]


def _walk(value: Any, shape: Shape | None, path: str, errors: list[str]) -> None:
    if shape is None or isinstance(shape, Attr):
        return
    if isinstance(shape, Struct):
        _struct(value, shape, path + ".", errors)
    elif isinstance(shape, Str):
        _string(value, shape, path, errors)
    elif isinstance(shape, Num):
        _number(value, shape, path, errors)
    elif isinstance(shape, Lst):
        _list(value, shape, path, errors)
    else:
        _map(value, shape, path, errors)


def _struct(value: Any, shape: Struct, prefix: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        raise _WrongType
    get = value.get
    for member in shape.members:
        # Most members of a request shape are absent: build a path only for a present or
        # missing required one (every request walks this).
        item = get(member.name)
        if item is None:
            if member.required:
                errors.append(violation(None, None, prefix + _label(member.name),
                                        "Member must not be null"))
            continue
        _walk(item, member.shape, prefix + _label(member.name), errors)


def string_rules(text: str, shape: Str) -> list[str]:
    """The rules ``text`` breaks, in DynamoDB's order: pattern, then lengths, then the enum."""
    if shape.table and text.startswith("arn:"):
        _, _, resource = text.partition(":table/")
        if resource and "/" not in resource:  # newer SDKs pass a table ARN for its name
            text = resource
    broken = []
    if shape.pattern is not None and not _compiled(shape.pattern).fullmatch(text):
        broken.append(f"Member must satisfy regular expression pattern: {shape.pattern}")
    if shape.min is not None and len(text) < shape.min:
        broken.append(f"Member must have length greater than or equal to {shape.min}")
    if shape.max is not None and len(text) > shape.max:
        broken.append(f"Member must have length less than or equal to {shape.max}")
    if shape.enum is not None and text not in shape.enum:
        broken.append(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    return broken


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # The shapes hold a handful of patterns; ``re.fullmatch`` would look each up per call.
    return re.compile(pattern)


def _string(value: Any, shape: Str, path: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        raise _WrongType
    errors.extend(violation(value, shape, path, rule) for rule in string_rules(value, shape))


def _number(value: Any, shape: Num, path: str, errors: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _WrongType
    if isinstance(value, float):
        if not value.is_integer():
            raise _WrongType
        value = int(value)
    if shape.min is not None and value < shape.min:
        errors.append(violation(
            value, shape, path, f"Member must have value greater than or equal to {shape.min}"))
    if shape.max is not None and value > shape.max:
        errors.append(violation(
            value, shape, path, f"Member must have value less than or equal to {shape.max}"))


def _lengths(size: int, low: int | None, high: int | None) -> list[str]:
    broken = []
    if low is not None and size < low:
        broken.append(f"Member must have length greater than or equal to {low}")
    if high is not None and size > high:
        broken.append(f"Member must have length less than or equal to {high}")
    return broken


def _list(value: Any, shape: Lst, path: str, errors: list[str]) -> None:
    if not isinstance(value, list):
        raise _WrongType
    for rule in _lengths(len(value), shape.min, shape.max):
        errors.append(violation(value, shape, path, rule, bare=shape.bare))
    if shape.item is None or isinstance(shape.item, Attr):
        return  # nothing to judge inside
    for i, item in enumerate(value, 1):
        if item is not None:
            _walk(item, shape.item, f"{path}.{i}.member", errors)


def _map(value: Any, shape: Mp, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        raise _WrongType
    for rule in _lengths(len(value), shape.min, None):
        errors.append(violation(value, shape, path, rule))
    if shape.keys is not None and any(string_rules(k, shape.keys) for k in value):
        rules = [f"Member must have length less than or equal to {shape.keys.max}",
                 f"Member must have length greater than or equal to {shape.keys.min}",
                 f"Member must satisfy regular expression pattern: {shape.keys.pattern}"]
        errors.append(violation(value, shape, path,
                                f"Map keys must satisfy constraint: [{', '.join(rules)}]"))
    if shape.values is not None:
        low, high = shape.values
        if any(isinstance(v, list) and not low <= len(v) <= high for v in value.values()):
            rules = [f"Member must have length less than or equal to {high}",
                     f"Member must have length greater than or equal to {low}"]
            errors.append(violation(value, shape, path,
                                    f"Map value must satisfy constraint: [{', '.join(rules)}]"))
    if shape.value is None or isinstance(shape.value, Attr):
        return  # an item's attributes: none is visited (an item may have 600,000)
    for key, item in value.items():
        if item is not None:
            _walk(item, shape.value, f"{path}.{key}.member", errors)


# ------------------------------------------------------------------------------ rendering


def render(value: Any, shape: Shape | None) -> str:
    """``value`` as DynamoDB shows it in a violation: Java's ``toString`` of the model object."""
    if value is None:
        return "null"
    if isinstance(shape, Attr):
        digest = zlib.crc32(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
        return f"{_MODEL}AttributeValue@{digest:08x}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        item = shape.item if isinstance(shape, Lst) else None
        return "[" + ", ".join(render(v, item) for v in value) + "]"
    if isinstance(value, dict):
        if isinstance(shape, Struct):
            return _render_struct(value, shape)
        inner = shape.value if isinstance(shape, Mp) else None
        return "{" + ", ".join(f"{k}={render(v, inner)}" for k, v in value.items()) + "}"
    return str(value)


def _render_struct(value: dict[str, Any], shape: Struct) -> str:
    shapes = {m.name: m.shape for m in shape.members}
    names = shape.shown or tuple(shapes)
    fields = ", ".join(f"{_label(n)}={render(value.get(n), shapes.get(n))}" for n in names)
    return f"{shape.java}({fields})"


# ------------------------------------------------------------------------------ the model

RETURN_CAPACITY = ("INDEXES", "TOTAL", "NONE")
RETURN_METRICS = ("SIZE", "NONE")
SELECTS = ("SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES")

TABLE_NAME = Str(NAME_PATTERN, 3, 255, table=True)
INDEX_NAME = Str(NAME_PATTERN, 3, 255)
ATTRS = Mp(Attr())
NAMES = Lst(Str(), 1, 255)  # AttributesToGet


def _m(name: str, shape: Shape | None = None, required: bool = False) -> Member:
    return Member(name, shape, required)


def _enum(name: str, values: tuple[str, ...]) -> Member:
    return Member(name, Str(enum=values))


CAPACITY = _enum("ReturnConsumedCapacity", RETURN_CAPACITY)
METRICS = _enum("ReturnItemCollectionMetrics", RETURN_METRICS)
RETURNS = _enum("ReturnValues", RETURN_VALUES)
ON_FAILURE = _enum("ReturnValuesOnConditionCheckFailure", RETURN_ON_FAILURE)
JOINER = _enum("ConditionalOperator", CONDITIONAL_OPERATORS)
TABLE = _m("TableName", TABLE_NAME, True)

EXPECTED = _m("Expected", Mp(Struct("ExpectedAttributeValue", (
    _m("Value", Attr()), _m("Exists"), _m("ComparisonOperator", Str(enum=OPERATORS)),
    _m("AttributeValueList", Lst(Attr())),
))))
CONDITIONS = Mp(Struct("Condition", (
    _m("AttributeValueList", Lst(Attr())), _m("ComparisonOperator", Str(enum=OPERATORS), True),
)))
UPDATES = _m("AttributeUpdates", Mp(Struct("AttributeValueUpdate", (
    _m("Value", Attr()), _m("Action", Str(enum=ACTIONS)),
))))

KEY_ELEMENT = Struct("KeySchemaElement", (
    _m("AttributeName", Str(), True), _m("KeyType", Str(enum=KEY_TYPES), True),
))
DEFINITIONS = Lst(Struct("AttributeDefinition", (
    _m("AttributeName", Str(), True), _m("AttributeType", Str(enum=ATTRIBUTE_TYPES), True),
)))
# DynamoDB lists WriteCapacityUnits' violations before ReadCapacityUnits'.
THROUGHPUT = Struct("ProvisionedThroughput", (
    _m("WriteCapacityUnits", Num(1), True), _m("ReadCapacityUnits", Num(1), True),
), shown=("ReadCapacityUnits", "WriteCapacityUnits"))
PROJECTION = Struct("Projection", (
    _m("ProjectionType", Str(enum=PROJECTION_TYPES)),
    _m("NonKeyAttributes", Lst(Str(), 1, MAX_NON_KEY)),
))
LOCAL_INDEX = Struct("LocalSecondaryIndex", (
    _m("IndexName", INDEX_NAME, True), _m("KeySchema", Lst(KEY_ELEMENT, 1, 2), True),
    _m("Projection", PROJECTION, True),
))
# A global index's key may have up to four HASH and four RANGE attributes (the handler's rules).
GLOBAL_INDEX = Struct("GlobalSecondaryIndex", (
    _m("IndexName", INDEX_NAME, True), _m("KeySchema", Lst(KEY_ELEMENT, 1), True),
    _m("Projection", PROJECTION, True), _m("ProvisionedThroughput", THROUGHPUT),
))
INDEX_UPDATE = Struct("GlobalSecondaryIndexUpdate", (
    _m("Update", Struct("UpdateGlobalSecondaryIndexAction", (
        _m("IndexName", INDEX_NAME, True), _m("ProvisionedThroughput", THROUGHPUT)))),
    _m("Create", Struct("CreateGlobalSecondaryIndexAction", (
        _m("IndexName", INDEX_NAME, True), _m("KeySchema", Lst(KEY_ELEMENT, 1), True),
        _m("Projection", PROJECTION, True), _m("ProvisionedThroughput", THROUGHPUT)))),
    _m("Delete", Struct("DeleteGlobalSecondaryIndexAction", (
        _m("IndexName", INDEX_NAME, True),))),
))
STREAM = Struct("StreamSpecification", (
    _m("StreamEnabled", None, True), _m("StreamViewType", Str(enum=VIEW_TYPES)),
))

WRITE_REQUEST = Struct("WriteRequest", (
    _m("PutRequest", Struct("PutRequest", (_m("Item", ATTRS, True),))),
    _m("DeleteRequest", Struct("DeleteRequest", (_m("Key", ATTRS, True),))),
))
KEYS_AND_ATTRIBUTES = Struct("KeysAndAttributes", (
    _m("Keys", Lst(ATTRS, 1, 100), True), _m("AttributesToGet", NAMES), _m("ConsistentRead"),
    _m("ProjectionExpression"), _m("ExpressionAttributeNames"),
))
TABLE_KEYS = Str(NAME_PATTERN, 3, 255, table=True)  # newer SDKs key batches by ARN too


def _transact(java: str, first: Member, *rest: Member) -> Member:
    """One kind of a transaction's item: its key or item, table name and members."""
    return _m(java, Struct(java, (first, _m("TableName", TABLE_NAME, True), *rest)))


TRANSACT_WRITE = Struct("TransactWriteItem", (
    _transact("ConditionCheck", _m("Key", ATTRS, True),
              _m("ConditionExpression", Str(), True), ON_FAILURE),
    _transact("Put", _m("Item", ATTRS, True), ON_FAILURE),
    _transact("Delete", _m("Key", ATTRS, True), ON_FAILURE),
    _transact("Update", _m("Key", ATTRS, True), _m("UpdateExpression", Str(), True),
              ON_FAILURE),
))
TRANSACT_GET = Struct("TransactGetItem", (
    _transact("Get", _m("Key", ATTRS, True)),
))


def _request(*members: Member) -> Struct:
    return Struct("", members)


TABLE_ONLY = _request(TABLE)

REQUESTS: dict[str, Struct] = {
    "GetItem": _request(CAPACITY, _m("AttributesToGet", NAMES), TABLE, _m("Key", ATTRS, True)),
    "PutItem": _request(CAPACITY, TABLE, _m("Item", ATTRS, True), JOINER, EXPECTED, RETURNS,
                        METRICS, ON_FAILURE),
    "DeleteItem": _request(CAPACITY, TABLE, RETURNS, METRICS, _m("Key", ATTRS, True), JOINER,
                           EXPECTED, ON_FAILURE),
    "UpdateItem": _request(CAPACITY, TABLE, METRICS, RETURNS, _m("Key", ATTRS, True), JOINER,
                           EXPECTED, UPDATES, ON_FAILURE),
    "Query": _request(_enum("Select", SELECTS), _m("IndexName", INDEX_NAME), CAPACITY,
                      _m("QueryFilter", CONDITIONS), TABLE, JOINER, _m("AttributesToGet", NAMES),
                      _m("Limit", Num(1)), _m("KeyConditions", CONDITIONS),
                      _m("ExclusiveStartKey", ATTRS)),
    "Scan": _request(_m("Limit", Num(1)), _m("TotalSegments", Num(1, 1000000)), CAPACITY,
                     _m("AttributesToGet", NAMES), _enum("Select", SELECTS), TABLE,
                     _m("ExclusiveStartKey", ATTRS), _m("Segment", Num(0, 999999)),
                     _m("ScanFilter", CONDITIONS), JOINER, _m("IndexName", INDEX_NAME)),
    "BatchGetItem": _request(CAPACITY, _m("RequestItems", Mp(
        KEYS_AND_ATTRIBUTES, 1, keys=TABLE_KEYS), True)),
    "BatchWriteItem": _request(CAPACITY, METRICS, _m("RequestItems", Mp(
        Lst(WRITE_REQUEST), 1, keys=TABLE_KEYS, values=(1, 25)), True)),
    "CreateTable": _request(
        _m("AttributeDefinitions", DEFINITIONS, True), TABLE,
        _enum("BillingMode", BILLING_MODES), _m("ProvisionedThroughput", THROUGHPUT),
        _m("KeySchema", Lst(KEY_ELEMENT, 1, 2), True),
        _m("LocalSecondaryIndexes", Lst(LOCAL_INDEX)),
        _m("GlobalSecondaryIndexes", Lst(GLOBAL_INDEX)),
        _m("StreamSpecification", STREAM)),
    "UpdateTable": _request(
        _m("AttributeDefinitions", DEFINITIONS), TABLE, _enum("BillingMode", BILLING_MODES),
        _m("ProvisionedThroughput", THROUGHPUT),
        _m("GlobalSecondaryIndexUpdates", Lst(INDEX_UPDATE)), _m("StreamSpecification", STREAM)),
    "DescribeTable": TABLE_ONLY,
    "DeleteTable": TABLE_ONLY,
    "DescribeTimeToLive": TABLE_ONLY,
    "DescribeContinuousBackups": TABLE_ONLY,
    "UpdateTimeToLive": _request(TABLE, _m("TimeToLiveSpecification", Struct(
        "TimeToLiveSpecification", (_m("Enabled", None, True), _m("AttributeName", Str(), True)),
    ), True)),
    "ListTables": _request(_m("ExclusiveStartTableName", TABLE_KEYS), _m("Limit", Num(1, 100))),
    "TransactWriteItems": _request(
        CAPACITY, METRICS, _m("TransactItems", Lst(TRANSACT_WRITE, 1, 100, bare=True), True)),
    "TransactGetItems": _request(
        CAPACITY, _m("TransactItems", Lst(TRANSACT_GET, 1, 100, bare=True), True)),
}
