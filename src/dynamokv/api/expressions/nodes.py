"""The syntax trees the expression parsers produce and the evaluators consume.

Owns: document paths, operands, conditions, update actions, projections and key conditions as
immutable dataclasses. Placeholders are already substituted: a :class:`Path` holds real
attribute names, a :class:`ValueOperand` the typed value (and its placeholder, for messages).
May import: stdlib, :mod:`dynamokv.api.attributes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from dynamokv.api.attributes import AttributeValue, KeyValue

PathElement: TypeAlias = str | int  # a map member name, or a list index


@dataclass(frozen=True, slots=True)
class Path:
    """A document path: a top-level attribute name, then map members and list indexes."""

    elements: tuple[PathElement, ...]

    @property
    def head(self) -> str:
        head = self.elements[0]
        assert isinstance(head, str)
        return head

    @property
    def is_nested(self) -> bool:
        return len(self.elements) > 1

    def __str__(self) -> str:
        # DynamoDB's rendering in messages: "[a, b, [2]]".
        parts = (f"[{e}]" if isinstance(e, int) else e for e in self.elements)
        return "[" + ", ".join(parts) + "]"


# --------------------------------------------------------------------------- operands


@dataclass(frozen=True, slots=True)
class PathOperand:
    path: Path


@dataclass(frozen=True, slots=True)
class ValueOperand:
    placeholder: str
    value: AttributeValue


@dataclass(frozen=True, slots=True)
class FunctionOperand:
    """size(...) in conditions; if_not_exists(...) and list_append(...) in updates."""

    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class ArithmeticOperand:
    """``left + right`` / ``left - right``, only in an update's SET."""

    op: str
    left: Operand
    right: Operand


Operand: TypeAlias = PathOperand | ValueOperand | FunctionOperand | ArithmeticOperand


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True, slots=True)
class Comparison:
    op: str  # = <> < <= > >=
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Between:
    operand: Operand
    low: Operand
    high: Operand


@dataclass(frozen=True, slots=True)
class In:
    operand: Operand
    candidates: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class FunctionCondition:
    """attribute_exists, attribute_not_exists, attribute_type, begins_with, contains."""

    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class And:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Or:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Not:
    operand: Condition


Condition: TypeAlias = Comparison | Between | In | FunctionCondition | And | Or | Not


# --------------------------------------------------------------------------- updates


@dataclass(frozen=True, slots=True)
class SetAction:
    path: Path
    value: Operand


@dataclass(frozen=True, slots=True)
class RemoveAction:
    path: Path


@dataclass(frozen=True, slots=True)
class AddAction:
    path: Path
    value: ValueOperand


@dataclass(frozen=True, slots=True)
class DeleteAction:
    path: Path
    value: ValueOperand


UpdateAction: TypeAlias = SetAction | RemoveAction | AddAction | DeleteAction


@dataclass(frozen=True, slots=True)
class UpdateExpression:
    """A parsed UpdateExpression; actions keep their order of appearance within each clause."""

    set_actions: tuple[SetAction, ...] = ()
    remove_actions: tuple[RemoveAction, ...] = ()
    add_actions: tuple[AddAction, ...] = ()
    delete_actions: tuple[DeleteAction, ...] = ()

    @property
    def actions(self) -> tuple[UpdateAction, ...]:
        return (*self.set_actions, *self.remove_actions, *self.add_actions, *self.delete_actions)

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every path the update writes (for ReturnValues UPDATED_OLD / UPDATED_NEW)."""
        return tuple(action.path for action in self.actions)


# --------------------------------------------------------------------------- projections


@dataclass(frozen=True, slots=True)
class Projection:
    paths: tuple[Path, ...]

    @property
    def top_level_names(self) -> frozenset[str]:
        return frozenset(p.head for p in self.paths)


# --------------------------------------------------------------------------- key conditions

RANGE_OPERATORS = ("=", "<", "<=", ">", ">=", "BETWEEN", "BEGINS_WITH")


@dataclass(frozen=True, slots=True)
class RangeCondition:
    """The sort-key half of a KeyConditionExpression, key always on the left."""

    op: str  # one of RANGE_OPERATORS
    values: tuple[KeyValue, ...]  # one value, or (low, high) for BETWEEN


@dataclass(frozen=True, slots=True)
class KeyCondition:
    """A Query's key condition. For a multi-attribute index key, ``hash_values`` holds every
    partition-key value in schema order (``hash_value`` is the first), ``sort_prefix`` the
    values of the leading sort-key attributes matched by equality, and ``range_key`` /
    ``range_condition`` the condition on the sort-key attribute after them."""

    hash_key: str
    hash_value: KeyValue
    range_key: str | None = None
    range_condition: RangeCondition | None = None
    hash_values: tuple[KeyValue, ...] = ()
    sort_prefix: tuple[KeyValue, ...] = ()

    @property
    def partition_values(self) -> tuple[KeyValue, ...]:
        return self.hash_values or (self.hash_value,)
