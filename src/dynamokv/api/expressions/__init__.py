"""DynamoDB's expression language: the facade the API server calls.

Owns: the public entry points -- parse a ConditionExpression / FilterExpression,
UpdateExpression, ProjectionExpression or KeyConditionExpression (validating it exactly as
DynamoDB does, placeholders substituted), evaluate a condition, apply an update, project an
item -- and :class:`ExpressionAttributes`, which tracks placeholder use across all the
expressions of one request.
May import: stdlib, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.attributes` and the
modules of this package.

One-expression use::

    cond = parse_condition("attribute_not_exists(pk) OR #v < :v", names, values)
    ok = evaluate(cond, item)

Several expressions in one request (unused placeholders are judged over all of them)::

    attrs = ExpressionAttributes(request.get("ExpressionAttributeNames"),
                                 request.get("ExpressionAttributeValues"))
    update = parse_update(request["UpdateExpression"], attributes=attrs)
    cond = parse_condition(request["ConditionExpression"], attributes=attrs)
    attrs.check_unused()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dynamokv.api.expressions.condition_parser import parse_condition_tree
from dynamokv.api.expressions.context import ExpressionAttributes
from dynamokv.api.expressions.evaluate import evaluate, resolve_path
from dynamokv.api.expressions.keycondition import parse_key_condition_tree, range_matches
from dynamokv.api.expressions.nodes import (
    Condition,
    KeyCondition,
    Path,
    Projection,
    RangeCondition,
    UpdateExpression,
)
from dynamokv.api.expressions.projection import parse_projection_tree, project
from dynamokv.api.expressions.update import apply_update
from dynamokv.api.expressions.update_parser import parse_update_tree

__all__ = [
    "Condition",
    "ExpressionAttributes",
    "KeyCondition",
    "Path",
    "Projection",
    "RangeCondition",
    "UpdateExpression",
    "apply_update",
    "evaluate",
    "parse_condition",
    "parse_filter",
    "parse_key_condition",
    "parse_projection",
    "parse_update",
    "project",
    "range_matches",
    "resolve_path",
]


def _attributes(
    names: Mapping[str, Any] | None,
    values: Mapping[str, Any] | None,
    attributes: ExpressionAttributes | None,
) -> tuple[ExpressionAttributes, bool]:
    """The tracker to use, and whether this call owns it (and so checks unused placeholders)."""
    if attributes is not None:
        if names is not None or values is not None:
            raise TypeError("pass either names/values or attributes, not both")
        return attributes, False
    return ExpressionAttributes(names, values), True


def parse_condition(
    text: str,
    names: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
    *,
    attributes: ExpressionAttributes | None = None,
    label: str = "ConditionExpression",
) -> Condition:
    """Parse and validate a ConditionExpression (``label`` names it in error messages)."""
    tracker, owned = _attributes(names, values, attributes)
    condition = parse_condition_tree(text, label, tracker)
    if owned:
        tracker.check_unused()
    return condition


def parse_filter(
    text: str,
    names: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
    *,
    attributes: ExpressionAttributes | None = None,
) -> Condition:
    """A FilterExpression: the condition grammar, reported as ``Invalid FilterExpression``."""
    return parse_condition(text, names, values, attributes=attributes, label="FilterExpression")


def parse_update(
    text: str,
    names: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
    *,
    attributes: ExpressionAttributes | None = None,
) -> UpdateExpression:
    """Parse and validate an UpdateExpression."""
    tracker, owned = _attributes(names, values, attributes)
    update = parse_update_tree(text, tracker)
    if owned:
        tracker.check_unused()
    return update


def parse_projection(
    text: str,
    names: Mapping[str, Any] | None = None,
    *,
    attributes: ExpressionAttributes | None = None,
) -> Projection:
    """Parse and validate a ProjectionExpression."""
    tracker, owned = _attributes(names, None, attributes)
    projection = parse_projection_tree(text, tracker)
    if owned:
        tracker.check_unused()
    return projection


def parse_key_condition(
    text: str,
    names: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
    hash_key: str = "",
    range_key: str | None = None,
    *,
    key_types: Mapping[str, str] | None = None,
    attributes: ExpressionAttributes | None = None,
    hash_keys: Sequence[str] = (),
    range_keys: Sequence[str] = (),
) -> KeyCondition:
    """Parse a KeyConditionExpression against a key schema (table's or index's).

    ``key_types`` maps key attribute names to "S" / "N" / "B" for the type check;
    ``hash_keys`` / ``range_keys`` name every attribute of a multi-attribute index key.
    """
    if not hash_key:
        raise TypeError("hash_key is required")
    tracker, owned = _attributes(names, values, attributes)
    condition = parse_key_condition_tree(text, tracker, hash_key, range_key, key_types,
                                         hash_keys=hash_keys, range_keys=range_keys)
    if owned:
        tracker.check_unused()
    return condition
