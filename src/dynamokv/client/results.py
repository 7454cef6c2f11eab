"""What client calls return: ``GetResult`` and the opaque ``Context``.

Owns: ``Context`` (an opaque causal context: pass back what you read), ``GetResult``.
May import: ``dynamokv.core.vclock``, ``dynamokv.wire.codec``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from dynamokv.core.vclock import VectorClock
from dynamokv.wire.codec import decode_clock, encode_clock


@dataclass(frozen=True, slots=True)
class Context:
    """The causal context of a read. Write it back with your put so the put supersedes exactly
    the versions you saw; treat it as opaque (its bytes may change between versions)."""

    clock: VectorClock = field(default_factory=VectorClock.empty)

    def to_bytes(self) -> bytes:
        return encode_clock(self.clock)

    @staticmethod
    def from_bytes(data: bytes) -> Context:
        return Context(decode_clock(data))

    def to_base64(self) -> str:
        return base64.urlsafe_b64encode(self.to_bytes()).decode()

    @staticmethod
    def from_base64(text: str) -> Context:
        from dynamokv.errors import InvalidRequest

        try:
            raw = base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4))
        except (ValueError, TypeError) as exc:
            raise InvalidRequest(f"context is not valid base64: {exc}") from exc
        return Context.from_bytes(raw)

    def __bool__(self) -> bool:
        return len(self.clock) > 0


@dataclass(frozen=True, slots=True)
class GetResult:
    """Every concurrent version of a key (``values``; more than one means siblings to
    reconcile), and the context to write the reconciled value back with."""

    values: list[bytes]
    context: Context
    found: bool

    @property
    def value(self) -> bytes | None:
        """The single value, or ``None`` when not found; raises if there are siblings."""
        if not self.values:
            return None
        if len(self.values) > 1:
            raise ValueError(f"{len(self.values)} siblings: read .values and reconcile them")
        return self.values[0]
