"""The app's shared request timer: a request past its deadline fails with TimeoutError, the
others are untouched, an outside cancellation stays a cancellation, and an idle app's timer
is not renewed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from dynamokv.api.app import _RequestTimer


async def _timed(timer: _RequestTimer, timeout: float, work: Awaitable[Any]) -> Any:
    """What ``DynamoDBApp._run`` does around an operation."""
    task = asyncio.current_task()
    assert task is not None
    timer.start(task, timeout)
    try:
        return await work
    except asyncio.CancelledError:
        if timer.expired(task):
            raise TimeoutError from None
        raise
    finally:
        timer.stop(task)


def test_only_the_late_request_times_out() -> None:
    async def main() -> None:
        timer = _RequestTimer()
        slow = asyncio.ensure_future(_timed(timer, 0.05, asyncio.sleep(30)))
        fast = [asyncio.ensure_future(_timed(timer, 0.05, asyncio.sleep(0.01, i)))
                for i in range(5)]
        assert await asyncio.gather(*fast) == list(range(5))
        with pytest.raises(TimeoutError):
            await slow
        assert slow.cancelling() == 0
        assert not timer._deadlines and not timer._expired
        await asyncio.sleep(0.1)  # the timer left armed fires once, finds nothing, stops
        assert timer._handle is None

    asyncio.run(main())


def test_a_later_request_gets_its_own_deadline() -> None:
    async def main() -> None:
        timer = _RequestTimer()
        first = asyncio.ensure_future(_timed(timer, 0.2, asyncio.sleep(0.01, "first")))
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(_timed(timer, 0.2, asyncio.sleep(0.15, "second")))
        assert await first == "first"
        assert await second == "second"  # ends after the first's deadline, before its own
        late = asyncio.ensure_future(_timed(timer, 0.05, asyncio.sleep(30)))
        with pytest.raises(TimeoutError):
            await late

    asyncio.run(main())


def test_an_outside_cancellation_is_not_a_timeout() -> None:
    async def main() -> None:
        timer = _RequestTimer()
        task = asyncio.ensure_future(_timed(timer, 30, asyncio.sleep(30)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not timer._deadlines and not timer._expired

    asyncio.run(main())
