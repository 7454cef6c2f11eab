"""In-process requests: what the DynamoDB API asks of its own node, and the answers.

Owns: ``LocalRequested`` payloads (``CasRequest``, ``RangeRequest``, ``ScanRequest``) and their
results (``CasResult``, ``CasAborted``, ``RangeResult``). These never cross a socket (a
``CasRequest`` carries a Python callable), so they have no wire form: the API runs on every
node and talks to its own ``NodeCore``; the node then coordinates across the cluster.
May import: stdlib only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Decide = Callable[[bytes | None], bytes | None]


@dataclass(frozen=True, slots=True)
class CasRequest:
    """Linearizable read-modify-write (``read_only``: a linearizable read) of one key."""

    bucket: str
    key: bytes
    decide: Decide | None
    read_only: bool = False
    timeout_ms: int | None = None
    flags: int = 0  # put flags of the entry (``replog.log.STREAMED``, ``SERVICE``)


@dataclass(frozen=True, slots=True)
class TableWrite:
    """Put (``value``) or delete (``None``) one item of a log-managed bucket, sequenced by its
    partition's leader."""

    bucket: str
    key: bytes
    value: bytes | None
    timeout_ms: int | None = None
    flags: int = 0  # put flags of the entry (``replog.log.STREAMED``, ``SERVICE``)
    # Refuse (``WriteRefused``) if the item's latest value starts with this (b"": never):
    # a plain write must not overwrite an item a transaction holds.
    refuse_prefix: bytes = b""


@dataclass(frozen=True, slots=True)
class WriteRefused:
    """A ``TableWrite`` found the item holding ``refuse_prefix``: nothing was written."""

    current: bytes | None


@dataclass(frozen=True, slots=True)
class TableRead:
    """Read one item of a log-managed bucket: ``consistent`` from the leader under its lease,
    otherwise from any replica."""

    bucket: str
    key: bytes
    consistent: bool = False
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RangeRequest:
    """Items of one table partition key between two sort parts."""

    bucket: str
    hash_part: bytes
    start: bytes | None
    end: bytes | None
    reverse: bool = False
    limit: int = 1000
    consistent: bool = False
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """Items of a bucket in one ring partition, after a key."""

    bucket: str
    partition: int
    after: bytes | None
    limit: int = 1000
    timeout_ms: int | None = None
    consistent: bool = False  # served by the partition's leader under its lease


@dataclass(frozen=True, slots=True)
class CasResult:
    old: bytes | None
    new: bytes | None


@dataclass(frozen=True, slots=True)
class CasAborted:
    """``decide`` raised: nothing was written; ``error`` is what it raised."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class RangeResult:
    items: list[tuple[bytes, bytes]]  # (key, value) of live items, in the order asked
    last_key: bytes | None  # the last key examined when more may follow, else None


@dataclass(frozen=True, slots=True)
class StreamRead:
    """Stream records of ``bucket`` in ring partition ``partition`` after log index ``after``
    (at most ``limit``; 0: only the bounds), from a replica of the partition."""

    partition: int
    bucket: str
    after: int
    limit: int = 1000


@dataclass(frozen=True, slots=True)
class StreamResult:
    trimmed: int  # records up to this log index were trimmed (retention)
    last: int  # the replica's last applied log index of the partition
    scanned: int  # the next read continues after this index
    records: list[Any]  # ``replog.streams.Record``, in log order
    shards: bytes = b""  # the partition's ``replog.shards.Lineage``, encoded, as of the read
