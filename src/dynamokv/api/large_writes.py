"""Read-modify-writes of large items, decided in the worker thread instead of the event loop.

Owns: :func:`write_cas` — :func:`dynamokv.api.transactions.intents.write_cas` for an update
whose item or request is large — and :func:`item_sizes`, measured off the loop for such items.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.bodies`,
:mod:`dynamokv.api.heap`, :mod:`dynamokv.api.large_reads`, :mod:`dynamokv.api.handle`,
:mod:`dynamokv.api.transactions.intents`, :mod:`dynamokv.api.operations.common`.

A conditional write's ``decide`` runs where the partition's leader sequences the write, inside
the node's core, on the event loop. For a 400 KB item of 200,000 list elements that is
hundreds of milliseconds of decoding, evaluating and encoding (seconds on a loaded machine)
during which the node answers nobody. Here the first ``decide`` the core runs does no work on a
large value: it hands the value it was given back (:class:`_Large`). ``decide`` then runs on
that value in the worker thread, and the write goes to the leader with a decision that is one
bytes comparison: the precomputed result if the item is still exactly that value, else another
round (the item changed meanwhile). A decision that is a function of the value alone is all
linearizability needs (see :mod:`dynamokv.core.replog.proposals`), so the answer is the one the
core would have given, conditions and refusals included.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dynamokv.api import bodies, heap, large_reads
from dynamokv.api.attributes import Item, item_size
from dynamokv.api.handle import Abort, Decide
from dynamokv.api.operations.common import ApiContext
from dynamokv.api.transactions import intents

LARGE_VALUE = 64 * 1024  # stored bytes from which an item's decision leaves the event loop
ROUNDS = 8  # the item changed under the precomputed decision this often: decide in the core


class _Large(Abort):
    """The current value is large: decide it off the loop."""

    def __init__(self, current: bytes | None) -> None:
        super().__init__("large item")
        self.current = current


class _Changed(Abort):
    """The item is no longer the value the decision was made on."""

    def __init__(self) -> None:
        super().__init__("item changed")


async def write_cas(ctx: ApiContext, bucket: str, key: bytes, decide: Decide, *,
                    large_request: bool, keep: Any = None) -> tuple[bytes | None, bytes | None]:
    """``intents.write_cas(ctx, bucket, key, decide)``, with ``decide`` run in the worker
    thread when the item's stored value or the request (``large_request``) is large. ``keep``:
    what ``decide`` fills in (large items), freed in the worker once the request is done."""
    def guard(current: bytes | None) -> bytes | None:
        if large_request or (current is not None and len(current) > LARGE_VALUE):
            raise _Large(current)
        return decide(current)

    for _ in range(ROUNDS):
        try:
            return await intents.write_cas(ctx, bucket, key, guard)
        except _Large as found:
            current = found.current
        try:
            new = await _decide_in_worker(decide, current, keep)  # its refusals propagate
        except intents.IntentFound as intent:
            await intents.clear_intent(ctx, bucket, key, intent.current)
            continue

        def same(now: bytes | None, seen: bytes | None = current,
                 result: bytes | None = new) -> bytes | None:
            if now is not seen and now != seen:
                raise _Changed()
            return result

        try:
            return await intents.write_cas(ctx, bucket, key, same)
        except _Changed:
            continue
    return await intents.write_cas(ctx, bucket, key, decide)


async def _decide_in_worker(decide: Decide, current: bytes | None, keep: Any) -> bytes | None:
    result: bytes | None = await large_reads.in_worker(decide, current)
    heap.hold(keep, bodies.worker())  # also lets the collector see the frozen objects again
    return result


async def item_sizes(old: Item | None, new: Item | None,
                     stored: tuple[bytes | None, bytes | None]) -> int:
    """The larger of the two items' DynamoDB sizes (capacity is charged on it); in the worker
    thread when either is stored large (``stored``: their stored bytes)."""
    if any(raw is not None and len(raw) > LARGE_VALUE for raw in stored):
        return await asyncio.get_running_loop().run_in_executor(
            bodies.worker(), _larger_size, old, new)
    return _larger_size(old, new)


def _larger_size(old: Item | None, new: Item | None) -> int:
    return max(item_size(old) if old else 0, item_size(new) if new else 0)
