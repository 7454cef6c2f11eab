"""Catching a member up from the partition's applied state when the log no longer reaches back.

Owns: ``SnapshotSender`` (the leader's side: one chunked transfer per lagging member) and
``is_log_managed`` (which buckets the partition logs own).
May import: ``dynamokv.core.messages``, ``dynamokv.core.hashing``, ``dynamokv.core.ports``,
``dynamokv.core.versioned``.

The snapshot is fuzzy: it is read chunk by chunk while writes go on, so an item may be newer
than the base index. That is safe because every log entry is a whole item image (put or
delete): the receiver replays the log from ``base_index + 1`` on top, which ends in exactly the
leader's state whatever mix of older and newer items the chunks held (redo of idempotent
images, as in ARIES). The leader keeps the log from the base on until the transfer is done.
"""

from __future__ import annotations

from dataclasses import dataclass

from dynamokv.core.hashing import RESERVED_BUCKET_PREFIX
from dynamokv.core.messages import KeyObject, RaftSnapshotChunk
from dynamokv.core.ports import ObjectStore

CHUNK_ITEMS_MAX = 256
CHUNK_BYTES_MAX = 1 << 20


def is_log_managed(bucket: str) -> bool:
    """Tables and the system catalog live in partition logs; Dynamo buckets do not."""
    return bucket.startswith(RESERVED_BUCKET_PREFIX)


@dataclass(slots=True)
class SnapshotSender:
    group: int
    node: str
    snapshot_id: int
    base_index: int
    base_term: int
    members: tuple[str, ...]
    cursor: tuple[str, bytes] | None = None
    sent_ms: int = 0
    first: bool = True

    def next_chunk(self, store: ObjectStore, term: int, now_ms: int) -> RaftSnapshotChunk:
        """The next chunk after ``cursor`` (at least one item, about ``CHUNK_BYTES_MAX``)."""
        items: list[KeyObject] = []
        size = 0
        done = False
        cursor = self.cursor
        while len(items) < CHUNK_ITEMS_MAX and size < CHUNK_BYTES_MAX:
            rows = store.scan_partition(self.group, cursor, CHUNK_ITEMS_MAX)
            if not rows:
                done = True
                break
            for bucket, key, obj in rows:
                cursor = (bucket, key)
                if not is_log_managed(bucket):
                    continue
                items.append(KeyObject(bucket, key, obj))
                size += len(key) + sum(len(s.value or b"") for s in obj.siblings) + 64
                if len(items) >= CHUNK_ITEMS_MAX or size >= CHUNK_BYTES_MAX:
                    break
        self.cursor = cursor
        chunk = RaftSnapshotChunk(self.group, term, self.snapshot_id, self.base_index,
                                  self.base_term, tuple(m.encode() for m in self.members),
                                  tuple(items), self.first, done)
        self.first = False
        self.sent_ms = now_ms
        return chunk
