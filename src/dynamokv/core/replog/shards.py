"""The shard lineage of a partition's stream: which log indexes start a new shard, and when.

Owns: ``Lineage`` (the shards of one partition, oldest first), its encoding, the item that
holds it (``SHARDS_BUCKET``, one key per partition, placed in that partition so snapshots carry
it), and ``roll_due`` / ``rolled``: the leader's decision to close the open shard.
May import: ``dynamokv.core.hashing``.

A shard is a range of one partition's log: shard ``k`` holds the stream records with index in
``(start_k, start_k+1]`` (the last shard is open). A roll is itself a log entry: the leader
proposes a put of the whole new lineage to the partition's lineage item, whose own index is
the new shard's start. Every replica applies it like any item, so all of them (after a restart
or a snapshot install too) hold the same lineage at the same log position, and a read that
serves records and the lineage from one replica's applied state sees them agree: an entry
after the roll is never applied before the roll. Times in the lineage are the leader's wall
clock when it rolled (the one clock every replica reads the same).

The first lineage a partition gets (``genesis``) starts no shard: it records when the shard
open since index 0 was first seen, so the period has a start.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from dynamokv.core.hashing import RESERVED_BUCKET_PREFIX, key_partition

SHARDS_BUCKET = RESERVED_BUCKET_PREFIX + "shards"
ROLL_EVERY_MS = 4 * 3600 * 1000  # DynamoDB rolls a shard about every four hours
KEPT_MAX = 2_000  # shards kept per partition at most (the oldest go first)
_WORD = 8


@dataclass(frozen=True, slots=True)
class Lineage:
    """``written_at``: the log index of the entry that wrote it; ``shards``: ``(start, ms)``
    per shard, oldest first (``ms``: the leader's wall clock when the shard opened)."""

    written_at: int = 0
    shards: tuple[tuple[int, int], ...] = ()

    def encode(self) -> bytes:
        words = [self.written_at, *(v for shard in self.shards for v in shard)]
        return b"".join(w.to_bytes(_WORD, "big") for w in words)

    @staticmethod
    def decode(raw: bytes | None) -> Lineage:
        """A stored lineage (``b""`` or None: none yet). Raises ValueError if malformed."""
        if not raw:
            return Lineage()
        if len(raw) % (2 * _WORD) != _WORD:
            raise ValueError(f"a shard lineage of {len(raw)} bytes")
        words = [int.from_bytes(raw[i:i + _WORD], "big") for i in range(0, len(raw), _WORD)]
        return Lineage(words[0], tuple(zip(words[1::2], words[2::2], strict=True)))

    def starts(self) -> list[int]:
        """The start of every shard, oldest first (``[0]`` before any roll)."""
        return [s for s, _ in self.shards] or [0]

    def end_of(self, start: int) -> int | None:
        """The last log index of the shard starting after ``start`` (None: it is open)."""
        later = [s for s in self.starts() if s > start]
        return later[0] if later else None

    def closed_ms(self, start: int) -> int | None:
        """When the shard starting at ``start`` was closed (the next one opened)."""
        later = [ms for s, ms in self.shards if s > start]
        return later[0] if later else None


@functools.lru_cache(maxsize=4096)
def lineage_key(partition: int, q: int) -> bytes:
    """The key of ``partition``'s lineage item: the first ``b"<partition>/<n>"`` that hashes
    into the partition (about ``q`` tries, once per partition)."""
    n = 0
    while True:
        key = b"%d/%d" % (partition, n)
        if key_partition(SHARDS_BUCKET, key, q) == partition:
            return key
        n += 1


def roll_due(lineage: Lineage, config_index: int, wall_ms: int, every_ms: int,
             last_record: int) -> str:
    """Why the leader must write a new lineage now ("" if it need not): ``genesis`` (none
    yet), ``membership`` (the group's configuration changed after the open shard began),
    ``period`` (the open shard is ``every_ms`` old and holds a record: ``last_record``, the
    partition's newest stream record, is in it; a shard is not closed empty)."""
    if not lineage.shards:
        return "genesis"
    if config_index > lineage.written_at:
        return "membership"
    if wall_ms - lineage.shards[-1][1] >= every_ms and last_record > lineage.shards[-1][0]:
        return "period"
    return ""


def rolled(lineage: Lineage, reason: str, at_index: int, wall_ms: int, retention_ms: int
           ) -> Lineage:
    """The lineage after the roll written at log index ``at_index``: a new shard opens there
    (except at genesis), and shards closed longer than ``retention_ms`` ago are dropped (every
    record of theirs is past retention)."""
    if reason == "genesis" or not lineage.shards:
        return Lineage(at_index, ((0, wall_ms),))
    shards = [*lineage.shards, (at_index, wall_ms)]
    first = 0
    while first < len(shards) - 1 and (
            shards[first + 1][1] < wall_ms - retention_ms or len(shards) - first > KEPT_MAX):
        first += 1
    return Lineage(at_index, tuple(shards[first:]))
