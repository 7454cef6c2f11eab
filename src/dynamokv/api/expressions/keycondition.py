"""KeyConditionExpression: the restricted condition that selects a Query's items.

Owns: checking that a parsed condition has the only shape a Query accepts -- ``hash = :v``,
optionally AND one sort-key condition (``=``, ``<``, ``<=``, ``>``, ``>=``, ``BETWEEN``,
``begins_with``) with the key on either side of a comparison; on a multi-attribute index key,
equality on every partition-key attribute and sort-key attributes left to right, equality on
all but the last (:func:`composite_condition`) -- with DynamoDB's messages, then
turning it into a :class:`KeyCondition` the storage layer can range-scan with; and
:func:`range_matches` to test one sort-key value against it.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.errors` and the
sibling modules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dynamokv.api.attributes import AttributeValue, B, KeyValue, N, S, compare_values
from dynamokv.api.errors import ValidationException
from dynamokv.api.expressions.condition_parser import ConditionParser
from dynamokv.api.expressions.context import ExpressionAttributes
from dynamokv.api.expressions.nodes import (
    And,
    Between,
    Comparison,
    Condition,
    FunctionCondition,
    FunctionOperand,
    In,
    KeyCondition,
    Not,
    Operand,
    Or,
    PathOperand,
    RangeCondition,
    ValueOperand,
)

_FLIPPED = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NOT_SUPPORTED = "Query key condition not supported"
_TYPE_MISMATCH = (
    "One or more parameter values were invalid: Condition parameter type does not match schema type"
)


def parse_key_condition_tree(
    text: str,
    attributes: ExpressionAttributes,
    hash_key: str,
    range_key: str | None,
    key_types: Mapping[str, str] | None,
    *,
    hash_keys: Sequence[str] = (),
    range_keys: Sequence[str] = (),
) -> KeyCondition:
    condition = ConditionParser(text, "KeyConditionExpression", attributes).parse()
    _check_operators(condition)
    parts = _flatten(condition)
    terms = [_term(part) for part in parts]
    names = [name for name, _, _ in terms]
    if len(set(names)) != len(names):
        raise ValidationException("KeyConditionExpressions must only contain one condition per key")
    if len(hash_keys) > 1 or len(range_keys) > 1:
        return composite_condition(terms, tuple(hash_keys), tuple(range_keys), key_types or {})
    if len(terms) > 2:
        raise ValidationException("Conditions can be of length 1 or 2 only")
    return _against_schema(terms, hash_key, range_key, key_types or {})


Term = tuple[str, str, tuple[Operand, ...]]


def composite_condition(
    terms: Sequence[Term],
    hash_keys: tuple[str, ...],
    range_keys: tuple[str, ...],
    key_types: Mapping[str, str],
) -> KeyCondition:
    """The condition on a multi-attribute key: equality on every partition-key attribute, and
    conditions on sort-key attributes taken left to right without a gap, each but the last an
    equality."""
    by_name = {name: (op, others) for name, op, others in terms}
    for name in hash_keys:
        if name not in by_name:
            raise ValidationException(f"Query condition missed key schema element: {name}")
    used = 0
    while used < len(range_keys) and range_keys[used] in by_name:
        used += 1
    known = set(hash_keys) | set(range_keys[:used])
    if any(name not in known for name in by_name):
        if used < len(range_keys):
            raise ValidationException(
                f"Query condition missed key schema element: {range_keys[used]}"
            )
        raise ValidationException(_NOT_SUPPORTED)
    hash_values: list[KeyValue] = []
    for name in hash_keys:
        op, operands = by_name[name]
        if op != "=":
            raise ValidationException(_NOT_SUPPORTED)
        hash_values.append(_key_values(name, operands, key_types)[0])
    prefix: list[KeyValue] = []
    for name in range_keys[: max(used - 1, 0)]:
        op, operands = by_name[name]
        if op != "=":
            raise ValidationException(_NOT_SUPPORTED)
        prefix.append(_key_values(name, operands, key_types)[0])
    range_key: str | None = None
    range_condition: RangeCondition | None = None
    if used:
        range_key = range_keys[used - 1]
        op, operands = by_name[range_key]
        range_condition = RangeCondition(op, _key_values(range_key, operands, key_types))
    return KeyCondition(hash_keys[0], hash_values[0], range_key, range_condition,
                        tuple(hash_values), tuple(prefix))


def _check_operators(condition: Condition) -> None:
    """Only AND, comparisons other than <>, BETWEEN and begins_with may appear."""
    bad: str | None = None
    if isinstance(condition, Or):
        bad = "OR"
    elif isinstance(condition, Not):
        bad = "NOT"
    elif isinstance(condition, In):
        bad = "IN"
    elif isinstance(condition, Comparison) and condition.op == "<>":
        bad = "<>"
    elif isinstance(condition, FunctionCondition) and condition.name != "begins_with":
        bad = condition.name
    if bad is not None:
        raise ValidationException(f"Invalid operator used in KeyConditionExpression: {bad}")
    if isinstance(condition, And):
        _check_operators(condition.left)
        _check_operators(condition.right)


def _flatten(condition: Condition) -> list[Condition]:
    if isinstance(condition, And):
        return _flatten(condition.left) + _flatten(condition.right)
    return [condition]


def _term(condition: Condition) -> tuple[str, str, tuple[Operand, ...]]:
    """(key attribute name, operator with the key on the left, the other operands)."""
    others: tuple[Operand, ...]
    if isinstance(condition, Comparison):
        if isinstance(condition.left, PathOperand):
            key, op, others = condition.left, condition.op, (condition.right,)
        elif isinstance(condition.right, PathOperand):
            key, op, others = condition.right, _FLIPPED[condition.op], (condition.left,)
        elif isinstance(condition.left, FunctionOperand) or isinstance(
            condition.right, FunctionOperand
        ):
            raise ValidationException("KeyConditionExpressions cannot contain nested operations")
        else:
            raise ValidationException(
                "Invalid condition in KeyConditionExpression: No key attribute specified"
            )
    elif isinstance(condition, Between):
        if not isinstance(condition.operand, PathOperand):
            raise _first_operand("BETWEEN")
        key, op, others = condition.operand, "BETWEEN", (condition.low, condition.high)
    else:
        assert isinstance(condition, FunctionCondition) and condition.name == "begins_with"
        if not isinstance(condition.args[0], PathOperand):
            raise _first_operand("begins_with")
        key, op, others = condition.args[0], "BEGINS_WITH", condition.args[1:]
    if key.path.is_nested:
        raise ValidationException(
            "KeyConditionExpressions cannot have conditions on nested attributes"
        )
    for other in others:
        if isinstance(other, PathOperand):
            raise ValidationException(
                "Invalid condition in KeyConditionExpression: "
                "Multiple attribute names used in one condition"
            )
        if isinstance(other, FunctionOperand):
            raise ValidationException("KeyConditionExpressions cannot contain nested operations")
    return key.path.head, op, others


def _first_operand(operator: str) -> ValidationException:
    return ValidationException(
        f"Invalid condition in KeyConditionExpression: {operator} operator must have the key "
        "attribute as its first operand"
    )


def _key_values(
    name: str, operands: tuple[Operand, ...], key_types: Mapping[str, str]
) -> tuple[KeyValue, ...]:
    values: list[KeyValue] = []
    for operand in operands:
        assert isinstance(operand, ValueOperand)
        value = operand.value
        expected = key_types.get(name)
        if not isinstance(value, (S, N, B)) or (
            expected is not None and value.type_name != expected
        ):
            raise ValidationException(_TYPE_MISMATCH)
        values.append(value)
    return tuple(values)


def _against_schema(
    terms: list[tuple[str, str, tuple[Operand, ...]]],
    hash_key: str,
    range_key: str | None,
    key_types: Mapping[str, str],
) -> KeyCondition:
    if len(terms) > (2 if range_key is not None else 1):
        raise ValidationException(_NOT_SUPPORTED)
    by_name = {name: (op, others) for name, op, others in terms}
    if hash_key not in by_name:
        raise ValidationException(f"Query condition missed key schema element: {hash_key}")
    if len(terms) == 2 and range_key not in by_name:
        raise ValidationException(f"Query condition missed key schema element: {range_key}")
    hash_op, hash_operands = by_name[hash_key]
    hash_values = _key_values(hash_key, hash_operands, key_types)
    range_condition: RangeCondition | None = None
    if range_key is not None and range_key in by_name:
        range_op, range_operands = by_name[range_key]
        range_condition = RangeCondition(
            range_op, _key_values(range_key, range_operands, key_types)
        )
    if hash_op != "=":
        raise ValidationException(_NOT_SUPPORTED)
    return KeyCondition(hash_key, hash_values[0], range_key, range_condition)


def range_matches(condition: RangeCondition | None, value: AttributeValue | None) -> bool:
    """Whether a sort-key value satisfies the range half of a key condition."""
    if condition is None:
        return True
    if value is None:
        return False
    op, operands = condition.op, condition.values
    if op == "BEGINS_WITH":
        prefix = operands[0]
        if isinstance(value, S) and isinstance(prefix, S):
            return value.value.startswith(prefix.value)
        if isinstance(value, B) and isinstance(prefix, B):
            return value.value.startswith(prefix.value)
        return False
    if op == "BETWEEN":
        low = compare_values(operands[0], value)
        high = compare_values(value, operands[1])
        return low is not None and high is not None and low <= 0 and high <= 0
    order = compare_values(value, operands[0])
    if order is None:
        return False
    return {
        "=": order == 0,
        "<": order < 0,
        "<=": order <= 0,
        ">": order > 0,
        ">=": order >= 0,
    }[op]
