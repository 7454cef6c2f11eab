"""What happens to a node, named as facts.

Owns: ``ClientRequested``, ``MessageReceived``, ``PeerUnreachable``, ``LocalRequested``,
``TimerFired``, ``Event``.
May import: ``dynamokv.core.messages``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dynamokv.core.messages import Message


@dataclass(frozen=True, slots=True)
class ClientRequested:
    """A client sent ``msg``; answers go to ``Reply(client, ...)``."""

    client: int
    msg: Message


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """Peer node ``src`` sent ``msg``."""

    src: str
    msg: Message


@dataclass(frozen=True, slots=True)
class PeerUnreachable:
    """The driver could not deliver to ``node`` (refused, reset, closed mid-request)."""

    node: str


@dataclass(frozen=True, slots=True)
class LocalRequested:
    """The node's own API asks for ``request`` (a ``core.requests`` value); the answer is a
    ``Reply(client, ...)`` with the same ``client`` reference."""

    client: int
    request: object


@dataclass(frozen=True, slots=True)
class TimerFired:
    """``now`` has passed ``NodeCore.next_deadline()``."""


Event = ClientRequested | MessageReceived | PeerUnreachable | LocalRequested | TimerFired
