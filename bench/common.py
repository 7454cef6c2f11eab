"""Shared helpers of the dynamokv benchmarks: a throwaway local cluster and latency summaries.

``LocalCluster`` starts a cluster of real node processes with
``python -m dynamokv cluster up --detach`` in a temporary directory on free ports, and always
stops it again (``cluster down``, then SIGKILL by PID for anything that survived).
``summarize`` turns client-side latencies (seconds) into percentiles in milliseconds;
``free_ports`` picks ports for benchmarks that start their nodes themselves.

Only 127.0.0.1 is ever used. Benchmarks import this module as ``common`` because Python puts
the script's own directory (``bench/``) first on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
# Ports are picked at random above the usual defaults (7001, 8001, 9101) and below the
# ephemeral range most kernels use for outgoing connections, so a pick rarely collides.
PORT_LOW = 20000
PORT_HIGH = 32000
PORT_ATTEMPTS = 200
START_ATTEMPTS = 3  # another process may grab a port between our check and the node's bind
DOWN_TIMEOUT_S = 40.0  # `cluster down` waits 10 s per node set, then SIGKILLs


class ClusterStartError(RuntimeError):
    """The benchmark's own cluster did not start; the message holds `cluster up`'s output."""


def free_port_block(count: int, rng: random.Random) -> int:
    """The first of ``count`` consecutive ports on 127.0.0.1 that are free right now."""
    for _ in range(PORT_ATTEMPTS):
        base = rng.randrange(PORT_LOW, PORT_HIGH - count)
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"found no {count} consecutive free ports in {PORT_LOW}..{PORT_HIGH}")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """``count`` ports on 127.0.0.1 the kernel found free just now (bound at once, then
    released, so they are distinct)."""
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind((HOST, 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages, to show how busy the machine was during a run."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class CpuMeter:
    """CPU time used by some processes from now on, from /proc/PID/stat (Linux only)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = time.perf_counter()
        self.before = [_cpu_seconds(pid) for pid in pids]

    def busy(self) -> list[float | None]:
        """Per process: CPU seconds used / wall seconds elapsed (1.0 = one core fully busy)."""
        wall = time.perf_counter() - self.start
        out: list[float | None] = []
        for pid, before in zip(self.pids, self.before, strict=True):
            after = _cpu_seconds(pid)
            if before is None or after is None or wall <= 0:
                out.append(None)
            else:
                out.append(round((after - before) / wall, 3))
        return out


def _cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # utime and stime are fields 14 and 15; split after the parenthesised command name,
    # which may contain spaces.
    fields = stat.rpartition(")")[2].split()
    try:
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (IndexError, ValueError):
        return None


class LocalCluster:
    """A local cluster of ``nodes`` dynamokv processes that lives as long as this object.

    Use it as a context manager: the cluster is stopped on normal exit, on errors and on
    Ctrl-C. Its data lives in a temporary directory that is removed afterwards.
    """

    def __init__(self, *, nodes: int = 3, n: int = 3, r: int = 2, w: int = 2,
                 engine: str = "lmdb", start_timeout_s: float = 60.0,
                 log: Any = None) -> None:
        self.nodes = nodes
        self.quorum = (n, r, w)
        self.engine = engine
        self.start_timeout_s = start_timeout_s
        self.log = log or (lambda text: print(text, file=sys.stderr))
        self.data_dir: Path | None = None
        self.addresses: list[str] = []
        self.pids: list[int] = []

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ---- start ---------------------------------------------------------------------------------
    def start(self) -> list[str]:
        """Start the nodes and return their addresses; on any failure stop what was started."""
        # Resolved, because the nodes' argv (matched by _sweep) holds the resolved path.
        self.data_dir = Path(tempfile.mkdtemp(prefix="dynamokv-bench-")).resolve()
        rng = random.Random()  # unseeded on purpose: parallel runs should pick different ports
        try:
            for attempt in range(1, START_ATTEMPTS + 1):
                base = free_port_block(3 * self.nodes, rng)
                if self._cluster_up(base):
                    break
                self._sweep()
                output = self._up_output()
                # Only a port taken between our check and the bind is worth another try; a
                # node that crashes at start would crash again (the log tail is in the output).
                if "in use" not in output or attempt == START_ATTEMPTS:
                    raise ClusterStartError(
                        f"`dynamokv cluster up` failed (attempt {attempt}); its output:\n{output}"
                    )
                self.log(f"cluster up: a port was taken (attempt {attempt}); trying others")
            manifest = json.loads((self.data_dir / "cluster" / "cluster.json").read_text())
            self.addresses = [str(node["address"]) for node in manifest["nodes"]]
            self.pids = [int(node["pid"]) for node in manifest["nodes"]]
        except BaseException:
            self.stop()
            raise
        return self.addresses

    def _cluster_up(self, base: int) -> bool:
        assert self.data_dir is not None
        n, r, w = self.quorum
        argv = [
            sys.executable, "-m", "dynamokv", "cluster", "up",
            "--nodes", str(self.nodes), "--data-dir", str(self.data_dir / "cluster"),
            "--base-port", str(base),
            "--http-base-port", str(base + self.nodes),
            "--metrics-base-port", str(base + 2 * self.nodes),
            "--engine", self.engine, "--n", str(n), "--r", str(r), "--w", str(w),
            "--start-timeout", str(self.start_timeout_s), "--detach",
        ]
        out_path = self.data_dir / "cluster-up.out"
        with open(out_path, "wb") as out:
            # Its own session: a Ctrl-C in the terminal must reach only us, so that we decide
            # how the half-started cluster is stopped (below) instead of racing it.
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=self.start_timeout_s + 15)
        except BaseException:
            # Interrupted or stuck: SIGINT makes `cluster up` stop the nodes it started.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            raise
        return code == 0 and (self.data_dir / "cluster" / "cluster.json").exists()

    def _up_output(self) -> str:
        assert self.data_dir is not None
        try:
            return (self.data_dir / "cluster-up.out").read_text(errors="replace")[-4000:]
        except OSError:
            return "(no output)"

    # ---- stop ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every node this object started and remove the data; safe to call twice."""
        if self.data_dir is None:
            return
        cluster_dir = self.data_dir / "cluster"
        if (cluster_dir / "cluster.json").exists():
            try:
                subprocess.run(
                    [sys.executable, "-m", "dynamokv", "cluster", "down",
                     "--data-dir", str(cluster_dir)],
                    stdin=subprocess.DEVNULL, capture_output=True, timeout=DOWN_TIMEOUT_S,
                    check=False, start_new_session=True,
                )
            except subprocess.TimeoutExpired:
                self.log("`dynamokv cluster down` timed out; killing the nodes by PID")
        self._sweep()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir = None

    def _sweep(self) -> None:
        """SIGKILL, by PID, any node process still running on our data directory.

        The temporary directory is unique, so a process naming it in its argv is one of ours;
        this also finds nodes of a `cluster up` that died before writing its manifest.
        """
        assert self.data_dir is not None
        marker = str(self.data_dir / "cluster")
        pids = set(self.pids) | set(_pids_with_arg_prefix(marker))
        for pid in sorted(pids):
            if _runs_node_in(pid, marker):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_runs_node_in(p, marker) for p in pids):
            time.sleep(0.05)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _runs_node_in(pid: int, marker: str) -> bool:
    argv = _cmdline(pid)
    return "node" in argv and "start" in argv and any(a.startswith(marker) for a in argv)


def _pids_with_arg_prefix(marker: str) -> list[int]:
    proc = Path("/proc")
    if not proc.is_dir():
        return []  # no /proc (macOS): rely on the manifest's PIDs
    found = []
    for entry in proc.iterdir():
        if entry.name.isdigit() and _runs_node_in(int(entry.name), marker):
            found.append(int(entry.name))
    return found


# ---- latency ---------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (no interpolation, as HdrHistogram)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(latencies_s: list[float]) -> dict[str, Any]:
    """Count, mean, p50, p99, p99.9 and max of latencies given in seconds, in milliseconds."""
    values = sorted(latencies_s)
    if not values:
        return {"count": 0, "mean_ms": None, "p50_ms": None, "p99_ms": None,
                "p999_ms": None, "max_ms": None}

    def ms(x: float) -> float:
        return round(x * 1000.0, 3)

    return {
        "count": len(values),
        "mean_ms": ms(sum(values) / len(values)),
        "p50_ms": ms(percentile(values, 50)),
        "p99_ms": ms(percentile(values, 99)),
        "p999_ms": ms(percentile(values, 99.9)),
        "max_ms": ms(values[-1]),
    }


def error_code(exc: BaseException) -> str:
    """A short, stable name for an error: dynamokv's wire code, else the exception's class."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) else type(exc).__name__
