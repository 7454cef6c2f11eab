"""The legacy (pre-expression) request parameters, translated into expression trees.

Owns: ``Expected`` (Value / Exists / ComparisonOperator forms) with ``ConditionalOperator``,
``QueryFilter`` / ``ScanFilter``, ``KeyConditions``, ``AttributeUpdates`` (PUT / ADD / DELETE)
and ``AttributesToGet``: their validation with DynamoDB's messages (operator arity, operand
types, BETWEEN bounds, the Value/Exists rules, the type rules of each update action), and
their translation into the nodes the expression evaluators already run -- so a legacy request
behaves exactly like its expression equivalent. Also owns the rule that one request may not mix
expression and non-expression parameters.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.errors` and the sibling
modules nodes and keycondition (whose rules a multi-attribute index key's KeyConditions share).

Inputs are the raw JSON members of the request (the caller has checked only that the top-level
member is a map); every nested shape is checked here with DynamoDB's SerializationException.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dynamokv.api.attributes import (
    BS,
    NS,
    SS,
    AttributeValue,
    B,
    KeyValue,
    L,
    N,
    S,
    check_attribute_name,
    compare_values,
    from_wire,
)
from dynamokv.api.errors import DynamoDBError, SerializationException, ValidationException
from dynamokv.api.expressions.keycondition import composite_condition
from dynamokv.api.expressions.nodes import (
    AddAction,
    And,
    Between,
    Comparison,
    Condition,
    DeleteAction,
    FunctionCondition,
    FunctionOperand,
    In,
    KeyCondition,
    Not,
    Or,
    Path,
    PathOperand,
    RangeCondition,
    RemoveAction,
    SetAction,
    UpdateExpression,
    ValueOperand,
)

_INVALID = "One or more parameter values were invalid: "
# DynamoDB's own order of the enum in its messages.
OPERATORS = (
    "IN", "NULL", "BETWEEN", "LT", "NOT_CONTAINS", "EQ", "GT", "NOT_NULL", "NE", "LE",
    "BEGINS_WITH", "GE", "CONTAINS",
)
ACTIONS = ("ADD", "PUT", "DELETE")
CONDITIONAL_OPERATORS = ("OR", "AND")  # the order of DynamoDB's enum message
_ARITY: dict[str, tuple[int, int | None]] = {
    "NULL": (0, 0), "NOT_NULL": (0, 0), "IN": (1, None), "BETWEEN": (2, 2),
}
_SCALARS = frozenset({"S", "N", "B"})
# Operand types each operator accepts; EQ and NE take any type.
_TYPES: dict[str, frozenset[str]] = {
    "LE": _SCALARS, "LT": _SCALARS, "GE": _SCALARS, "GT": _SCALARS, "IN": _SCALARS,
    "BETWEEN": _SCALARS, "CONTAINS": _SCALARS, "NOT_CONTAINS": _SCALARS,
    "BEGINS_WITH": frozenset({"S", "B"}),
}
_COMPARATORS = {"EQ": "=", "NE": "<>", "LE": "<=", "LT": "<", "GE": ">=", "GT": ">"}
_RANGE_OPERATORS = {
    "EQ": "=", "LE": "<=", "LT": "<", "GE": ">=", "GT": ">", "BEGINS_WITH": "BEGINS_WITH",
    "BETWEEN": "BETWEEN",
}
_NOT_INDEXABLE = frozenset({"NULL", "NOT_NULL", "NE", "CONTAINS", "NOT_CONTAINS", "IN"})
TYPE_MISMATCH = "Type mismatch for attribute to update"
_BAD_OPERAND = "An operand in the update expression has an incorrect data type"


# ------------------------------------------------------------------------------ shapes


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, (int, float)):
        return "NUMBER_VALUE"
    if isinstance(value, str):
        return "STRING_VALUE"
    return "Unexpected value"


def _shape_error(value: Any, wanted: str) -> SerializationException:
    if isinstance(value, dict):
        return SerializationException("Start of structure or map found where not expected")
    if isinstance(value, list):
        return SerializationException("Start of list found where not expected")
    return SerializationException(f"{_kind(value)} cannot be converted to {wanted}")


def _map(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _shape_error(value, "structure")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _shape_error(value, "list")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _shape_error(value, "String")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _shape_error(value, "Boolean")
    return value


def _enum_error(value: str, label: str, allowed: Sequence[str]) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{label}' failed to satisfy "
        f"constraint: Member must satisfy enum value set: [{', '.join(allowed)}]"
    )


def _null_error(label: str) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value null at '{label}' failed to satisfy constraint: "
        "Member must not be null"
    )


def _members(raw: Any) -> list[tuple[str, dict[str, Any]]]:
    """The ``name -> structure`` entries of a legacy map parameter (names checked)."""
    return [(check_attribute_name(name), _map(entry)) for name, entry in _map(raw).items()]


# ------------------------------------------------------------------------------ mixing

_EXPRESSION_ORDER = (
    "UpdateExpression", "ConditionExpression", "ProjectionExpression", "FilterExpression",
    "KeyConditionExpression",
)
_LEGACY_ORDER = (
    "AttributeUpdates", "Expected", "AttributesToGet", "QueryFilter", "ScanFilter",
    "ConditionalOperator", "KeyConditions",
)


def check_not_mixed(present: Mapping[str, bool]) -> None:
    """Refuse a request that carries both kinds of parameters, naming both sets.

    ``present`` says, for each parameter the operation accepts, whether the request has it.
    KeyConditions may go with FilterExpression / ProjectionExpression: only
    KeyConditionExpression excludes it.
    """
    expressions = [name for name in _EXPRESSION_ORDER if present.get(name)]
    if not expressions:
        return
    legacy = [name for name in _LEGACY_ORDER if present.get(name)]
    if "KeyConditions" in legacy and not present.get("KeyConditionExpression"):
        legacy.remove("KeyConditions")
    if legacy:
        raise ValidationException(
            "Can not use both expression and non-expression parameters in the same request: "
            f"Non-expression parameters: {{{', '.join(legacy)}}} "
            f"Expression parameters: {{{', '.join(expressions)}}}"
        )


def check_maps_have_expressions(
    present: Mapping[str, bool], names_given: bool, values_given: bool
) -> None:
    """ExpressionAttributeNames need some expression of the request; ExpressionAttributeValues
    one that can use values (any but ProjectionExpression), named in DynamoDB's message."""
    if names_given and not any(present.get(name) for name in _EXPRESSION_ORDER):
        raise ValidationException(
            "ExpressionAttributeNames can only be specified when using expressions"
        )
    takes_values = [
        name for name in _EXPRESSION_ORDER if name in present and name != "ProjectionExpression"
    ]
    if values_given and takes_values and not any(present[name] for name in takes_values):
        verb = "are" if len(takes_values) > 1 else "is"
        raise ValidationException(
            "ExpressionAttributeValues can only be specified when using expressions: "
            f"{' and '.join(takes_values)} {verb} null"
        )


# ------------------------------------------------------------------------------ conditions


def _operand(value: AttributeValue) -> ValueOperand:
    return ValueOperand(":legacy", value)


def _values(raw: Any) -> list[AttributeValue]:
    return [from_wire(entry) for entry in _list(raw)]


def _operands(entry: dict[str, Any]) -> list[AttributeValue]:
    raw = entry.get("AttributeValueList")
    return [] if raw is None else _values(raw)


def _check_operands(operator: str, values: Sequence[AttributeValue]) -> None:
    """Arity, one type for all, the operator's types, BETWEEN bounds in order."""
    low, high = _ARITY.get(operator, (1, 1))
    if len(values) < low or (high is not None and len(values) > high):
        raise ValidationException(
            _INVALID + f"Invalid number of argument(s) for the {operator} ComparisonOperator"
        )
    if len({value.type_name for value in values}) > 1:
        raise ValidationException(
            _INVALID + "AttributeValues inside AttributeValueList must be of same type"
        )
    allowed = _TYPES.get(operator)
    for value in values:
        if allowed is not None and value.type_name not in allowed:
            raise ValidationException(
                _INVALID + f"ComparisonOperator {operator} is not valid for {value.type_name} "
                "AttributeValue type"
            )
    if operator == "BETWEEN":
        order = compare_values(values[0], values[1])
        if order is not None and order > 0:
            raise ValidationException(
                "The BETWEEN condition was provided a range where the lower bound is greater "
                "than the upper bound"
            )


def comparison(name: str, operator: str, values: Sequence[AttributeValue]) -> Condition:
    """The condition ``operator`` states about top-level attribute ``name`` (operands checked)."""
    path = PathOperand(Path((name,)))
    if operator in _COMPARATORS:
        return Comparison(_COMPARATORS[operator], path, _operand(values[0]))
    if operator == "NOT_NULL":
        return FunctionCondition("attribute_exists", (path,))
    if operator == "NULL":
        return FunctionCondition("attribute_not_exists", (path,))
    if operator == "CONTAINS":
        return FunctionCondition("contains", (path, _operand(values[0])))
    if operator == "NOT_CONTAINS":
        # A missing attribute satisfies neither CONTAINS nor NOT_CONTAINS.
        return And(
            FunctionCondition("attribute_exists", (path,)),
            Not(FunctionCondition("contains", (path, _operand(values[0])))),
        )
    if operator == "BEGINS_WITH":
        return FunctionCondition("begins_with", (path, _operand(values[0])))
    if operator == "IN":
        return In(path, tuple(_operand(v) for v in values))
    assert operator == "BETWEEN"
    return Between(path, _operand(values[0]), _operand(values[1]))


def _combine(parts: list[Condition], operator: str | None) -> Condition | None:
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined = Or(combined, part) if operator == "OR" else And(combined, part)
    return combined


def _operator(entry: dict[str, Any], label: str, *, required: bool) -> str | None:
    raw = entry.get("ComparisonOperator")
    if raw is None:
        if required:
            raise _null_error(label)
        return None
    operator = _string(raw)
    if operator not in OPERATORS:
        raise _enum_error(operator, label, OPERATORS)
    return operator


def check_conditional_operator(count: int, operator: str | None) -> None:
    """Refuse a ConditionalOperator that has fewer than two conditions to join, in
    DynamoDB's words (the same for Expected, QueryFilter and ScanFilter)."""
    if operator is None:
        return
    if count == 0:
        raise ValidationException("ConditionalOperator cannot be used without Filter or Expected")
    if count == 1:
        raise ValidationException(
            "ConditionalOperator can only be used when Filter or Expected has two or more elements"
        )


def filter_condition(raw: Any, operator: str | None, member: str) -> Condition | None:
    """A QueryFilter / ScanFilter (``member``) as one condition; ``None`` for an empty map."""
    entries = _members(raw)
    check_conditional_operator(len(entries), operator)
    label = member[:1].lower() + member[1:]
    parsed: list[tuple[str, str, list[AttributeValue]]] = []
    for name, entry in entries:
        op = _operator(entry, f"{label}.{name}.member.comparisonOperator", required=True)
        assert op is not None
        parsed.append((name, op, _operands(entry)))
    parts = []
    for name, op, values in parsed:
        _check_operands(op, values)
        parts.append(comparison(name, op, values))
    return _combine(parts, operator)


def filter_names(raw: Any) -> list[str]:
    """The attributes a QueryFilter names (for the primary-key check)."""
    return list(_map(raw))


def expected_condition(raw: Any, operator: str | None) -> Condition | None:
    """``Expected`` (combined by ``ConditionalOperator``) as one condition."""
    entries = _members(raw)
    check_conditional_operator(len(entries), operator)
    parts = [_expected_one(name, entry) for name, entry in entries]
    return _combine(parts, operator)


def _expected_one(name: str, entry: dict[str, Any]) -> Condition:
    operator = _operator(entry, f"expected.{name}.member.comparisonOperator", required=False)
    has_list = entry.get("AttributeValueList") is not None
    has_value = entry.get("Value") is not None
    exists = None if entry.get("Exists") is None else _bool(entry["Exists"])
    value = from_wire(entry["Value"]) if has_value else None
    values = _values(entry["AttributeValueList"]) if has_list else None
    if has_list and has_value:
        raise ValidationException(
            _INVALID + f"Value and AttributeValueList cannot be used together for Attribute: {name}"
        )
    if operator is not None:
        if exists is not None:
            raise ValidationException(
                _INVALID + f"Exists and ComparisonOperator cannot be used together for "
                f"Attribute: {name}"
            )
        if values is None:
            values = [value] if value is not None else []
        _check_operands(operator, values)
        return comparison(name, operator, values)
    if has_list:
        raise ValidationException(
            _INVALID + "AttributeValueList can only be used with a ComparisonOperator for "
            f"Attribute: {name}"
        )
    if exists is False:
        if value is not None:
            raise ValidationException(
                _INVALID + f"Value cannot be used when Exists is false for Attribute: {name}"
            )
        return comparison(name, "NULL", [])
    if value is None:
        shown = "null" if exists is None else "true"
        raise ValidationException(
            _INVALID + f"Value must be provided when Exists is {shown} for Attribute: {name}"
        )
    return comparison(name, "EQ", [value])


# ------------------------------------------------------------------------------ key conditions


def key_conditions(
    raw: Any,
    hash_key: str,
    range_key: str | None,
    key_types: Mapping[str, str],
    *,
    hash_keys: Sequence[str] = (),
    range_keys: Sequence[str] = (),
) -> KeyCondition:
    """``KeyConditions`` against a key schema (the table's or the index's); ``hash_keys`` /
    ``range_keys`` name a multi-attribute index key's attributes, whose conditions follow
    the same rules as a KeyConditionExpression's on that key."""
    entries = _members(raw)
    parsed: dict[str, tuple[str, list[AttributeValue]]] = {}
    for name, entry in entries:
        op = _operator(entry, f"keyConditions.{name}.member.comparisonOperator", required=True)
        assert op is not None
        parsed[name] = (op, _operands(entry))
    for op, values in parsed.values():
        _check_operands(op, values)
    if len(hash_keys) > 1 or len(range_keys) > 1:
        return _composite_key_conditions(parsed, tuple(hash_keys), tuple(range_keys), key_types)
    if len(parsed) not in (1, 2):
        raise ValidationException("Conditions can be of length 1 or 2 only")
    hash_values = _key_term(parsed, hash_key, key_types, is_hash=True, range_key=range_key)
    assert hash_values is not None
    range_condition: RangeCondition | None = None
    if range_key is not None:
        range_values = _key_term(parsed, range_key, key_types, is_hash=False, range_key=range_key)
        if range_values is not None:
            range_condition = RangeCondition(_RANGE_OPERATORS[parsed[range_key][0]], range_values)
    return KeyCondition(hash_key, hash_values[0], range_key, range_condition)


def _composite_key_conditions(
    parsed: dict[str, tuple[str, list[AttributeValue]]],
    hash_keys: tuple[str, ...],
    range_keys: tuple[str, ...],
    key_types: Mapping[str, str],
) -> KeyCondition:
    """KeyConditions on a multi-attribute key, as the terms of the equivalent expression."""
    if not parsed:
        raise ValidationException(f"Query condition missed key schema element: {hash_keys[0]}")
    keys = set(hash_keys) | set(range_keys)
    if any(op in _NOT_INDEXABLE for name, (op, _) in parsed.items() if name in keys):
        raise ValidationException("Attempted conditional constraint is not an indexable operation")
    terms = [
        (name, _RANGE_OPERATORS[op], tuple(_operand(value) for value in values))
        for name, (op, values) in parsed.items()
    ]
    return composite_condition(terms, hash_keys, range_keys, key_types)


def _key_term(
    parsed: dict[str, tuple[str, list[AttributeValue]]],
    name: str,
    key_types: Mapping[str, str],
    *,
    is_hash: bool,
    range_key: str | None,
) -> tuple[KeyValue, ...] | None:
    if is_hash and range_key is None and len(parsed) > 1:
        raise ValidationException("Query key condition not supported")
    if name not in parsed:
        if is_hash or len(parsed) > 1:
            raise ValidationException(f"Query condition missed key schema element: {name}")
        return None
    op, values = parsed[name]
    if op in _NOT_INDEXABLE:
        raise ValidationException("Attempted conditional constraint is not an indexable operation")
    expected = key_types.get(name)
    keys: list[KeyValue] = []
    for value in values:
        if not isinstance(value, (S, N, B)) or (expected and value.type_name != expected):
            raise ValidationException(
                _INVALID + "Condition parameter type does not match schema type"
            )
        keys.append(value)
    if is_hash and op != "EQ":
        raise ValidationException("Query key condition not supported")
    return tuple(keys)


# ------------------------------------------------------------------------------ updates

_EMPTY_LIST = ValueOperand(":legacy", L(()))


def attribute_updates(raw: Any) -> UpdateExpression | None:
    """``AttributeUpdates`` as an update expression (``None`` for an empty map: the update
    then only makes sure the item exists, as an UpdateItem without any update does)."""
    entries = _members(raw)
    sets: list[SetAction] = []
    removes: list[RemoveAction] = []
    adds: list[AddAction] = []
    deletes: list[DeleteAction] = []
    for name, entry in entries:
        action = "PUT" if entry.get("Action") is None else _string(entry["Action"])
        if action not in ACTIONS:
            raise _enum_error(action, f"attributeUpdates.{name}.member.action", ACTIONS)
        value = from_wire(entry["Value"]) if entry.get("Value") is not None else None
        path = Path((name,))
        if value is None:
            if action != "DELETE":
                raise ValidationException(
                    _INVALID + "Only DELETE action is allowed when no attribute value is specified"
                )
            removes.append(RemoveAction(path))
        elif action == "PUT":
            sets.append(SetAction(path, _operand(value)))
        elif action == "DELETE":
            if not isinstance(value, (SS, NS, BS)):
                raise ValidationException(
                    _INVALID + f"Action DELETE is not supported for the type {value.type_name}"
                )
            deletes.append(DeleteAction(path, _operand(value)))
        elif isinstance(value, L):
            # ADD of a list appends to it (a missing attribute counts as an empty list).
            current = FunctionOperand("if_not_exists", (PathOperand(path), _EMPTY_LIST))
            sets.append(SetAction(path, FunctionOperand("list_append", (current, _operand(value)))))
        elif isinstance(value, (N, SS, NS, BS)):
            adds.append(AddAction(path, _operand(value)))
        else:
            raise ValidationException(
                _INVALID + f"Action ADD is not supported for the type {value.type_name}"
            )
    if not entries:
        return None
    return UpdateExpression(tuple(sets), tuple(removes), tuple(adds), tuple(deletes))


def update_error(error: DynamoDBError) -> DynamoDBError:
    """An update expression's runtime error as AttributeUpdates reports it."""
    if error.message == _BAD_OPERAND:
        return ValidationException(TYPE_MISMATCH)
    return error


def attributes_to_get(raw: Any, label: str = "attributesToGet") -> tuple[Path, ...]:
    """``AttributesToGet`` as projection paths (top-level names, taken literally)."""
    names = [check_attribute_name(_string(name)) for name in _list(raw)]
    if not names:
        raise ValidationException(
            f"1 validation error detected: Value '[]' at '{label}' failed to satisfy "
            "constraint: Member must have length greater than or equal to 1"
        )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValidationException(
                _INVALID + f"Duplicate value in attribute name: {name}"
            )
        seen.add(name)
    return tuple(Path((name,)) for name in names)
