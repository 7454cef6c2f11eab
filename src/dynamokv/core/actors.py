"""Which version-vector actor a node stamps new versions with.

Owns: ``ActorBook`` — the actor per partition for this process, rotated whenever the node
forgets a key of the partition.
May import: ``dynamokv.core.hashing``.

A dotted version vector's counter for ``(actor, key)`` is one past the largest counter the
actor has issued for the key, and a coordinator learns that from its *local copy* of the key
(``versioned.new_sibling``). That is exact only while the local copy has held every dot the
actor issued for the key, and two things break it:

- the node forgets keys: ownership handoff deletes what it handed over (and a scan quarantines
  a record it cannot decode), and the key may come back later (the node is a replica again
  after a leave) through a write, a read repair, a handoff or anti-entropy, from a replica
  that never saw the node's last dots;
- a power loss rolls back the local copy's last writes.

So the actor is ``<node actor>/<nonce>``, one per partition, and the nonce is drawn afresh when
the process starts (the book lives in memory only, so a restart, clean or not, begins with
fresh actors) and whenever the node has deleted or quarantined a key of the partition since
the nonce was drawn (``TreeStore.forgotten``). A fresh actor has issued nothing anywhere, so
every counter it issues is one the local copy remembers: the copy only grows (merges never
drop a dot from the context) until a delete or quarantine, which rotates the actor, or a power
loss, which ends the process. This is riak's vnode id, which changes when a vnode's data is
dropped after handoff.

The price is one vector-clock entry per (node, process, forgotten partition) instead of one per
node; pruning (``vclock.prune``) bounds clocks as before.
"""

from __future__ import annotations

import random
from typing import Protocol

from dynamokv.core.hashing import key_partition


class Forgetting(Protocol):
    """What the book needs of the store: how many keys of a partition it has deleted."""

    q: int

    def forgotten(self, partition: int) -> int: ...


class ActorBook:
    """The actor for new versions of each partition, in this process."""

    def __init__(self, base: str, rng: random.Random, store: Forgetting) -> None:
        self.base = base
        self._rng = rng
        self._store = store
        self._actors: dict[int, tuple[int, str]] = {}  # partition -> (forgotten, actor)
        self.rotations = 0  # actors replaced after a delete (for status)

    def for_key(self, bucket: str, key: bytes) -> str:
        """The actor to stamp a new version of ``key`` with, coordinating from its own copy."""
        partition = key_partition(bucket, key, self._store.q)
        forgotten = self._store.forgotten(partition)
        entry = self._actors.get(partition)
        if entry is None or entry[0] != forgotten:
            if entry is not None:
                self.rotations += 1
            entry = (forgotten, self.one_off())
            self._actors[partition] = entry
        return entry[1]

    def one_off(self) -> str:
        """An actor used for one write only (a fallback's copy is a hint it will delete)."""
        return f"{self.base}/{self._rng.getrandbits(64):016x}"
