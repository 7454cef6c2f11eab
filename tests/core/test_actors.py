"""The actor a node stamps new versions with: per partition, renewed when a key is forgotten."""

from __future__ import annotations

import random

from dynamokv.core.actors import ActorBook
from dynamokv.core.hashing import key_partition
from dynamokv.core.trees import TreeStore
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.node_store import NodeStore

Q = 8


def _keys_in(partition: int, count: int) -> list[bytes]:
    keys = (b"a%d" % i for i in range(10_000))
    return [k for k in keys if key_partition("b", k, Q) == partition][:count]


def _book() -> tuple[ActorBook, TreeStore]:
    store = TreeStore(NodeStore(MemoryEngine(), Q), Q)
    return ActorBook("n1.abc", random.Random(1), store), store


def test_one_actor_per_partition_kept_while_nothing_is_forgotten() -> None:
    book, store = _book()
    a, b = _keys_in(3, 2)
    actor = book.for_key("b", a)
    assert actor.startswith("n1.abc/")
    assert book.for_key("b", b) == actor
    obj = VersionedObject((Sibling(b"v", Dot(actor, 1), VectorClock.empty(), 0),))
    store.put("b", a, obj)  # writes do not renew it
    assert book.for_key("b", a) == actor
    other = book.for_key("b", _keys_in(4, 1)[0])
    assert other != actor


def test_deleting_a_key_renews_the_actor_of_its_partition_only() -> None:
    book, store = _book()
    a = _keys_in(3, 1)[0]
    c = _keys_in(4, 1)[0]
    before, before_other = book.for_key("b", a), book.for_key("b", c)
    store.delete("b", a)  # handed off: the local copy no longer remembers the actor's dots
    after = book.for_key("b", a)
    assert after != before
    assert book.for_key("b", a) == after
    assert book.for_key("b", c) == before_other
    assert book.rotations == 1


def test_a_quarantined_record_renews_the_actor_of_its_partition() -> None:
    book, store = _book()
    a = _keys_in(3, 1)[0]
    before = book.for_key("b", a)
    inner = store.inner
    assert isinstance(inner, NodeStore)
    inner.engine.put(inner.storage_key("b", a), b"\xff not an object")
    assert store.build(3) == 0  # the fold quarantines it
    assert book.for_key("b", a) != before


def test_a_new_process_starts_with_new_actors() -> None:
    book, store = _book()
    again = ActorBook("n1.abc", random.Random(2), store)
    a = _keys_in(3, 1)[0]
    assert book.for_key("b", a) != again.for_key("b", a)
