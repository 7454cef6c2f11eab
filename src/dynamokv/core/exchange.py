"""Merkle anti-entropy exchanges between the replicas of a partition (Dynamo paper, 4.7).

Owns: ``AntiEntropy`` — which trees to build and when, the exchange state machine
(COMPARING_LEVEL(k) → COMPARING_KEYS → REPAIRING → DONE), answering a peer's exchange requests,
and the record of the last exchange per (partition, peer); ``AaeSettings``.
May import: ``dynamokv.core.{merkle,trees,messages,effects,ring}``, ``dynamokv.errors``.

One exchange at a time per node, started every ``interval_ms`` when the admission controller
grants a slot, rotating over (partition, peer) pairs of partitions this node replicates. An
exchange asks the peer for the root, then only for the children of nodes that differ, then for
the keys of the differing leaves, and repairs just the keys that differ: it pushes its own copy
(``ReplicaWrite`` without ack) and pulls the peer's (``ReplicaRead``), merging on arrival. The
cost is proportional to the difference, not to the data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dynamokv.core.effects import Effect, Log, Send
from dynamokv.core.merkle import diff_level
from dynamokv.core.messages import (
    AaeKeysReply,
    AaeKeysRequest,
    AaeLevelReply,
    AaeLevelRequest,
    KeyDigest,
    ReplicaRead,
    ReplicaWrite,
)
from dynamokv.core.ring import Ring
from dynamokv.core.trees import TreeStore
from dynamokv.core.versioned import VersionedObject
from dynamokv.errors import StorageError

# Request ids of anti-entropy reads live above every coordinator id, so replies are routed here.
AAE_ID_BASE = 1 << 48
# Exchanges of a suspect pair that may find it out of sync in a row before it is left to the
# rotation (a partition written all the time always differs a little).
SUSPECT_TRIES_MAX = 3
BUILD_RETRY_MS = 5_000  # a partition whose tree build failed waits this long to try again


@dataclass(frozen=True, slots=True)
class AaeSettings:
    enabled: bool = True
    interval_ms: int = 2_000  # start an exchange this often (when admitted)
    # An exchange step not answered by then is abandoned (a step is one round trip, answered
    # at once: a lost message must not hold up every other exchange of the node for long).
    timeout_ms: int = 3_000
    segments_per_request_max: int = 256  # leaves whose keys one AaeKeysRequest asks for
    repairs_per_exchange_max: int = 10_000  # keys repaired in one exchange (the rest next time)
    # Stored records a tree build reads per step: bounds how long one step holds the event
    # loop, whatever a partition holds. A record of 1 KiB costs about 23 us of CPU to read,
    # decode and digest: a step holds the loop about 5 ms (several times that in wall time on
    # a loaded machine).
    build_keys_per_step: int = 200
    # While a build is unfinished, a step runs this often (besides the background tick's; the
    # node adds how late the last step's timer fired), so the loop is free for foreground work
    # between steps of a few milliseconds each.
    build_tick_ms: int = 10


@dataclass(slots=True)
class _Exchange:
    partition: int
    peer: str
    req_id: int
    level: int
    indexes: tuple[int, ...]
    started_ms: int
    step_ms: int
    segments: list[int] = field(default_factory=list)
    state: str = "comparing_level"
    tries: int = 0  # earlier exchanges of this pair that found it out of sync in a row
    queue: str = "rotation"  # where the pair came from: suspects, returned or rotation


@dataclass(slots=True)
class ExchangeRecord:
    at_ms: int
    keys_repaired: int
    outcome: str


class AntiEntropy:
    def __init__(self, node_id: str, store: TreeStore, settings: AaeSettings) -> None:
        self.node_id = node_id
        self.store = store
        self.settings = settings
        self.current: _Exchange | None = None
        self.records: dict[tuple[int, str], ExchangeRecord] = {}
        self.keys_repaired = 0
        self.exchanges = 0
        self._next_id = AAE_ID_BASE
        self._next_start_ms = 0
        self._turn = 0
        self.pull_keys: dict[int, tuple[str, bytes]] = {}  # pull request id -> key
        # Pairs (partition, peer) likely out of sync, oldest first -> out-of-sync exchanges
        # in a row: a write known not to have reached the peer, or an exchange that repaired
        # or failed. They go first, one per step; then the pairs of peers that came back
        # (``returned``), then the rotation (see ``step``).
        self.suspects: dict[tuple[int, str], int] = {}
        self.returned: dict[tuple[int, str], None] = {}
        self._up_before: frozenset[str] = frozenset()
        self._build_failed: dict[int, int] = {}  # partition -> when to try its build again
        self.builds_pending = False  # a partition of ours has no complete tree yet

    # ---- scheduling ----------------------------------------------------------------------------
    def my_partitions(self, ring: Ring, n: int) -> list[int]:
        return [p for p in range(ring.q) if self.node_id in ring.preference_list(p, n)]

    def step(self, now_ms: int, ring: Ring, n: int, up: frozenset[str], admit: int
             ) -> tuple[list[Effect], int]:
        """Advance the trees' builds, then (with a slot left, or nothing to build) start an
        exchange of a partition whose tree is complete; returns effects and the slots used."""
        if not self.settings.enabled or admit <= 0:
            return [], 0
        mine = self.my_partitions(ring, n)
        self._suspect_returned(ring, n, up, mine)
        for partition in {*self.store.trees, *self.store.building}:
            if partition not in mine:
                self.store.drop_tree(partition)
        unbuilt = self._unbuilt(mine, now_ms)
        built: list[Effect] = []
        if unbuilt:
            built = self._build(unbuilt, now_ms)
            if admit == 1:
                return built, 1
        # A partition's exchanges wait for its tree; the others need not wait for every build.
        ready = {p for p in mine if p in self.store.trees}
        effects, used = self._exchange_step(now_ms, ring, n, up, mine, ready)
        return built + effects, used + (1 if unbuilt else 0)

    def build_step(self, now_ms: int, ring: Ring, n: int) -> list[Effect]:
        """One bounded step of the unfinished builds alone (the node's fast build timer)."""
        if not self.settings.enabled:
            self.builds_pending = False
            return []
        unbuilt = self._unbuilt(self.my_partitions(ring, n), now_ms)
        return self._build(unbuilt, now_ms) if unbuilt else []

    def _unbuilt(self, mine: list[int], now_ms: int) -> list[int]:
        """Partitions of ours without a complete tree whose build may go on now (a failed
        build waits ``BUILD_RETRY_MS``); sets ``builds_pending``."""
        unbuilt = [p for p in mine if p not in self.store.trees
                   and self._build_failed.get(p, 0) <= now_ms]
        self.builds_pending = bool(unbuilt)
        return unbuilt

    def _exchange_step(self, now_ms: int, ring: Ring, n: int, up: frozenset[str],
                       mine: list[int], ready: set[int]) -> tuple[list[Effect], int]:
        current = self.current
        if current is not None:
            if current.peer in up and now_ms - current.step_ms < self.settings.timeout_ms:
                return [], 0
            self._finish(current, now_ms, 0, "timed out" if current.peer in up else "peer down")
        pair: tuple[int, str] | None = None
        if now_ms < self._next_start_ms:
            pair = (self._next_pair(self.suspects, ring, n, up, mine, ready)
                    or self._next_pair(self.returned, ring, n, up, mine, ready))
            if pair is None:
                return [], 0
        else:
            pairs = [(p, peer) for p in mine if p in ready
                     for peer in ring.preference_list(p, n)
                     if peer != self.node_id and peer in up]
            if not pairs:
                return [], 0
            self._next_start_ms = now_ms + self.settings.interval_ms
            pair = pairs[self._turn % len(pairs)]
            self._turn += 1
        queue = ("suspects" if pair in self.suspects else
                 "returned" if pair in self.returned else "rotation")
        tries = self.suspects.pop(pair, 0)
        self.returned.pop(pair, None)
        partition, peer = pair
        exchange = _Exchange(partition, peer, self._new_id(), 0, (0,), now_ms, now_ms,
                             tries=tries, queue=queue)
        self.current = exchange
        return [Send(peer, AaeLevelRequest(exchange.req_id, partition, 0, (0,)))], 1

    def start(self, partition: int, peer: str, now_ms: int) -> AaeLevelRequest:
        """Begin an exchange of ``partition`` with ``peer`` now (an operator's request); the
        caller checked that none is running and that the tree is built."""
        exchange = _Exchange(partition, peer, self._new_id(), 0, (0,), now_ms, now_ms)
        self.current = exchange
        return AaeLevelRequest(exchange.req_id, partition, 0, (0,))

    def _build(self, unbuilt: list[int], now_ms: int) -> list[Effect]:
        """Advance the trees' builds by at most ``build_keys_per_step`` stored records, the
        builds under way first, so one step holds the event loop for a bounded time however
        much a partition holds. A storage failure puts that partition off for a while, and
        the others go on (undecodable records are quarantined by the store, not failures)."""
        budget = self.settings.build_keys_per_step
        effects: list[Effect] = []
        building = self.store.building
        for partition in sorted(unbuilt, key=lambda p: p not in building):
            try:
                budget -= self.store.build_some(partition, budget)
            except StorageError as exc:
                self._build_failed[partition] = now_ms + BUILD_RETRY_MS
                effects.append(Log("warning",
                                   "anti-entropy tree build failed; other partitions go on",
                                   {"partition": partition, "error": str(exc)}))
                continue
            if partition in self.store.trees:
                self._build_failed.pop(partition, None)
            if budget <= 0:
                break
        return effects

    def suspect(self, partition: int, peer: str) -> None:
        """``peer``'s replica of ``partition`` may lack something ours has: exchange it soon."""
        self.suspects.setdefault((partition, peer), 0)

    def _suspect_returned(self, ring: Ring, n: int, up: frozenset[str], mine: list[int]
                          ) -> None:
        """A peer that is up again (or first seen up by this process) may have missed writes
        while it was away, and nobody knows which: every partition shared with it is suspect.
        Exchanges of in-sync partitions cost one round trip each."""
        returned = sorted(up - self._up_before - {self.node_id})
        self._up_before = up
        for peer in returned:
            for partition in mine:
                if peer in ring.preference_list(partition, n):
                    self.returned[(partition, peer)] = None

    @staticmethod
    def _next_pair(queue: dict[tuple[int, str], Any], ring: Ring, n: int, up: frozenset[str],
                   mine: list[int], ready: set[int]) -> tuple[int, str] | None:
        """The oldest pair of ``queue`` whose peer is up and whose tree is complete; pairs no
        longer replicated go."""
        for pair in list(queue):
            partition, peer = pair
            if partition not in mine or peer not in ring.preference_list(partition, n):
                del queue[pair]
            elif peer in up and partition in ready:
                return pair
        return None

    # ---- our exchange --------------------------------------------------------------------------
    def on_level_reply(self, src: str, msg: AaeLevelReply, now_ms: int) -> list[Effect]:
        ex = self.current
        if ex is None or ex.req_id != msg.req_id or ex.peer != src:
            return []
        tree = self.store.trees.get(ex.partition)
        if msg.error or tree is None or len(msg.hashes) != len(ex.indexes):
            self._finish(ex, now_ms, 0, msg.error or "tree not built")
            return []
        mine = tree.tree.level_hashes(ex.level, ex.indexes)
        differing = diff_level(mine, msg.hashes, ex.indexes)
        if not differing:
            self._finish(ex, now_ms, 0, "in sync")
            return []
        if ex.level + 1 == tree.tree.levels():
            ex.segments = differing
            return self._ask_keys(ex, now_ms)
        children = tuple(c for i in differing for c in tree.tree.children(ex.level, i))
        ex.level += 1
        ex.indexes = children
        ex.req_id = self._new_id()
        ex.step_ms = now_ms
        return [Send(ex.peer, AaeLevelRequest(ex.req_id, ex.partition, ex.level, children))]

    def _ask_keys(self, ex: _Exchange, now_ms: int) -> list[Effect]:
        batch = tuple(ex.segments[: self.settings.segments_per_request_max])
        ex.segments = ex.segments[len(batch):]
        ex.state = "comparing_keys"
        ex.indexes = batch
        ex.req_id = self._new_id()
        ex.step_ms = now_ms
        return [Send(ex.peer, AaeKeysRequest(ex.req_id, ex.partition, batch))]

    def on_keys_reply(self, src: str, msg: AaeKeysReply, now_ms: int,
                      get: Callable[[str, bytes], VersionedObject | None],
                      is_replica: Callable[[str, bytes, str], bool]) -> list[Effect]:
        ex = self.current
        if ex is None or ex.req_id != msg.req_id or ex.peer != src:
            return []
        tree = self.store.trees.get(ex.partition)
        if msg.error or tree is None:
            self._finish(ex, now_ms, 0, msg.error or "tree dropped")
            return []
        mine = tree.keys_in(ex.indexes)
        theirs = {(k.bucket, k.key): k.digest for k in msg.keys}
        # Only keys both sides replicate under their bucket's own N: a partition's tree holds
        # keys of every bucket, and a bucket with a smaller N than the tree's is not ours to copy.
        differing = sorted(k for k in mine.keys() | theirs.keys()
                           if mine.get(k) != theirs.get(k)
                           and is_replica(k[0], k[1], ex.peer)
                           and is_replica(k[0], k[1], self.node_id))
        differing = differing[: self.settings.repairs_per_exchange_max]
        effects: list[Effect] = []
        for bucket, key in differing:
            obj = get(bucket, key) if (bucket, key) in mine else None
            if obj is not None:
                effects.append(Send(ex.peer, ReplicaWrite(0, bucket, key, obj, ack=False)))
            if (bucket, key) in theirs:
                pull = self._new_id()
                self.pull_keys[pull] = (bucket, key)
                effects.append(Send(ex.peer, ReplicaRead(pull, bucket, key)))
        self.keys_repaired += len(differing)
        record = self.records.get((ex.partition, ex.peer))
        repaired_so_far = len(differing) + (record.keys_repaired
                                            if record and record.outcome == "running" else 0)
        if ex.segments:
            self.records[(ex.partition, ex.peer)] = ExchangeRecord(now_ms, repaired_so_far,
                                                                   "running")
            effects.extend(self._ask_keys(ex, now_ms))
            return effects
        self._finish(ex, now_ms, repaired_so_far, "repaired" if differing else "in sync")
        if differing:
            effects.append(Log("info", "anti-entropy repaired keys", {
                "partition": ex.partition, "peer": ex.peer, "keys": len(differing)}))
        return effects

    def take_pull(self, req_id: int) -> tuple[str, bytes] | None:
        """The key a pull reply is for (once), or ``None`` for an unknown reply."""
        return self.pull_keys.pop(req_id, None)

    def _finish(self, ex: _Exchange, now_ms: int, repaired: int, outcome: str) -> None:
        self.records[(ex.partition, ex.peer)] = ExchangeRecord(now_ms, repaired, outcome)
        pair = (ex.partition, ex.peer)
        if outcome == "repaired" and ex.tries < SUSPECT_TRIES_MAX:
            # Repairs are pushed and pulled without acknowledgement: look again soon, until
            # the pair is seen in sync.
            self.suspects.setdefault(pair, ex.tries + 1)
        elif outcome not in ("in sync", "repaired", "running"):
            # The exchange failed (timed out, peer down, tree not built): it found nothing,
            # so a queued pair goes back to the end of its queue.
            if ex.queue == "suspects":
                self.suspects.setdefault(pair, ex.tries)
            elif ex.queue == "returned":
                self.returned.setdefault(pair, None)
        self.current = None
        self.exchanges += 1
        if len(self.pull_keys) > 100_000:  # replies that never came: forget them, boundedly
            self.pull_keys.clear()

    # ---- the peer's exchange -------------------------------------------------------------------
    def on_level_request(self, msg: AaeLevelRequest) -> AaeLevelReply:
        tree = self.store.trees.get(msg.partition)
        if tree is None:
            return AaeLevelReply(msg.req_id, (), "tree not built")
        if not 0 <= msg.level < tree.tree.levels():
            return AaeLevelReply(msg.req_id, (), f"no level {msg.level}")
        try:
            return AaeLevelReply(msg.req_id, tuple(tree.tree.level_hashes(msg.level,
                                                                          msg.indexes)))
        except (IndexError, ValueError) as exc:
            return AaeLevelReply(msg.req_id, (), f"bad request: {exc}")

    def on_keys_request(self, msg: AaeKeysRequest) -> AaeKeysReply:
        tree = self.store.trees.get(msg.partition)
        if tree is None:
            return AaeKeysReply(msg.req_id, (), "tree not built")
        keys = tree.keys_in(msg.segments[: self.settings.segments_per_request_max])
        return AaeKeysReply(msg.req_id, tuple(KeyDigest(b, k, d)
                                              for (b, k), d in sorted(keys.items())))

    # ---- status --------------------------------------------------------------------------------
    def roots(self) -> dict[int, str]:
        return {p: t.tree.root().hex() for p, t in sorted(self.store.trees.items())}

    def status(self) -> dict[str, object]:
        last = max(self.records.values(), key=lambda r: r.at_ms, default=None)
        return {
            "trees_built": len(self.store.trees),
            "trees_building": len(self.store.building),
            "exchanges": self.exchanges,
            "keys_repaired": self.keys_repaired,
            "last_exchange": None if last is None else {
                "at_ms": last.at_ms, "keys_repaired": last.keys_repaired,
                "outcome": last.outcome},
            "current": None if self.current is None else {
                "partition": self.current.partition, "peer": self.current.peer,
                "state": self.current.state},
        }

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id
