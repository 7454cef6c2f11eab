"""Typed attribute values: DynamoDB JSON in and out, validation, size and key comparison.

Owns: the ten attribute types (S, N, B, BOOL, NULL, M, L, SS, NS, BS) as immutable Python
values; turning wire JSON (``{"S": "x"}``, binary as base64) into them with DynamoDB's exact
validation messages and back; equality with DynamoDB semantics; item size and the 400 KB
limit; the validity rules and ordering of key attributes.
May import: stdlib, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.numbers`.

Items are plain ``dict[str, AttributeValue]``. Values are frozen: code that "changes" an item
builds a new dict (and new M/L containers along the changed path), so a stored item can be
shared safely.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, TypeAlias

from dynamokv.api import numbers
from dynamokv.api.errors import SerializationException, ValidationException

MAX_ITEM_SIZE = 400 * 1024
MAX_NESTING_DEPTH = 32
MAX_HASH_KEY_SIZE = 2048
MAX_RANGE_KEY_SIZE = 1024

TYPE_NAMES = ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS")
KEY_TYPES = ("S", "N", "B")


@dataclass(frozen=True, slots=True)
class S:
    value: str
    type_name: ClassVar[str] = "S"


@dataclass(frozen=True, slots=True)
class N:
    """A Number; ``value`` is always canonical (see :mod:`dynamokv.api.numbers`)."""

    value: Decimal
    type_name: ClassVar[str] = "N"


@dataclass(frozen=True, slots=True)
class B:
    value: bytes
    type_name: ClassVar[str] = "B"


@dataclass(frozen=True, slots=True)
class BOOL:
    value: bool
    type_name: ClassVar[str] = "BOOL"


@dataclass(frozen=True, slots=True)
class NULL:
    type_name: ClassVar[str] = "NULL"


@dataclass(frozen=True, slots=True)
class SS:
    value: frozenset[str]
    type_name: ClassVar[str] = "SS"


@dataclass(frozen=True, slots=True)
class NS:
    value: frozenset[Decimal]
    type_name: ClassVar[str] = "NS"


@dataclass(frozen=True, slots=True)
class BS:
    value: frozenset[bytes]
    type_name: ClassVar[str] = "BS"


@dataclass(frozen=True, slots=True)
class L:
    value: tuple[AttributeValue, ...]
    type_name: ClassVar[str] = "L"


@dataclass(frozen=True, slots=True)
class M:
    # A Mapping, never mutated after construction; frozen dataclass equality compares contents.
    value: Mapping[str, AttributeValue]
    type_name: ClassVar[str] = "M"


AttributeValue: TypeAlias = S | N | B | BOOL | NULL | SS | NS | BS | L | M
KeyValue: TypeAlias = S | N | B
Item: TypeAlias = dict[str, AttributeValue]
SetValue: TypeAlias = SS | NS | BS

_INVALID = "One or more parameter values were invalid: "


# --------------------------------------------------------------------------- wire -> values


def from_wire(data: Any, *, _depth: int = 1) -> AttributeValue:
    """Validate one wire attribute value (``{"S": "x"}``) and build its typed value."""
    if isinstance(data, (S, N, B, BOOL, NULL, SS, NS, BS, L, M)):
        return data
    if not isinstance(data, Mapping):
        raise SerializationException("Start of structure or map found where not expected")
    present = [name for name in TYPE_NAMES if data.get(name) is not None]
    if not present:
        raise ValidationException(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
        )
    if len(present) > 1:
        raise ValidationException(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly "
            "one of the supported datatypes"
        )
    kind = present[0]
    raw = data[kind]
    if kind == "S":
        return S(_wire_string(raw))
    if kind == "N":
        return N(numbers.parse_number(_wire_string(raw)))
    if kind == "B":
        return B(_wire_binary(raw))
    if kind == "BOOL":
        return BOOL(_wire_bool(raw))
    if kind == "NULL":
        # The service used to reject {"NULL": false}; it now accepts it as NULL.
        _wire_bool(raw)
        return NULL()
    if kind in ("SS", "NS", "BS"):
        return _wire_set(kind, raw)
    if _depth >= MAX_NESTING_DEPTH:
        raise ValidationException("Nesting Levels have exceeded supported limits")
    if kind == "L":
        if not isinstance(raw, list):
            raise SerializationException("Unexpected value type in payload for L")
        return L(tuple(from_wire(v, _depth=_depth + 1) for v in raw))
    if not isinstance(raw, Mapping):
        raise SerializationException("Unexpected value type in payload for M")
    return M({_wire_name(k): from_wire(v, _depth=_depth + 1) for k, v in raw.items()})


def _wire_string(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str):
        kind = "NUMBER_VALUE" if isinstance(raw, (int, float)) else "Unexpected value"
        raise SerializationException(f"{kind} cannot be converted to String")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate from a JSON "\ud800" escape is not a valid Unicode string.
        raise SerializationException("Invalid UTF-8 in string value") from exc
    return raw


def _wire_name(raw: Any) -> str:
    if not isinstance(raw, str):
        raise SerializationException("Attribute names must be strings")
    return _wire_string(raw)


def _wire_binary(raw: Any) -> bytes:
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    if not isinstance(raw, str):
        raise SerializationException("Unexpected value type for binary data")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SerializationException(
            f"Base64 encoded length is expected a multiple of 4 bytes but found: {len(raw)}"
            if len(raw) % 4
            else "Invalid base64 character in binary value"
        ) from exc


def _wire_bool(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise SerializationException("Unexpected value type in payload: expected a boolean")
    return raw


def _wire_set(kind: str, raw: Any) -> SetValue:
    if not isinstance(raw, list):
        raise SerializationException(f"Unexpected value type in payload for {kind}")
    if not raw:
        raise ValidationException(
            _INVALID
            + {
                "SS": "An string set  may not be empty",
                "NS": "An number set  may not be empty",
                "BS": "Binary sets should not be empty",
            }[kind]
        )
    members: list[Any]
    if kind == "SS":
        members = [_wire_string(v) for v in raw]
    elif kind == "NS":
        members = [numbers.parse_number(_wire_string(v)) for v in raw]
    else:
        members = [_wire_binary(v) for v in raw]
    unique = frozenset(members)
    if len(unique) != len(members):
        shown = ", ".join(f'"{v}"' if isinstance(v, str) else f'"{v!r}"' for v in raw)
        raise ValidationException(_INVALID + f"Input collection [{shown}] contains duplicates.")
    if kind == "SS":
        return SS(unique)
    if kind == "NS":
        return NS(unique)
    return BS(unique)


def item_from_wire(data: Any) -> Item:
    """Validate a wire item (``{"name": {"S": "x"}, ...}``)."""
    if not isinstance(data, Mapping):
        raise SerializationException("Start of structure or map found where not expected")
    return {
        check_attribute_name(_wire_name(name)): from_wire(value) for name, value in data.items()
    }


MAX_NAME_BYTES = 65535


def check_attribute_name(name: str) -> str:
    """A top-level attribute name as a request gives it: not empty, at most 64 KB - 1 bytes."""
    if not name:
        raise ValidationException(_INVALID + "An attribute name cannot be empty")
    # Cheap test first: a name is at most 4 bytes per character in UTF-8.
    if len(name) * 4 > MAX_NAME_BYTES and len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ValidationException(
            _INVALID + "Attribute name exceeds the maximum allowed length of "
            f"{MAX_NAME_BYTES} bytes"
        )
    return name


# --------------------------------------------------------------------------- values -> wire


def to_wire(value: AttributeValue) -> dict[str, Any]:
    """The wire form of ``value``; set members come out in a stable (sorted) order."""
    if isinstance(value, S):
        return {"S": value.value}
    if isinstance(value, N):
        return {"N": numbers.format_number(value.value)}
    if isinstance(value, B):
        return {"B": base64.b64encode(value.value).decode("ascii")}
    if isinstance(value, BOOL):
        return {"BOOL": value.value}
    if isinstance(value, NULL):
        return {"NULL": True}
    if isinstance(value, SS):
        return {"SS": sorted(value.value)}
    if isinstance(value, NS):
        return {"NS": [numbers.format_number(v) for v in sorted(value.value)]}
    if isinstance(value, BS):
        return {"BS": [base64.b64encode(v).decode("ascii") for v in sorted(value.value)]}
    if isinstance(value, L):
        return {"L": [to_wire(v) for v in value.value]}
    return {"M": {k: to_wire(v) for k, v in value.value.items()}}


def item_to_wire(item: Mapping[str, AttributeValue]) -> dict[str, Any]:
    return {name: to_wire(value) for name, value in item.items()}


def from_python(obj: Any) -> AttributeValue:
    """Convenience constructor from plain Python (str, int/Decimal, bytes, bool, None, ...)."""
    if isinstance(obj, (S, N, B, BOOL, NULL, SS, NS, BS, L, M)):
        return obj
    if isinstance(obj, bool):
        return BOOL(obj)
    if obj is None:
        return NULL()
    if isinstance(obj, str):
        return S(obj)
    if isinstance(obj, (int, Decimal)):
        return N(numbers.check_number(Decimal(obj)))
    if isinstance(obj, float):
        return N(numbers.parse_number(repr(obj)))
    if isinstance(obj, (bytes, bytearray)):
        return B(bytes(obj))
    if isinstance(obj, Mapping):
        return M({str(k): from_python(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return L(tuple(from_python(v) for v in obj))
    if isinstance(obj, (set, frozenset)):
        return _set_from_python(obj)
    raise TypeError(f"cannot convert {type(obj).__name__} to an attribute value")


def _set_from_python(obj: Iterable[Any]) -> SetValue:
    members = list(obj)
    if not members:
        raise ValueError("DynamoDB sets cannot be empty")
    if all(isinstance(m, str) for m in members):
        return SS(frozenset(members))
    if all(isinstance(m, (bytes, bytearray)) for m in members):
        return BS(frozenset(bytes(m) for m in members))
    return NS(frozenset(numbers.check_number(Decimal(m)) for m in members))


# --------------------------------------------------------------------------- size


def value_size(value: AttributeValue) -> int:
    """Bytes ``value`` costs, excluding its attribute name."""
    if isinstance(value, S):
        return len(value.value.encode("utf-8"))
    if isinstance(value, N):
        return numbers.number_size(value.value)
    if isinstance(value, B):
        return len(value.value)
    if isinstance(value, (BOOL, NULL)):
        return 1
    if isinstance(value, SS):
        return sum(len(v.encode("utf-8")) for v in value.value)
    if isinstance(value, NS):
        return sum(numbers.number_size(v) for v in value.value)
    if isinstance(value, BS):
        return sum(len(v) for v in value.value)
    # Documents: 3 bytes of overhead, plus 1 byte per element on top of the element itself.
    if isinstance(value, L):
        return 3 + sum(1 + value_size(v) for v in value.value)
    return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in value.value.items())


def item_size(item: Mapping[str, AttributeValue]) -> int:
    """Bytes ``item`` counts against the 400 KB limit: names plus values."""
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


def check_item_size(
    item: Mapping[str, AttributeValue],
    message: str = "Item size has exceeded the maximum allowed size",
) -> int:
    """Raise ``ValidationException(message)`` if ``item`` is over 400 KB; return its size.

    UpdateItem reports ``"Item size to update has exceeded the maximum allowed size"``.
    """
    size = item_size(item)
    if size > MAX_ITEM_SIZE:
        raise ValidationException(message)
    return size


# --------------------------------------------------------------------------- equality, order


def type_name(value: AttributeValue) -> str:
    return value.type_name


def values_equal(a: AttributeValue, b: AttributeValue) -> bool:
    """DynamoDB equality: same type and same value (sets unordered, documents deep)."""
    # Dataclass equality already compares type and contents; N holds canonical Decimals.
    return type(a) is type(b) and a == b


def compare_values(a: AttributeValue, b: AttributeValue) -> int | None:
    """-1/0/1 for two S, N or B values of the same type; ``None`` when not comparable.

    Strings order by UTF-8 bytes, which for valid Unicode is exactly code-point order, so
    Python's ``str`` comparison is used directly.
    """
    if isinstance(a, S) and isinstance(b, S):
        return (a.value > b.value) - (a.value < b.value)
    if isinstance(a, N) and isinstance(b, N):
        return (a.value > b.value) - (a.value < b.value)
    if isinstance(a, B) and isinstance(b, B):
        return (a.value > b.value) - (a.value < b.value)
    return None


def validate_key_attribute(
    name: str,
    value: AttributeValue,
    expected_type: str | None = None,
    *,
    is_range: bool = False,
) -> None:
    """DynamoDB's per-value rules for a key attribute: schema type, non-empty, size."""
    if expected_type is not None and value.type_name != expected_type:
        raise ValidationException(
            _INVALID
            + f"Type mismatch for key {name} expected: {expected_type} actual: {value.type_name}"
        )
    if isinstance(value, S) and value.value == "":
        raise ValidationException(
            "One or more parameter values are not valid. The AttributeValue for a key "
            f"attribute cannot contain an empty string value. Key: {name}"
        )
    if isinstance(value, B) and value.value == b"":
        raise ValidationException(
            "One or more parameter values are not valid. The AttributeValue for a key "
            f"attribute cannot contain an empty binary value. Key: {name}"
        )
    size = value_size(value)
    if is_range and size > MAX_RANGE_KEY_SIZE:
        raise ValidationException(
            _INVALID + "Aggregated size of all range keys has exceeded the size limit of "
            f"{MAX_RANGE_KEY_SIZE} bytes"
        )
    if not is_range and size > MAX_HASH_KEY_SIZE:
        # The missing space after "of" is DynamoDB's own.
        raise ValidationException(
            _INVALID + "Size of hashkey has exceeded the maximum size limit of"
            f"{MAX_HASH_KEY_SIZE} bytes"
        )
