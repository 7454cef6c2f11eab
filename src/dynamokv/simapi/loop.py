"""A deterministic asyncio event loop whose clock is the simulator's virtual time.

Owns: ``VirtualLoop`` and ``Stalled``.
May import: stdlib (``asyncio``), ``dynamokv.sim``.

``VirtualLoop`` is an ``asyncio.BaseEventLoop`` with no real selector: ``time()`` is
``Simulator.now_ms / 1000``, and where a selector loop would block in ``select(timeout)`` this
one lets the simulator run instead -- event after event, until something made a callback ready
(a reply resolved a future) or virtual time reached the loop's next timer. So ``asyncio.sleep``,
``asyncio.timeout`` and ``call_later`` all run on virtual time, a coroutine waiting on the
cluster costs no real time, and a run is a pure function of the seed: the loop runs ready
callbacks in FIFO order and draws nothing itself.

It relies on two private names of ``BaseEventLoop`` (stable since Python 3.4): ``_selector``,
the object ``_run_once`` calls ``select(timeout)`` on, and ``_process_events``. ``_ready`` and
``_scheduled`` are read, never changed.

Granularity: the simulator counts whole milliseconds, so a timer fires at the first virtual ms
at or after it is due (a wait of any positive length moves time by at least 1 ms, so the loop
always progresses). Sockets, subprocesses, executors and signal handlers are not supported;
callbacks from other threads are not either (nothing would wake the loop).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from typing import Any, TypeVar

from dynamokv.sim.world import Simulator

T = TypeVar("T")

# Float noise only: virtual time is whole milliseconds, timers are due when reached.
_RESOLUTION = 1e-6
IDLE_LIMIT_MS = 600_000


class Stalled(RuntimeError):
    """Nothing could make progress: no ready callback, no timer, and the simulator ran for the
    idle limit (or ran out of events) without waking any task: a deadlock in virtual time."""


class _VirtualSelector:
    """Stands where ``BaseEventLoop._run_once`` expects a selector: it advances the simulator."""

    def __init__(self, loop: VirtualLoop) -> None:
        self._loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        self._loop._advance(timeout)
        return []

    def close(self) -> None:
        pass


class VirtualLoop(asyncio.BaseEventLoop):
    """An event loop on ``sim``'s virtual clock; see the module docstring.

    ``idle_limit_ms``: how long (virtual) the loop lets the simulator run while every task
    waits with no timer armed before it raises ``Stalled``.
    """

    def __init__(self, sim: Simulator, *, idle_limit_ms: int = IDLE_LIMIT_MS) -> None:
        super().__init__()
        self.sim = sim
        self.idle_limit_ms = idle_limit_ms
        self._selector = _VirtualSelector(self)
        self._clock_resolution = _RESOLUTION

    def time(self) -> float:
        return self.sim.now_ms / 1000

    def _process_events(self, event_list: list[Any]) -> None:
        pass  # no file descriptors: every event comes from the simulator's sinks

    def _write_to_self(self) -> None:
        pass  # single-threaded: nothing to wake

    def _advance(self, timeout: float | None) -> None:
        """Run the simulator until a callback is ready or ``timeout`` (seconds) has passed."""
        if timeout is not None and timeout <= 0:
            return
        now = self.sim.now_ms
        if timeout is None:
            until = now + self.idle_limit_ms
        else:
            until = now + max(1, math.ceil(timeout * 1000 - _RESOLUTION * 1000))
        ready: Any = self._ready  # type: ignore[attr-defined]  # BaseEventLoop's deque
        woke = self.sim.run_while(lambda: not ready, until)
        if not woke and timeout is None:
            raise Stalled(f"no task could progress from t={now} ms to t={until} ms: every task "
                          "waits on something the simulator never delivered")

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run ``main`` to completion on this loop (background tasks stay pending)."""
        return self.run_until_complete(main)

    def shutdown(self) -> None:
        """Cancel every task still pending, let them finish their cancellation, close."""
        tasks = [t for t in asyncio.all_tasks(self) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            self.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.run_until_complete(self.shutdown_asyncgens())
        self.close()


__all__ = ["IDLE_LIMIT_MS", "Stalled", "VirtualLoop"]
