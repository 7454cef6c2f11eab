"""What a node asks its driver to do, named as imperatives.

Owns: ``Send``, ``SendTo``, ``Reply``, ``PersistRing``, ``Log``, ``Effect``.
May import: ``dynamokv.core.messages``, ``dynamokv.core.ring``.

Deadlines are not effects: the driver asks ``NodeCore.next_deadline()`` after every call and
delivers ``TimerFired`` when it passes (aioquic's ``get_timer`` pattern).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dynamokv.core.messages import Message
from dynamokv.core.ring import Ring


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``msg`` to peer node ``to`` (the driver opens or reuses a connection)."""

    to: str
    msg: Message


@dataclass(frozen=True, slots=True)
class SendTo:
    """Send ``msg`` to whatever node listens at ``address`` (joining through a seed)."""

    address: str
    msg: Message


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer the client behind ``client`` (an opaque reference the driver gave us)."""

    client: int
    msg: Message


@dataclass(frozen=True, slots=True)
class PersistRing:
    """Store ``ring`` (and the bucket table) durably so a restart comes back with them."""

    ring: Ring
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    buckets_version: int = 0


@dataclass(frozen=True, slots=True)
class Log:
    level: str  # "debug" | "info" | "warning" | "error"
    message: str
    fields: dict[str, Any] = field(default_factory=dict)


Effect = Send | SendTo | Reply | PersistRing | Log
