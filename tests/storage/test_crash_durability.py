"""A real crash: a child process writes, is killed with SIGKILL part-way, and what it had
acknowledged must be there when the data directory is opened again.

This is the guarantee of ``sync_mode="os"``: a commit is in the OS page cache when it returns, so
it survives the death of the process (not of the machine). The child writes keys in order, some
as single puts and some as 3-key batches, and prints the number of keys written after each
commit returns. After the kill, the keys present must be exactly the first ``m`` of the
sequence, with ``m`` at least the last acknowledged count (a commit may land after its
acknowledgement was printed but before it was read) and never splitting a batch.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dynamokv.storage.registry import open_engine

N = 2000
BATCH = 3
DEADLINE_S = 60.0

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

CHILD = """
import sys, time
from pathlib import Path
from dynamokv.storage.registry import open_engine

kind, data_dir, n, batch = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
engine = open_engine(kind, data_dir, sync_mode="os")

def key(i):
    return b"key%06d" % i

def value(i):
    return (b"%08d" % i) * 128  # 1 KiB

i = 0
unit = 0
while i < n:
    if unit % 4 == 3 and i + batch <= n:
        engine.write_batch([(key(j), value(j)) for j in range(i, i + batch)])
        i += batch
    else:
        engine.put(key(i), value(i))
        i += 1
    unit += 1
    print(i, flush=True)
    # Pace the writes so the parent's kill lands part-way through, not after the end.
    time.sleep(0.0005)
print("done", flush=True)
time.sleep(DEADLINE)  # never close: the parent kills us either way
""".replace("DEADLINE", repr(DEADLINE_S))


def _unit_ends(n: int, batch: int) -> set[int]:
    """The key counts at which a commit of the child ends (a batch is never split)."""
    ends = {0}
    i = unit = 0
    while i < n:
        i += batch if unit % 4 == 3 and i + batch <= n else 1
        unit += 1
        ends.add(i)
    return ends


def _key(i: int) -> bytes:
    return b"key%06d" % i


def _value(i: int) -> bytes:
    return (b"%08d" % i) * 128


def _child_env() -> dict[str, str]:
    src = Path(__file__).resolve().parents[2] / "src"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    return env


def _run_and_kill(kind: str, data_dir: Path, kill_after: int) -> tuple[int, bool, int]:
    """Run the child until it acknowledges ``kill_after`` keys, SIGKILL it.

    Returns (keys acknowledged, whether the child had finished, child's return code)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, str(data_dir), str(N), str(BATCH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    acked, finished, buffer = 0, False, b""
    deadline = time.monotonic() + DEADLINE_S
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while acked < kill_after and not finished:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"child acknowledged only {acked} keys in {DEADLINE_S}s")
                if not sel.select(timeout=left):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:  # the child died on its own
                    err = proc.stderr.read().decode(errors="replace")
                    pytest.fail(f"child exited early (acked {acked}): {err}")
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line == b"done":
                        finished = True
                    elif line:
                        acked = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=DEADLINE_S)
        # Acknowledgements already in the pipe when the kill landed count too.
        for line in (buffer + proc.stdout.read()).split(b"\n"):
            if line == b"done":
                finished = True
            elif line.strip():
                acked = max(acked, int(line))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=DEADLINE_S)
        proc.stdout.close()
        proc.stderr.close()
    return acked, finished, proc.returncode


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kill_after", [1, 600])
@pytest.mark.parametrize("kind", ["lmdb", "sqlite"])
def test_acknowledged_writes_survive_sigkill(kind: str, kill_after: int, tmp_path: Path) -> None:
    acked, finished, returncode = _run_and_kill(kind, tmp_path, kill_after)
    assert returncode == -signal.SIGKILL, "the child must die by SIGKILL, not close cleanly"
    assert acked >= kill_after
    engine = open_engine(kind, tmp_path, sync_mode="os")
    try:
        present = [k for k, _ in engine.scan()]
        m = len(present)
        assert present == [_key(i) for i in range(m)], "keys must be a prefix of the sequence"
        assert m >= acked, f"{acked} keys were acknowledged but only {m} survived the kill"
        assert m in _unit_ends(N, BATCH), f"{m} keys present: a batch was applied in part"
        for i in range(m):
            assert engine.get(_key(i)) == _value(i), f"key {i} torn or lost"
        # The reopened engine takes writes again.
        engine.put(b"after", b"crash")
        assert engine.get(b"after") == b"crash"
    finally:
        engine.close()
    if not finished:
        assert acked < N  # consistent bookkeeping: killed part-way
