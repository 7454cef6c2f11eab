"""The messages between a client and a node, as frozen dataclasses (no encoding here).

Owns: the client's requests (get, put, ring, status, bucket properties) and the node's replies,
errors included. :mod:`dynamokv.core.messages` lists them with every other message in
``ALL_MESSAGES``, whose order gives the wire tags; import them from there.
May import: ``dynamokv.core.vclock``, ``dynamokv.core.ring``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dynamokv.core.ring import Ring
from dynamokv.core.vclock import VectorClock

# ---- client -> node -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetRequest:
    """Read ``key``; wait for ``r`` replicas (``None``: the bucket's default)."""

    req_id: int
    bucket: str
    key: bytes
    r: int | None = None
    pr: int | None = None
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class PutRequest:
    """Write ``value`` (``None``: delete) superseding what ``context`` has seen."""

    req_id: int
    bucket: str
    key: bytes
    value: bytes | None
    context: VectorClock
    w: int | None = None
    pw: int | None = None
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RingRequest:
    """Ask a node for its ring (partition-aware clients bootstrap and refresh with this)."""

    req_id: int


@dataclass(frozen=True, slots=True)
class StatusRequest:
    req_id: int


@dataclass(frozen=True, slots=True)
class BucketPropsRequest:
    """Read (``props`` empty) or set a bucket's defaults (``n``, ``r``, ``w``, ``lww``...)."""

    req_id: int
    bucket: str
    props: dict[str, Any] = field(default_factory=dict)


# ---- node -> client -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetReply:
    """The live values of every concurrent sibling, and the context to write back with."""

    req_id: int
    values: tuple[bytes, ...]
    context: VectorClock
    found: bool
    ring_version: int = 0


@dataclass(frozen=True, slots=True)
class PutReply:
    req_id: int
    context: VectorClock
    ring_version: int = 0


@dataclass(frozen=True, slots=True)
class RingReply:
    req_id: int
    ring: Ring
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusReply:
    req_id: int
    status: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BucketPropsReply:
    req_id: int
    bucket: str
    props: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A failed request: ``code`` is a ``dynamokv.errors`` class name; ``details`` say why."""

    req_id: int
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    ring_version: int = 0
