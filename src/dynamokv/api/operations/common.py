"""What every operation handler shares: typed access to request fields, the per-node API
context, expression preparation, ReturnValues and consumed-capacity figures.

Owns: :class:`Params` (reading a request's JSON fields with DynamoDB's SerializationException /
ValidationException for wrong types, missing members and out-of-range values),
:class:`ApiContext` (handle, catalog, region/account, clock, ids and randomness, transaction
bookkeeping), :func:`prepare_expressions`,
:func:`capacity` and :class:`CheckFailed` / :class:`Refused` (the ``Abort`` payloads ``cas``
decisions raise).
May import: stdlib, :mod:`dynamokv.api.handle`, :mod:`dynamokv.api.schema.catalog`,
:mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.expressions`.

Handlers never trust the shape of a request: every field goes through :class:`Params`, so a
number where a string belongs, a list where a map belongs or a missing member becomes a 400,
never a ``TypeError`` (which the server would have to report as a 500).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from dynamokv.api.attributes import Item
from dynamokv.api.errors import (
    DynamoDBError,
    SerializationException,
    ValidationException,
)
from dynamokv.api.expressions import (
    Condition,
    ExpressionAttributes,
    Path,
    Projection,
    UpdateExpression,
    legacy,
    parse_condition,
    parse_filter,
    parse_projection,
    parse_update,
)
from dynamokv.api.handle import Abort, NodeHandle
from dynamokv.api.schema.catalog import Catalog, TableInfo

log = logging.getLogger("dynamokv.api")

_TABLE_NAME = re.compile(r"[a-zA-Z0-9_.\-]+")
_JSON_KIND = {str: "STRING_VALUE", int: "NUMBER_VALUE", float: "NUMBER_VALUE", bool: "BOOLEAN"}


def field_label(name: str) -> str:
    """DynamoDB's validation messages name members in lowerCamelCase (``tableName``)."""
    return name[:1].lower() + name[1:]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, dict):
        return "Start of structure or map"
    if isinstance(value, list):
        return "Start of list"
    return _JSON_KIND.get(type(value), "Unexpected value")


def wrong_type(value: Any, wanted: str) -> SerializationException:
    kind = _kind(value)
    if kind.startswith("Start of"):
        return SerializationException(f"{kind} found where not expected")
    return SerializationException(f"{kind} cannot be converted to {wanted}")


def one_error(message: str) -> ValidationException:
    return ValidationException(f"1 validation error detected: {message}")


MAX_LISTED = 10  # DynamoDB lists (and counts) at most ten violations of a request


def validation_errors(messages: list[str]) -> ValidationException:
    """DynamoDB's ``N validation errors detected: a; b`` for (the first ten of) ``messages``;
    :mod:`dynamokv.api.constraints` gathers a whole request's."""
    listed = messages[:MAX_LISTED]
    plural = "s" if len(listed) > 1 else ""
    return ValidationException(
        f"{len(listed)} validation error{plural} detected: {'; '.join(listed)}"
    )


def enum_error(value: str, name: str, allowed: tuple[str, ...]) -> ValidationException:
    return one_error(
        f"Value '{value}' at '{field_label(name)}' failed to satisfy constraint: Member must "
        f"satisfy enum value set: [{', '.join(allowed)}]"
    )


class Params:
    """Typed, validated access to the members of one request (or of one nested structure)."""

    __slots__ = ("body", "large", "prefix")

    def __init__(self, body: Any, prefix: str = "", *, large: bool = False) -> None:
        if not isinstance(body, dict):
            raise wrong_type(body, "structure")
        self.body: dict[str, Any] = body
        self.prefix = prefix
        self.large = large  # a large body (api/bodies.py): its values' work stays off the loop

    def label(self, name: str) -> str:
        return self.prefix + field_label(name)

    def has(self, name: str) -> bool:
        return self.body.get(name) is not None

    def missing(self, name: str) -> ValidationException:
        return one_error(
            f"Value null at '{self.label(name)}' failed to satisfy constraint: Member must not "
            "be null"
        )

    def raw(self, name: str, *, required: bool = False) -> Any:
        value = self.body.get(name)
        if value is None and required:
            raise self.missing(name)
        return value

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self.raw(name, required=required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise wrong_type(value, "String")
        return value

    def req_string(self, name: str) -> str:
        value = self.string(name, required=True)
        assert value is not None
        return value

    def integer(
        self, name: str, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong_type(value, "Integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise SerializationException("NUMBER_VALUE cannot be converted to Integer")
            value = int(value)
        if minimum is not None and value < minimum:
            raise one_error(
                f"Value '{value}' at '{self.label(name)}' failed to satisfy constraint: Member "
                f"must have value greater than or equal to {minimum}"
            )
        if maximum is not None and value > maximum:
            raise one_error(
                f"Value '{value}' at '{self.label(name)}' failed to satisfy constraint: Member "
                f"must have value less than or equal to {maximum}"
            )
        return value

    def boolean(self, name: str) -> bool:
        value = self.raw(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise wrong_type(value, "Boolean")
        return value

    def mapping(self, name: str, *, required: bool = False) -> dict[str, Any] | None:
        value = self.raw(name, required=required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise wrong_type(value, "structure")
        return value

    def req_mapping(self, name: str) -> dict[str, Any]:
        value = self.mapping(name, required=True)
        assert value is not None
        return value

    def sequence(self, name: str, *, required: bool = False) -> list[Any] | None:
        value = self.raw(name, required=required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise wrong_type(value, "list")
        return value

    def strings(self, name: str) -> list[str] | None:
        values = self.sequence(name)
        if values is None:
            return None
        for value in values:
            if not isinstance(value, str):
                raise wrong_type(value, "String")
        return values

    def nested(self, name: str, *, required: bool = False) -> Params | None:
        value = self.mapping(name, required=required)
        return None if value is None else Params(value, self.label(name) + ".")

    def enum(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.string(name)
        if value is None:
            return default
        if value not in allowed:
            raise enum_error(value, self.label(name), allowed)
        return value

    def table_name(self, name: str = "TableName") -> str:
        value = self.req_string(name)
        known = _CHECKED_TABLE_NAMES.get(value)
        if known is not None:
            return known
        checked = check_table_name(value, self.label(name))
        if len(_CHECKED_TABLE_NAMES) < _CHECKED_TABLE_NAMES_MAX:
            _CHECKED_TABLE_NAMES[value] = checked
        return checked


# Table names (or ARNs) already found valid -> the name they stand for: every item request
# checks its table name, and the regular expression and error label cost ~1.5% of a GetItem.
_CHECKED_TABLE_NAMES: dict[str, str] = {}
_CHECKED_TABLE_NAMES_MAX = 4096


def check_table_name(value: str, label: str = "tableName") -> str:
    if value.startswith("arn:"):
        # Newer SDKs may pass a table ARN wherever a table name goes.
        _, _, resource = value.partition(":table/")
        if resource and "/" not in resource:
            value = resource
    # DynamoDB judges the pattern first, then the lengths, and names every rule broken.
    broken = []
    if not _TABLE_NAME.fullmatch(value):
        broken.append("Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
    if len(value) < 3:
        broken.append("Member must have length greater than or equal to 3")
    if len(value) > 255:
        broken.append("Member must have length less than or equal to 255")
    if broken:
        raise validation_errors(
            [f"Value '{value}' at '{label}' failed to satisfy constraint: {rule}"
             for rule in broken]
        )
    return value


# ------------------------------------------------------------------------------ aborts


class CheckFailed(Abort):
    """A condition was false inside a ``cas`` decision; carries the item as it was."""

    def __init__(self, old: Item | None, raw: bytes | None = None) -> None:
        super().__init__("condition failed")
        self.old = old
        self.raw = raw  # the stored bytes of ``old``, when known (their size says if it is large)


class Refused(Abort):
    """A ``cas`` decision hit a DynamoDB error (e.g. an update's runtime type error)."""

    def __init__(self, error: DynamoDBError) -> None:
        super().__init__(error.message)
        self.error = error


# ------------------------------------------------------------------------------ context


@dataclass
class TokenEntry:
    fingerprint: bytes
    created: float
    response: dict[str, Any] | None = None  # None while the transaction runs
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class ApiContext:
    """Everything an operation handler may use, shared by all requests of one node."""

    handle: NodeHandle
    catalog: Catalog
    region: str = "us-east-1"
    account_id: str = "000000000000"
    # Where the handlers get wall time (seconds), fresh ids (TableId, index buckets,
    # transaction ids, lease owners) and random choices: the defaults are production's; the
    # simulator (``dynamokv.simapi``) passes its virtual clock and seeded ones, so a seed replays.
    clock: Callable[[], float] = time.time
    ids: Callable[[], uuid.UUID] = uuid.uuid4
    rng: random.Random = field(default_factory=random.Random)
    # ClientRequestToken -> outcome of TransactWriteItems, kept for ``token_ttl`` seconds.
    tokens: dict[str, TokenEntry] = field(default_factory=dict)
    token_ttl: float = 600.0
    # (bucket, key) of items a transaction of this node is working on.
    locked: set[tuple[str, bytes]] = field(default_factory=set)
    # Background work (dropping a deleted table's items); referenced so it is not collected.
    background: set[asyncio.Task[None]] = field(default_factory=set)
    # Upkeep of global secondary indexes (``dynamokv.api.indexes.upkeep.IndexWork``), made on
    # first use.
    index_work: Any = None

    def spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run ``work`` in the background, logging (not raising) its failure."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("background %s failed", what)

        task = asyncio.get_running_loop().create_task(guarded())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def table(self, params: Params, name: str = "TableName") -> TableInfo:
        return await self.catalog.require(params.table_name(name))


# ------------------------------------------------------------------------------ expressions


@dataclass
class Prepared:
    condition: Condition | None = None
    update: UpdateExpression | None = None
    projection: tuple[Path, ...] | None = None
    filter: Condition | None = None
    # Which parameter the projection / filter came from (they name it in their messages).
    projection_member: str = "ProjectionExpression"
    filter_member: str = "Filter Expression"
    # The update came from AttributeUpdates (its runtime errors are worded differently).
    legacy_update: bool = False

    def update_error(self, error: DynamoDBError) -> DynamoDBError:
        return legacy.update_error(error) if self.legacy_update else error


def _accepted(
    condition: bool, update: bool, projection: bool, filter: bool, legacy_filter: str | None,
    key_condition: bool,
) -> list[str]:
    """The expression and legacy parameters an operation with these parts accepts."""
    names: list[str] = []
    if condition:
        names += ["ConditionExpression", "Expected", "ConditionalOperator"]
    if update:
        names += ["UpdateExpression", "AttributeUpdates"]
    if projection:
        names += ["ProjectionExpression", "AttributesToGet"]
    if filter:
        names += ["FilterExpression"]
        if legacy_filter is not None:
            names += [legacy_filter, "ConditionalOperator"]
    if key_condition:
        names += ["KeyConditionExpression", "KeyConditions"]
    return names


# Every request member prepare_expressions may read. A request with none of them (most PutItem,
# DeleteItem and GetItem calls) prepares to nothing; finding that out by the full walk cost ~2%
# of a PutItem's CPU.
_EXPRESSION_MEMBERS = frozenset({
    "ConditionExpression", "Expected", "ConditionalOperator", "UpdateExpression",
    "AttributeUpdates", "ProjectionExpression", "AttributesToGet", "FilterExpression",
    "QueryFilter", "ScanFilter", "KeyConditionExpression", "KeyConditions",
    "ExpressionAttributeNames", "ExpressionAttributeValues",
})


def prepare_expressions(
    params: Params,
    *,
    condition: bool = False,
    update: bool = False,
    projection: bool = False,
    filter: bool = False,
    extra: Callable[[ExpressionAttributes], None] | None = None,
    legacy_filter: str | None = None,
    key_condition: bool = False,
    legacy_params: bool = True,
) -> Prepared:
    """Parse the expressions a request may carry, judging unused placeholders across all.

    With ``legacy_params`` the pre-expression parameters the operation accepts (Expected,
    AttributeUpdates, AttributesToGet, ``legacy_filter``: QueryFilter / ScanFilter) are
    translated into the same trees (:mod:`dynamokv.api.expressions.legacy`); mixing the two
    kinds in one request is refused as DynamoDB does.
    """
    if extra is None and _EXPRESSION_MEMBERS.isdisjoint(params.body):
        return Prepared()
    accepted = _accepted(condition, update, projection, filter, legacy_filter, key_condition)
    present = {name: params.has(name) for name in accepted}
    if legacy_params:
        legacy.check_not_mixed(present)
    names = params.mapping("ExpressionAttributeNames")
    values = params.mapping("ExpressionAttributeValues")
    legacy.check_maps_have_expressions(present, names is not None, values is not None)
    attrs = ExpressionAttributes(names, values)
    out = Prepared()
    used = False
    joiner = (
        _conditional_operator(params)
        if legacy_params and "ConditionalOperator" in accepted
        else None
    )
    if condition and (text := params.string("ConditionExpression")) is not None:
        out.condition = parse_condition(text, attributes=attrs)
        used = True
    elif condition and legacy_params and (params.has("Expected") or joiner is not None):
        expected = params.raw("Expected") if params.has("Expected") else {}
        out.condition = legacy.expected_condition(expected, joiner)
    if update and (text := params.string("UpdateExpression")) is not None:
        out.update = parse_update(text, attributes=attrs)
        used = True
    elif update and legacy_params and params.has("AttributeUpdates"):
        out.update = legacy.attribute_updates(params.raw("AttributeUpdates"))
        out.legacy_update = True
    if extra is not None:
        extra(attrs)
        used = True
    if filter and (text := params.string("FilterExpression")) is not None:
        out.filter = parse_filter(text, attributes=attrs)
        used = True
    elif filter and legacy_filter is not None and params.has(legacy_filter):
        out.filter = legacy.filter_condition(params.raw(legacy_filter), joiner, legacy_filter)
        out.filter_member = legacy_filter
    elif filter and legacy_filter is not None:
        legacy.check_conditional_operator(0, joiner)
    if projection:
        projection_text = params.string("ProjectionExpression")
        if projection_text is not None:
            parsed: Projection = parse_projection(projection_text, attributes=attrs)
            out.projection = parsed.paths
            used = True
        elif params.has("AttributesToGet"):
            out.projection = legacy.attributes_to_get(
                params.raw("AttributesToGet"), params.label("AttributesToGet")
            )
            out.projection_member = "AttributesToGet"
    if used:
        attrs.check_unused()
    else:
        attrs.check_given_without_expressions()
    return out


def _conditional_operator(params: Params) -> str | None:
    value = params.string("ConditionalOperator")
    if value is not None and value not in legacy.CONDITIONAL_OPERATORS:
        raise enum_error(value, "ConditionalOperator", legacy.CONDITIONAL_OPERATORS)
    return value


# ------------------------------------------------------------------------------ capacity

RETURN_CAPACITY = ("INDEXES", "TOTAL", "NONE")


def capacity_mode(params: Params) -> str:
    return params.enum("ReturnConsumedCapacity", RETURN_CAPACITY, "NONE")


def read_units(size: int, consistent: bool) -> float:
    """4 KB per read unit, rounded up, halved for eventually consistent reads (min 0.5)."""
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


def write_units(size: int) -> float:
    """1 KB per write unit, rounded up (min 1)."""
    return float(max(1, math.ceil(size / 1024)))


def capacity(
    table: str, units: float, mode: str, *, read: bool
) -> dict[str, Any] | None:
    """A ConsumedCapacity structure (None when the client did not ask for one)."""
    if mode == "NONE":
        return None
    kind = "ReadCapacityUnits" if read else "WriteCapacityUnits"
    out: dict[str, Any] = {"TableName": table, "CapacityUnits": units, kind: units}
    if mode == "INDEXES":
        out["Table"] = {"CapacityUnits": units, kind: units}
    return out


def add_capacity(response: dict[str, Any], consumed: dict[str, Any] | None) -> dict[str, Any]:
    if consumed is not None:
        response["ConsumedCapacity"] = consumed
    return response
