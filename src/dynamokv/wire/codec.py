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
range is checked (exact types, so a msgpack bool is never taken for an int; unsigned ints at most
``INT_MAX``, clock counters and timestamps at most ``CLOCK_INT_MAX``), clocks and objects
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
import typing
from collections.abc import Callable
from typing import Any, Final

import msgpack

from dynamokv.core.messages import ALL_MESSAGES, Message
from dynamokv.core.ring import Ring
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import VersionedObject
from dynamokv.errors import ProtocolError
from dynamokv.wire.values import (
    CLOCK_INT_MAX,
    INT_MAX,
    MAX_PLAIN_DEPTH,
    _bad_arity,
    _bad_int,
    _bad_opt_int,
    _dec_bytes_tuple,
    _dec_clock,
    _dec_object,
    _dec_opt_object,
    _dec_ring,
    _dec_str_map,
    _dec_str_map_of_maps,
    _dec_uint_tuple,
    _enc_object,
    _enc_opt_object,
    _enc_ring,
    _fast_constructor,
    _wrong_type,
)

__all__ = [
    "CLOCK_FORMAT_VERSION",
    "CLOCK_INT_MAX",
    "INT_MAX",
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

TAGS: Final[dict[type, int]] = {cls: tag for tag, cls in enumerate(ALL_MESSAGES)}

_OBJECT_PREFIX: Final = bytes([OBJECT_FORMAT_VERSION])
_CLOCK_PREFIX: Final = bytes([CLOCK_FORMAT_VERSION])

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
    int: _Inline("type({v}) is not int or {v} < 0 or {v} > _INT_MAX",
                 "_bad_int({label}, {v}, 0)"),
    int | None: _Inline(
        "{v} is not None and (type({v}) is not int or {v} < 0 or {v} > _INT_MAX)",
        "_bad_opt_int({label}, {v})",
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
            "_INT_MAX": INT_MAX,
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
