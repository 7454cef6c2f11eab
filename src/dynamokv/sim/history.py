"""The operation history: what simulated clients asked, and what they were told, when.

Owns: ``Operation``, ``History``, the outcome vocabulary (``ok`` / ``fail`` / ``unknown``).
May import: stdlib, ``dynamokv.core.vclock``.

Outcomes, from the client's point of view (Jepsen's ok / fail / info):

- ``ok``: the node answered with success (``GetReply`` or ``PutReply``).
- ``fail``: the operation certainly had no effect: the connection was refused before the
  request was read, or the node rejected the request before writing anything.
- ``unknown``: the write may or may not have happened (timeout, quorum not met after the
  coordinator wrote locally, connection lost mid-request). Reads never end ``unknown``: a read
  that did not answer is a ``fail`` since it cannot have changed anything.

Kinds: ``get``, ``put``, ``delete`` and ``final-get`` on the key-value bucket; ``incr``,
``cas-read`` and ``final-cas-read`` on the table counter (``CasRequest``, sequenced by its
partition log), which record the counter's value before and after (``cas_old``,
``cas_new``; equal for reads). An increment that ends in any error is ``unknown``: it may
still be applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dynamokv.core.vclock import VectorClock

Kind = Literal["get", "put", "delete", "final-get", "incr", "cas-read", "final-cas-read"]
Status = Literal["pending", "ok", "fail", "unknown"]

# Errors raised before a coordinator writes anything: a put that got one certainly did nothing.
DEFINITE_PUT_ERRORS = frozenset(
    {"InvalidRequest", "KeyTooLarge", "ValueTooLarge", "TooManySiblings", "Overloaded"}
)


@dataclass(slots=True)
class Operation:
    index: int
    client: int
    kind: Kind
    key: bytes
    node: str
    invoke_ms: int
    value: bytes | None = None  # what a put wrote (None for gets and deletes)
    context: VectorClock = field(default_factory=VectorClock.empty)  # what a write was sent with
    status: Status = "pending"
    end_ms: int = -1
    reply_context: VectorClock | None = None  # PutReply / GetReply context
    values: tuple[bytes, ...] = ()  # what a get returned
    found: bool = False
    error: str = ""
    cas_old: int | None = None  # the counter before (counter operations)
    cas_new: int | None = None  # ... and after

    @property
    def is_write(self) -> bool:
        return self.kind in ("put", "delete")

    def describe(self) -> str:
        what = f"{self.kind} {self.key.decode(errors='replace')}"
        if self.kind == "put" and self.value is not None:
            what += f"={self.value.decode(errors='replace')}"
        ctx = _clock(self.context) if self.is_write else ""
        if self.cas_old is not None:
            what += f" {self.cas_old}->{self.cas_new}"
        end = f"..{self.end_ms}" if self.end_ms >= 0 else ""
        tail = f" ({self.error})" if self.error else ""
        return (f"#{self.index} c{self.client}@{self.node} [{self.invoke_ms}{end}] {what}"
                f"{' ctx=' + ctx if ctx else ''} -> {self.status}{tail}")


def _clock(clock: VectorClock) -> str:
    return ",".join(f"{a}:{c}" for a, c, _ in clock.entries) or "{}"


class History:
    def __init__(self) -> None:
        self.ops: list[Operation] = []

    def invoke(self, client: int, kind: Kind, key: bytes, node: str, now_ms: int, *,
               value: bytes | None = None, context: VectorClock | None = None) -> Operation:
        op = Operation(len(self.ops), client, kind, key, node, now_ms, value,
                       context if context is not None else VectorClock.empty())
        self.ops.append(op)
        return op

    @staticmethod
    def finish(op: Operation, status: Status, now_ms: int, *, error: str = "",
               reply_context: VectorClock | None = None, values: tuple[bytes, ...] = (),
               found: bool = False) -> None:
        assert op.status == "pending", f"operation #{op.index} finished twice"
        op.status = status
        op.end_ms = now_ms
        op.error = error
        op.reply_context = reply_context
        op.values = values
        op.found = found

    def writes(self) -> list[Operation]:
        return [op for op in self.ops if op.is_write]

    def counts(self) -> dict[str, dict[str, int]]:
        """``{kind: {status: count}}`` in a fixed order (part of the summary)."""
        out: dict[str, dict[str, int]] = {}
        for op in self.ops:
            row = out.setdefault(op.kind, {"ok": 0, "fail": 0, "unknown": 0, "pending": 0})
            row[op.status] += 1
        return out
