"""Hand-written decoders and encoders of the nested values inside messages, and their errors.

Owns: vector clocks, versioned objects, rings and members, plain msgpack values, str-keyed maps,
byte and int tuples (``_dec_*``/``_enc_*``), the error-message helpers every wire decoder raises
through (``_wrong_type``, ``_bad_int``, ...), ``_fast_constructor``, and ``MAX_PLAIN_DEPTH``.
``dynamokv.wire.codec`` generates the per-message codecs on top of these and re-exports the
public names.
May import: ``dynamokv.core.*``, ``dynamokv.errors`` and ``msgpack`` only.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, Final, cast

from dynamokv.core.ring import Member, MemberStatus, Ring
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.errors import ProtocolError

# How deep a plain value inside a dict field may nest: real details and props are a few levels
# deep, and a bound keeps a hostile peer from making us recurse to Python's limit.
MAX_PLAIN_DEPTH: Final = 32
# Ints a peer may send: a message's unsigned fields fit a signed 64-bit int, and clock counters
# and timestamps leave headroom below that for the increments made on them (the next dot, a
# last-writer-wins stamp one past the largest seen), which the digests pack into 8 bytes. A
# larger value is refused here, at the edge, instead of raising in every timer event it reaches.
INT_MAX: Final = (1 << 63) - 1
CLOCK_INT_MAX: Final = (1 << 62) - 1

_EMPTY_CLOCK: Final = VectorClock.empty()
_STATUS_BY_VALUE: Final[dict[str, MemberStatus]] = {s.value: s for s in MemberStatus}


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


def _bad_int(label: str, v: object, minimum: int, maximum: int = INT_MAX) -> ProtocolError:
    if type(v) is int:
        if v < minimum:
            return ProtocolError(f"{label} must be >= {minimum}, got {v}")
        return ProtocolError(f"{label} must be <= {maximum}, got {v}")
    return _wrong_type(label, "an int", v)


def _bad_opt_int(label: str, v: object) -> ProtocolError:
    if type(v) is int:
        if v < 0:
            return ProtocolError(f"{label} must be >= 0, got {v}")
        return ProtocolError(f"{label} must be <= {INT_MAX}, got {v}")
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
                or counter > CLOCK_INT_MAX
                or ts > CLOCK_INT_MAX
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
        if type(counter) is not int or not 1 <= counter <= CLOCK_INT_MAX:
            return _bad_int(f"{label}: counter of actor {actor!r}", counter, 1, CLOCK_INT_MAX)
        if type(ts) is not int or not 0 <= ts <= CLOCK_INT_MAX:
            return _bad_int(f"{label}: timestamp_ms of actor {actor!r}", ts, 0, CLOCK_INT_MAX)
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
                    or counter > CLOCK_INT_MAX
                    or ts > CLOCK_INT_MAX
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
        if type(counter) is not int or not 1 <= counter <= CLOCK_INT_MAX:
            return _bad_int(f"{label}: sibling {i} dot counter", counter, 1, CLOCK_INT_MAX)
        if type(ts) is not int or not 0 <= ts <= CLOCK_INT_MAX:
            return _bad_int(f"{label}: sibling {i} timestamp_ms", ts, 0, CLOCK_INT_MAX)
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
    if type(version) is not int or not 0 <= version <= INT_MAX:
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
        if type(x) is not int or not 0 <= x <= INT_MAX:
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
