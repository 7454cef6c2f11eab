"""The garbage work of large request bodies, kept off the event loop.

Owns: what happens to the objects of a large body (:mod:`dynamokv.api.bodies`) around its
request: the collector's full passes while they are built and while they live, and their
deallocation afterwards.
May import: stdlib only.

A 16 MB BatchWriteItem is a few million Python objects. Two things about them hold the GIL for
a long time (and so stall the event loop, whichever thread does them):

- CPython's collector makes a full pass (every tracked object of the process, in one C call)
  each time the objects surviving in its oldest generation have grown by a quarter: building
  and keeping such a body triggers several, each 100-500 ms on a loaded 2-core machine.
  :func:`build` runs the builder with full passes held off, then moves every tracked object
  into the collector's permanent generation (``gc.freeze``, a constant-time list splice), where
  passes do not look. Once no such body is alive they are moved back (``gc.unfreeze``, also
  constant time) and collected as usual; cycles that became garbage meanwhile wait until then.
  (A body that is never freed keeps them frozen until the next large body comes after
  :data:`MAX_FROZEN_S`.)
- Freeing the body when the request ends is one cascade of deallocations (~0.1 s of CPU for
  16 MB) on whichever thread drops the last reference, normally the event loop. :func:`hold`
  keeps a reference instead; a sweep on the loop notices when it is the last one and gives the
  body to the worker thread, which takes it apart from Python code, one container at a time,
  so the GIL changes hands every few milliseconds. A container someone else still refers to
  (an item queued for index upkeep, say) is only let go of, never emptied.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

SWEEP_S = 0.2  # how often the loop looks for held bodies nobody else refers to any more
MAX_FROZEN_S = 60.0  # a new large body thaws what has been frozen longer than this
_NO_FULL_PASS = 1 << 30

_held: list[Any] = []
_lock = threading.Lock()
_freeing = 0  # bodies handed to the worker thread and not yet taken apart
_frozen_at: float | None = None
_sweeping: set[asyncio.AbstractEventLoop] = set()  # loops with a sweep scheduled


def build(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` without full collections while it runs, its objects frozen after
    (see the module docstring). Runs in the worker thread."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, _NO_FULL_PASS)
    try:
        result = function(*args)
    finally:
        gc.set_threshold(young, middle, old)
    _freeze()
    return result


def _freeze() -> None:
    global _frozen_at
    with _lock:
        if _frozen_at is not None and time.monotonic() - _frozen_at > MAX_FROZEN_S:
            gc.unfreeze()  # frozen too long (a body never freed): let the collector see it
            _frozen_at = None
        gc.freeze()
        if _frozen_at is None:
            _frozen_at = time.monotonic()


def _thaw_if_idle() -> None:
    global _frozen_at
    with _lock:  # (not reentrant: never called with it held)
        if _frozen_at is not None and not _held and _freeing == 0:
            gc.unfreeze()
            _frozen_at = None


def hold(value: Any, worker: concurrent.futures.Executor) -> None:
    """Keep ``value`` (a result of :func:`build`) until nobody else refers to it, then free it
    in ``worker``. Call on the event loop."""
    loop = asyncio.get_running_loop()
    with _lock:
        _held.append(value)
        if loop in _sweeping:
            return
        _sweeping.add(loop)
    loop.call_later(SWEEP_S, _sweep, loop, worker)


def _sweep(loop: asyncio.AbstractEventLoop, worker: concurrent.futures.Executor) -> None:
    global _freeing
    freed = []
    with _lock:
        i = 0
        while i < len(_held):
            if sys.getrefcount(_held[i]) == 2:  # the list's reference and the argument's
                _freeing += 1
                freed.append([_held.pop(i)])
            else:
                i += 1
        again = bool(_held)
        if not again:
            _sweeping.discard(loop)
    for box in freed:
        worker.submit(_take_apart, box)
    del freed
    if again:
        loop.call_later(SWEEP_S, _sweep, loop, worker)


def _take_apart(box: list[Any]) -> None:
    """Free the value in ``box`` one container at a time (runs in the worker thread)."""
    global _freeing
    stack = [box.pop()]
    while stack:
        item = stack.pop()
        # Two references: ``item`` and the argument. Anything more is someone else's.
        if sys.getrefcount(item) == 2:
            if isinstance(item, dict):
                while item:
                    stack.append(item.popitem()[1])
            elif isinstance(item, list):
                stack.extend(item)
                item.clear()
            elif isinstance(item, tuple):
                stack.extend(item)  # freed below, with nothing left to free inside it
            else:
                inner = getattr(item, "value", None)  # an attribute value's contents
                if isinstance(inner, (dict, list, tuple)):
                    stack.append(inner)
                del inner
        del item
    with _lock:
        _freeing -= 1
    _thaw_if_idle()
