"""Evaluating conditions (ConditionExpression / FilterExpression) against an item.

Owns: document-path lookup, operand values (including size()), and DynamoDB's truth rules:
comparisons between different or unordered types are simply false (never an error), a missing
attribute makes ``=`` and every ordering false but ``<>`` true, and so on.
May import: stdlib, :mod:`dynamokv.api.attributes` and the sibling module nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from dynamokv.api.attributes import (
    BS,
    NS,
    SS,
    AttributeValue,
    B,
    L,
    M,
    N,
    S,
    compare_values,
    values_equal,
)
from dynamokv.api.expressions.nodes import (
    And,
    ArithmeticOperand,
    Between,
    Comparison,
    Condition,
    FunctionCondition,
    FunctionOperand,
    In,
    Not,
    Operand,
    Or,
    Path,
    PathOperand,
    ValueOperand,
)


def resolve_path(item: Mapping[str, AttributeValue], path: Path) -> AttributeValue | None:
    """The value at ``path`` in ``item``, or ``None`` if any step is missing or mistyped."""
    head, *rest = path.elements
    assert isinstance(head, str)
    value = item.get(head)
    for element in rest:
        if value is None:
            return None
        if isinstance(element, int):
            if not isinstance(value, L) or element >= len(value.value):
                return None
            value = value.value[element]
        else:
            if not isinstance(value, M):
                return None
            value = value.value.get(element)
    return value


def size_of(value: AttributeValue) -> int | None:
    """What size() returns: bytes of S/B, members of sets, elements of L/M; else undefined."""
    if isinstance(value, S):
        return len(value.value.encode("utf-8"))
    if isinstance(value, B):
        return len(value.value)
    if isinstance(value, (SS, NS, BS, L, M)):
        return len(value.value)
    return None


def operand_value(operand: Operand, item: Mapping[str, AttributeValue]) -> AttributeValue | None:
    """The value of a condition operand, ``None`` when it has none (missing path, bad size)."""
    if isinstance(operand, ValueOperand):
        return operand.value
    if isinstance(operand, PathOperand):
        return resolve_path(item, operand.path)
    if isinstance(operand, FunctionOperand) and operand.name == "size":
        target = operand_value(operand.args[0], item)
        size = None if target is None else size_of(target)
        return None if size is None else N(Decimal(size))
    assert not isinstance(operand, ArithmeticOperand), "arithmetic only appears in updates"
    return None


def evaluate(condition: Condition, item: Mapping[str, AttributeValue]) -> bool:
    """Whether ``condition`` holds for ``item`` (use ``{}`` for an item that does not exist)."""
    if isinstance(condition, And):
        return evaluate(condition.left, item) and evaluate(condition.right, item)
    if isinstance(condition, Or):
        return evaluate(condition.left, item) or evaluate(condition.right, item)
    if isinstance(condition, Not):
        return not evaluate(condition.operand, item)
    if isinstance(condition, Comparison):
        return _compare(
            condition.op,
            operand_value(condition.left, item),
            operand_value(condition.right, item),
        )
    if isinstance(condition, Between):
        value = operand_value(condition.operand, item)
        low = operand_value(condition.low, item)
        high = operand_value(condition.high, item)
        if value is None or low is None or high is None:
            return False
        lower = compare_values(low, value)
        upper = compare_values(value, high)
        return lower is not None and upper is not None and lower <= 0 and upper <= 0
    if isinstance(condition, In):
        value = operand_value(condition.operand, item)
        if value is None:
            return False
        return any(
            (candidate := operand_value(c, item)) is not None and values_equal(value, candidate)
            for c in condition.candidates
        )
    return _function(condition, item)


def _compare(op: str, left: AttributeValue | None, right: AttributeValue | None) -> bool:
    if op == "<>":
        # An attribute that is absent is "not equal" to anything.
        return left is None or right is None or not values_equal(left, right)
    if left is None or right is None:
        return False
    if op == "=":
        return values_equal(left, right)
    order = compare_values(left, right)
    if order is None:
        return False
    if op == "<":
        return order < 0
    if op == "<=":
        return order <= 0
    if op == ">":
        return order > 0
    return order >= 0


def _function(condition: FunctionCondition, item: Mapping[str, AttributeValue]) -> bool:
    name, args = condition.name, condition.args
    if name == "attribute_exists":
        return operand_value(args[0], item) is not None
    if name == "attribute_not_exists":
        return operand_value(args[0], item) is None
    target = operand_value(args[0], item)
    argument = operand_value(args[1], item) if len(args) > 1 else None
    if target is None or argument is None:
        return False
    if name == "attribute_type":
        return isinstance(argument, S) and target.type_name == argument.value
    if name == "begins_with":
        if isinstance(target, S) and isinstance(argument, S):
            return target.value.startswith(argument.value)
        if isinstance(target, B) and isinstance(argument, B):
            return target.value.startswith(argument.value)
        return False
    if name == "contains":
        return _contains(target, argument)
    return False


def _contains(target: AttributeValue, argument: AttributeValue) -> bool:
    if isinstance(target, S):
        return isinstance(argument, S) and argument.value in target.value
    if isinstance(target, B):
        return isinstance(argument, B) and argument.value in target.value
    if isinstance(target, SS):
        return isinstance(argument, S) and argument.value in target.value
    if isinstance(target, NS):
        return isinstance(argument, N) and argument.value in target.value
    if isinstance(target, BS):
        return isinstance(argument, B) and argument.value in target.value
    if isinstance(target, L):
        return any(values_equal(element, argument) for element in target.value)
    return False
