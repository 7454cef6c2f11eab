"""Admission control: background work gets slices only while the foreground is fast.

Owns: ``AdmissionController`` and ``AdmissionSettings``.
May import: stdlib only.

The Dynamo paper (6.5): background tasks (hint replay, anti-entropy, handoff) run only in time
slices granted by a controller that watches foreground latency; when foreground p99 rises past a
threshold, background work backs off. Here:

- every foreground request the node coordinates reports its latency (``observe``);
- every ``window_ms`` the controller computes the window's p99 and adjusts the background rate
  (batches per second) AIMD-style: past ``p99_threshold_ms`` it halves (down to ``rate_min``),
  otherwise it grows by ``rate_step`` (up to ``rate_max``);
- background work asks ``admit(now_ms)`` how many batches it may start now (a token bucket
  filled at the current rate, at most ``burst`` tokens).

``rate_min`` stays above zero so background work is slowed, never starved forever: a cluster
that is always busy still drains hints and converges, just later.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    p99_threshold_ms: float = 50.0
    window_ms: int = 1_000
    rate_max: float = 200.0  # background batches per second when the foreground is fast
    rate_min: float = 2.0
    rate_step: float = 20.0
    burst: float = 10.0
    samples_max: int = 4_096  # latency samples kept per window (the rest are subsampled)


class AdmissionController:
    def __init__(self, settings: AdmissionSettings, now_ms: int = 0) -> None:
        self.settings = settings
        self.rate = settings.rate_max
        self._tokens = settings.burst
        self._last_fill_ms = now_ms
        self._window_start_ms = now_ms
        self._samples: list[float] = []
        self._seen = 0
        self.last_p99_ms = 0.0
        self.throttled_windows = 0

    def observe(self, latency_ms: float, now_ms: int) -> None:
        """One foreground request finished after ``latency_ms``."""
        self._roll(now_ms)
        self._seen += 1
        if len(self._samples) < self.settings.samples_max:
            self._samples.append(latency_ms)
        else:
            # Keep a bounded, evenly spread sample of a busy window.
            slot = self._seen % self.settings.samples_max
            self._samples[slot] = latency_ms

    def admit(self, now_ms: int, wanted: int = 1) -> int:
        """How many background batches (up to ``wanted``) may start now."""
        self._roll(now_ms)
        elapsed = max(now_ms - self._last_fill_ms, 0)
        self._last_fill_ms = now_ms
        self._tokens = min(self.settings.burst, self._tokens + self.rate * elapsed / 1000)
        granted = min(int(self._tokens), wanted)
        self._tokens -= granted
        return granted

    def _roll(self, now_ms: int) -> None:
        settings = self.settings
        if now_ms - self._window_start_ms < settings.window_ms:
            return
        self._window_start_ms = now_ms
        if self._samples:
            ordered = sorted(self._samples)
            self.last_p99_ms = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        else:
            self.last_p99_ms = 0.0
        self._samples = []
        self._seen = 0
        if self.last_p99_ms > settings.p99_threshold_ms:
            self.rate = max(settings.rate_min, self.rate / 2)
            self.throttled_windows += 1
        else:
            self.rate = min(settings.rate_max, self.rate + settings.rate_step)

    def throttled(self) -> bool:
        """The last window's foreground p99 was past the threshold (background backs off)."""
        return self.last_p99_ms > self.settings.p99_threshold_ms

    def status(self) -> dict[str, float]:
        return {"rate_per_s": round(self.rate, 2), "foreground_p99_ms": round(self.last_p99_ms, 3),
                "throttled_windows": self.throttled_windows}
