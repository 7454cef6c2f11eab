"""``dynamokv cluster up|down``: a local cluster of real node processes, for trying dynamokv out.

Owns: planning the nodes of a local cluster (ports, ids, data dirs, argv), starting them as
``python -m dynamokv node start`` processes, waiting until they answer, the ``cluster.json``
manifest, and stopping nodes by PID (SIGTERM, a grace period, then SIGKILL).
May import: stdlib, ``rich``, ``dynamokv.errors``, ``dynamokv.runtime.config``,
``dynamokv.cli.render``; ``dynamokv.client`` lazily, through the probe the caller passes in.

Nodes are started in their own session so that Ctrl-C in the terminal reaches only this
supervisor, which then stops them in order; it also lets ``--detach`` clusters outlive the shell.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dynamokv.cli import render
from dynamokv.errors import ConfigError, DynamoKVError

HOST = "127.0.0.1"
MANIFEST = "cluster.json"
STOP_GRACE_S = 10.0
LOG_TAIL_LINES = 15

# Returns None when the node at the address answered ``status()``, else why it did not.
Probe = Callable[[str], "str | None"]
# Returns the node ids the ring seen through the address lists, or None if it cannot tell.
RingProbe = Callable[[str], "list[str] | None"]


class ClusterError(DynamoKVError):
    """A local cluster could not be started or stopped; the message says where to look."""

    code = "ClusterError"


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One planned node: everything needed to start it, and to start it again."""

    node_id: str
    address: str
    http_address: str | None
    metrics_address: str | None
    data_dir: Path
    log_path: Path
    argv: tuple[str, ...]

    def manifest_entry(self, pid: int) -> dict[str, Any]:
        return {
            "id": self.node_id,
            "pid": pid,
            "address": self.address,
            "http_address": self.http_address,
            "metrics_address": self.metrics_address,
            "data_dir": str(self.data_dir),
            "log": str(self.log_path),
            "argv": list(self.argv),
        }


def plan(
    *,
    nodes: int,
    data_dir: Path,
    base_port: int = 7001,
    engine: str = "lmdb",
    sync: str = "os",
    http_base_port: int = 8001,
    metrics_base_port: int = 9101,
    ring_size: int = 64,
    quorum: tuple[int | None, int | None, int | None] = (None, None, None),
    python: str | None = None,
    cluster_name: str | None = None,
) -> list[NodeSpec]:
    """The nodes of a local cluster. A base port of 0 turns that listener off (http, metrics).

    Node ``i`` (1-based) is ``n{i}`` on port ``base + i - 1`` with data in ``DIR/n{i}``; every
    node after the first joins through ``n1``, which starts the ring alone.
    """
    if not 1 <= nodes <= 64:
        raise ConfigError(f"--nodes {nodes}: a local cluster has between 1 and 64 nodes")
    data_dir = data_dir.resolve()  # the argv in cluster.json must work from any directory
    ranges: dict[str, range] = {"--base-port": _port_range("--base-port", base_port, nodes)}
    if http_base_port:
        ranges["--http-base-port"] = _port_range("--http-base-port", http_base_port, nodes)
    if metrics_base_port:
        ranges["--metrics-base-port"] = _port_range(
            "--metrics-base-port", metrics_base_port, nodes
        )
    names = list(ranges)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if set(ranges[a]) & set(ranges[b]):
                raise ConfigError(
                    f"{a} {ranges[a].start} and {b} {ranges[b].start} overlap for {nodes} "
                    f"nodes; move one of them"
                )
    n, r, w = quorum
    exe = python or sys.executable
    seed = f"{HOST}:{base_port}"
    specs: list[NodeSpec] = []
    for i in range(1, nodes + 1):
        node_id = f"n{i}"
        address = f"{HOST}:{base_port + i - 1}"
        http = f"{HOST}:{http_base_port + i - 1}" if http_base_port else None
        metrics = f"{HOST}:{metrics_base_port + i - 1}" if metrics_base_port else None
        node_dir = data_dir / node_id
        argv = [exe, "-m", "dynamokv", "node", "start", "--id", node_id, "--listen", address,
                "--data-dir", str(node_dir), "--engine", engine, "--sync", sync,
                "--ring-size", str(ring_size)]
        if i > 1:
            argv += ["--seeds", seed]
        if http:
            argv += ["--http", http]
        if metrics:
            argv += ["--metrics", metrics]
        for flag, value in (("--n", n), ("--r", r), ("--w", w)):
            if value is not None:
                argv += [flag, str(value)]
        if cluster_name is not None:
            argv += ["--cluster-name", cluster_name]
        specs.append(
            NodeSpec(node_id, address, http, metrics, node_dir, node_dir / "node.log", tuple(argv))
        )
    return specs


def _port_range(flag: str, base: int, nodes: int) -> range:
    if not 1024 <= base <= 65535 - nodes + 1:
        raise ConfigError(
            f"{flag} {base}: ports {base}..{base + nodes - 1} must lie in 1024..65535"
        )
    return range(base, base + nodes)


# -- processes -----------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment of a node process: ours, unbuffered, able to import this dynamokv."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # so node.log shows a crash's last words
    # Running from a source tree (PYTHONPATH=src, possibly relative to a cwd the child may not
    # share): put this package's root first so the child imports the same code. An installed
    # package is found by the interpreter already; adding site-packages to PYTHONPATH would
    # reorder it before the standard library.
    root = Path(__file__).resolve().parents[2]
    if root.name not in ("site-packages", "dist-packages"):
        parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([str(root), *[p for p in parts if p != str(root)]])
    return env


def start_node(spec: NodeSpec, env: dict[str, str]) -> subprocess.Popen[bytes]:
    spec.data_dir.mkdir(parents=True, exist_ok=True)
    with open(spec.log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"=== {stamp} starting {spec.node_id}: {' '.join(spec.argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def describe_exit(code: int) -> str:
    """``Popen.returncode`` in words: a negative code means killed by that signal."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(
    spec: NodeSpec,
    proc: subprocess.Popen[bytes],
    probe: Probe,
    deadline: float,
) -> None:
    """Return once the node answers; raise ``ClusterError`` naming its log if it cannot."""
    last = "no answer yet"
    while True:
        code = proc.poll()
        if code is not None:
            raise ClusterError(
                f"node {spec.node_id} {describe_exit(code)} before answering; "
                f"see {spec.log_path}",
                {"node": spec.node_id, "log": str(spec.log_path), "tail": log_tail(spec.log_path)},
            )
        why = probe(spec.address)
        if why is None:
            return
        last = why
        if time.monotonic() >= deadline:
            raise ClusterError(
                f"node {spec.node_id} did not answer at {spec.address} in time ({last}); "
                f"see {spec.log_path}",
                {"node": spec.node_id, "log": str(spec.log_path), "tail": log_tail(spec.log_path)},
            )
        time.sleep(0.1)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process; reaps it if it is our dead child."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:
        pass  # not our child: someone else reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state field follows the parenthesised command name, which may itself hold spaces.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def pid_cmdline(pid: int) -> list[str] | None:
    """The argv of ``pid``, from /proc where there is one, else from ``ps``."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    except FileNotFoundError:
        if Path("/proc/self/cmdline").exists():
            return None  # /proc works, so the process is gone
    except OSError:
        return None
    try:
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)],
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.split() if out else None


def runs_dynamokv(pid: int, words: Sequence[str]) -> bool:
    """Whether ``pid`` still runs a dynamokv command containing ``words`` in order.

    PIDs are reused: a manifest left behind after a reboot may name an unrelated process, which
    must never be signalled.
    """
    argv = pid_cmdline(pid)
    if not argv or not any("dynamokv" in a for a in argv):
        return False
    it = iter(argv)
    return all(any(a == w for a in it) for w in words)


def stop_pids(pids: Sequence[int], grace_s: float = STOP_GRACE_S) -> list[int]:
    """SIGTERM every pid, wait up to ``grace_s`` for all, SIGKILL the rest; returns those killed."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    alive = [p for p in pids if pid_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if pid_alive(p)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + 5
    while any(pid_alive(p) for p in alive) and time.monotonic() < end:
        time.sleep(0.05)
    return alive


# -- manifest ------------------------------------------------------------------------------


def write_manifest(
    data_dir: Path, entries: list[dict[str, Any]], *, supervisor_pid: int | None
) -> Path:
    path = data_dir / MANIFEST
    doc = {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "supervisor_pid": supervisor_pid,  # None for --detach: nobody watches the nodes
        "nodes": entries,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a manifest
    return path


def read_manifest(data_dir: Path) -> dict[str, Any]:
    path = data_dir / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no {MANIFEST} in {data_dir}: was a cluster started there with "
            f"`dynamokv cluster up --data-dir {data_dir}`?"
        ) from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
        raise ConfigError(f"{path} is not a dynamokv cluster manifest")
    return doc


def running_nodes(doc: dict[str, Any]) -> list[tuple[str, int]]:
    """(id, pid) of the manifest's nodes that still run their dynamokv node command."""
    out = []
    for node in doc["nodes"]:
        pid, node_id = node.get("pid"), str(node.get("id", ""))
        if isinstance(pid, int) and runs_dynamokv(pid, ["node", "start", "--id", node_id]):
            out.append((node_id, pid))
    return out


def port_in_use(address: str) -> bool:
    """Whether something listens on (or holds) ``address``, as the node's bind would see it.

    SO_REUSEADDR as the node's own listener sets it: connections of a cluster stopped a moment
    ago linger in TIME_WAIT for a minute, and they must not make a free port look taken.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError:
            return True
    return False


# -- up / down -----------------------------------------------------------------------------


@dataclass
class _Running:
    spec: NodeSpec
    proc: subprocess.Popen[bytes]
    reported_exit: bool = False


def up(
    specs: list[NodeSpec],
    data_dir: Path,
    *,
    probe: Probe,
    ring_probe: RingProbe | None = None,
    detach: bool,
    start_timeout_s: float = 30.0,
    out: IO[str] | None = None,
) -> int:
    """Start ``specs``, wait until they answer, write the manifest, then supervise them.

    With ``detach`` return at once instead, leaving the nodes running.
    """
    console = render.make_console(out)
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    _refuse_if_running(data_dir)
    busy = [
        a for s in specs for a in (s.address, s.http_address, s.metrics_address)
        if a and port_in_use(a)
    ]
    if busy:
        raise ConfigError(
            f"port(s) already in use: {', '.join(busy)}; pick others with --base-port, "
            f"--http-base-port and --metrics-base-port, or stop what holds them"
        )
    env = child_env()
    running: list[_Running] = []
    try:
        # n1 first and alone: the others join through it, so it must be listening.
        deadline = time.monotonic() + start_timeout_s
        first = _Running(specs[0], start_node(specs[0], env))
        running.append(first)
        wait_ready(first.spec, first.proc, probe, deadline)
        running.extend(_Running(s, start_node(s, env)) for s in specs[1:])
        for r in running[1:]:
            wait_ready(r.spec, r.proc, probe, deadline)
    except BaseException:
        # Interrupted or failed half-way: leave no orphan nodes behind.
        stop_pids([r.proc.pid for r in running])
        raise
    if ring_probe is not None:
        _wait_ring(specs, ring_probe, deadline, console)

    entries = [r.spec.manifest_entry(r.proc.pid) for r in running]
    manifest = write_manifest(data_dir, entries, supervisor_pid=None if detach else os.getpid())
    console.print(render.nodes_table(entries, title=f"dynamokv cluster of {len(specs)} node(s)"))
    first_addr = specs[0].address
    console.print(
        f"manifest: {manifest}\n"
        f"try it:\n"
        f"  dynamokv put --node {first_addr} greeting hello\n"
        f"  dynamokv get --node {first_addr} greeting\n"
        f"  dynamokv ring --node {first_addr}",
        highlight=False, markup=False,
    )
    if detach:
        console.print(
            f"running in the background; stop with: dynamokv cluster down --data-dir {data_dir}",
            highlight=False, markup=False,
        )
        return 0
    console.print("press Ctrl-C to stop every node", markup=False)
    return _supervise(running, console)


def _refuse_if_running(data_dir: Path) -> None:
    if not (data_dir / MANIFEST).exists():
        return
    try:
        live = running_nodes(read_manifest(data_dir))
    except ConfigError:
        return  # an unreadable old manifest is overwritten once the new cluster is up
    if live:
        pids = ", ".join(f"{i} pid {p}" for i, p in live)
        raise ConfigError(
            f"a cluster from {data_dir} is still running ({pids}); stop it with "
            f"`dynamokv cluster down --data-dir {data_dir}`"
        )


def _wait_ring(
    specs: list[NodeSpec], ring_probe: RingProbe, deadline: float, console: Any
) -> None:
    """Best effort: wait until n1's ring lists every node, so "try it" works at once."""
    want = {s.node_id for s in specs}
    seen: list[str] | None = None
    while time.monotonic() < deadline:
        seen = ring_probe(specs[0].address)
        if seen is None or want <= set(seen):
            return
        time.sleep(0.2)
    console.print(
        f"warning: the ring lists {len(seen or [])} of {len(want)} nodes so far; "
        f"gossip should finish shortly",
        style="yellow", markup=False,
    )


def _supervise(running: list[_Running], console: Any) -> int:
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    code = 0
    try:
        while not stop.wait(0.5):
            for r in running:
                exit_code = r.proc.poll()
                if exit_code is not None and not r.reported_exit:
                    r.reported_exit = True
                    console.print(
                        f"node {r.spec.node_id} (pid {r.proc.pid}) {describe_exit(exit_code)}; "
                        f"the others keep running. See {r.spec.log_path}",
                        style="red", markup=False,
                    )
            if all(r.reported_exit for r in running):
                console.print("every node has exited", style="red", markup=False)
                code = 1
                break
    finally:
        alive = [r.proc.pid for r in running if r.proc.poll() is None]
        if alive:
            console.print(f"stopping {len(alive)} node(s)...", markup=False)
        killed = stop_pids(alive)
        for r in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                r.proc.wait(timeout=1)
        if killed:
            console.print(
                f"killed {len(killed)} node(s) that ignored SIGTERM for {STOP_GRACE_S:.0f} s",
                style="yellow", markup=False,
            )
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("cluster stopped", markup=False)
    return code


def down(data_dir: Path, *, out: IO[str] | None = None) -> int:
    """Stop the cluster described by ``DIR/cluster.json``, touching only dynamokv processes."""
    console = render.make_console(out)
    data_dir = data_dir.resolve()
    doc = read_manifest(data_dir)
    supervisor = doc.get("supervisor_pid")
    pids: list[int] = []
    if isinstance(supervisor, int) and runs_dynamokv(supervisor, ["cluster", "up"]):
        pids.append(supervisor)  # it would otherwise report each node's exit as a failure
    live = running_nodes(doc)
    for node in doc["nodes"]:
        if (str(node.get("id")), node.get("pid")) not in live:
            console.print(
                f"{node.get('id')}: pid {node.get('pid')} is not running dynamokv; skipped",
                markup=False,
            )
    pids += [pid for _, pid in live]
    if not pids:
        console.print("nothing to stop", markup=False)
        return 0
    killed = stop_pids(pids)
    for node_id, pid in live:
        how = "killed" if pid in killed else "stopped"
        console.print(f"{node_id}: pid {pid} {how}", markup=False)
    return 0


__all__ = [
    "ClusterError",
    "NodeSpec",
    "child_env",
    "down",
    "plan",
    "read_manifest",
    "runs_dynamokv",
    "stop_pids",
    "up",
    "write_manifest",
]
