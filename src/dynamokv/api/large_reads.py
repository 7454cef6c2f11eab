"""Reads of large items, worked in the worker thread instead of on the event loop.

Owns: :func:`get_answer` (GetItem's ``Item`` and size from a stored value), :func:`decoded`
(a stored value of a Query or Scan page, as an item) and :func:`in_worker` (a page's per-item
work for an item :func:`decoded` marked large).
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.bodies`,
:mod:`dynamokv.api.heap`, :mod:`dynamokv.api.expressions`, :mod:`dynamokv.api.layout.items`,
:mod:`dynamokv.api.response_json`.

Decoding a stored item into typed values, projecting it and encoding it for the answer costs
time in proportion to its number of values: a 400 KB item holding a list of 200,000 numbers is
hundreds of milliseconds, during which the node answers nobody. Items stored above
:data:`LARGE_VALUE` bytes are therefore worked in the worker thread that also parses large
request bodies (:mod:`dynamokv.api.bodies`), and their objects are built and freed by
:mod:`dynamokv.api.heap` so that the collector's full passes stay off the loop too. Items of
ordinary size are worked in place: a thread hop would cost them more than it saves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from dynamokv.api import bodies, heap
from dynamokv.api.attributes import Item, item_size, item_to_wire
from dynamokv.api.expressions import project
from dynamokv.api.expressions.nodes import Path
from dynamokv.api.layout.items import INTENT_MARK, decode_item, stored_wire
from dynamokv.api.response_json import RawJson

LARGE_VALUE = 64 * 1024  # stored bytes from which an item is worked off the event loop

T = TypeVar("T")


class LargeItem(dict):  # type: ignore[type-arg]
    """An item decoded from a large stored value: the page works it off the loop too."""


async def in_worker(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in the worker thread, its result built and later freed there."""
    worker = bodies.worker()
    result = await asyncio.get_running_loop().run_in_executor(
        worker, heap.build, function, *args)
    heap.hold(result, worker)
    return result


async def get_answer(raw: bytes, projection: tuple[Path, ...] | None,
                     want_size: bool) -> tuple[Any, int]:
    """GetItem's ``Item`` for the stored value ``raw``, and the item's size (0 unless
    ``want_size`` or a projection made it free to know)."""
    if len(raw) <= LARGE_VALUE:
        return _answer(raw, projection, want_size)
    return await in_worker(_answer, raw, projection, want_size)


def _answer(raw: bytes, projection: tuple[Path, ...] | None, want_size: bool) -> tuple[Any, int]:
    if projection is None:
        # The stored form is the wire form: no typed values to build unless the size is asked.
        answer: Any = stored_wire(raw) if raw[:1] == INTENT_MARK else RawJson(raw)
        return answer, item_size(decode_item(raw)) if want_size else 0
    item = decode_item(raw)
    return item_to_wire(project(item, projection)), item_size(item)


async def decoded(raw: bytes) -> Item:
    """The item of the plain (intent-free) stored value ``raw``: a :class:`LargeItem` decoded
    in the worker when ``raw`` is large."""
    if len(raw) <= LARGE_VALUE:
        return decode_item(raw)
    return await in_worker(_large_item, raw)


def _large_item(raw: bytes) -> LargeItem:
    return LargeItem(decode_item(raw))
