"""ExpressionAttributeNames / ExpressionAttributeValues of one request, and error collection.

Owns: validating the two placeholder maps (DynamoDB's messages for empty maps, bad keys and bad
values), resolving ``#n`` / ``:v`` for the parsers while remembering which were used, and the
request-wide "unused" check -- DynamoDB reports a placeholder unused only if *no* expression
of the request (condition, update, projection, filter, key condition) referred to it.
Also owns :class:`Problems`, the per-expression collector that lets a parser keep going after a
semantic error and report the one DynamoDB would report first.
May import: stdlib, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.attributes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dynamokv.api.attributes import MAX_NAME_BYTES, AttributeValue, from_wire
from dynamokv.api.errors import SerializationException, ValidationException, invalid_expression

_PLACEHOLDER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _not_a_string(value: Any) -> SerializationException:
    """DynamoDB's SerializationException for a JSON value where a string belongs."""
    if isinstance(value, dict):
        return SerializationException("Start of structure or map found where not expected")
    if isinstance(value, list):
        return SerializationException("Start of list found where not expected")
    if isinstance(value, bool):
        return SerializationException("BOOLEAN cannot be converted to String")
    if isinstance(value, (int, float)):
        return SerializationException("NUMBER_VALUE cannot be converted to String")
    return SerializationException("Unexpected value cannot be converted to String")


def _valid_placeholder(key: Any, sigil: str) -> bool:
    return (
        isinstance(key, str)
        and len(key) > 1
        and key[0] == sigil
        and all(c in _PLACEHOLDER_CHARS for c in key[1:])
    )


class ExpressionAttributes:
    """The placeholder maps of one request, shared by all of its expressions.

    Create one per request, pass it to every ``parse_*`` call of that request, then call
    :meth:`check_unused` once all expressions are parsed.
    """

    def __init__(
        self,
        names: Mapping[str, Any] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValue] = {}
        self.names_given = names is not None
        self.values_given = values is not None
        self._used_names: set[str] = set()
        self._used_values: set[str] = set()
        if names is not None:
            if not names:
                raise ValidationException("ExpressionAttributeNames must not be empty")
            for key, name in names.items():
                if not _valid_placeholder(key, "#"):
                    raise ValidationException(
                        f'ExpressionAttributeNames contains invalid key: Syntax error; key: "{key}"'
                    )
                if not isinstance(name, str):
                    raise _not_a_string(name)
                if not name:
                    raise ValidationException(
                        "ExpressionAttributeNames contains invalid value: Empty attribute name "
                        f"for key {key}"
                    )
                if len(name) * 4 > MAX_NAME_BYTES and len(name.encode("utf-8")) > MAX_NAME_BYTES:
                    raise ValidationException(
                        "ExpressionAttributeNames contains invalid value: Attribute name exceeds "
                        f"the maximum allowed length of {MAX_NAME_BYTES} bytes for key {key}"
                    )
                self.names[key] = name
        if values is not None:
            if not values:
                raise ValidationException("ExpressionAttributeValues must not be empty")
            for key, raw in values.items():
                if not _valid_placeholder(key, ":"):
                    raise ValidationException(
                        "ExpressionAttributeValues contains invalid key: Syntax error; "
                        f'key: "{key}"'
                    )
                try:
                    self.values[key] = from_wire(raw)
                except ValidationException as exc:
                    raise ValidationException(
                        f"ExpressionAttributeValues contains invalid value: {exc.message} "
                        f"for key {key}"
                    ) from exc

    def resolve_name(self, placeholder: str) -> str | None:
        name = self.names.get(placeholder)
        if name is not None:
            self._used_names.add(placeholder)
        return name

    def resolve_value(self, placeholder: str) -> AttributeValue | None:
        value = self.values.get(placeholder)
        if value is not None:
            self._used_values.add(placeholder)
        return value

    @property
    def unused_names(self) -> list[str]:
        return [k for k in self.names if k not in self._used_names]

    @property
    def unused_values(self) -> list[str]:
        return [k for k in self.values if k not in self._used_values]

    def check_unused(self) -> None:
        """Raise DynamoDB's error if a placeholder was never referred to by any expression."""
        if self.unused_names:
            keys = ", ".join(self.unused_names)
            raise ValidationException(
                "Value provided in ExpressionAttributeNames unused in expressions: "
                f"keys: {{{keys}}}"
            )
        if self.unused_values:
            keys = ", ".join(self.unused_values)
            raise ValidationException(
                "Value provided in ExpressionAttributeValues unused in expressions: "
                f"keys: {{{keys}}}"
            )

    def check_given_without_expressions(self) -> None:
        """For requests that carry no expression at all but do carry placeholder maps."""
        if self.names_given:
            raise ValidationException(
                "ExpressionAttributeNames can only be specified when using expressions"
            )
        if self.values_given:
            raise ValidationException(
                "ExpressionAttributeValues can only be specified when using expressions"
            )


class Problems:
    """Semantic errors found while parsing one expression, first one per category.

    DynamoDB does not report the first error in reading order: it reports by category
    (e.g. redundant parentheses before an unknown function before a reserved word before an
    undefined placeholder), so the parser records everything and :meth:`raise_first` picks.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self._found: dict[str, str] = {}
        self._seen_at: dict[str, int] = {}

    def add(self, category: str, message: str) -> None:
        if category not in self._found:
            self._found[category] = message
            self._seen_at[category] = len(self._seen_at)

    def has(self, category: str) -> bool:
        return category in self._found

    def raise_first(self, order: Sequence[str], in_reading_order: Sequence[str] = ()) -> None:
        """Raise the problem of the first category of ``order`` that has one; the categories
        of ``in_reading_order`` rank together (where the first of them stands in ``order``),
        the one met first while parsing winning: DynamoDB checks those operand by operand."""
        for category in order:
            if category in in_reading_order:
                met = [c for c in in_reading_order if c in self._found]
                if met:
                    earliest = min(met, key=self._seen_at.__getitem__)
                    raise invalid_expression(self.label, self._found[earliest])
                continue
            message = self._found.get(category)
            if message is not None:
                raise invalid_expression(self.label, message)
        if self._found:  # a category the caller forgot to order: still an error
            raise invalid_expression(self.label, next(iter(self._found.values())))
