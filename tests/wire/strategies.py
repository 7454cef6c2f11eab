"""Hypothesis strategies for every wire message and the core values inside them.

Owns: strategies for ``VectorClock``, ``VersionedObject``, ``Ring``, plain-value maps and every
class in ``core.messages.ALL_MESSAGES`` (``MESSAGE_STRATEGIES``, ``messages``).
May import: ``hypothesis`` and ``dynamokv.core.*``.

Every generated value obeys its class's documented invariants (sorted clocks with positive
counters, objects built with ``VersionedObject.of``, rings with sorted members), so it is what a
correct node could send. Other test packages can reuse them, e.g.
``from tests.wire.strategies import clocks, messages`` when the repository root is on
``sys.path`` (as ``python -m pytest`` run from the root arranges).

Message strategies are derived from the dataclasses' type hints, so a new message class is
covered as soon as its field types are; a field type missing here fails at import.
"""

from __future__ import annotations

import typing
from typing import Any

from hypothesis import strategies as st

from dynamokv.core.messages import ALL_MESSAGES
from dynamokv.core.ring import Member, MemberStatus, Ring
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject

U64_MAX = 2**64 - 1

# The ranges the codec accepts from a peer (wire.values INT_MAX and CLOCK_INT_MAX).
INT_MAX = (1 << 63) - 1
CLOCK_INT_MAX = (1 << 62) - 1
uints = st.integers(min_value=0, max_value=INT_MAX)
optional_uints = st.none() | uints
counters = st.integers(min_value=1, max_value=CLOCK_INT_MAX)
timestamps = st.integers(min_value=0, max_value=CLOCK_INT_MAX)
# Small alphabets make equal and ordered actors likely, which is where sorting bugs live.
actors = st.text(alphabet="abcnode-é1", max_size=8)
node_ids = st.text(alphabet="abcn123", min_size=1, max_size=6)
texts = st.text(max_size=16)
keys = st.binary(max_size=64)
values = st.binary(max_size=256)
optional_values = st.none() | values


clocks: st.SearchStrategy[VectorClock] = st.lists(
    st.tuples(actors, counters, timestamps), max_size=6
).map(VectorClock.from_entries)

dots: st.SearchStrategy[Dot] = st.builds(Dot, actors, counters)

siblings: st.SearchStrategy[Sibling] = st.builds(
    Sibling, value=optional_values, dot=dots, context=clocks, timestamp_ms=timestamps
)

objects: st.SearchStrategy[VersionedObject] = st.lists(siblings, max_size=4).map(VersionedObject.of)

members: st.SearchStrategy[Member] = st.builds(
    Member,
    node_id=node_ids,
    address=texts,
    status=st.sampled_from(MemberStatus),
    http_address=texts,
    metrics_address=texts,
)


@st.composite
def rings(draw: st.DrawFn) -> Ring:
    q = 2 ** draw(st.integers(min_value=0, max_value=6))
    ms = draw(st.lists(members, max_size=5, unique_by=lambda m: m.node_id))
    ms.sort(key=lambda m: m.node_id)
    owner_ids = st.sampled_from([m.node_id for m in ms]) if ms else node_ids
    owners = draw(st.lists(owner_ids, min_size=q, max_size=q))
    return Ring(q, tuple(owners), tuple(ms), draw(uints), draw(texts))


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=U64_MAX)
    | st.floats(allow_nan=False)
    | texts
    | st.binary(max_size=16)
)

# What a dict field may hold: msgpack's plain values, as the sender builds them (lists, dicts).
plain_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.integers(-5, 5), children, max_size=4)
    ),
    max_leaves=12,
)

plain_maps: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.text(max_size=10), plain_values, max_size=5
)

_BY_TYPE: dict[Any, st.SearchStrategy[Any]] = {
    int: uints,
    int | None: optional_uints,
    str: texts,
    bytes: keys,
    bytes | None: optional_values,
    bool: st.booleans(),
    tuple[bytes, ...]: st.lists(values, max_size=4).map(tuple),
    tuple[int, ...]: st.lists(uints, max_size=6).map(tuple),
    dict[str, Any]: plain_maps,
    dict[str, dict[str, Any]]: st.dictionaries(st.text(max_size=8), plain_maps, max_size=3),
    VectorClock: clocks,
    VersionedObject: objects,
    VersionedObject | None: st.none() | objects,
    Ring: rings(),
}


def message_strategy(cls: type) -> st.SearchStrategy[Any]:
    """Instances of message class ``cls`` with every field drawn from its type's strategy."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name in cls.__dataclass_fields__:  # type: ignore[attr-defined]
        hint = hints[name]
        args = typing.get_args(hint)
        if hint in MESSAGE_STRATEGIES:  # a nested message (CoordinatePut.request)
            fields[name] = MESSAGE_STRATEGIES[hint]
        elif typing.get_origin(hint) is tuple and args[0] in MESSAGE_STRATEGIES:  # a batch
            fields[name] = st.lists(MESSAGE_STRATEGIES[args[0]], max_size=3).map(tuple)
        else:
            fields[name] = _BY_TYPE[hint]
    return st.builds(cls, **fields)


MESSAGE_STRATEGIES: dict[type, st.SearchStrategy[Any]] = {}
for _cls in ALL_MESSAGES:  # in tag order, so a nested message's strategy exists already
    MESSAGE_STRATEGIES[_cls] = message_strategy(_cls)

messages: st.SearchStrategy[Any] = st.one_of(*MESSAGE_STRATEGIES.values())

__all__ = [
    "MESSAGE_STRATEGIES",
    "actors",
    "clocks",
    "counters",
    "dots",
    "members",
    "message_strategy",
    "messages",
    "objects",
    "plain_maps",
    "plain_values",
    "rings",
    "siblings",
    "timestamps",
    "uints",
]
