"""The store a node runs on: objects, plus hinted writes kept for down nodes.

Owns: ``NodeStore`` (``EngineObjectStore`` plus the hint key space, resumable partition scans
and per-target hint counts) and the hint key layout.
May import: ``dynamokv.storage.objects``, ``dynamokv.storage.base``, ``dynamokv.core``,
``dynamokv.wire.codec``, ``dynamokv.errors``.

Hints live in the same engine as the objects, under their own prefix, so a hint write is exactly
as durable as an object write and survives a restart of the node holding it (the paper keeps
them "in a separate local database"; a separate key space of one engine gives the same
isolation without a second set of files to sync)::

    0xFF 0xFF 'H' | len(target) (1 byte) | target | len(bucket) (1 byte) | bucket | key

``0xFF 0xFF 'P'`` held the acceptor state of the retired per-key Paxos; it is not written
any more. Records that could not be decoded are moved under ``0xFF 0xFF 'Q' | their key`` when a
scan meets them (``objects.QUARANTINE_PREFIX``).

Replication logs of table partitions (``core.replog``) live under ``0xFF 0xFF 'R' | group (4
bytes, big-endian)``, followed by ``'H'`` for the hard state or ``'E' | index (8 bytes,
big-endian)`` for each entry, so a group's entries scan in index order.

Stream records of table partitions (``core.replog.streams``) live under ``0xFF 0xFF 'S' | group
(4 bytes, big-endian)``, followed by ``'E' | index (8 bytes, big-endian)`` for each record (so a
partition's records scan in log order) or ``'T'`` for the index records were trimmed through.

Index outbox records (``core.replog.outbox``) live under ``0xFF 0xFF 'I' | group (4 bytes,
big-endian)``, followed by ``'E' | index (8 bytes, big-endian)`` for each record or ``'T'`` for
the index the global secondary indexes were brought up to date through.

Partition prefixes are at most 0x0FFF (q <= 4096), so these ranges can never overlap one.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgpack

from dynamokv.core.hashing import compose_key, key_partition
from dynamokv.core.messages import LogEntry, StreamRecord
from dynamokv.core.replog.log import HardState
from dynamokv.core.replog.outbox import OutboxRecord
from dynamokv.core.versioned import VersionedObject
from dynamokv.errors import InvalidRequest, StorageError
from dynamokv.storage.base import StorageEngine
from dynamokv.storage.objects import (
    EngineObjectStore,
    _decode,
    _engine_errors,
    decoded_row,
    encode_storage_key,
    partition_range,
)
from dynamokv.wire.codec import encode_object

HINT_PREFIX = b"\xff\xffH"
RAFT_PREFIX = b"\xff\xffR"
PAXOS_PREFIX = b"\xff\xffP"
STREAM_PREFIX = b"\xff\xffS"
OUTBOX_PREFIX = b"\xff\xffI"


def _name(text: str, what: str) -> bytes:
    raw = text.encode()
    if not raw or len(raw) > 255:
        raise InvalidRequest(f"{what} must be 1 to 255 bytes in utf-8")
    return bytes((len(raw),)) + raw


def hint_target_prefix(target: str) -> bytes:
    return HINT_PREFIX + _name(target, "node id")


def hint_key(target: str, bucket: str, key: bytes) -> bytes:
    return hint_target_prefix(target) + _name(bucket, "bucket name") + key


def _split_hint_key(stored: bytes) -> tuple[str, str, bytes]:
    at = len(HINT_PREFIX)
    tlen = stored[at]
    target = stored[at + 1 : at + 1 + tlen].decode()
    at += 1 + tlen
    blen = stored[at]
    bucket = stored[at + 1 : at + 1 + blen].decode()
    return target, bucket, stored[at + 1 + blen :]


def _prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    return trimmed[:-1] + bytes((trimmed[-1] + 1,))


class NodeStore(EngineObjectStore):
    """Objects and hints of one node, over one storage engine."""

    def __init__(self, engine: StorageEngine, q: int) -> None:
        super().__init__(engine, q)
        self._hint_counts: dict[str, int] | None = None

    def put_objects(self, items: Sequence[tuple[str, bytes, VersionedObject]]) -> None:
        """Write many objects in one engine transaction (the object buffer's flush: one
        commit and, under ``--sync fsync``, one fsync for the whole batch)."""
        ops = [(self.storage_key(b, k), encode_object(o)) for b, k, o in items]
        with _engine_errors("put"):
            self.engine.write_batch(ops)

    # ---- partitions ----------------------------------------------------------------------------
    def scan_partition(
        self, partition: int, after: tuple[str, bytes] | None, limit: int
    ) -> list[tuple[str, bytes, VersionedObject]]:
        """Up to ``limit`` objects of ``partition`` in key order, strictly after ``after``."""
        self._check_partition(partition)
        start, end = partition_range(partition)
        if after is not None:
            start = encode_storage_key(partition, after[0], after[1]) + b"\x00"
        out = []
        bad: list[tuple[bytes, bytes]] = []
        with _engine_errors("scan"):
            for skey, raw in self.engine.scan(start, end, limit=limit):
                row = decoded_row(skey, raw)
                if row is None:
                    bad.append((skey, raw))
                else:
                    out.append(row)
        self.quarantine(partition, bad)
        return out

    def nonempty_partitions(self) -> list[int]:
        return [p for p in range(self.q) if not self.partition_is_empty(p)]

    # ---- hints ---------------------------------------------------------------------------------
    def _counts(self) -> dict[str, int]:
        if self._hint_counts is None:
            counts: dict[str, int] = {}
            with _engine_errors("scan hints"):
                for skey, _ in self.engine.scan(HINT_PREFIX, _prefix_end(HINT_PREFIX)):
                    try:
                        target = _split_hint_key(skey)[0]
                    except (IndexError, UnicodeDecodeError):
                        continue  # a corrupt key no target's scan reaches: nothing to replay
                    counts[target] = counts.get(target, 0) + 1
            self._hint_counts = counts
        return self._hint_counts

    def hint_counts(self) -> dict[str, int]:
        """Hints held per target node (counted once at first use, then kept up to date)."""
        return {t: n for t, n in self._counts().items() if n > 0}

    def get_hint(self, target: str, bucket: str, key: bytes) -> VersionedObject | None:
        with _engine_errors("get hint"):
            raw = self.engine.get(hint_key(target, bucket, key))
        return None if raw is None else _decode(raw, bucket, key)

    def put_hint(self, target: str, bucket: str, key: bytes, obj: VersionedObject) -> None:
        hkey = hint_key(target, bucket, key)
        counts = self._counts()
        with _engine_errors("put hint"):
            existed = self.engine.get(hkey) is not None
            self.engine.put(hkey, encode_object(obj))
        if not existed:
            counts[target] = counts.get(target, 0) + 1

    def delete_hint(self, target: str, bucket: str, key: bytes) -> None:
        hkey = hint_key(target, bucket, key)
        counts = self._counts()
        with _engine_errors("delete hint"):
            existed = self.engine.get(hkey) is not None
            if existed:
                self.engine.delete(hkey)
        if existed:
            counts[target] = max(counts.get(target, 0) - 1, 0)

    def scan_hints(self, target: str, limit: int) -> list[tuple[str, bytes, VersionedObject]]:
        prefix = hint_target_prefix(target)
        out = []
        bad: list[tuple[bytes, bytes]] = []
        with _engine_errors("scan hints"):
            for skey, raw in self.engine.scan(prefix, _prefix_end(prefix), limit=limit):
                try:
                    _, bucket, key = _split_hint_key(skey)
                    out.append((bucket, key, _decode(raw, bucket, key)))
                except (IndexError, UnicodeDecodeError, StorageError):
                    bad.append((skey, raw))
        if bad:
            self.quarantine(-1, bad)
            counts = self._counts()
            counts[target] = max(counts.get(target, 0) - len(bad), 0)
        return out

    # ---- table ranges ----------------------------------------------------------------------------
    def scan_range(self, bucket: str, hash_part: bytes, start: bytes | None, end: bytes | None,
                   reverse: bool, limit: int
                   ) -> tuple[list[tuple[bytes, VersionedObject]], bool]:
        """Objects of one table partition key with ``start <= sort part < end``, in order."""
        group = compose_key(hash_part)
        prefix = encode_storage_key(key_partition(bucket, group, self.q), bucket, group)
        lo = prefix + (start or b"")
        hi = prefix + end if end is not None else _prefix_end(prefix)
        out: list[tuple[bytes, VersionedObject]] = []
        head = len(prefix) - len(group)
        with _engine_errors("scan range"):
            rows = list(self.engine.scan(lo, hi, reverse=reverse, limit=limit + 1))
        for skey, raw in rows[:limit]:
            key = skey[head:]
            out.append((key, _decode(raw, bucket, key)))
        return out, len(rows) > limit

    def scan_bucket(self, partition: int, bucket: str, after: bytes | None, limit: int
                    ) -> tuple[list[tuple[bytes, VersionedObject]], bool]:
        """Objects of ``bucket`` in ``partition`` after key ``after``, in key order."""
        self._check_partition(partition)
        prefix = encode_storage_key(partition, bucket, b"")
        lo = prefix + after + b"\x00" if after is not None else prefix
        out: list[tuple[bytes, VersionedObject]] = []
        with _engine_errors("scan bucket"):
            rows = list(self.engine.scan(lo, _prefix_end(prefix), limit=limit + 1))
        for skey, raw in rows[:limit]:
            key = skey[len(prefix):]
            out.append((key, _decode(raw, bucket, key)))
        return out, len(rows) > limit

    # ---- paxos -----------------------------------------------------------------------------------
    # ---- replication logs ------------------------------------------------------------------------
    def load_log(self, group: int) -> tuple[HardState | None, list[LogEntry]]:
        prefix = _raft_group(group)
        with _engine_errors("load log"):
            raw_hard = self.engine.get(prefix + b"H")
            rows = list(self.engine.scan(prefix + b"E", _prefix_end(prefix + b"E")))
        try:
            hard = None
            if raw_hard is not None:
                term, vote, base, base_term, members = msgpack.unpackb(raw_hard, raw=False)
                hard = HardState(term, vote, base, base_term, tuple(members))
            entries = []
            for _, raw in rows:
                t, i, kind, bucket, key, value, members = msgpack.unpackb(raw, raw=False)
                entries.append(LogEntry(t, i, kind, bucket, key, value, tuple(members)))
        except Exception as exc:
            raise StorageError(f"replication log of group {group} is corrupt: {exc}") from exc
        return hard, entries

    def log_groups(self) -> list[int]:
        groups = []
        with _engine_errors("scan logs"):
            for skey, _ in self.engine.scan(RAFT_PREFIX, _prefix_end(RAFT_PREFIX)):
                if skey[len(RAFT_PREFIX) + 4:] == b"H":
                    groups.append(int.from_bytes(skey[len(RAFT_PREFIX):len(RAFT_PREFIX) + 4],
                                                 "big"))
        return groups

    def save_hard_state(self, group: int, state: HardState) -> None:
        raw = msgpack.packb([state.term, state.vote, state.base_index, state.base_term,
                             list(state.base_members)], use_bin_type=True)
        with _engine_errors("save hard state"):
            self.engine.put(_raft_group(group) + b"H", raw)

    def append_log(self, group: int, entries: Sequence[LogEntry]) -> None:
        prefix = _raft_group(group) + b"E"
        # One engine transaction for the whole append (a follower gets many entries per
        # message): one commit instead of one per entry, and all or nothing.
        ops: list[tuple[bytes, bytes | None]] = [
            (prefix + e.index.to_bytes(8, "big"),
             msgpack.packb([e.term, e.index, e.kind, e.bucket, e.key, e.value,
                            list(e.members)], use_bin_type=True))
            for e in entries]
        with _engine_errors("append log"):
            if len(ops) == 1:
                key, raw = ops[0]
                assert raw is not None
                self.engine.put(key, raw)  # the engines' fast path for one record
            else:
                self.engine.write_batch(ops)

    def truncate_log(self, group: int, from_index: int) -> None:
        prefix = _raft_group(group) + b"E"
        self._delete_range(prefix + max(from_index, 0).to_bytes(8, "big"), _prefix_end(prefix))

    def compact_log(self, group: int, through_index: int) -> None:
        prefix = _raft_group(group) + b"E"
        self._delete_range(prefix, prefix + (through_index + 1).to_bytes(8, "big"))

    def drop_log(self, group: int) -> None:
        prefix = _raft_group(group)
        self._delete_range(prefix, _prefix_end(prefix))

    def _delete_range(self, lo: bytes, hi: bytes) -> None:
        with _engine_errors("delete log range"):
            while True:
                keys = [k for k, _ in self.engine.scan(lo, hi, limit=1024)]
                if not keys:
                    return
                # One transaction per chunk, not per key: a log compaction drops ~3,000
                # entries, and 3,000 commits held the event loop for hundreds of ms.
                self.engine.write_batch([(k, None) for k in keys])


    # ---- stream records ----------------------------------------------------------------------
    def put_stream_record(self, group: int, record: StreamRecord) -> None:
        raw = msgpack.packb([record.bucket, record.key, record.old, record.new, record.wall_ms,
                             record.service], use_bin_type=True)
        with _engine_errors("put stream record"):
            self.engine.put(_stream_group(group) + b"E" + record.index.to_bytes(8, "big"), raw)

    def scan_stream(self, group: int, after: int, limit: int) -> list[StreamRecord]:
        """Up to ``limit`` records of ``group`` with index > ``after``, in index order."""
        prefix = _stream_group(group) + b"E"
        start = prefix + (max(after, -1) + 1).to_bytes(8, "big")
        with _engine_errors("scan stream"):
            rows = list(self.engine.scan(start, _prefix_end(prefix), limit=limit))
        out = []
        try:
            for skey, raw in rows:
                bucket, key, old, new, wall_ms, service = msgpack.unpackb(raw, raw=False)
                out.append(StreamRecord(int.from_bytes(skey[len(prefix):], "big"), bucket,
                                        key, old, new, wall_ms, service))
        except Exception as exc:
            raise StorageError(f"stream records of group {group} are corrupt: {exc}") from exc
        return out

    def last_stream_index(self, group: int) -> int:
        prefix = _stream_group(group) + b"E"
        with _engine_errors("scan stream"):
            rows = list(self.engine.scan(prefix, _prefix_end(prefix), reverse=True, limit=1))
        return int.from_bytes(rows[0][0][len(prefix):], "big") if rows else 0

    def stream_trimmed(self, group: int) -> int:
        with _engine_errors("get stream trim mark"):
            raw = self.engine.get(_stream_group(group) + b"T")
        return int.from_bytes(raw, "big") if raw else 0

    def trim_stream(self, group: int, through: int) -> None:
        """Delete the records with index <= ``through`` and remember that they are gone."""
        prefix = _stream_group(group) + b"E"
        with _engine_errors("trim stream"):
            self.engine.put(_stream_group(group) + b"T", max(through, 0).to_bytes(8, "big"))
        self._delete_range(prefix, prefix + (max(through, 0) + 1).to_bytes(8, "big"))

    def stream_groups(self) -> list[int]:
        """Groups with stream records or a trim mark."""
        groups: list[int] = []
        at = STREAM_PREFIX
        with _engine_errors("scan stream groups"):
            while True:
                rows = list(self.engine.scan(at, _prefix_end(STREAM_PREFIX), limit=1))
                if not rows:
                    return groups
                group = int.from_bytes(rows[0][0][len(STREAM_PREFIX):len(STREAM_PREFIX) + 4],
                                       "big")
                groups.append(group)
                at = _prefix_end(_stream_group(group))


    # ---- index outbox --------------------------------------------------------------------------
    def put_outbox_record(self, group: int, record: OutboxRecord) -> None:
        raw = msgpack.packb([record.bucket, record.key, record.old, record.new],
                            use_bin_type=True)
        with _engine_errors("put index outbox record"):
            self.engine.put(_outbox_group(group) + b"E" + record.index.to_bytes(8, "big"), raw)

    def scan_outbox(self, group: int, after: int, limit: int) -> list[OutboxRecord]:
        """Up to ``limit`` records of ``group`` with index > ``after``, in index order."""
        prefix = _outbox_group(group) + b"E"
        start = prefix + (max(after, -1) + 1).to_bytes(8, "big")
        with _engine_errors("scan index outbox"):
            rows = list(self.engine.scan(start, _prefix_end(prefix), limit=limit))
        out = []
        try:
            for skey, raw in rows:
                bucket, key, old, new = msgpack.unpackb(raw, raw=False)
                out.append(OutboxRecord(int.from_bytes(skey[len(prefix):], "big"), bucket, key,
                                        old, new))
        except Exception as exc:
            raise StorageError(f"index outbox of group {group} is corrupt: {exc}") from exc
        return out

    def last_outbox_index(self, group: int) -> int:
        prefix = _outbox_group(group) + b"E"
        with _engine_errors("scan index outbox"):
            rows = list(self.engine.scan(prefix, _prefix_end(prefix), reverse=True, limit=1))
        return int.from_bytes(rows[0][0][len(prefix):], "big") if rows else 0

    def outbox_trimmed(self, group: int) -> int:
        with _engine_errors("get index outbox mark"):
            raw = self.engine.get(_outbox_group(group) + b"T")
        return int.from_bytes(raw, "big") if raw else 0

    def trim_outbox(self, group: int, through: int) -> None:
        """Delete the records with index <= ``through`` and remember the mark."""
        prefix = _outbox_group(group) + b"E"
        with _engine_errors("trim index outbox"):
            self.engine.put(_outbox_group(group) + b"T", max(through, 0).to_bytes(8, "big"))
        self._delete_range(prefix, prefix + (max(through, 0) + 1).to_bytes(8, "big"))

    def drop_outbox(self, group: int) -> None:
        prefix = _outbox_group(group)
        self._delete_range(prefix, _prefix_end(prefix))

    def outbox_groups(self) -> list[int]:
        """Groups with outbox records or a mark."""
        groups: list[int] = []
        at = OUTBOX_PREFIX
        with _engine_errors("scan index outbox groups"):
            while True:
                rows = list(self.engine.scan(at, _prefix_end(OUTBOX_PREFIX), limit=1))
                if not rows:
                    return groups
                group = int.from_bytes(rows[0][0][len(OUTBOX_PREFIX):len(OUTBOX_PREFIX) + 4],
                                       "big")
                groups.append(group)
                at = _prefix_end(_outbox_group(group))


def _outbox_group(group: int) -> bytes:
    return OUTBOX_PREFIX + group.to_bytes(4, "big")


def _stream_group(group: int) -> bytes:
    return STREAM_PREFIX + group.to_bytes(4, "big")


def _raft_group(group: int) -> bytes:
    return RAFT_PREFIX + group.to_bytes(4, "big")
