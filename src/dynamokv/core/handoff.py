"""Ownership handoff: moving a partition's objects to the nodes that replicate it now.

Owns: ``HandoffManager`` (sender: which partitions to transfer, batches, acknowledgements,
compare-and-delete once handed off; receiver: merging incoming batches) and ``HandoffSettings``.
May import: ``dynamokv.core.{batches,messages,effects,ports,ring,versioned}``.

The rule needs only the current ring, which is what makes a transfer resumable after a crash or
a restart: *a node holding an object of a key whose preference list no longer includes it sends
the object to every node of that list, and deletes its copy once all of them acknowledged* —
unless the object changed meanwhile (a write from a node with an older ring), in which case the
next pass sends it again. Nodes that stay in a preference list keep their copies; a node that
enters a list without anyone leaving it (a cluster growing past N) is filled by anti-entropy.

Transfers are streamed in batches of ``batch_count_max`` keys and ``batch_bytes_max`` bytes
in key order, one batch in flight
per transfer, at most ``concurrency`` transfers at a time (riak's ``transfer_limit``), and each
batch is admitted by the admission controller. Reads and writes are served throughout: they
already follow the new ring, and R >= 2 reads reach at least one node that had the data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dynamokv.core.batches import fit_by_bytes, object_wire_bytes
from dynamokv.core.effects import Effect, Log, Send
from dynamokv.core.messages import HandoffAck, HandoffBatch, KeyObject
from dynamokv.core.ports import ObjectStore
from dynamokv.core.ring import Ring
from dynamokv.core.versioned import VersionedObject, sync
from dynamokv.errors import DynamoKVError

NOfBucket = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class HandoffSettings:
    batch_count_max: int = 200
    batch_bytes_max: int = 1024 * 1024  # and bytes per batch (a larger object goes alone)
    concurrency: int = 2
    ack_timeout_ms: int = 10_000
    recheck_interval_ms: int = 10_000  # how often to look for stray partitions again


@dataclass(slots=True)
class _Transfer:
    partition: int
    cursor: tuple[str, bytes] | None = None
    batch_start: tuple[str, bytes] | None = None  # the cursor before the batch in flight
    # The batch in flight: xfer id, the nodes that still owe an ack, what was sent.
    xfer_id: int = 0
    waiting: set[str] = field(default_factory=set)
    sent: dict[tuple[str, bytes], tuple[VersionedObject, bool]] = field(default_factory=dict)
    sent_ms: int = 0
    moved: int = 0
    started_ms: int = 0


class HandoffManager:
    def __init__(self, node_id: str, store: ObjectStore, settings: HandoffSettings) -> None:
        self.node_id = node_id
        self.store = store
        self.settings = settings
        self._queue: list[int] = []  # partitions waiting for a transfer slot
        self._active: dict[int, _Transfer] = {}
        self._next_id = 0
        self.completed = 0
        self.objects_moved = 0
        self._next_check_ms: int | None = 0
        self._checked_version = -1  # ring version of the last stray check

    # ---- planning ------------------------------------------------------------------------------
    def ring_changed(self) -> None:
        """Look for stray partitions on the next step."""
        self._next_check_ms = 0

    def _find_strays(self, ring: Ring, min_n: int) -> None:
        for partition in self.store.nonempty_partitions():
            if partition in self._active or partition in self._queue:
                continue
            if self.node_id not in ring.preference_list(partition, min_n):
                self._queue.append(partition)

    # ---- sender --------------------------------------------------------------------------------
    def step(self, now_ms: int, ring: Ring, n_of: NOfBucket, min_n: int, up: frozenset[str],
             admit: int) -> list[Effect]:
        """Start transfers and send the next batches, up to ``admit`` batches."""
        if self._next_check_ms is not None and now_ms >= self._next_check_ms:
            self._find_strays(ring, min_n)
            self._checked_version = ring.version
            self._next_check_ms = now_ms + self.settings.recheck_interval_ms
        while self._queue and len(self._active) < self.settings.concurrency:
            partition = self._queue.pop(0)
            self._active[partition] = _Transfer(partition, started_ms=now_ms)
        effects: list[Effect] = []
        for partition in sorted(self._active):
            transfer = self._active[partition]
            if transfer.waiting:
                if now_ms - transfer.sent_ms < self.settings.ack_timeout_ms:
                    continue
                transfer.waiting.clear()  # timed out: resend the same batch
                transfer.sent.clear()
                transfer.cursor = transfer.batch_start
            if admit <= 0:
                break
            effects.extend(self._send_batch(transfer, now_ms, ring, n_of, up))
            admit -= 1
        return effects

    def _send_batch(self, transfer: _Transfer, now_ms: int, ring: Ring, n_of: NOfBucket,
                    up: frozenset[str]) -> list[Effect]:
        rows = self.store.scan_partition(transfer.partition, transfer.cursor,
                                         self.settings.batch_count_max)
        if not rows:
            del self._active[transfer.partition]
            self.completed += 1
            return [Log("info", "handoff finished", {"partition": transfer.partition,
                                                     "objects": transfer.moved})]
        # The cursor moves to the last row kept, so the rows cut here lead the next batch.
        rows = rows[:fit_by_bytes(rows, self.settings.batch_bytes_max,
                                  lambda row: object_wire_bytes(*row))]
        per_target: dict[str, list[KeyObject]] = {}
        sent: dict[tuple[str, bytes], tuple[VersionedObject, bool]] = {}
        for bucket, key, obj in rows:
            replicas = ring.preference_list(transfer.partition, n_of(bucket))
            leaving = self.node_id not in replicas
            sent[(bucket, key)] = (obj, leaving)
            if not leaving:
                continue
            for target in replicas:
                per_target.setdefault(target, []).append(KeyObject(bucket, key, obj))
        last = rows[-1]
        if not per_target:
            transfer.cursor = (last[0], last[1])  # nothing of ours to move in this batch
            return []
        if any(target not in up for target in per_target):
            return []  # wait until every new replica is reachable, then retry this batch
        self._next_id += 1
        transfer.xfer_id = self._next_id
        transfer.batch_start = transfer.cursor
        transfer.waiting = set(per_target)
        transfer.sent = sent
        transfer.sent_ms = now_ms
        transfer.cursor = (last[0], last[1])
        return [Send(t, HandoffBatch(self._next_id, transfer.partition, tuple(items)))
                for t, items in sorted(per_target.items())]

    def on_ack(self, src: str, xfer_id: int, error: str) -> list[Effect]:
        transfer = next((t for t in self._active.values() if t.xfer_id == xfer_id), None)
        if transfer is None or src not in transfer.waiting:
            return []
        if error:
            transfer.waiting.clear()
            transfer.sent.clear()
            transfer.cursor = None  # start the partition over; what was handed off is gone
            return [Log("warning", "handoff batch refused", {"from": src, "error": error})]
        transfer.waiting.discard(src)
        if transfer.waiting:
            return []
        try:
            for (bucket, key), (obj, leaving) in transfer.sent.items():
                if leaving and self.store.get(bucket, key) == obj:
                    self.store.delete(bucket, key)
                    transfer.moved += 1
                    self.objects_moved += 1
        except DynamoKVError as exc:
            # Whatever was not deleted is still a stray: the next pass hands it off again.
            transfer.sent = {}
            return [Log("warning", "handoff cleanup failed", {"error": str(exc)})]
        # Deleted keys are gone; kept or changed ones sort before the cursor and are revisited
        # on the next pass over the partition (a stray check re-queues it).
        transfer.sent = {}
        return []

    # ---- receiver ------------------------------------------------------------------------------
    def on_batch(self, src: str, msg: HandoffBatch, lww_of: Callable[[str], bool],
                 resolve: Callable[[VersionedObject], VersionedObject]) -> list[Effect]:
        error = ""
        try:
            for item in msg.items:
                local = self.store.get(item.bucket, item.key)
                merged = sync(local, item.obj)
                if lww_of(item.bucket):
                    merged = resolve(merged)
                if merged != local:
                    self.store.put(item.bucket, item.key, merged)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        return [Send(src, HandoffAck(msg.xfer_id, error))]

    # ---- status --------------------------------------------------------------------------------
    def status(self) -> dict[str, object]:
        return {
            "active": sorted(self._active),
            "queued": list(self._queue),
            "completed": self.completed,
            "objects_moved": self.objects_moved,
        }

    def busy(self) -> bool:
        return bool(self._active or self._queue)

    def idle_for(self, ring_version: int) -> bool:
        """Checked for strays under this ring version, and nothing is left to hand off."""
        return self._checked_version == ring_version and not self.busy()
