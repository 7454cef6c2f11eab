"""Hinted handoff: writes a fallback accepted for a down node, and their replay.

Owns: ``HintReplayer`` — when and to whom hints are replayed (batched, one batch in flight per
target, paced by admission control), deleting a hint only once its target acknowledged it and
only if it did not change meanwhile; ``HintSettings``.
May import: ``dynamokv.core.{batches,messages,effects,ports}``.

Hints are stored durably by the store (``ObjectStore.put_hint``), so they survive a restart of
the node holding them. The backlog is bounded (``backlog_max`` hints in all): when it is full,
the node refuses to act as a fallback, which the coordinator counts as a failed replica — a
clear, local policy instead of an unbounded disk (Cassandra's ``max_hint_window`` has the same
purpose).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dynamokv.core.batches import fit_by_bytes, object_wire_bytes
from dynamokv.core.effects import Effect, Log, Send
from dynamokv.core.messages import HintBatch, KeyObject
from dynamokv.core.ports import ObjectStore
from dynamokv.core.versioned import VersionedObject
from dynamokv.errors import DynamoKVError

BUSY = "busy: foreground first"  # the receiver's admission control refused the batch


@dataclass(frozen=True, slots=True)
class HintSettings:
    batch_count_max: int = 100  # hints per batch
    batch_bytes_max: int = 1024 * 1024  # and bytes per batch (a larger hint goes alone)
    backlog_max: int = 1_000_000  # hints held in all before refusing to be a fallback
    ack_timeout_ms: int = 5_000  # a batch not acknowledged by then is sent again later
    replay_interval_ms: int = 500  # how often targets are checked for replay
    busy_backoff_ms: int = 1_000  # wait after a receiver answered BUSY


@dataclass(slots=True)
class _InFlight:
    batch_id: int
    target: str
    items: tuple[KeyObject, ...]
    sent_ms: int


class HintReplayer:
    def __init__(self, store: ObjectStore, settings: HintSettings, node_id: str) -> None:
        self.node_id = node_id
        self.store = store
        self.settings = settings
        self._in_flight: dict[str, _InFlight] = {}  # by target
        self._paused_until: dict[str, int] = {}  # targets that answered BUSY, until when
        self._next_id = 0
        self.replayed = 0  # hints delivered and deleted, for status and metrics

    def backlog(self) -> int:
        return sum(self.store.hint_counts().values())

    def has_room(self) -> bool:
        return self.backlog() < self.settings.backlog_max

    def pending(self) -> dict[str, int]:
        return self.store.hint_counts()

    def replay(self, now_ms: int, up: frozenset[str], members: frozenset[str],
               admit: int, owner_of: Callable[[str, bytes], str | None]) -> list[Effect]:
        """Start up to ``admit`` batches to targets that are up and have nothing in flight."""
        effects: list[Effect] = []
        for target, flight in list(self._in_flight.items()):
            if now_ms - flight.sent_ms >= self.settings.ack_timeout_ms:
                del self._in_flight[target]  # lost or slow: the hints are still stored
        for target in sorted(self.store.hint_counts()):
            if admit <= 0:
                break
            if target not in members:
                effects.extend(self._rehome(target, owner_of))
                continue
            if target not in up or target in self._in_flight:
                continue
            if self._paused_until.get(target, 0) > now_ms:
                continue
            rows = self.store.scan_hints(target, self.settings.batch_count_max)
            if not rows:
                continue
            rows = rows[:fit_by_bytes(rows, self.settings.batch_bytes_max, _row_bytes)]
            self._next_id += 1
            items = tuple(KeyObject(b, k, o) for b, k, o in rows)
            self._in_flight[target] = _InFlight(self._next_id, target, items, now_ms)
            effects.append(Send(target, HintBatch(self._next_id, items)))
            admit -= 1
        return effects

    def on_ack(self, src: str, batch_id: int, error: str, now_ms: int) -> list[Effect]:
        flight = self._in_flight.get(src)
        if flight is None or flight.batch_id != batch_id:
            return []
        del self._in_flight[src]
        if error == BUSY:
            self._paused_until[src] = now_ms + self.settings.busy_backoff_ms
            return []
        if error:
            return [Log("warning", "hint replay refused", {"target": src, "error": error})]
        try:
            for item in flight.items:
                current = self.store.get_hint(src, item.bucket, item.key)
                if current == item.obj:  # a newer hinted write arrived meanwhile: keep it
                    self.store.delete_hint(src, item.bucket, item.key)
                    self.replayed += 1
        except DynamoKVError as exc:
            # The hints stay stored; the next replay sends them again (merging is idempotent).
            return [Log("warning", "could not clear replayed hints", {"error": str(exc)})]
        return []

    def in_flight(self) -> int:
        return len(self._in_flight)

    def _rehome(self, target: str, owner_of: Callable[[str, bytes], str | None]
                ) -> list[Effect]:
        """The target left the cluster: hand its hints to the keys' current first replicas.

        Never drops a hint: a hinted write may be the only copy of an acknowledged write.
        """
        moved = 0
        rows = self.store.scan_hints(target, self.settings.batch_count_max)
        for bucket, key, obj in rows:
            owner = owner_of(bucket, key)
            if owner is None or owner == target:
                continue
            if owner == self.node_id:
                self.store.put(bucket, key, merge_hinted(self.store.get(bucket, key), obj))
            else:
                self.store.put_hint(owner, bucket, key,
                                    merge_hinted(self.store.get_hint(owner, bucket, key), obj))
            self.store.delete_hint(target, bucket, key)
            moved += 1
        if not moved:
            return []
        return [Log("info", "re-homed hints of a node that left",
                    {"target": target, "hints": moved})]


def _row_bytes(row: tuple[str, bytes, VersionedObject]) -> int:
    return object_wire_bytes(*row)


def merge_hinted(local: VersionedObject | None, incoming: VersionedObject) -> VersionedObject:
    """What a fallback stores when it receives another hinted write for the same key."""
    from dynamokv.core.versioned import sync

    return sync(local, incoming)
