"""The msgpack codec: every message, versioned object and vector clock to bytes and back.

Owns: ``encode``/``decode`` (messages), ``encode_object``/``decode_object`` (the at-rest form
storage engines keep), ``encode_clock``/``decode_clock`` (the opaque client context), and the
wire tag of each message class.
May import: ``dynamokv.core.*``, ``dynamokv.errors`` and ``msgpack`` only.

Wire forms (all msgpack arrays, never maps with field names, to keep frames small):

- a message is ``[tag, field1, field2, ...]`` in dataclass field order, where ``tag`` is the
  class's position in ``core.messages.ALL_MESSAGES``; a nested message (``CoordinatePut.request``)
  is its field array without the tag;
- a ``VectorClock`` is ``[[actor, counter, timestamp_ms], ...]``, sorted by actor;
- a ``VersionedObject`` is ``[[value, dot_actor, dot_counter, context, timestamp_ms], ...]``,
  sorted by dot;
- a ``Ring`` is ``[q, [owner, ...], [member, ...], version, claimant]`` and a member is
  ``[node_id, address, status_value, http_address, metrics_address]``;
- ``dict`` fields (``details``, ``props``, ``status``, ``buckets``) are msgpack maps with str
  keys whose values are plain msgpack values (nil, bool, int, float, str, bin, array, map).

At rest, ``encode_object`` and ``encode_clock`` prefix the msgpack body with one format-version
byte (``OBJECT_FORMAT_VERSION``, ``CLOCK_FORMAT_VERSION``) so the layout can change later without
guessing what old bytes mean.

``decode*`` take bytes from the network or the disk, so they trust nothing: every field's type and
range is checked (exact types, so a msgpack bool is never taken for an int), clocks and objects
must be in their canonical sorted order, and any failure at all is a ``ProtocolError`` naming the
field at fault. ``encode*`` trust their input (it is mypy-typed and comes from this process): a
value msgpack cannot pack raises msgpack's ``TypeError``, a programming error rather than a
peer's.

The per-class encoders and decoders are built once at import from the dataclasses' type hints;
adding a message whose field type has no codec here fails at import rather than on the wire.
"""

from __future__ import annotations

import threading
import typing
from collections.abc import Callable
from operator import attrgetter
from typing import Any, Final

import msgpack

from dynamokv.core.messages import ALL_MESSAGES, Message
from dynamokv.core.ring import Member, MemberStatus, Ring
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.errors import ProtocolError

__all__ = [
    "CLOCK_FORMAT_VERSION",
    "MAX_PLAIN_DEPTH",
    "OBJECT_FORMAT_VERSION",
    "TAGS",
    "decode",
    "decode_clock",
    "decode_object",
    "encode",
    "encode_clock",
    "encode_object",
]

OBJECT_FORMAT_VERSION: Final = 1
CLOCK_FORMAT_VERSION: Final = 1
# How deep a plain value inside a dict field may nest: real details and props are a few levels
# deep, and a bound keeps a hostile peer from making us recurse to Python's limit.
MAX_PLAIN_DEPTH: Final = 32

TAGS: Final[dict[type, int]] = {cls: tag for tag, cls in enumerate(ALL_MESSAGES)}

_OBJECT_PREFIX: Final = bytes([OBJECT_FORMAT_VERSION])
_CLOCK_PREFIX: Final = bytes([CLOCK_FORMAT_VERSION])
_EMPTY_CLOCK: Final = VectorClock.empty()
_STATUS_BY_VALUE: Final[dict[str, MemberStatus]] = {s.value: s for s in MemberStatus}

Bytes = bytes | bytearray | memoryview
Decoder = Callable[[Any, str], Any]  # (wire value, field label) -> validated value
Encoder = Callable[[Any], Any]  # field value -> wire value


# ---- packing --------------------------------------------------------------------------------


class _LocalPacker(threading.local):
    """One msgpack Packer per thread.

    Reusing a Packer halves the cost of ``packb`` (which builds one per call), but a Packer has
    an internal buffer, so threads (storage engines may encode off the event loop) get their own.
    """

    def __init__(self) -> None:
        self.pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack


_LOCAL = _LocalPacker()


def _unpack(data: Bytes) -> Any:
    """Parse exactly one msgpack value; any failure becomes a ProtocolError.

    ``use_list=False`` yields tuples, which the frozen dataclasses want anyway (clock entries and
    ``GetReply.values`` are used as decoded, without a copy); dict fields turn them back into
    lists in ``_plain``.
    """
    try:
        return msgpack.unpackb(data, raw=False, use_list=False, strict_map_key=False)
    except msgpack.ExtraData as e:
        raise ProtocolError(f"trailing garbage: {len(e.extra)} bytes after the message") from None
    except msgpack.StackError:
        raise ProtocolError("not valid msgpack: nested too deeply") from None
    except Exception as e:
        # msgpack raises ValueError (truncated input, lengths past the end), FormatError,
        # UnicodeDecodeError (a str that is not UTF-8), TypeError (an unhashable map key) ...
        reason = str(e) or type(e).__name__
        raise ProtocolError(f"not valid msgpack: {reason}") from None


# ---- error messages -------------------------------------------------------------------------

_WIRE_TYPE_NAMES: Final[dict[type, str]] = {
    type(None): "nil",
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    bytes: "bin",
    tuple: "array",
    dict: "map",
}


def _describe(v: object) -> str:
    """The msgpack type of a decoded value, for error messages."""
    name = _WIRE_TYPE_NAMES.get(type(v))
    return name if name is not None else f"ext ({type(v).__name__})"


def _wrong_type(label: str, expected: str, v: object) -> ProtocolError:
    return ProtocolError(f"{label} must be {expected}, got {_describe(v)}")


def _bad_int(label: str, v: object, minimum: int) -> ProtocolError:
    if type(v) is int:
        return ProtocolError(f"{label} must be >= {minimum}, got {v}")
    return _wrong_type(label, "an int", v)


# ---- scalar fields --------------------------------------------------------------------------
# Exact ``type(v) is T`` checks: msgpack returns exactly these types, and ``isinstance`` would
# let a bool through as an int.


def _dec_uint(v: Any, label: str) -> int:
    if type(v) is int and v >= 0:
        return v
    raise _bad_int(label, v, 0)


def _dec_opt_uint(v: Any, label: str) -> int | None:
    if v is None or (type(v) is int and v >= 0):
        return v
    raise _bad_int(label, v, 0) if type(v) is int else _wrong_type(label, "an int or nil", v)


def _dec_str(v: Any, label: str) -> str:
    if type(v) is str:
        return v
    raise _wrong_type(label, "a str", v)


def _dec_bytes(v: Any, label: str) -> bytes:
    if type(v) is bytes:
        return v
    raise _wrong_type(label, "bytes (msgpack bin)", v)


def _dec_opt_bytes(v: Any, label: str) -> bytes | None:
    if v is None or type(v) is bytes:
        return v
    raise _wrong_type(label, "bytes (msgpack bin) or nil", v)


def _dec_bool(v: Any, label: str) -> bool:
    if type(v) is bool:
        return v
    raise _wrong_type(label, "a bool", v)


def _dec_bytes_tuple(v: Any, label: str) -> tuple[bytes, ...]:
    if type(v) is not tuple:
        raise _wrong_type(label, "an array of bytes", v)
    for i, x in enumerate(v):
        if type(x) is not bytes:
            raise _wrong_type(f"{label}[{i}]", "bytes (msgpack bin)", x)
    return v


# ---- vector clocks --------------------------------------------------------------------------


def _dec_clock(v: Any, label: str) -> VectorClock:
    if type(v) is not tuple:
        raise _wrong_type(label, "an array of clock entries", v)
    if not v:
        return _EMPTY_CLOCK
    prev = ""
    for i, e in enumerate(v):
        if type(e) is not tuple or len(e) != 3:
            raise ProtocolError(f"{label}: entry {i} must be [actor, counter, timestamp_ms]")
        actor, counter, ts = e
        if type(actor) is not str:
            raise _wrong_type(f"{label}: entry {i} actor", "a str", actor)
        if type(counter) is not int or counter < 1:
            raise _bad_int(f"{label}: counter of actor {actor!r}", counter, 1)
        if type(ts) is not int or ts < 0:
            raise _bad_int(f"{label}: timestamp_ms of actor {actor!r}", ts, 0)
        # Sorted, unique actors make equal clocks equal values; a peer that sends otherwise is
        # broken, and silently re-sorting would hide it.
        if i and actor <= prev:
            raise ProtocolError(
                f"{label}: actors must be sorted and unique, got {prev!r} before {actor!r}"
            )
        prev = actor
    # The entries are already tuples of (str, int, int), exactly VectorClock's representation.
    return VectorClock(v)


def _enc_clock(clock: VectorClock) -> Any:
    return clock.entries  # msgpack packs tuples as arrays: no conversion needed


# ---- versioned objects ----------------------------------------------------------------------


def _enc_object(obj: VersionedObject) -> Any:
    return [
        (s.value, s.dot.actor, s.dot.counter, s.context.entries, s.timestamp_ms)
        for s in obj.siblings
    ]


def _enc_opt_object(obj: VersionedObject | None) -> Any:
    return None if obj is None else _enc_object(obj)


def _dec_object(v: Any, label: str) -> VersionedObject:
    if type(v) is not tuple:
        raise _wrong_type(label, "an array of siblings", v)
    siblings: list[Sibling] = []
    prev: tuple[str, int] = ("", 0)
    for i, s in enumerate(v):
        if type(s) is not tuple or len(s) != 5:
            raise ProtocolError(
                f"{label}: sibling {i} must be [value, actor, counter, context, timestamp_ms]"
            )
        value, actor, counter, context, ts = s
        if value is not None and type(value) is not bytes:
            raise _wrong_type(f"{label}: sibling {i} value", "bytes (msgpack bin) or nil", value)
        if type(actor) is not str:
            raise _wrong_type(f"{label}: sibling {i} dot actor", "a str", actor)
        if type(counter) is not int or counter < 1:
            raise _bad_int(f"{label}: sibling {i} dot counter", counter, 1)
        if type(ts) is not int or ts < 0:
            raise _bad_int(f"{label}: sibling {i} timestamp_ms", ts, 0)
        dot = (actor, counter)
        # VersionedObject's invariant: sorted by dot, dots unique (a dot is one write).
        if i and dot <= prev:
            raise ProtocolError(
                f"{label}: siblings must be sorted by dot with no duplicates, "
                f"got {prev!r} before {dot!r}"
            )
        prev = dot
        ctx = _dec_clock(context, f"{label}: sibling {i} context")
        siblings.append(Sibling(value, Dot(actor, counter), ctx, ts))
    # Whether one sibling obsoletes another is not checked: that is a quadratic semantic check,
    # and VersionedObject.of / sync drop obsoleted siblings on the next merge anyway.
    return VersionedObject(tuple(siblings))


def _dec_opt_object(v: Any, label: str) -> VersionedObject | None:
    return None if v is None else _dec_object(v, label)


# ---- rings ----------------------------------------------------------------------------------


def _enc_ring(ring: Ring) -> Any:
    members = [
        (m.node_id, m.address, m.status.value, m.http_address, m.metrics_address)
        for m in ring.members
    ]
    return (ring.q, ring.owners, members, ring.version, ring.claimant)


def _dec_member(v: Any, label: str) -> Member:
    if type(v) is not tuple or len(v) != 5:
        raise ProtocolError(
            f"{label} must be [node_id, address, status, http_address, metrics_address]"
        )
    node_id, address, status, http_address, metrics_address = v
    for name, x in (
        ("node_id", node_id),
        ("address", address),
        ("http_address", http_address),
        ("metrics_address", metrics_address),
    ):
        if type(x) is not str:
            raise _wrong_type(f"{label} {name}", "a str", x)
    member_status = _STATUS_BY_VALUE.get(status) if type(status) is str else None
    if member_status is None:
        raise ProtocolError(f"{label} has unknown status {status!r}")
    return Member(node_id, address, member_status, http_address, metrics_address)


def _dec_ring(v: Any, label: str) -> Ring:
    if type(v) is not tuple or len(v) != 5:
        raise ProtocolError(f"{label} must be [q, owners, members, version, claimant]")
    q, owners, members, version, claimant = v
    if type(q) is not int or q < 1 or q & (q - 1):
        raise ProtocolError(f"{label}: q must be a positive power of two, got {q!r}")
    if type(owners) is not tuple or len(owners) != q:
        raise ProtocolError(f"{label}: owners must be an array of q={q} node ids")
    for i, o in enumerate(owners):
        if type(o) is not str:
            raise _wrong_type(f"{label}: owner of partition {i}", "a str", o)
    if type(members) is not tuple:
        raise _wrong_type(f"{label}: members", "an array", members)
    decoded: list[Member] = []
    for i, mv in enumerate(members):
        member = _dec_member(mv, f"{label}: member {i}")
        # Ring's invariant: members sorted by node_id (and so unique).
        if decoded and member.node_id <= decoded[-1].node_id:
            raise ProtocolError(
                f"{label}: members must be sorted by node_id with no duplicates, "
                f"got {decoded[-1].node_id!r} before {member.node_id!r}"
            )
        decoded.append(member)
    if type(version) is not int or version < 0:
        raise _bad_int(f"{label}: version", version, 0)
    if type(claimant) is not str:
        raise _wrong_type(f"{label}: claimant", "a str", claimant)
    return Ring(q, owners, tuple(decoded), version, claimant)


# ---- plain-value maps -----------------------------------------------------------------------

_SCALARS: Final = frozenset({type(None), bool, int, float, str, bytes})


def _plain(v: Any, label: str, depth: int) -> Any:
    """A plain msgpack value as the sender built it: arrays back to lists, no ext types."""
    t = type(v)
    if t in _SCALARS:
        return v
    if depth >= MAX_PLAIN_DEPTH:
        raise ProtocolError(f"{label} nests deeper than {MAX_PLAIN_DEPTH} levels")
    if t is tuple:
        return [_plain(x, label, depth + 1) for x in v]
    if t is dict:
        out: dict[Any, Any] = {}
        for k, x in v.items():
            if type(k) not in _SCALARS:
                raise ProtocolError(f"{label} has a map key of type {_describe(k)}")
            out[k] = _plain(x, label, depth + 1)
        return out
    raise ProtocolError(f"{label} holds a value of type {_describe(v)}, not a plain value")


def _dec_str_map(v: Any, label: str) -> dict[str, Any]:
    if type(v) is not dict:
        raise _wrong_type(label, "a map", v)
    out: dict[str, Any] = {}
    for k, x in v.items():
        if type(k) is not str:
            raise ProtocolError(f"{label} keys must be str, got {_describe(k)}")
        out[k] = _plain(x, f"{label}[{k!r}]", 1)
    return out


def _dec_str_map_of_maps(v: Any, label: str) -> dict[str, dict[str, Any]]:
    if type(v) is not dict:
        raise _wrong_type(label, "a map", v)
    out: dict[str, dict[str, Any]] = {}
    for k, x in v.items():
        if type(k) is not str:
            raise ProtocolError(f"{label} keys must be str, got {_describe(k)}")
        out[k] = _dec_str_map(x, f"{label}[{k!r}]")
    return out


# ---- per-class codecs, built at import ------------------------------------------------------

# Field type -> (encoder, or None when the value packs as is; decoder).
_FIELD_CODECS: Final[dict[Any, tuple[Encoder | None, Decoder]]] = {
    int: (None, _dec_uint),
    int | None: (None, _dec_opt_uint),
    str: (None, _dec_str),
    bytes: (None, _dec_bytes),
    bytes | None: (None, _dec_opt_bytes),
    bool: (None, _dec_bool),
    tuple[bytes, ...]: (None, _dec_bytes_tuple),
    dict[str, Any]: (None, _dec_str_map),
    dict[str, dict[str, Any]]: (None, _dec_str_map_of_maps),
    VectorClock: (_enc_clock, _dec_clock),
    VersionedObject: (_enc_object, _dec_object),
    VersionedObject | None: (_enc_opt_object, _dec_opt_object),
    Ring: (_enc_ring, _dec_ring),
}


class _ClassCodec:
    """Turns one message class to its field array and back; ``tag`` prefixes top-level arrays."""

    __slots__ = ("decode_fields", "encode_fields", "encode_message")

    def __init__(self, cls: type, tag: int, codecs: dict[type, _ClassCodec]) -> None:
        hints = typing.get_type_hints(cls)
        names: list[str] = list(cls.__dataclass_fields__)  # type: ignore[attr-defined]
        transforms: list[tuple[int, Encoder]] = []
        decoders: list[tuple[Decoder, str]] = []
        for i, name in enumerate(names):
            hint = hints[name]
            label = f"{cls.__name__}.{name}"
            nested = codecs.get(hint)
            if nested is not None:
                enc: Encoder | None = nested.encode_fields
                dec: Decoder = nested.decode_nested
            elif hint in _FIELD_CODECS:
                enc, dec = _FIELD_CODECS[hint]
            else:
                raise TypeError(f"wire codec has no encoding for {label}: {hint}")
            if enc is not None:
                transforms.append((i, enc))
            decoders.append((dec, label))

        # attrgetter fetches every field in one C call; with one name it returns the bare value.
        getter: Callable[[Any], tuple[Any, ...]]
        if len(names) == 1:
            one = attrgetter(names[0])
            getter = lambda msg: (one(msg),)  # noqa: E731
        else:
            getter = attrgetter(*names)

        steps = tuple(transforms)
        tagged_steps = tuple((i + 1, enc) for i, enc in steps)

        def encode_fields(msg: Any) -> list[Any]:
            out = list(getter(msg))
            for i, f in steps:
                out[i] = f(out[i])
            return out

        def encode_message(msg: Any) -> list[Any]:
            out = [tag, *getter(msg)]
            for i, f in tagged_steps:
                out[i] = f(out[i])
            return out

        n = len(names)
        pairs = tuple(decoders)
        name = cls.__name__

        def decode_fields(fields: tuple[Any, ...]) -> Any:
            if len(fields) != n:
                raise ProtocolError(f"{name} has {n} fields, got {len(fields)}")
            return cls(*[dec(v, label) for (dec, label), v in zip(pairs, fields, strict=True)])

        self.encode_fields: Callable[[Any], list[Any]] = encode_fields
        self.encode_message: Callable[[Any], list[Any]] = encode_message
        self.decode_fields: Callable[[tuple[Any, ...]], Any] = decode_fields

    def decode_nested(self, v: Any, label: str) -> Any:
        if type(v) is not tuple:
            raise _wrong_type(label, "an array of fields", v)
        return self.decode_fields(v)


def _build_codecs() -> dict[type, _ClassCodec]:
    codecs: dict[type, _ClassCodec] = {}
    for tag, cls in enumerate(ALL_MESSAGES):
        # Built in tag order, so a nested message type must have a smaller tag (PutRequest
        # inside CoordinatePut); anything else fails here, at import.
        codecs[cls] = _ClassCodec(cls, tag, codecs)
    return codecs


_CODECS: Final = _build_codecs()
_ENCODERS: Final[dict[type, Callable[[Any], list[Any]]]] = {
    cls: c.encode_message for cls, c in _CODECS.items()
}
_DECODERS: Final[tuple[Callable[[tuple[Any, ...]], Any], ...]] = tuple(
    _CODECS[cls].decode_fields for cls in ALL_MESSAGES
)


# ---- public API -----------------------------------------------------------------------------


def encode(msg: Message) -> bytes:
    """``msg`` (an instance of a class in ``ALL_MESSAGES``) as ``[tag, fields...]`` msgpack."""
    to_wire = _ENCODERS.get(type(msg))
    if to_wire is None:
        raise TypeError(f"cannot encode {type(msg).__name__}: not a class in ALL_MESSAGES")
    return _LOCAL.pack(to_wire(msg))


def decode(data: Bytes) -> Message:
    """The message in ``data``; ``ProtocolError`` for anything malformed, whatever it is."""
    try:
        items = _unpack(data)
        if type(items) is not tuple or not items:
            raise _wrong_type("message", "a non-empty array [tag, fields...]", items)
        tag = items[0]
        if type(tag) is not int:
            raise _wrong_type("message tag", "an int", tag)
        if not 0 <= tag < len(_DECODERS):
            raise ProtocolError(f"unknown message tag {tag}")
        return _DECODERS[tag](items[1:])
    except ProtocolError:
        raise
    except Exception as e:
        # A safety net: the checks above should leave nothing to fail here, but a peer's bytes
        # must never crash a node with an unexpected exception type.
        raise ProtocolError(f"malformed message: {type(e).__name__}: {e}") from e


def encode_object(obj: VersionedObject) -> bytes:
    """The at-rest form of ``obj``: a format-version byte, then its sibling array."""
    return _OBJECT_PREFIX + _LOCAL.pack(_enc_object(obj))


def decode_object(data: Bytes) -> VersionedObject:
    """Inverse of ``encode_object``; ``ProtocolError`` for anything malformed."""
    try:
        body = _versioned_body(data, OBJECT_FORMAT_VERSION, "object")
        return _dec_object(_unpack(body), "object")
    except ProtocolError:
        raise
    except Exception as e:
        raise ProtocolError(f"malformed object: {type(e).__name__}: {e}") from e


def encode_clock(clock: VectorClock) -> bytes:
    """``clock`` as opaque bytes (the client's context): a format-version byte, then entries."""
    return _CLOCK_PREFIX + _LOCAL.pack(clock.entries)


def decode_clock(data: Bytes) -> VectorClock:
    """Inverse of ``encode_clock``; ``ProtocolError`` for anything malformed."""
    try:
        body = _versioned_body(data, CLOCK_FORMAT_VERSION, "clock")
        return _dec_clock(_unpack(body), "clock")
    except ProtocolError:
        raise
    except Exception as e:
        raise ProtocolError(f"malformed clock: {type(e).__name__}: {e}") from e


def _versioned_body(data: Bytes, version: int, what: str) -> memoryview:
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    if not view.nbytes:
        raise ProtocolError(f"empty {what}: no format-version byte")
    if view[0] != version:
        raise ProtocolError(f"unknown {what} format version {view[0]} (expected {version})")
    # A view, not a slice of ``data``: the body may be a large value, and msgpack reads buffers.
    return view[1:]
