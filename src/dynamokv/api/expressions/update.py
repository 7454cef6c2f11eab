"""Applying a parsed UpdateExpression to an item.

Owns: DynamoDB's update semantics -- every SET value is computed from the item as it was
before the update; SET on a list index past the end appends; REMOVE of a missing attribute or
of a list index past the end does nothing; several REMOVEs of one list refer to its original
indexes; ADD creates or increments numbers and unions sets; DELETE subtracts from sets and
drops a set that becomes empty; and the runtime errors ("The document path provided in the
update expression is invalid for update", "The provided expression refers to an attribute
that does not exist in the item", "An operand in the update expression has an incorrect data
type", number overflow, nesting depth).
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.numbers`,
:mod:`dynamokv.api.errors` and the sibling modules nodes, evaluate.

Key-attribute protection and the item-size limit need the table schema and are the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynamokv.api import numbers
from dynamokv.api.attributes import (
    BS,
    MAX_NESTING_DEPTH,
    NS,
    SS,
    AttributeValue,
    Item,
    L,
    M,
    N,
    SetValue,
)
from dynamokv.api.errors import ValidationException
from dynamokv.api.expressions.evaluate import resolve_path
from dynamokv.api.expressions.nodes import (
    ArithmeticOperand,
    FunctionOperand,
    Operand,
    Path,
    PathOperand,
    UpdateExpression,
    ValueOperand,
)

INVALID_PATH = "The document path provided in the update expression is invalid for update"
MISSING_ATTRIBUTE = "The provided expression refers to an attribute that does not exist in the item"
BAD_OPERAND = "An operand in the update expression has an incorrect data type"
TOO_DEEP = "Nesting Levels have exceeded supported limits"

# While applying, touched documents are "thawed" into plain dicts (M) and lists (L) so they can
# be edited in place; everything else stays a frozen AttributeValue. Node is either.
Node = Any


def apply_update(update: UpdateExpression, item: Mapping[str, AttributeValue]) -> Item:
    """The item after ``update``; ``item`` itself is not modified (use ``{}`` if absent)."""
    # 1. Every SET value is computed against the original item.
    set_values = [(action.path, update_value(action.value, item)) for action in update.set_actions]

    root: dict[str, Node] = dict(item)
    for path in update.paths:
        if path.head in root:
            root[path.head] = _thaw(root[path.head])

    editor = _Editor(root)
    for path, value in set_values:
        editor.put(path, value)
    editor.flush_appends()
    for add in update.add_actions:
        editor.add(add.path, add.value.value)
    editor.flush_appends()
    for delete in update.delete_actions:
        editor.delete(delete.path, delete.value.value)
    for remove in update.remove_actions:
        editor.remove(remove.path)
    editor.flush_removals()

    result = {name: _freeze(node) for name, node in root.items()}
    for value in result.values():
        if _depth(value) > MAX_NESTING_DEPTH:
            raise ValidationException(TOO_DEEP)
    return result


def update_value(operand: Operand, item: Mapping[str, AttributeValue]) -> AttributeValue:
    """The value of a SET operand, with DynamoDB's runtime errors."""
    if isinstance(operand, ValueOperand):
        return operand.value
    if isinstance(operand, PathOperand):
        value = resolve_path(item, operand.path)
        if value is None:
            raise ValidationException(MISSING_ATTRIBUTE)
        return value
    if isinstance(operand, ArithmeticOperand):
        left = update_value(operand.left, item)
        if not isinstance(left, N):
            raise ValidationException(BAD_OPERAND)
        right = update_value(operand.right, item)
        if not isinstance(right, N):
            raise ValidationException(BAD_OPERAND)
        if operand.op == "+":
            return N(numbers.add(left.value, right.value))
        return N(numbers.subtract(left.value, right.value))
    assert isinstance(operand, FunctionOperand)
    if operand.name == "if_not_exists":
        target = operand.args[0]
        assert isinstance(target, PathOperand)
        existing = resolve_path(item, target.path)
        return existing if existing is not None else update_value(operand.args[1], item)
    # list_append
    first = update_value(operand.args[0], item)
    if not isinstance(first, L):
        raise ValidationException(BAD_OPERAND)
    second = update_value(operand.args[1], item)
    if not isinstance(second, L):
        raise ValidationException(BAD_OPERAND)
    return L(first.value + second.value)


class _Editor:
    """In-place edits of the thawed tree, deferring what must happen in a fixed order."""

    def __init__(self, root: dict[str, Node]) -> None:
        self.root = root
        # id(list) -> (list, [(index, value)]) for writes past the end of a list.
        self._appends: dict[int, tuple[list[Node], list[tuple[int, Node]]]] = {}
        # id(list) -> (list, {indexes}) for list elements to remove at the end.
        self._removals: dict[int, tuple[list[Node], set[int]]] = {}

    def _parent(self, path: Path) -> tuple[Node, str | int]:
        node: Node = self.root
        for element in path.elements[:-1]:
            node = _child(node, element)
            if node is None:
                raise ValidationException(INVALID_PATH)
        last = path.elements[-1]
        if isinstance(last, int) != isinstance(node, list) or not isinstance(node, (dict, list)):
            raise ValidationException(INVALID_PATH)
        return node, last

    def _write(self, container: Node, key: str | int, value: Node) -> None:
        if isinstance(container, dict):
            container[key] = value
            return
        assert isinstance(key, int)
        if key < len(container):
            container[key] = value
        else:
            _, pending = self._appends.setdefault(id(container), (container, []))
            pending.append((key, value))

    def flush_appends(self) -> None:
        for container, pending in self._appends.values():
            container.extend(value for _, value in sorted(pending, key=lambda p: p[0]))
        self._appends.clear()

    def put(self, path: Path, value: AttributeValue) -> None:
        container, key = self._parent(path)
        self._write(container, key, _thaw(value))

    def add(self, path: Path, value: AttributeValue) -> None:
        container, key = self._parent(path)
        existing = _child(container, key)
        if existing is None:
            self._write(container, key, value)
        elif isinstance(existing, N) and isinstance(value, N):
            self._write(container, key, N(numbers.add(existing.value, value.value)))
        elif isinstance(value, (SS, NS, BS)) and type(existing) is type(value):
            assert isinstance(existing, (SS, NS, BS))
            self._write(container, key, _set_union(existing, value))
        else:
            raise ValidationException(BAD_OPERAND)

    def delete(self, path: Path, value: AttributeValue) -> None:
        container, key = self._parent(path)
        existing = _child(container, key)
        if existing is None:
            return
        if not isinstance(value, (SS, NS, BS)) or type(existing) is not type(value):
            raise ValidationException(BAD_OPERAND)
        assert isinstance(existing, (SS, NS, BS))
        remaining = _set_difference(existing, value)
        if remaining is not None:
            self._write(container, key, remaining)
        else:
            self._drop(container, key)

    def remove(self, path: Path) -> None:
        container, key = self._parent(path)
        self._drop(container, key)

    def _drop(self, container: Node, key: str | int) -> None:
        if isinstance(container, dict):
            container.pop(key, None)
        else:
            assert isinstance(key, int)
            _, indexes = self._removals.setdefault(id(container), (container, set()))
            indexes.add(key)

    def flush_removals(self) -> None:
        # Highest index first, so every index still means what it meant in the original list.
        for container, indexes in self._removals.values():
            for index in sorted(indexes, reverse=True):
                if index < len(container):
                    del container[index]
        self._removals.clear()


def _child(node: Node, element: str | int) -> Node:
    if isinstance(element, int):
        if isinstance(node, list) and element < len(node):
            return node[element]
        return None
    if isinstance(node, dict):
        return node.get(element)
    return None


def _set_union(existing: SetValue, value: SetValue) -> SetValue:
    if isinstance(existing, SS) and isinstance(value, SS):
        return SS(existing.value | value.value)
    if isinstance(existing, NS) and isinstance(value, NS):
        return NS(existing.value | value.value)
    assert isinstance(existing, BS) and isinstance(value, BS)
    return BS(existing.value | value.value)


def _set_difference(existing: SetValue, value: SetValue) -> SetValue | None:
    """``existing - value``, or ``None`` when nothing is left (DynamoDB has no empty sets)."""
    if isinstance(existing, SS) and isinstance(value, SS):
        strings = existing.value - value.value
        return SS(strings) if strings else None
    if isinstance(existing, NS) and isinstance(value, NS):
        decimals = existing.value - value.value
        return NS(decimals) if decimals else None
    assert isinstance(existing, BS) and isinstance(value, BS)
    blobs = existing.value - value.value
    return BS(blobs) if blobs else None


def _thaw(value: Node) -> Node:
    if isinstance(value, M):
        return {k: _thaw(v) for k, v in value.value.items()}
    if isinstance(value, L):
        return [_thaw(v) for v in value.value]
    return value


def _freeze(node: Node) -> AttributeValue:
    if isinstance(node, dict):
        return M({k: _freeze(v) for k, v in node.items()})
    if isinstance(node, list):
        return L(tuple(_freeze(v) for v in node))
    assert not isinstance(node, (dict, list))
    value: AttributeValue = node
    return value


def _depth(value: AttributeValue) -> int:
    """Levels of documents: 1 for a scalar, 1 + deepest child for an M or L."""
    if isinstance(value, M):
        return 1 + max((_depth(v) for v in value.value.values()), default=0)
    if isinstance(value, L):
        return 1 + max((_depth(v) for v in value.value), default=0)
    return 1
