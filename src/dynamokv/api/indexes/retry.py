"""The retry pacing of index upkeep, drain and backfill: idempotent steps tried again after
pauses growing fourfold.

Owns: ``ATTEMPTS``, ``RETRY_DELAY`` (one knob for every pause: tests shorten it here),
:func:`backoff`, :func:`retried` and :func:`monotonic` (the loop's clock).
May import: stdlib.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

ATTEMPTS = 3  # tries of one job (its writes are idempotent) before it is given up
RETRY_DELAY = 0.05  # seconds before the 2nd try; x4 for each further one

T = TypeVar("T")


def backoff(attempt: int) -> float:
    """Seconds to wait after failed try number ``attempt`` (from 0)."""
    return RETRY_DELAY * 4.0**attempt


async def retried(step: Callable[[], Awaitable[T]], attempts: int = ATTEMPTS) -> T:
    """``step()``, tried up to ``attempts`` times with growing pauses; the last failure
    propagates."""
    for attempt in range(attempts - 1):
        try:
            return await step()
        except Exception:
            await asyncio.sleep(backoff(attempt))
    return await step()


def monotonic() -> float:
    """The loop's clock: pauses and retries must not follow the wall clock's jumps (virtual
    time under the simulator)."""
    return asyncio.get_running_loop().time()
