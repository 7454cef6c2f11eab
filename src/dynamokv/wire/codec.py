"""The msgpack codec: every message, versioned object and vector clock to bytes and back.

Owns: ``encode``/``decode`` (messages), ``encode_object``/``decode_object`` (the at-rest form
storage engines keep), ``encode_clock``/``decode_clock`` (the opaque client context), and the
wire tag of each message class.
May import: ``dynamokv.core.*``, ``dynamokv.errors`` and ``msgpack`` only.

Wire forms (all msgpack arrays, never maps with field names, to keep frames small):

- a message is ``[tag, field1, field2, ...]`` in dataclass field order, where ``tag`` is the
  class's position in ``core.messages.ALL_MESSAGES``; a nested message (``CoordinatePut.request``)
  is its field array without the tag, and a batch (``tuple[KeyObject, ...]``) an array of those;
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

Speed: this is the hot path of every request, so the per-class encoder and decoder are Python
functions generated once at import from the dataclasses' type hints (as ``dataclasses`` itself
generates ``__init__``), with each field's check inlined and no per-call reflection. Decoded
instances are filled through their slot descriptors, skipping the frozen dataclass ``__init__``
(which pays an ``object.__setattr__`` call per field) once every field has been validated.
Adding a message whose field type has no codec here fails at import rather than on the wire.
"""

from __future__ import annotations

import threading
import types
import typing
from collections.abc import Callable
from typing import Any, Final, cast

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


# ---- packing and unpacking ------------------------------------------------------------------


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
    ``GetReply.values`` are kept as decoded, without a copy); dict fields turn them back into
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


def _fast_constructor(cls: type) -> Callable[..., Any]:
    """A function building ``cls`` from all its fields, in order, without running ``__init__``.

    Only for slotted dataclasses without ``__post_init__`` (whose ``__init__`` just stores the
    fields); anything else gets the class itself, so its validation still runs.
    """
    names = list(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    slots = [cls.__dict__.get(name) for name in names]
    if hasattr(cls, "__post_init__") or not all(
        isinstance(s, types.MemberDescriptorType) for s in slots
    ):
        return cls
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def make({', '.join(names)}):", "    o = _new(_cls)"]
    for name, slot in zip(names, slots, strict=True):
        namespace[f"_set_{name}"] = cast(types.MemberDescriptorType, slot).__set__
        lines.append(f"    _set_{name}(o, {name})")
    lines.append("    return o")
    exec("\n".join(lines), namespace)
    return cast(Callable[..., Any], namespace["make"])


_make_clock: Final = _fast_constructor(VectorClock)
_make_dot: Final = _fast_constructor(Dot)
_make_sibling: Final = _fast_constructor(Sibling)
_make_object: Final = _fast_constructor(VersionedObject)
_make_member: Final = _fast_constructor(Member)


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


def _bad_opt_int(label: str, v: object) -> ProtocolError:
    if type(v) is int:
        return ProtocolError(f"{label} must be >= 0, got {v}")
    return _wrong_type(label, "an int or nil", v)


def _bad_arity(name: str, expected: int, got: int) -> ProtocolError:
    return ProtocolError(f"{name} has {expected} fields, got {got}")


# ---- vector clocks --------------------------------------------------------------------------
# Checks are exact ``type(v) is T``: msgpack returns exactly these types, and ``isinstance``
# would let a bool through as an int. Each decoder first runs one fast pass that only asks
# "is this valid?" and, when it is not, hands over to a slow pass that finds the exact fault.


def _dec_clock(v: Any, label: str) -> VectorClock:
    if type(v) is tuple:
        if not v:
            return _EMPTY_CLOCK
        prev = None
        for e in v:
            if type(e) is not tuple or len(e) != 3:
                break
            actor, counter, ts = e
            if (
                type(actor) is not str
                or type(counter) is not int
                or type(ts) is not int
                or counter < 1
                or ts < 0
                or (prev is not None and actor <= prev)
            ):
                break
            prev = actor
        else:
            # The entries are already tuples of (str, int, int): VectorClock's representation.
            return cast(VectorClock, _make_clock(v))
    raise _clock_error(v, label)


def _clock_error(v: Any, label: str) -> ProtocolError:
    if type(v) is not tuple:
        return _wrong_type(label, "an array of clock entries", v)
    prev = ""
    for i, e in enumerate(v):
        if type(e) is not tuple or len(e) != 3:
            return ProtocolError(f"{label}: entry {i} must be [actor, counter, timestamp_ms]")
        actor, counter, ts = e
        if type(actor) is not str:
            return _wrong_type(f"{label}: entry {i} actor", "a str", actor)
        if type(counter) is not int or counter < 1:
            return _bad_int(f"{label}: counter of actor {actor!r}", counter, 1)
        if type(ts) is not int or ts < 0:
            return _bad_int(f"{label}: timestamp_ms of actor {actor!r}", ts, 0)
        # Sorted, unique actors make equal clocks equal values; a peer that sends otherwise is
        # broken, and silently re-sorting would hide it.
        if i and actor <= prev:
            return ProtocolError(
                f"{label}: actors must be sorted and unique, got {prev!r} before {actor!r}"
            )
        prev = actor
    return ProtocolError(f"{label} is malformed")  # unreachable unless the two passes disagree


# ---- versioned objects ----------------------------------------------------------------------


def _enc_object(obj: VersionedObject) -> Any:
    return [
        (s.value, s.dot.actor, s.dot.counter, s.context.entries, s.timestamp_ms)
        for s in obj.siblings
    ]


def _enc_opt_object(obj: VersionedObject | None) -> Any:
    return None if obj is None else _enc_object(obj)


def _dec_object(v: Any, label: str) -> VersionedObject:
    if type(v) is tuple:
        siblings = []
        prev = None
        try:
            for s in v:
                if type(s) is not tuple or len(s) != 5:
                    break
                value, actor, counter, context, ts = s
                if (
                    (value is not None and type(value) is not bytes)
                    or type(actor) is not str
                    or type(counter) is not int
                    or type(ts) is not int
                    or counter < 1
                    or ts < 0
                ):
                    break
                dot = (actor, counter)
                # VersionedObject's invariant: sorted by dot, dots unique (a dot is one write).
                if prev is not None and dot <= prev:
                    break
                prev = dot
                ctx = _dec_clock(context, label)
                siblings.append(_make_sibling(value, _make_dot(actor, counter), ctx, ts))
            else:
                # Whether one sibling obsoletes another is not checked: that is a quadratic
                # semantic check, and VersionedObject.of / sync drop obsoleted siblings on the
                # next merge anyway.
                return cast(VersionedObject, _make_object(tuple(siblings)))
        except ProtocolError:
            pass  # a bad context: the slow pass below says which sibling's
    raise _object_error(v, label)


def _object_error(v: Any, label: str) -> ProtocolError:
    if type(v) is not tuple:
        return _wrong_type(label, "an array of siblings", v)
    prev: tuple[str, int] = ("", 0)
    for i, s in enumerate(v):
        if type(s) is not tuple or len(s) != 5:
            return ProtocolError(
                f"{label}: sibling {i} must be [value, actor, counter, context, timestamp_ms]"
            )
        value, actor, counter, context, ts = s
        if value is not None and type(value) is not bytes:
            return _wrong_type(f"{label}: sibling {i} value", "bytes (msgpack bin) or nil", value)
        if type(actor) is not str:
            return _wrong_type(f"{label}: sibling {i} dot actor", "a str", actor)
        if type(counter) is not int or counter < 1:
            return _bad_int(f"{label}: sibling {i} dot counter", counter, 1)
        if type(ts) is not int or ts < 0:
            return _bad_int(f"{label}: sibling {i} timestamp_ms", ts, 0)
        dot = (actor, counter)
        if i and dot <= prev:
            return ProtocolError(
                f"{label}: siblings must be sorted by dot with no duplicates, "
                f"got {prev!r} before {dot!r}"
            )
        prev = dot
        try:
            _dec_clock(context, f"{label}: sibling {i} context")
        except ProtocolError as e:
            return e
    return ProtocolError(f"{label} is malformed")  # unreachable unless the two passes disagree


def _dec_opt_object(v: Any, label: str) -> VersionedObject | None:
    return None if v is None else _dec_object(v, label)


# ---- rings (cold: gossip and ring fetches, so one careful pass) ------------------------------


def _enc_ring(ring: Ring) -> Any:
    members = [
        (m.node_id, m.address, m.status.value, m.http_address, m.metrics_address)
        for m in ring.members
    ]
    return (ring.q, ring.owners, members, ring.version, ring.claimant, ring.previous_owners)


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
    return cast(
        Member, _make_member(node_id, address, member_status, http_address, metrics_address)
    )


def _dec_ring(v: Any, label: str) -> Ring:
    if type(v) is not tuple or len(v) != 6:
        raise ProtocolError(
            f"{label} must be [q, owners, members, version, claimant, previous_owners]"
        )
    q, owners, members, version, claimant, previous = v
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
    if type(previous) is not tuple or (previous and len(previous) != q) or any(
        type(o) is not str for o in previous
    ):
        raise ProtocolError(f"{label}: previous_owners must be empty or q={q} node ids")
    # The real constructor, so Ring.__post_init__ checks what it checks (already true here).
    return Ring(q, owners, tuple(decoded), version, claimant, previous)


# ---- other containers -----------------------------------------------------------------------


def _dec_uint_tuple(v: Any, label: str) -> tuple[int, ...]:
    if type(v) is not tuple:
        raise _wrong_type(label, "an array of ints", v)
    for i, x in enumerate(v):
        if type(x) is not int or x < 0:
            raise _bad_int(f"{label}[{i}]", x, 0)
    return v


def _dec_bytes_tuple(v: Any, label: str) -> tuple[bytes, ...]:
    if type(v) is not tuple:
        raise _wrong_type(label, "an array of bytes", v)
    for i, x in enumerate(v):
        if type(x) is not bytes:
            raise _wrong_type(f"{label}[{i}]", "bytes (msgpack bin)", x)
    return v


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
        # Most values are scalars: skip the call and the label it would need.
        out[k] = x if type(x) in _SCALARS else _plain(x, f"{label}[{k!r}]", 1)
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


# ---- per-class codecs, generated at import --------------------------------------------------


class _Inline(typing.NamedTuple):
    """A scalar field checked inline: ``if <bad>: raise <error>`` with ``{v}`` the value."""

    bad: str
    error: str


class _Call(typing.NamedTuple):
    """A structured field: decoded by a function call, encoded by ``encode`` (``{x}``: value)."""

    decoder: Decoder
    encode: str = "{x}"
    encoder: Callable[[Any], Any] | None = None  # bound as ``_enc`` in ``encode`` when needed


_FIELD_CODECS: Final[dict[Any, _Inline | _Call]] = {
    int: _Inline("type({v}) is not int or {v} < 0", "_bad_int({label}, {v}, 0)"),
    int | None: _Inline(
        "{v} is not None and (type({v}) is not int or {v} < 0)", "_bad_opt_int({label}, {v})"
    ),
    str: _Inline("type({v}) is not str", "_wrong_type({label}, 'a str', {v})"),
    bytes: _Inline("type({v}) is not bytes", "_wrong_type({label}, 'bytes (msgpack bin)', {v})"),
    bytes | None: _Inline(
        "{v} is not None and type({v}) is not bytes",
        "_wrong_type({label}, 'bytes (msgpack bin) or nil', {v})",
    ),
    bool: _Inline("type({v}) is not bool", "_wrong_type({label}, 'a bool', {v})"),
    tuple[bytes, ...]: _Call(_dec_bytes_tuple),
    tuple[int, ...]: _Call(_dec_uint_tuple),
    dict[str, Any]: _Call(_dec_str_map),
    dict[str, dict[str, Any]]: _Call(_dec_str_map_of_maps),
    VectorClock: _Call(_dec_clock, "{x}.entries"),  # msgpack packs the entry tuples as arrays
    VersionedObject: _Call(_dec_object, "_enc({x})", _enc_object),
    VersionedObject | None: _Call(_dec_opt_object, "_enc({x})", _enc_opt_object),
    Ring: _Call(_dec_ring, "_enc({x})", _enc_ring),
}


def _nested_tuple_item(hint: Any) -> Any:
    """``X`` when ``hint`` is ``tuple[X, ...]``, else ``None``."""
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
    return None


def _tuple_of(item: _ClassCodec) -> _Call:
    """A ``tuple[Message, ...]`` field: an array of nested field arrays (batches)."""
    decode_nested = item.decode_nested
    encode_fields = item.encode_fields

    def decode(v: Any, label: str) -> tuple[Any, ...]:
        if type(v) is not tuple:
            raise _wrong_type(label, f"an array of {item.name} field arrays", v)
        return tuple([decode_nested(x, f"{label}[{i}]") for i, x in enumerate(v)])

    def encode(items: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(encode_fields(x) for x in items)

    return _Call(decode, "_enc({x})", encode)


class _ClassCodec:
    """The generated encoder and decoder of one message class (``source`` shows the code)."""

    __slots__ = (
        "decode_fields",
        "decode_message",
        "encode_fields",
        "encode_message",
        "name",
        "source",
    )
    name: str
    source: str
    encode_fields: Callable[[Any], tuple[Any, ...]]
    encode_message: Callable[[Any], tuple[Any, ...]]
    decode_message: Callable[[tuple[Any, ...]], Any]
    decode_fields: Callable[[tuple[Any, ...]], Any]

    def __init__(self, cls: type, tag: int, codecs: dict[type, _ClassCodec]) -> None:
        self.name = cls.__name__
        hints = typing.get_type_hints(cls)
        names: list[str] = list(cls.__dataclass_fields__)  # type: ignore[attr-defined]
        namespace: dict[str, Any] = {
            "ProtocolError": ProtocolError,
            "_bad_int": _bad_int,
            "_bad_opt_int": _bad_opt_int,
            "_bad_arity": _bad_arity,
            "_wrong_type": _wrong_type,
            "_make": _fast_constructor(cls),
        }
        checks: list[str] = []
        encoded: list[str] = []
        for i, name in enumerate(names):
            hint = hints[name]
            label = repr(f"{self.name}.{name}")
            v, x = f"a_{name}", f"m.{name}"
            nested = codecs.get(hint)
            codec: _Inline | _Call | None
            if nested is not None:
                codec = _Call(nested.decode_nested, "_enc({x})", nested.encode_fields)
            elif _nested_tuple_item(hint) in codecs:
                codec = _tuple_of(codecs[_nested_tuple_item(hint)])
            else:
                codec = _FIELD_CODECS.get(hint)
            if codec is None:
                raise TypeError(f"wire codec has no encoding for {self.name}.{name}: {hint}")
            if isinstance(codec, _Inline):
                checks.append(f"    if {codec.bad.format(v=v)}:")
                checks.append(f"        raise {codec.error.format(v=v, label=label)}")
                encoded.append(x)
            else:
                namespace[f"_dec{i}"] = codec.decoder
                checks.append(f"    {v} = _dec{i}({v}, {label})")
                if codec.encoder is not None:
                    namespace[f"_enc{i}"] = codec.encoder
                encoded.append(codec.encode.replace("_enc(", f"_enc{i}(").format(x=x))
        n = len(names)
        args = ", ".join(f"a_{name}" for name in names)
        fields = ", ".join(encoded)
        source = "\n".join(
            [
                f"def encode_fields(m):\n    return ({fields},)",
                f"def encode_message(m):\n    return ({tag}, {fields})",
                # Top level: ``f`` is the whole [tag, fields...] array (the tag already checked),
                # unpacked in place rather than sliced.
                "def decode_message(f):",
                f"    if len(f) != {n + 1}:",
                f"        raise _bad_arity({self.name!r}, {n}, len(f) - 1)",
                f"    _, {args}, = f",
                *checks,
                f"    return _make({args})",
                # Nested: ``f`` is the field array alone.
                "def decode_fields(f):",
                f"    if len(f) != {n}:",
                f"        raise _bad_arity({self.name!r}, {n}, len(f))",
                f"    {args}, = f",
                *checks,
                f"    return _make({args})",
            ]
        )
        exec(source, namespace)
        self.source = source
        self.encode_fields = namespace["encode_fields"]
        self.encode_message = namespace["encode_message"]
        self.decode_message = namespace["decode_message"]
        self.decode_fields = namespace["decode_fields"]

    def decode_nested(self, v: Any, label: str) -> Any:
        if type(v) is not tuple:
            raise _wrong_type(label, f"a {self.name} field array", v)
        try:
            return self.decode_fields(v)
        except ProtocolError as e:
            # Say where the nested message sits: "HintBatch.items[3]: KeyObject.key must be ..."
            raise ProtocolError(f"{label}: {e}") from None


def _build_codecs() -> dict[type, _ClassCodec]:
    codecs: dict[type, _ClassCodec] = {}
    for tag, cls in enumerate(ALL_MESSAGES):
        # Built in tag order, so a nested message type must have a smaller tag (PutRequest
        # inside CoordinatePut); anything else fails here, at import.
        codecs[cls] = _ClassCodec(cls, tag, codecs)
    return codecs


_CODECS: Final = _build_codecs()
_ENCODERS: Final[dict[type, Callable[[Any], tuple[Any, ...]]]] = {
    cls: c.encode_message for cls, c in _CODECS.items()
}
_DECODERS: Final[tuple[Callable[[tuple[Any, ...]], Any], ...]] = tuple(
    _CODECS[cls].decode_message for cls in ALL_MESSAGES
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
        return _DECODERS[tag](items)
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
        if type(data) is bytes and data[:1] == _OBJECT_PREFIX:
            # Every read of the store comes here with bytes: skip the general buffer checks.
            body: Bytes = memoryview(data)[1:]
        else:
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
