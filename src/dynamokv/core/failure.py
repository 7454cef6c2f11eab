"""Failure detection: which peers to send to right now.

Owns: ``FailureDetector`` — a phi-accrual detector over heartbeat arrivals (Hayashibara et al.,
as Cassandra's, with its exponential approximation) plus a fast path for hard failures.
May import: stdlib only.

Two signals, both local (the Dynamo paper, 4.8.3: no global view is needed):

- *Hard failures*: the driver reports a refused, reset or closed connection
  (``PeerUnreachable``). The peer is suspected at once: a ``kill -9`` closes its sockets, and
  there is no point waiting for a statistic to notice.
- *Silence*: every message from a peer is a heartbeat (nodes ping each other every
  ``heartbeat_interval_ms``). ``phi`` grows with the time since the last one, relative to the
  mean interval seen so far; above ``phi_threshold`` the peer is suspected. This catches paused
  processes and one-way partitions that keep connections open.

Any message from a suspected peer clears the suspicion. Suspected peers are skipped by
coordinators (they count as failed replies at once) and probed every ``probe_interval_ms``.

How phi is computed (as Akka's ``PhiAccrualFailureDetector``): ``phi = -log10(1 - F(t))`` for
``t`` ms of silence, ``F`` a normal distribution (its logistic approximation) over the recent
intervals between messages, with three bounds that keep it both quick and calm:

- the mean is at least the heartbeat interval (traffic makes intervals short; when it stops,
  heartbeats alone must not look late) and at most twice it (a peer that was slow for a while
  is still suspected soon once it goes silent);
- the deviation is at least ``min_std_ms`` (regular heartbeats must not make a little jitter
  look impossible) and at most ``max_std_ms`` (irregular ones must not postpone suspicion);
- ``acceptable_pause_ms`` is added to the mean: a pause that long (a garbage collection, a
  loaded machine) costs nothing.

With the defaults (500 ms heartbeats, threshold 8) phi passes 8 after 2.0 s of silence when
heartbeats were regular and after at most 3.1 s whatever came before, and a check happens at
each heartbeat, so a silent peer is suspected 2-3.5 s after its last message. Cassandra's
exponential estimate (``phi = t / mean * log10(e)``) needed 9.2 s with the same mean.

If this node itself was not running for a while (its checks are far apart: a stalled event
loop, a paused process), peers' messages wait unread in its sockets; that round suspects
nobody and lets them be read first.
"""

from __future__ import annotations

import math
from collections import deque

INTERVALS_KEPT = 100
MIN_STD_MS = 200.0
MAX_STD_MS = 300.0
ACCEPTABLE_PAUSE_MS = 500.0
PHI_MAX = 40.0  # phi at 10 deviations: far above any threshold; keeps exp() finite


class _History:
    """The last :data:`INTERVALS_KEPT` intervals between messages of one peer, with running
    sums for their mean and deviation."""

    __slots__ = ("intervals", "last_ms", "squares", "total")

    def __init__(self, now_ms: int) -> None:
        self.last_ms = now_ms
        self.intervals: deque[int] = deque(maxlen=INTERVALS_KEPT)
        self.total = 0
        self.squares = 0

    def add(self, now_ms: int) -> None:
        interval = now_ms - self.last_ms
        self.last_ms = now_ms
        if interval <= 0:
            return
        if len(self.intervals) == self.intervals.maxlen:
            oldest = self.intervals[0]
            self.total -= oldest
            self.squares -= oldest * oldest
        self.intervals.append(interval)
        self.total += interval
        self.squares += interval * interval

    def mean_ms(self, floor_ms: int) -> float:
        if not self.intervals:
            return float(floor_ms)
        return max(self.total / len(self.intervals), float(floor_ms))

    def std_ms(self) -> float:
        count = len(self.intervals)
        if count < 2:
            return 0.0
        mean = self.total / count
        return math.sqrt(max(self.squares / count - mean * mean, 0.0))


def phi_of(elapsed_ms: float, mean_ms: float, std_ms: float) -> float:
    """``-log10(1 - F(elapsed))`` for a normal ``F(mean, std)``, by the logistic approximation
    of its CDF (Bowling et al., as Akka uses), bounded by :data:`PHI_MAX`."""
    y = max(-10.0, min(10.0, (elapsed_ms - mean_ms) / std_ms))
    e = math.exp(-y * (1.5976 + 0.070566 * y * y))
    if elapsed_ms > mean_ms:
        return min(-math.log10(e / (1.0 + e)), PHI_MAX)
    return -math.log10(1.0 - 1.0 / (1.0 + e))


class FailureDetector:
    def __init__(self, probe_interval_ms: int, *, phi_threshold: float = 8.0,
                 heartbeat_interval_ms: int = 500, min_std_ms: float = MIN_STD_MS,
                 max_std_ms: float = MAX_STD_MS,
                 acceptable_pause_ms: float = ACCEPTABLE_PAUSE_MS) -> None:
        self.probe_interval_ms = probe_interval_ms
        self.phi_threshold = phi_threshold
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.min_std_ms = min_std_ms
        self.max_std_ms = max(max_std_ms, min_std_ms)
        self.acceptable_pause_ms = acceptable_pause_ms
        self._history: dict[str, _History] = {}
        self._heard: set[str] = set()  # peers we have received anything from
        self._down_since: dict[str, int] = {}
        self._last_probe: dict[str, int] = {}
        self._last_check_ms: int | None = None

    # ---- inputs ------------------------------------------------------------------------------
    def heard_from(self, node: str, now_ms: int | None = None) -> bool:
        """``node`` sent us something. Returns True when that ends a suspicion."""
        if now_ms is not None:
            self._heard.add(node)
            history = self._history.get(node)
            if history is None:
                self._history[node] = _History(now_ms)
            else:
                history.add(now_ms)
        self._last_probe.pop(node, None)
        return self._down_since.pop(node, None) is not None

    def unreachable(self, node: str, now_ms: int) -> bool:
        """Delivery to ``node`` failed. Returns True when this starts a suspicion."""
        if node in self._down_since:
            return False
        self._down_since[node] = now_ms
        self._last_probe[node] = now_ms
        return True

    def check(self, nodes: list[str], now_ms: int) -> list[str]:
        """Suspect every node in ``nodes`` whose phi passed the threshold; those newly suspected.

        Meant to run every heartbeat interval; after a longer gap (this node was not running)
        it only records the time, and suspects nobody until the next round."""
        newly: list[str] = []
        last, self._last_check_ms = self._last_check_ms, now_ms
        stalled = last is not None and now_ms - last > 2 * self.heartbeat_interval_ms
        for node in nodes:
            if node not in self._history:
                # Never heard from it yet: its silence counts from now, so a peer that went
                # quiet before we started is suspected like any other.
                self._history[node] = _History(now_ms)
                continue
            if stalled or node in self._down_since:
                continue
            if self.phi(node, now_ms) > self.phi_threshold:
                self._down_since[node] = now_ms
                self._last_probe[node] = now_ms
                newly.append(node)
        return newly

    # ---- queries -----------------------------------------------------------------------------
    def phi(self, node: str, now_ms: int) -> float:
        """Suspicion level: how unlikely the current silence is (0 when never heard of)."""
        history = self._history.get(node)
        if history is None:
            return 0.0
        beat = self.heartbeat_interval_ms
        mean = min(history.mean_ms(beat), 2.0 * beat)
        std = min(max(history.std_ms(), self.min_std_ms), self.max_std_ms)
        return phi_of(max(now_ms - history.last_ms, 0), mean + self.acceptable_pause_ms, std)

    def has_heard(self, node: str) -> bool:
        """Whether ``node`` has sent us anything (phi alone cannot say: it is about 0 both
        right after a heartbeat and before the first one)."""
        return node in self._heard

    def is_up(self, node: str) -> bool:
        return node not in self._down_since

    def down(self) -> dict[str, int]:
        """Suspected nodes and since when (monotonic ms)."""
        return dict(self._down_since)

    def due_probes(self, now_ms: int) -> list[str]:
        """Suspected peers whose probe is due; marks them probed."""
        due = [
            n
            for n in sorted(self._down_since)
            if now_ms - self._last_probe.get(n, 0) >= self.probe_interval_ms
        ]
        for n in due:
            self._last_probe[n] = now_ms
        return due

    def forget(self, node: str) -> None:
        self._heard.discard(node)
        self._down_since.pop(node, None)
        self._last_probe.pop(node, None)
        self._history.pop(node, None)
