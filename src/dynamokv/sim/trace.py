"""The run's trace: one line per event, a running SHA-256 digest, and the last lines kept.

Owns: ``Trace``.
May import: stdlib only.

Line format (columns separated by single spaces, documented in ``docs/simulator.md``)::

    <time_ms, 8 wide> <where, 4 wide> <what> <details...>

``where`` is a node id, ``c<k>`` for a client, or ``-`` for the world itself. The digest covers
every line in order, so two runs of one seed are identical exactly when their digests are; lines
must therefore never contain anything that varies between runs (real time, ``id()``, set order).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable

TAIL_LINES = 40


class Trace:
    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self._hash = hashlib.sha256()
        self._echo = echo
        self.lines = 0
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def add(self, now_ms: int, where: str, what: str, details: str = "") -> None:
        line = f"{now_ms:>8} {where:<4} {what}"
        if details:
            line += " " + details
        self._hash.update(line.encode())
        self._hash.update(b"\n")
        self.lines += 1
        self.tail.append(line)
        if self._echo is not None:
            self._echo(line)

    def digest(self) -> str:
        return self._hash.hexdigest()
