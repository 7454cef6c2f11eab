"""The power-loss fault budget: whether a power loss of one node may happen now.

Owns: ``power_loss_unsafe`` (why a power loss would break the budget, "" if it would not) and
``held_elsewhere`` (whether another node's disk still holds or supersedes a write). Pure checks
over ``SimDisk``s: they change nothing and draw no random numbers.
May import: stdlib, ``dynamokv.core.*``, ``dynamokv.sim.disk``.
"""

from __future__ import annotations

from collections.abc import Sequence

from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, VersionedObject
from dynamokv.sim.disk import Before, SimDisk


def power_loss_unsafe(disk: SimDisk, others: Sequence[SimDisk], targets: Sequence[str]) -> str:
    """Why a power loss of the node owning ``disk`` now would break the fault budget ("" if it
    would not). ``others`` are the disks of every other node that has not left; ``targets`` every
    node id a hint may be addressed to.

    The budget: a power loss never destroys the last copy of a write. Every sibling it would
    roll back must still be held, or superseded, on another node's disk (an object or a hint
    whose causal context contains its dot). Unflushed table data is never rolled back: under
    power loss the partition logs sync every write before acting on it (``log_sync``, as
    production does with ``--sync fsync``), so unflushed table data is rare and the budget
    simply waits for it.
    """
    first: dict[tuple[str, str, str, bytes], Before] = {}
    for entry in disk.unsynced():
        if entry.bucket.startswith("~"):
            return f"unflushed table data of {entry.bucket}"
        first.setdefault((entry.kind, entry.target, entry.bucket, entry.key), entry.before)
    for (kind, target, bucket, key), before in first.items():
        now = (disk.peek_hint(target, bucket, key) if kind == "hint"
               else disk.peek(bucket, key))
        if now is None:
            continue
        kept = before.context() if isinstance(before, VersionedObject) else VectorClock.empty()
        for sib in now.siblings:
            if not kept.contains(sib.dot.actor, sib.dot.counter) \
                    and not held_elsewhere(others, targets, bucket, key, sib.dot):
                name = key.decode(errors="replace")
                return (f"it would destroy the last copy of {bucket}/{name} "
                        f"{sib.dot.actor}:{sib.dot.counter}")
    return ""


def held_elsewhere(others: Sequence[SimDisk], targets: Sequence[str], bucket: str, key: bytes,
                   dot: Dot) -> bool:
    """Some disk of ``others`` holds ``dot`` of ``bucket/key`` (as an object or a hint)."""
    for disk in others:
        held = [disk.peek(bucket, key), *(disk.peek_hint(t, bucket, key) for t in targets)]
        if any(o is not None and o.context().contains(dot.actor, dot.counter) for o in held):
            return True
    return False
