"""Per-node metrics: Prometheus series for scraping, plus exact recent percentiles for ``status``.

Owns: ``NodeMetrics`` (one ``CollectorRegistry`` per node, never the process-global one, so several
nodes in one process, as in tests, do not collide) and ``MetricsHTTPServer`` (``GET /metrics``).
May import: stdlib, ``prometheus_client``.

Why two views of latency: a Prometheus histogram is cheap and aggregates across nodes, but its
quantiles are only as fine as its buckets. ``status`` wants a precise p99.9 of *this* node right
now, so each op also keeps a bounded reservoir of its most recent samples.
"""

from __future__ import annotations

import bisect
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.core import HistogramMetricFamily

# 0.1 ms .. 10 s, roughly 1-2.5-5 per decade: an in-memory local read lands in the first buckets,
# a quorum write across a slow disk or a timed-out request in the last ones.
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)

RESERVOIR_SIZE = 10_000
# Ops are named by the server (get, put, delete, ...); the cap only guards against a bug that
# would invent op names from user input and grow memory without bound.
RESERVOIR_OPS_MAX = 64

PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 0.50), ("p99", 0.99), ("p999", 0.999))

# Latency per minute over the last minutes, for the dashboard: each op keeps the samples of
# its last MINUTES_KEPT minutes, at most MINUTE_SAMPLES_MAX per minute (the latest ones), so
# summing them up costs the HTTP thread (and the GIL the node's loop shares) a few ms at most.
MINUTES_KEPT = 10
MINUTE_SAMPLES_MAX = 1_000
_QUIET_MINUTE: dict[str, Any] = {"requests": 0, "p50": 0.0, "p99": 0.0}


def sibling_bucket(count: int) -> str:
    """The ``count`` label of a GET that returned ``count`` versions: "1", "2", "3" or "4+"."""
    if count < 1:
        raise ValueError(f"sibling count {count} must be >= 1")
    return str(count) if count < 4 else "4+"


class _LatencyHistogram:
    """The request latency histogram, as a collector of our own: an observation is one bisect
    and two additions under the metrics lock (which the reservoirs take anyway), where a
    ``prometheus_client.Histogram`` took a lock for its sum and one for a bucket and walked the
    buckets in Python (~4 us, about 1% of a request). Exposed exactly as that Histogram was:
    ``_bucket`` (cumulative, ``le`` formatted the same), ``_count`` and ``_sum`` per op and
    outcome."""

    def __init__(self, name: str, documentation: str, lock: threading.Lock) -> None:
        self.name = name
        self.documentation = documentation
        self._lock = lock
        self._bounds = LATENCY_BUCKETS_S
        self._les = [repr(float(b)) for b in self._bounds] + ["+Inf"]  # as prometheus_client
        # (op, outcome) -> [count per bucket (the last one above every bound), sum of seconds]
        self._series: dict[tuple[str, str], tuple[list[int], list[float]]] = {}

    def observe(self, op: str, outcome: str, seconds: float) -> None:
        """Count one observation; the caller holds the lock."""
        series = self._series.get((op, outcome))
        if series is None:
            series = self._series[(op, outcome)] = ([0] * len(self._les), [0.0])
        series[0][bisect.bisect_left(self._bounds, seconds)] += 1
        series[1][0] += seconds

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=["op", "outcome"])

    def describe(self) -> list[HistogramMetricFamily]:
        return [self._family()]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            rows = [(key, list(counts), total[0])
                    for key, (counts, total) in sorted(self._series.items())]
        family = self._family()
        for (op, outcome), counts, total in rows:
            cumulative, buckets = 0, []
            for le, n in zip(self._les, counts, strict=True):
                cumulative += n
                buckets.append((le, float(cumulative)))
            family.add_metric([op, outcome], buckets, total)
        yield family


def percentile(sorted_samples: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted samples; 0.0 when there are none."""
    if not sorted_samples:
        return 0.0
    rank = math.ceil(p * len(sorted_samples))
    return sorted_samples[min(max(rank, 1), len(sorted_samples)) - 1]


class NodeMetrics:
    """Every metric one node exports. Thread-safe: the scrape thread reads while the loop writes."""

    def __init__(self, *, reservoir_size: int = RESERVOIR_SIZE) -> None:
        if reservoir_size < 1:
            raise ValueError("reservoir_size must be >= 1")
        self.registry = CollectorRegistry(auto_describe=True)
        self._reservoir_size = reservoir_size
        self._reservoirs: dict[str, deque[float]] = {}
        # op -> [minute number, requests that minute, their latest samples], oldest first
        self._minutes: dict[str, deque[tuple[int, list[int], deque[float]]]] = {}
        self._clock: Callable[[], float] = time.monotonic
        self._minute_rows: dict[tuple[str, int], dict[str, Any]] = {}  # past minutes, summed up
        self._lock = threading.Lock()
        # Published by the node's loop every 2 s, read by the HTTP thread (node_pages.py).
        self.health: dict[str, Any] = {}
        self.status: dict[str, Any] = {}
        # Other parts of the node that report into ``status`` (name -> their counters).
        self.status_sources: dict[str, Callable[[], dict[str, Any]]] = {}

        r = self.registry
        self.request_seconds = _LatencyHistogram(
            "dynamokv_request_seconds",
            "Time from receiving a client request to answering it, by op and outcome.",
            self._lock,
        )
        r.register(self.request_seconds)
        self.get_siblings = Counter(
            "dynamokv_get_siblings",
            "Successful GETs by number of versions returned (the paper's divergence figure).",
            ["count"],
            registry=r,
        )
        self.get_found = Counter(
            "dynamokv_get_found", "GETs that found at least one version.", registry=r
        )
        self.get_not_found = Counter(
            "dynamokv_get_not_found", "GETs that found no live version.", registry=r
        )
        self.in_flight_requests = Gauge(
            "dynamokv_in_flight_requests", "Client requests being coordinated now.", registry=r
        )
        self.connected_peers = Gauge(
            "dynamokv_connected_peers", "Peer nodes with an open connection.", registry=r
        )
        self.background = Gauge(
            "dynamokv_background", "Background work of this node: hints pending (a backlog "
            "bounded by hints.backlog_max), hints replayed, handoffs active and queued, "
            "anti-entropy exchanges and keys repaired, admitted background batches per second, "
            "undecodable stored records quarantined; with the DynamoDB API, table sweep passes "
            "and failed passes and items deleted by TTL.",
            ["what"], registry=r,
        )
        self.table_work = Gauge(
            "dynamokv_table_work", "Background work of the DynamoDB table layer on this node, "
            "by source: index_upkeep (the index outbox drain: records done, batches failed, "
            "given up, partitions backing off), index_work (index upkeep jobs and backfills: "
            "failed, backfill_failed, repairs_marked), table_drops (buckets of deleted tables "
            "and indexes: started, done, failed).",
            ["source", "what"], registry=r,
        )
        self.bytes_in = Counter(
            "dynamokv_bytes_in", "Bytes received on the binary protocol.", registry=r
        )
        self.bytes_out = Counter(
            "dynamokv_bytes_out", "Bytes sent on the binary protocol.", registry=r
        )
        self.errors = Counter(
            "dynamokv_errors", "Errors by dynamokv error code.", ["code"], registry=r
        )
        self.http_refused = Counter(
            "dynamokv_http_refused", "Requests and connections the DynamoDB HTTP API refused "
            "or cut by a limit, by reason: connections, client_connections, buffer_full, "
            "body_too_large, item_too_large, header_too_large, idle_timeout, receive_timeout.",
            ["reason"], registry=r,
        )
        self.http_connections = Gauge(
            "dynamokv_http_connections", "Open connections to the DynamoDB HTTP API.", registry=r
        )
        self.http_buffered_bytes = Gauge(
            "dynamokv_http_buffered_bytes", "Request body bytes the DynamoDB HTTP API holds "
            "now (bounded by its max_buffered_bytes).", registry=r,
        )
        self._http: dict[str, Any] | None = None  # None until an HTTP API reports
        self._background: dict[str, float] = {}
        self._background_errors: dict[str, str] = {}
        self.connections_refused = Counter(
            "dynamokv_connections_refused", "Inbound connections refused on the binary port, by "
            "reason: connections (the port's limit), address (the per-address limit).",
            ["reason"], registry=r,
        )
        self.connections_closed = Counter(
            "dynamokv_connections_closed", "Connections the node closed, by reason: stall (bytes "
            "unacknowledged past the stall timeout), idle, slow_frame (a frame not completed in "
            "time), buffer (partial frames over the memory budget), protocol.",
            ["reason"], registry=r,
        )
        self.oversize_messages = Counter(
            "dynamokv_oversize_messages", "Messages over the frame limit, answered with an error "
            "instead of sent (out) or read (in).", ["direction"], registry=r,
        )
        self.inbound_connections = Gauge(
            "dynamokv_inbound_connections", "Open inbound connections on the binary port "
            "(clients and peers).", registry=r,
        )
        # Labelled children, looked up once: ``labels()`` costs a few microseconds per call
        # (it validates and sorts the label values and takes a lock), more than the observation
        # itself, and every finished request records one. Label sets are few (ops x outcomes,
        # sibling buckets, error codes), so these maps stay small.
        self._sibling_children: dict[int, Any] = {}
        self._error_children: dict[str, Any] = {}

    # -- recording -------------------------------------------------------------------------

    def observe_request(self, op: str, seconds: float, outcome: str) -> None:
        """Record one finished request; ``outcome`` is "ok" or an error code."""
        # A clock step can make a measured duration negative; it still counts as a request.
        if seconds < 0.0:
            seconds = 0.0
        with self._lock:
            self.request_seconds.observe(op, outcome, seconds)
            reservoir = self._reservoirs.get(op)
            if reservoir is None:
                if len(self._reservoirs) >= RESERVOIR_OPS_MAX:
                    return
                reservoir = deque(maxlen=self._reservoir_size)
                self._reservoirs[op] = reservoir
                self._minutes[op] = deque(maxlen=MINUTES_KEPT)
            reservoir.append(seconds)
            self._add_to_minute(self._minutes[op], seconds)

    def _add_to_minute(self, series: deque[tuple[int, list[int], deque[float]]],
                       seconds: float) -> None:
        minute = int(self._clock() // 60)
        if not series or series[-1][0] != minute:
            series.append((minute, [0], deque(maxlen=MINUTE_SAMPLES_MAX)))
        _, count, samples = series[-1]
        count[0] += 1
        samples.append(seconds)

    def observe_siblings(self, count: int) -> None:
        """Record one GET that returned ``count`` versions; 0 means the key was not found."""
        if count < 0:
            raise ValueError(f"sibling count {count} must be >= 0")
        if count == 0:
            self.get_not_found.inc()
            return
        self.get_found.inc()
        # Every count of 4 or more shares the "4+" child, so the cache is keyed by min(count, 4).
        slot = count if count < 4 else 4
        child = self._sibling_children.get(slot)
        if child is None:
            child = self.get_siblings.labels(count=sibling_bucket(slot))
            self._sibling_children[slot] = child
        child.inc()

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a request as in flight for the duration of the ``with`` block."""
        self.in_flight_requests.inc()
        try:
            yield
        finally:
            self.in_flight_requests.dec()

    def set_connected_peers(self, count: int) -> None:
        self.connected_peers.set(count)

    def set_health(self, health: dict[str, Any], status: dict[str, Any]) -> None:
        """Publish the node's health (``/health``) and status (``/status.json``); each is
        replaced whole, so the HTTP thread never sees half of one."""
        self.health = health
        self.status = status

    def set_background(self, values: dict[str, float],
                       errors: dict[str, str | None] | None = None) -> None:
        """Publish the node's background-work figures (see the ``dynamokv_background`` help);
        ``errors``: the latest error of a kind of background work (``None``: it recovered),
        shown by ``dynamokv status``."""
        for what, value in values.items():
            self.background.labels(what=what).set(value)
        self._background.update(values)
        for what, error in (errors or {}).items():
            if error is None:
                self._background_errors.pop(what, None)
            else:
                self._background_errors[what] = error

    def background_status(self) -> dict[str, Any]:
        """``{"background": {what: value}, "background_errors": {what: error}}`` for
        ``status`` (the second only when some work failed last time)."""
        out: dict[str, Any] = {"background": dict(sorted(self._background.items()))}
        if self._background_errors:
            out["background_errors"] = dict(sorted(self._background_errors.items()))
        return out

    def count_connection(self, what: str, reason: str) -> None:
        """One connection ``what`` ("refused" or "closed") for ``reason``."""
        counter = self.connections_refused if what == "refused" else self.connections_closed
        counter.labels(reason=reason).inc()

    def count_oversize(self, direction: str) -> None:
        self.oversize_messages.labels(direction=direction).inc()

    def set_inbound_connections(self, count: int) -> None:
        self.inbound_connections.set(count)

    def add_bytes_in(self, n: int) -> None:
        self.bytes_in.inc(n)

    def add_bytes_out(self, n: int) -> None:
        self.bytes_out.inc(n)

    def count_error(self, code: str) -> None:
        child = self._error_children.get(code)
        if child is None:
            child = self.errors.labels(code=code)
            if len(self._error_children) < RESERVOIR_OPS_MAX:  # codes are a fixed set; a guard
                self._error_children[code] = child
        child.inc()

    def count_http_refusal(self, reason: str) -> None:
        """One request or connection the DynamoDB HTTP API refused or cut, and why."""
        self.http_refused.labels(reason=reason).inc()
        http = self._http_state()
        http["refused"][reason] = http["refused"].get(reason, 0) + 1

    def set_http_load(self, connections: int, buffered_bytes: int) -> None:
        self.http_connections.set(connections)
        self.http_buffered_bytes.set(buffered_bytes)
        http = self._http_state()
        http["connections"] = connections
        http["buffered_bytes"] = buffered_bytes

    def _http_state(self) -> dict[str, Any]:
        if self._http is None:
            self._http = {"connections": 0, "buffered_bytes": 0, "refused": {}}
        return self._http

    # -- reading ---------------------------------------------------------------------------

    def http_status(self) -> dict[str, Any]:
        """``{"http": {connections, buffered_bytes, refused: {reason: n}}}`` for ``status``,
        or nothing on a node without the HTTP API."""
        if self._http is None:
            return {}
        return {"http": {**self._http, "refused": dict(sorted(self._http["refused"].items()))}}

    def sources_status(self) -> dict[str, Any]:
        """What ``status_sources`` report now (e.g. ``index_upkeep``); their numbers are also
        published as the ``dynamokv_table_work`` gauges (called on the node's loop)."""
        out = {name: source() for name, source in sorted(self.status_sources.items())}
        for source, values in out.items():
            for what, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.table_work.labels(source=source, what=what).set(value)
        return out

    def percentiles(self, op: str) -> dict[str, float]:
        """p50, p99 and p999 in seconds over the op's most recent samples (0.0 when none)."""
        with self._lock:
            samples = sorted(self._reservoirs.get(op, ()))
        return {name: percentile(samples, p) for name, p in PERCENTILES}

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready summary for ``status``: per-op sample count and percentiles in ms."""
        with self._lock:
            ops = {op: sorted(r) for op, r in self._reservoirs.items()}
        latency = {
            op: {"samples": len(s)}
            | {name: round(percentile(s, p) * 1000, 3) for name, p in PERCENTILES}
            for op, s in sorted(ops.items())
        }
        return {
            "latency_ms": latency,
            "in_flight_requests": int(self._sample("dynamokv_in_flight_requests")),
            "connected_peers": int(self._sample("dynamokv_connected_peers")),
        }

    def latency_minutes(self) -> dict[str, Any]:
        """Per op, one entry per minute of the last ``MINUTES_KEPT`` (oldest first, the current
        minute last, minutes without requests included): requests, p50 and p99 in ms. A past
        minute no longer changes: its figures are worked out once."""
        now = int(self._clock() // 60)
        with self._lock:
            series = {op: [(m, c[0], None if (op, m) in self._minute_rows else list(s))
                           for m, c, s in d if m > now - MINUTES_KEPT]
                      for op, d in self._minutes.items()}
        out: dict[str, Any] = {}
        for op, minutes in sorted(series.items()):
            by_minute = {m: self._minute_row(op, m, count, samples, done=m < now)
                         for m, count, samples in minutes}
            out[op] = [{"minutes_ago": ago, **by_minute.get(now - ago, _QUIET_MINUTE)}
                       for ago in range(MINUTES_KEPT - 1, -1, -1)]
        for key in [k for k in list(self._minute_rows) if k[1] <= now - MINUTES_KEPT]:
            self._minute_rows.pop(key, None)  # (another scrape thread may have done it)
        return {"minutes": MINUTES_KEPT, "ops": out}

    def _minute_row(self, op: str, minute: int, count: int, samples: list[float] | None, *,
                    done: bool) -> dict[str, Any]:
        if samples is None:
            return self._minute_rows.get((op, minute), _QUIET_MINUTE)
        ordered = sorted(samples)
        row = {"requests": count, "p50": round(percentile(ordered, 0.5) * 1000, 3),
               "p99": round(percentile(ordered, 0.99) * 1000, 3)}
        if done:
            self._minute_rows[(op, minute)] = row
        return row

    def _sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.registry.get_sample_value(name, labels)
        return float(value) if value is not None else 0.0

    def render(self) -> bytes:
        """The Prometheus text exposition of this node's registry."""
        return bytes(generate_latest(self.registry))

    def start_http(self, host: str, port: int) -> MetricsHTTPServer:
        """Serve ``GET /metrics`` on ``host:port`` (port 0 picks a free one) in a daemon thread."""
        return MetricsHTTPServer(self, host, port)


class MetricsHTTPServer:
    """A tiny threaded HTTP server for ``/metrics``; ``stop()`` closes the socket and joins."""

    def __init__(self, metrics: NodeMetrics, host: str, port: int) -> None:
        handler = _make_handler(metrics)
        server_class = _IPv6HTTPServer if ":" in host else ThreadingHTTPServer
        self._server = server_class((host, port), handler)
        self._server.daemon_threads = True
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name=f"metrics-http-{self.port}",
            daemon=True,  # a stuck scrape must never keep a stopping node alive
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _IPv6HTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _make_handler(metrics: NodeMetrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            from dynamokv.runtime.node_pages import page

            extra = page(self.path.split("?", 1)[0], metrics)
            if extra is not None:
                self._send(*extra)
                return
            if self.path.split("?", 1)[0] != "/metrics":
                self._send(404, b"not found: metrics are served at /metrics\n", "text/plain")
                return
            self._send(200, metrics.render(), CONTENT_TYPE_LATEST)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Scrapes arrive every few seconds; logging each would drown the node's log.
            pass

    return Handler


__all__ = [
    "LATENCY_BUCKETS_S",
    "MetricsHTTPServer",
    "NodeMetrics",
    "percentile",
    "sibling_bucket",
]
