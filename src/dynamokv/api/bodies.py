"""Large request bodies, parsed and converted in a worker thread without holding the GIL long.

Owns: the decision that a body is large (:func:`is_large`), and :func:`decode_large`, which
turns such a body into the request's JSON value in a worker thread and there also converts the
items and attribute values it carries (:func:`dynamokv.api.attributes.prepare_item` and
``prepare_value``, with an item's stored bytes from :func:`dynamokv.api.layout.items.encode_item`),
so that the operation, back on the event loop, finds them done.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.layout.items`,
:mod:`dynamokv.api.heap` (what becomes of the body's objects), :mod:`dynamokv.api.errors`.

Why a thread is not enough by itself: a thread gives the event loop the GIL back every few
milliseconds only while it runs Python code; one C call keeps it to the end. ``orjson.loads``
of a 16 MB body is one C call of hundreds of milliseconds (seconds on a loaded machine), so a
large body is parsed here in steps instead: the standard library's C scanner reads one value
at a time from a window of at most :data:`WINDOW` characters, and a container that does not
fit in a window is opened by Python code, which reads its members the same way. Each C call
thus reads at most one window. The result is the value ``orjson.loads`` gives, and the body is
refused (:class:`SerializationException`) exactly where orjson refuses it: the scanner's hooks
apply orjson's number rules, and strings with an unpaired surrogate escape are refused. It
also never recurses on the body's nesting, where ``orjson.loads`` of some 50,000 levels of
objects crashes the process.

Converting the items is Python code, so it yields the GIL on its own; only the conversions
DynamoDB reports in order are done here, each remembered with its result or its error, which
the operation raises when it reaches that item, as it would have.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import json
import json.decoder
import json.scanner
import math
import re
import threading
from typing import Any

from dynamokv.api import attributes, heap
from dynamokv.api.errors import SerializationException
from dynamokv.api.layout.items import encode_item

LARGE_BODY = 64 * 1024  # bytes; a smaller body is parsed on the event loop (a few ms at most)
# A small body with more brackets than this may nest deeper than orjson can parse safely.
MAX_SMALL_BRACKETS = 4096
WINDOW = 64 * 1024  # characters the C scanner may read in one call (~1 ms)
# Windows that may fail to hold a container before the parser stops using them (see _Parser).
MISSES = 64
DECODE_STEP = 1024 * 1024  # bytes of UTF-8 decoded per C call

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_SPACE = " \t\n\r"
# A \u escape of a surrogate; only a body with one needs the unpaired-surrogate check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_I64_MIN = -(2**63)
_U64_END = 2**64


class _Refused(Exception):
    """The body is not JSON as orjson reads it."""


def _parse_int(text: str) -> int | float:
    # orjson reads an integer outside [-2^63, 2^64) as a float, and refuses an infinite one.
    if len(text) <= 20:
        value = int(text)
        if _I64_MIN <= value < _U64_END:
            return value
    return _parse_float(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused("number is infinity when parsed as double")
    return value


def _refuse_constant(text: str) -> Any:
    raise _Refused(f"not JSON: {text}")  # NaN, Infinity, -Infinity


_DECODER = json.JSONDecoder(parse_float=_parse_float, parse_int=_parse_int,
                            parse_constant=_refuse_constant, strict=True)
# The C scanner (the pure-Python one if the accelerator is missing: slower, same results).
_scan: Any = (getattr(json.scanner, "c_make_scanner", None) or json.scanner.make_scanner)(
    _DECODER)  # type: ignore[arg-type]
_scanstring = getattr(json.decoder, "scanstring")  # noqa: B009 - not in the stubs


def is_large(body: bytes) -> bool:
    """Whether ``body`` is parsed by :func:`decode_large` rather than on the event loop."""
    return len(body) > LARGE_BODY or body.count(b"[") + body.count(b"{") > MAX_SMALL_BRACKETS


_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def worker() -> concurrent.futures.ThreadPoolExecutor:
    # One thread: two busy workers would each take turns with the event loop for the GIL.
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="dynamokv-bodies")
        return _executor


async def decode_large(body: bytes, operation: str) -> Any:
    """The JSON value of ``body`` (``{}`` if it is blank), its items converted ahead of time
    for ``operation``; raises :class:`SerializationException` where ``orjson.loads`` would."""
    pool = worker()
    value = await asyncio.get_running_loop().run_in_executor(
        pool, heap.build, prepare_body, body, operation)
    heap.hold(value, pool)  # freed in the worker once the request is done with it
    return value


def prepare_body(body: bytes, operation: str) -> Any:
    """What :func:`decode_large` runs in the worker thread."""
    try:
        value = parse(body)
    except _Refused:
        raise SerializationException() from None
    if isinstance(value, dict):
        _PREPARERS.get(operation, _prepare_expression_values)(value)
    return value


# ------------------------------------------------------------------------------ parsing


def parse(body: bytes) -> Any:
    """``orjson.loads(body)`` in steps (``{}`` for a blank body); raises :class:`_Refused`."""
    text = _text(body)
    end = len(text)
    start = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]
    if start == end:
        return {}
    value, i = _Parser(text).value_at(start)
    if _WHITESPACE.match(text, i).end() != end:  # type: ignore[union-attr]
        raise _Refused("unexpected content after document")
    if _has_surrogate_escape(text) and _has_unpaired_surrogate(value):
        raise _Refused("unpaired surrogate in a string")
    return value


def _text(body: bytes) -> str:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        parts = [decoder.decode(body[i:i + DECODE_STEP]) for i in range(0, len(body), DECODE_STEP)]
        parts.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        raise _Refused("not UTF-8") from None
    text = "".join(parts)
    if text[:1] == "\ufeff":  # orjson refuses a byte order mark
        raise _Refused("byte order mark")
    return text


def _has_surrogate_escape(text: str) -> bool:
    step = DECODE_STEP
    # Windows overlap by the length of a match, so one across a boundary is seen.
    return any(_SURROGATE_ESCAPE.search(text, i, i + step + 5) for i in range(0, len(text), step))


def _has_unpaired_surrogate(value: Any) -> bool:
    # The scanner joins a valid pair into one character; what is left of U+D800..U+DFFF in a
    # string came from an unpaired escape. Iterative: the nesting has no bound here.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class _Parser:
    """Reads one JSON value, in C calls of at most a window each (see the module docstring).

    A window is a copy of :data:`WINDOW` characters of the text from some position; values
    that follow each other are read from the same window until one runs past its end, and the
    next window starts at that value. A container that does not fit in a window of its own is
    opened here and its members read one by one. Failed attempts cost at most a window of C
    work each; past a budget of them (a body built to defeat windows: thousands of nested
    containers each a little larger than a window) the rest is read without windows, one
    scalar per C call.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.end = len(text)
        self.base = 0
        self.window = ""
        self.budget = MISSES + 4 * (self.end // WINDOW)

    def value_at(self, i: int) -> tuple[Any, int]:
        """The value that starts at ``i`` (no whitespace before it) and where it ends."""
        text, end = self.text, self.end
        stack: list[list[Any]] = []  # [container, key of the member being read] per level
        while True:
            if i >= end:
                raise _Refused("unexpected end of data")
            mark = text[i]
            found = self._quick(i) if mark == "[" or mark == "{" else None
            if found is not None:
                value, i = found
            elif mark == "[" or mark == "{":
                empty, i = self._open(i, stack)
                if empty is None:
                    continue  # read its first member
                value = empty
            else:
                value, i = self._scalar(i)
            # A value is complete: add it to its container, then read on after it.
            while True:
                if not stack:
                    return value, i
                frame = stack[-1]
                container = frame[0]
                if type(container) is list:
                    container.append(value)
                else:
                    container[frame[1]] = value
                if i >= end:
                    raise _Refused("unexpected end of data")
                mark = text[i]
                if mark in _SPACE:
                    i = _WHITESPACE.match(text, i).end()  # type: ignore[union-attr]
                    if i >= end:
                        raise _Refused("unexpected end of data")
                    mark = text[i]
                if mark == ",":
                    i += 1
                    if i < end and text[i] in _SPACE:
                        i = _WHITESPACE.match(text, i).end()  # type: ignore[union-attr]
                    if type(container) is dict:
                        frame[1], i = self._key(i)
                    break
                if mark != ("]" if type(container) is list else "}"):
                    raise _Refused("expected a separator")
                stack.pop()
                value, i = container, i + 1

    def _open(self, i: int, stack: list[list[Any]]
              ) -> tuple[list[Any] | dict[str, Any] | None, int]:
        """Open the container at ``i``: ``(None, position of its first member)`` with it pushed
        on ``stack``, or ``(the empty container, position after it)``."""
        text = self.text
        is_list = text[i] == "["
        j = _WHITESPACE.match(text, i + 1).end()  # type: ignore[union-attr]
        if j < self.end and text[j] == ("]" if is_list else "}"):
            return ([] if is_list else {}), j + 1
        if is_list:
            stack.append([[], None])
            return None, j
        key, j = self._key(j)
        stack.append([{}, key])
        return None, j

    def _key(self, i: int) -> tuple[str, int]:
        """The member name at ``i`` and the position of its value (after the colon)."""
        text = self.text
        if i >= self.end or text[i] != '"':
            raise _Refused("expected a member name")
        try:
            key, j = _scanstring(text, i + 1, True)
        except ValueError:
            raise _Refused("bad member name") from None
        end = self.end
        if j < end and text[j] in _SPACE:
            j = _WHITESPACE.match(text, j).end()  # type: ignore[union-attr]
        if j >= end or text[j] != ":":
            raise _Refused("expected a colon")
        j += 1
        if j < end and text[j] in _SPACE:
            j = _WHITESPACE.match(text, j).end()  # type: ignore[union-attr]
        return key, j

    def _quick(self, i: int) -> tuple[Any, int] | None:
        """The container at ``i`` read by the C scanner from a window, or None if it does not
        fit (or is not valid: reading it member by member finds where). Only a container: its
        closing bracket proves it was not cut by the window's end, while a number cut short
        (``1.5e3`` to ``1.``) still reads as a number."""
        offset = i - self.base
        if 0 < offset < len(self.window):  # the common case: the next value of a window
            try:
                value, stop = _scan(self.window, offset)
                return value, self.base + stop
            except (ValueError, StopIteration, RecursionError, _Refused):
                self.window = ""  # try again from a window of its own
        if self.budget <= 0:
            return None
        for _ in range(2):
            offset = i - self.base
            if not 0 <= offset < len(self.window):
                self.base, self.window, offset = i, self.text[i:i + WINDOW], 0
            window = self.window
            try:
                value, stop = _scan(window, offset)
            except (ValueError, StopIteration, RecursionError, _Refused):
                stop = -1
            if stop > 0:
                return value, self.base + stop
            if offset == 0:
                break
            self.window = ""  # try again from a window of its own
        self.budget -= 1
        return None

    def _scalar(self, i: int) -> tuple[Any, int]:
        """A string, number or literal at ``i``, read from the text itself: one pass over the
        characters of a string or a number however long."""
        try:
            value, stop = _scan(self.text, i)
        except (ValueError, StopIteration, _Refused):
            raise _Refused("bad value") from None
        return value, stop


# ------------------------------------------------------------------------------ conversion


def _prepare_item(item: Any) -> Any:
    prepared = attributes.prepare_item(item)
    converted = getattr(prepared, "converted", None)
    if (isinstance(converted, attributes.PreparedItem) and converted.size is not None
            and converted.size <= attributes.MAX_ITEM_SIZE):
        converted.encoded = encode_item(converted)
    return prepared


def _prepare_values(request: dict[str, Any]) -> None:
    values = request.get("ExpressionAttributeValues")
    if type(values) is dict:
        for name, value in values.items():
            values[name] = attributes.prepare_value(value)
    updates = request.get("AttributeUpdates")  # the legacy form of an update
    if type(updates) is dict:
        for update in updates.values():
            if type(update) is dict and "Value" in update:
                update["Value"] = attributes.prepare_value(update["Value"])


def _prepare_expression_values(body: dict[str, Any]) -> None:
    _prepare_values(body)


def _prepare_put(body: dict[str, Any]) -> None:
    if "Item" in body:
        body["Item"] = _prepare_item(body["Item"])
    _prepare_values(body)


def _prepare_batch_write(body: dict[str, Any]) -> None:
    tables = body.get("RequestItems")
    for writes in tables.values() if type(tables) is dict else ():
        for write in writes if type(writes) is list else ():
            put = write.get("PutRequest") if type(write) is dict else None
            if type(put) is dict and "Item" in put:
                put["Item"] = _prepare_item(put["Item"])


def _prepare_transact_write(body: dict[str, Any]) -> None:
    actions = body.get("TransactItems")
    for action in actions if type(actions) is list else ():
        for kind, request in action.items() if type(action) is dict else ():
            if type(request) is not dict:
                continue
            if kind == "Put" and "Item" in request:
                request["Item"] = _prepare_item(request["Item"])
            _prepare_values(request)


_PREPARERS = {
    "PutItem": _prepare_put,
    "BatchWriteItem": _prepare_batch_write,
    "TransactWriteItems": _prepare_transact_write,
}
