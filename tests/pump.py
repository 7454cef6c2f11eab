"""An in-memory cluster pump for core tests: N ``NodeCore``s, effects routed in FIFO order.

Not the simulator (no delays, loss or seeds beyond one Random): just enough to drive the pure
core end to end in a test, like h11's ``ConnectionPair``.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from dynamokv.core.effects import Effect, Reply, Send, SendTo
from dynamokv.core.events import (
    ClientRequested,
    Event,
    MessageReceived,
    PeerUnreachable,
    TimerFired,
)
from dynamokv.core.messages import Message
from dynamokv.core.node import NodeCore
from dynamokv.core.ring import Member
from dynamokv.core.settings import CoreSettings
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.node_store import NodeStore


@dataclass
class Pump:
    nodes: dict[str, NodeCore]
    now_ms: int = 0
    down: set[str] = field(default_factory=set)
    replies: dict[int, list[Message]] = field(default_factory=dict)
    queue: deque[tuple[str, Event]] = field(default_factory=deque)
    sent: list[tuple[str, str, Message]] = field(default_factory=list)
    settings: CoreSettings | None = None
    silent: set[str] = field(default_factory=set)  # paused: messages vanish, no error

    @staticmethod
    def with_nodes(count: int, *, q: int = 16, settings: CoreSettings | None = None) -> Pump:
        settings = settings or CoreSettings(q=q)
        nodes: dict[str, NodeCore] = {}
        for i in range(1, count + 1):
            node_id = f"n{i}"
            me = Member(node_id, f"10.0.0.{i}:7000")
            nodes[node_id] = NodeCore(
                me=me, actor=f"{node_id}.a", store=NodeStore(MemoryEngine(), settings.q),
                settings=settings, rng=random.Random(i),
                seeds=() if i == 1 else ("10.0.0.1:7000",),
            )
        pump = Pump(nodes, settings=settings)
        for node_id, node in nodes.items():
            pump._run(node_id, node.start(0))
        return pump

    def add_node(self, node_id: str, *, settings: CoreSettings | None = None) -> NodeCore:
        """Start a fresh node that joins through n1."""
        settings = settings or self.settings
        assert settings is not None
        index = len(self.nodes) + 1
        node = NodeCore(
            me=Member(node_id, f"10.0.1.{index}:7000"), actor=f"{node_id}.a",
            store=NodeStore(MemoryEngine(), settings.q), settings=settings,
            rng=random.Random(index), seeds=(self.nodes["n1"].me.address,),
        )
        self.nodes[node_id] = node
        self._run(node_id, node.start(self.now_ms))
        return node

    def restart(self, node_id: str) -> NodeCore:
        """Crash ``node_id`` and start it again from its store and ring (memory lost)."""
        old = self.nodes[node_id]
        node = NodeCore(me=old.me, actor=old.actor, store=old.raw_store, settings=old.settings,
                        rng=random.Random(99), seeds=old.seeds, ring=old.ring,
                        buckets={n: p.as_dict() for n, p in old.buckets.items()},
                        buckets_version=old.buckets_version)
        self.nodes[node_id] = node
        self.down.discard(node_id)
        self._run(node_id, node.start(self.now_ms))
        return node

    def address_owner(self, address: str) -> str | None:
        for node_id, node in self.nodes.items():
            if node.me.address == address:
                return node_id
        return None

    def _run(self, src: str, effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, Send):
                self.sent.append((src, e.to, e.msg))
                if e.to in self.silent or src in self.silent:
                    continue
                if e.to in self.down or e.to not in self.nodes:
                    self.queue.append((src, PeerUnreachable(e.to)))
                else:
                    self.queue.append((e.to, MessageReceived(src, e.msg)))
            elif isinstance(e, SendTo):
                owner = self.address_owner(e.address)
                if owner is not None and owner not in self.down:
                    self.queue.append((owner, MessageReceived(src, e.msg)))
            elif isinstance(e, Reply):
                self.replies.setdefault(e.client, []).append(e.msg)

    def deliver_all(self, max_steps: int = 100_000) -> None:
        steps = 0
        while self.queue and steps < max_steps:
            dst, event = self.queue.popleft()
            steps += 1
            if dst in self.down:
                continue
            self._run(dst, self.nodes[dst].handle(event, self.now_ms, 1_000_000 + self.now_ms))

    def advance(self, ms: int) -> None:
        """Move time forward, firing timers as they come due, delivering everything."""
        end = self.now_ms + ms
        while True:
            self.deliver_all()
            due = [(n.next_deadline(), nid) for nid, n in self.nodes.items()
                   if nid not in self.down and nid not in self.silent
                   and n.next_deadline() is not None]
            due = [(t, nid) for t, nid in due if t is not None and t <= end]
            if not due:
                break
            t, nid = min(due)
            self.now_ms = max(self.now_ms, t)
            self._run(nid, self.nodes[nid].handle(TimerFired(), self.now_ms,
                                                   1_000_000 + self.now_ms))
        self.now_ms = end

    def settle(self) -> None:
        """Run until every node has the same ring containing every node."""
        for _ in range(60):
            self.advance(500)
            rings = {n.ring for n in self.nodes.values()}
            if len(rings) == 1:
                ring = next(iter(rings))
                if ring is not None and len(ring.members) == len(self.nodes):
                    return
        raise AssertionError("cluster did not settle")

    def request(self, node: str, msg: Message, client: int = 1) -> Message:
        """Send a client request to ``node`` and pump until its reply arrives."""
        self.replies.pop(client, None)
        self._run(node, self.nodes[node].handle(ClientRequested(client, msg), self.now_ms,
                                                1_000_000 + self.now_ms))
        for _ in range(200):
            self.deliver_all()
            if self.replies.get(client):
                return self.replies[client][0]
            self.advance(100)
        raise AssertionError("no reply")

    def stored(self, node: str, bucket: str, key: bytes) -> Any:
        return self.nodes[node].store.get(bucket, key)
