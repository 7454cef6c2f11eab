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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, TypeAlias, TypeVar

from dynamokv.api import numbers
from dynamokv.api.errors import DynamoDBError, SerializationException, ValidationException

MAX_ITEM_SIZE = 400 * 1024
MAX_NESTING_DEPTH = 32
MAX_HASH_KEY_SIZE = 2048
MAX_RANGE_KEY_SIZE = 1024

T = TypeVar("T")

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
_VALUE_TYPES = (S, N, B, BOOL, NULL, SS, NS, BS, L, M)


def _maker(cls: type[T]) -> Callable[[Any], T]:
    """``cls(value)`` without the frozen dataclass ``__init__`` (a Python frame that sets the
    field through ``object.__setattr__``): the same object, built about twice as fast, which
    counts when a request carries hundreds of thousands of values."""
    new = object.__new__
    set_value = cls.__dict__["value"].__set__

    def make(value: Any) -> T:
        obj = new(cls)
        set_value(obj, value)
        return obj

    return make


_new_s = _maker(S)
_new_n = _maker(N)
_new_b = _maker(B)
_new_l = _maker(L)
_new_m = _maker(M)
# Values are immutable, so the two booleans and NULL need one object each.
_TRUE = BOOL(True)
_FALSE = BOOL(False)
_NULL = NULL()


# --------------------------------------------------------------------------- wire -> values


def from_wire(data: Any, *, _depth: int = 1) -> AttributeValue:
    """Validate one wire attribute value (``{"S": "x"}``) and build its typed value."""
    return _value(data, _depth)


def _value(data: Any, depth: int) -> AttributeValue:
    # The common case, one known type with a value, goes straight to its converter; anything
    # else (typed values, several or unknown keys, nulls) takes the general path below.
    if type(data) is dict and len(data) == 1:
        (kind, raw), = data.items()
        convert = _CONVERTERS.get(kind)
        if convert is not None and raw is not None:
            return convert(raw, depth)
    return _general_value(data, depth)


def _general_value(data: Any, depth: int) -> AttributeValue:
    if isinstance(data, _VALUE_TYPES):
        return data
    if type(data) is WireValue and data.converted is not None:  # see prepare_value
        if isinstance(data.converted, Exception):
            error, data.converted = data.converted, None  # no cycle through its traceback
            raise error
        return data.converted
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
    return _CONVERTERS[kind](data[kind], depth)


def _string_value(raw: Any, depth: int) -> S:
    if type(raw) is str and raw.isascii():  # isascii is O(1): no encode check needed
        return _new_s(raw)
    return _new_s(_wire_string(raw))


def _number_value(raw: Any, depth: int) -> N:
    text = raw if type(raw) is str and raw.isascii() else _wire_string(raw)
    return _new_n(numbers.parse_number(text))


def _binary_value(raw: Any, depth: int) -> B:
    return _new_b(_wire_binary(raw))


def _bool_value(raw: Any, depth: int) -> BOOL:
    if raw is True:
        return _TRUE
    if raw is False:
        return _FALSE
    _wire_bool(raw)
    raise AssertionError("unreachable")  # pragma: no cover - _wire_bool raised


def _null_value(raw: Any, depth: int) -> NULL:
    # The service used to reject {"NULL": false}; it now accepts it as NULL.
    if raw is not True and raw is not False:
        _wire_bool(raw)
    return _NULL


def _set_value(kind: str) -> Callable[[Any, int], SetValue]:
    return lambda raw, depth: _wire_set(kind, raw)


def _list_value(raw: Any, depth: int) -> L:
    if depth >= MAX_NESTING_DEPTH:
        raise ValidationException(NESTING_EXCEEDED)
    if not isinstance(raw, list):
        raise SerializationException("Unexpected value type in payload for L")
    inner = depth + 1
    return _new_l(tuple([_value(v, inner) for v in raw]))


def _map_value(raw: Any, depth: int) -> M:
    if depth >= MAX_NESTING_DEPTH:
        raise ValidationException(NESTING_EXCEEDED)
    if not isinstance(raw, Mapping):
        raise SerializationException("Unexpected value type in payload for M")
    inner = depth + 1
    # The name of an entry is checked before its value, as in a plain loop.
    return _new_m({
        (k if type(k) is str and k.isascii() else _wire_name(k)): _value(v, inner)
        for k, v in raw.items()
    })


NESTING_EXCEEDED = ("Nesting Levels have exceeded supported limits: "
                    "Attributes in the item have nested levels beyond supported limit")
_CONVERTERS: dict[str, Callable[[Any, int], AttributeValue]] = {
    "S": _string_value,
    "N": _number_value,
    "B": _binary_value,
    "BOOL": _bool_value,
    "NULL": _null_value,
    "M": _map_value,
    "L": _list_value,
    "SS": _set_value("SS"),
    "NS": _set_value("NS"),
    "BS": _set_value("BS"),
}


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
    if type(data) is not dict:
        if type(data) is WireItem and data.converted is not None:  # see prepare_item
            if isinstance(data.converted, Exception):
                error, data.converted = data.converted, None  # no cycle through its traceback
                raise error
            return data.converted.copy()
        if not isinstance(data, Mapping):
            raise SerializationException("Start of structure or map found where not expected")
    item: Item = {}
    for name, value in data.items():
        # The name of an attribute is checked before its value, as DynamoDB reports them.
        if type(name) is str and name.isascii() and 0 < len(name) <= MAX_NAME_BYTES:
            item[name] = _value(value, 1)
        else:
            item[check_attribute_name(_wire_name(name))] = _value(value, 1)
    return item


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
    return _TO_WIRE.get(type(value), _general_to_wire)(value)


def _general_to_wire(value: Any) -> dict[str, Any]:
    # Only reached for a subclass of a value type; the table below covers the types themselves.
    for kind, convert in _TO_WIRE.items():
        if isinstance(value, kind):
            return convert(value)
    raise TypeError(f"not an attribute value: {type(value).__name__}")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _list_to_wire(value: L) -> dict[str, Any]:
    get = _TO_WIRE.get
    return {"L": [get(type(v), _general_to_wire)(v) for v in value.value]}


def _map_to_wire(value: M) -> dict[str, Any]:
    get = _TO_WIRE.get
    return {"M": {k: get(type(v), _general_to_wire)(v) for k, v in value.value.items()}}


_TO_WIRE: dict[type, Callable[[Any], dict[str, Any]]] = {
    S: lambda value: {"S": value.value},
    N: lambda value: {"N": numbers.format_number(value.value)},
    NULL: lambda value: {"NULL": True},
    BOOL: lambda value: {"BOOL": value.value},
    L: _list_to_wire,
    M: _map_to_wire,
    B: lambda value: {"B": _b64(value.value)},
    SS: lambda value: {"SS": sorted(value.value)},
    NS: lambda value: {"NS": [numbers.format_number(v) for v in sorted(value.value)]},
    BS: lambda value: {"BS": [_b64(v) for v in sorted(value.value)]},
}


def item_to_wire(item: Mapping[str, AttributeValue]) -> dict[str, Any]:
    get = _TO_WIRE.get
    return {name: get(type(value), _general_to_wire)(value) for name, value in item.items()}


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
    return _SIZE_OF.get(type(value), _general_size)(value)


def _general_size(value: Any) -> int:
    # Only reached for a subclass of a value type; the table below covers the types themselves.
    for kind, size in _SIZE_OF.items():
        if isinstance(value, kind):
            return size(value)
    raise TypeError(f"not an attribute value: {type(value).__name__}")


def _text_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


# Documents: 3 bytes of overhead, plus 1 byte per element on top of the element itself.
def _list_size(value: L) -> int:
    get = _SIZE_OF.get
    return 3 + len(value.value) + sum([get(type(v), _general_size)(v) for v in value.value])


def _map_size(value: M) -> int:
    get = _SIZE_OF.get
    entries = value.value
    return 3 + len(entries) + sum([
        (len(k) if k.isascii() else len(k.encode("utf-8"))) + get(type(v), _general_size)(v)
        for k, v in entries.items()
    ])


_SIZE_OF: dict[type, Callable[[Any], int]] = {
    S: lambda value: _text_size(value.value),
    N: lambda value: numbers.number_size(value.value),
    NULL: lambda value: 1,
    BOOL: lambda value: 1,
    L: _list_size,
    M: _map_size,
    B: lambda value: len(value.value),
    SS: lambda value: sum([_text_size(v) for v in value.value]),
    NS: lambda value: sum([numbers.number_size(v) for v in value.value]),
    BS: lambda value: sum([len(v) for v in value.value]),
}


def item_size(item: Mapping[str, AttributeValue]) -> int:
    """Bytes ``item`` counts against the 400 KB limit: names plus values."""
    if type(item) is PreparedItem and item.size is not None:
        return item.size
    get = _SIZE_OF.get
    return sum([
        (len(name) if name.isascii() else len(name.encode("utf-8")))
        + get(type(v), _general_size)(v)
        for name, v in item.items()
    ])


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


# --------------------------------------------------------------------------- ahead of time


class _Memo(dict[str, Any]):
    """A dict that remembers something derived from its contents; any change forgets it."""

    __slots__ = ()

    def _forget(self) -> None:
        raise NotImplementedError

    def __setitem__(self, key: str, value: Any) -> None:
        self._forget()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._forget()
        super().__delitem__(key)

    def __ior__(self, other: Any) -> Any:  # type: ignore[misc]
        self._forget()
        return super().__ior__(other)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._forget()
        super().update(*args, **kwargs)

    def pop(self, *args: Any) -> Any:
        self._forget()
        return super().pop(*args)

    def popitem(self) -> tuple[str, Any]:
        self._forget()
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._forget()
        return super().setdefault(key, default)

    def clear(self) -> None:
        self._forget()
        super().clear()


class PreparedItem(_Memo):
    """A typed item converted ahead of time, with its size and (once set) its stored bytes, so
    the event loop does not walk it again (``item_size``, ``items.encode_item``)."""

    __slots__ = ("encoded", "size")

    def __init__(self, item: Mapping[str, AttributeValue], size: int | None = None,
                 encoded: bytes | None = None) -> None:
        super().__init__(item)
        self.size = size
        self.encoded = encoded

    def _forget(self) -> None:
        self.size = None
        self.encoded = None

    def copy(self) -> PreparedItem:  # type: ignore[override]
        return PreparedItem(self, self.size, self.encoded)


class WireItem(_Memo):
    """A wire item (contents unchanged: it serialises and reads as the request gave it) that
    carries what :func:`item_from_wire` makes of it, a :class:`PreparedItem` or the error."""

    __slots__ = ("converted",)

    def __init__(self, wire: Mapping[str, Any], converted: PreparedItem | Exception) -> None:
        super().__init__(wire)
        self.converted: PreparedItem | Exception | None = converted

    def _forget(self) -> None:
        self.converted = None


class WireValue(_Memo):
    """A wire attribute value that carries what :func:`from_wire` makes of it, or the error."""

    __slots__ = ("converted",)

    def __init__(self, wire: Mapping[str, Any], converted: AttributeValue | Exception) -> None:
        super().__init__(wire)
        self.converted: AttributeValue | Exception | None = converted

    def _forget(self) -> None:
        self.converted = None


def prepare_item(data: Any) -> Any:
    """``data``, a wire item, as a :class:`WireItem` converted now (with its size), for a
    caller that has time to spare now and not later (a worker thread). ``data`` itself if it
    is not a dict, or on an error that is not the request's fault."""
    if type(data) is not dict:
        return data
    try:
        item = item_from_wire(data)
        converted: PreparedItem | Exception = PreparedItem(item, item_size(item))
    except DynamoDBError as exc:
        converted = exc
    except Exception:  # the caller converts it again in its own time and reports that
        return data
    return WireItem(data, converted)


def prepare_value(data: Any) -> Any:
    """``data``, a wire attribute value, as a :class:`WireValue` converted now."""
    if type(data) is not dict:
        return data
    try:
        converted: AttributeValue | Exception = from_wire(data)
    except DynamoDBError as exc:
        converted = exc
    except Exception:
        return data
    return WireValue(data, converted)


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
