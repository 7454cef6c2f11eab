"""The simulated network between nodes: connections, delay, loss, duplication, partitions.

Owns: ``SimNetwork`` (the fate of every node-to-node message), ``Route`` (that fate),
``NetworkStats``; the codec round trip of every message.
May import: stdlib, ``dynamokv.core.messages``, ``dynamokv.wire.codec``.

Modelled on the production transport (``runtime.transport``), so the core sees the same kinds of
events in both drivers:

- Node ``a`` talks to ``b`` over a connection ``a -> b``. The first message on a new connection
  is preceded by ``Hello(a)``, as the real transport does. A connection belongs to one
  incarnation (epoch) of each end: after either end restarts, the next send opens a new one.
- Sending to a node that is down (or unknown) is a refused connection: the sender gets
  ``PeerUnreachable`` after ``refuse_delay_ms``. A crash resets every connection to the node,
  which its peers notice at once (the world reports it, ``reset_links``).
- A partition is a set of blocked ``(src, dst)`` pairs, one direction each, so every shape can
  be drawn with it: one node isolated, a minority from a majority, one way only (asymmetric),
  two halves joined by a bridge node. An open connection across it silently loses messages (TCP
  keeps retrying; nothing is reported); opening a new one times out after
  ``connect_timeout_ms``.
- Loss drops a message silently, duplication delivers it twice, and each copy gets its own
  delay. With ``fifo`` a link never reorders (TCP); without it, copies overtake each other.

Every message is encoded with ``wire.codec`` when sent and decoded when delivered, so the codec
is exercised on every message the core ever sends; ``decode`` of what ``encode`` produced must
give the message back (the world checks).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from dynamokv.core.messages import Message
from dynamokv.wire.codec import decode, encode

Outcome = Literal["deliver", "refused", "timeout", "blocked", "lost"]


@dataclass(frozen=True, slots=True)
class Route:
    """What happens to one message: delivered at ``at_ms`` (one time per copy), or not."""

    outcome: Outcome
    at_ms: tuple[int, ...] = ()
    hello: bool = False  # open a new connection: deliver Hello first


@dataclass(slots=True)
class NetworkStats:
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    blocked: int = 0
    refused: int = 0
    delayed: int = 0  # copies that got a tail delay
    reordered: int = 0  # copies due before one sent earlier on the same link
    bytes_sent: int = 0
    client_messages: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """The faults applied to established connections (all off once the run heals)."""

    loss: float = 0.0
    duplication: float = 0.0
    delay_min_ms: int = 1
    delay_max_ms: int = 10
    delay_tail: float = 0.0
    delay_tail_ms: int = 0
    fifo: bool = True


class SimNetwork:
    def __init__(
        self,
        rng: random.Random,
        faults: LinkFaults,
        *,
        refuse_delay_ms: int,
        connect_timeout_ms: int,
    ) -> None:
        self._rng = rng
        self.faults = faults
        self.refuse_delay_ms = refuse_delay_ms
        self.connect_timeout_ms = connect_timeout_ms
        self.blocked: set[tuple[str, str]] = set()
        self.stats = NetworkStats()
        # (src, dst) -> (src epoch, dst epoch) of the open connection.
        self._links: dict[tuple[str, str], tuple[int, int]] = {}
        self._last_at: dict[tuple[str, str], int] = {}  # for FIFO links

    # ---- messages ----------------------------------------------------------------------------

    def encode(self, msg: Message, *, client: bool = False) -> bytes:
        """The wire bytes of ``msg``, counted (client traffic apart from node traffic)."""
        data = encode(msg)
        stats = self.stats
        if client:
            stats.client_messages += 1
            return data
        stats.sent += 1
        stats.bytes_sent += len(data)
        name = type(msg).__name__
        stats.by_type[name] = stats.by_type.get(name, 0) + 1
        return data

    @staticmethod
    def decode(data: bytes) -> Message:
        return decode(data)

    def route(
        self, src: str, src_epoch: int, dst: str, dst_epoch: int | None, now_ms: int
    ) -> Route:
        """Decide the fate of one message; ``dst_epoch`` is ``None`` when nothing listens."""
        stats = self.stats
        if dst_epoch is None:
            stats.refused += 1
            return Route("refused", (now_ms + self.refuse_delay_ms,))
        link = (src, dst)
        is_open = self._links.get(link) == (src_epoch, dst_epoch)
        if link in self.blocked:
            stats.blocked += 1
            if is_open:
                return Route("blocked")
            return Route("timeout", (now_ms + self.connect_timeout_ms,))
        faults = self.faults
        rng = self._rng
        if faults.loss and rng.random() < faults.loss:
            stats.lost += 1
            return Route("lost")
        copies = 2 if faults.duplication and rng.random() < faults.duplication else 1
        if copies == 2:
            stats.duplicated += 1
        times = []
        for _ in range(copies):
            at = now_ms + rng.randint(faults.delay_min_ms, faults.delay_max_ms)
            if faults.delay_tail and rng.random() < faults.delay_tail:
                at += rng.randint(0, faults.delay_tail_ms)
                stats.delayed += 1
            last = self._last_at.get(link, 0)
            if faults.fifo:
                # Equal times keep send order: the world's heap breaks ties by sequence.
                at = max(at, last)
            elif at < last:
                stats.reordered += 1
            self._last_at[link] = max(at, last)
            times.append(at)
        self._links[link] = (src_epoch, dst_epoch)
        return Route("deliver", tuple(times), hello=not is_open)

    def reset_links(self, node: str) -> list[str]:
        """``node`` crashed: close its connections; the peers whose outbound link broke."""
        broken = sorted(src for (src, dst) in self._links if dst == node)
        for link in [k for k in self._links if node in k]:
            del self._links[link]
        return broken

    # ---- partitions and healing --------------------------------------------------------------

    def block(self, pairs: list[tuple[str, str]]) -> None:
        """Messages from ``src`` to ``dst`` stop getting through, for each ``(src, dst)``."""
        self.blocked.update(pairs)

    def unblock(self, pairs: list[tuple[str, str]]) -> None:
        self.blocked.difference_update(pairs)

    def isolate(self, node: str, others: list[str]) -> None:
        for other in others:
            if other != node:
                self.blocked.add((node, other))
                self.blocked.add((other, node))

    def rejoin(self, node: str) -> None:
        self.blocked = {link for link in self.blocked if node not in link}

    def heal(self) -> None:
        """No more partitions, loss or duplication; delays stay (liveness phase)."""
        self.blocked = set()
        self.faults = LinkFaults(
            delay_min_ms=self.faults.delay_min_ms,
            delay_max_ms=self.faults.delay_max_ms,
            fifo=self.faults.fifo,
        )

    def client_delay_ms(self) -> int:
        """Client links only get delay: a client's TCP connection neither loses nor reorders."""
        return self._rng.randint(self.faults.delay_min_ms, self.faults.delay_max_ms)
