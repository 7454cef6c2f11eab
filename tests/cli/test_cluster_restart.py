"""A new user's first minute: `cluster up`, Ctrl-C, `cluster up` again at once on the same
ports must work (connections of the stopped cluster linger in TIME_WAIT for a minute)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.cli.test_cluster_up import SRC, free_run, run

pytestmark = pytest.mark.cluster


def test_up_again_right_after_ctrl_c(tmp_path: Path) -> None:
    base = free_run(2)
    metrics = free_run(2, avoid=frozenset(range(base, base + 2)))
    args = ["cluster", "up", "--nodes", "2", "--data-dir", str(tmp_path / "data"),
            "--base-port", str(base), "--metrics-base-port", str(metrics),
            "--http-base-port", "0", "--engine", "memory", "--start-timeout", "60"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    first = subprocess.Popen([sys.executable, "-m", "dynamokv", *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    manifest = tmp_path / "data" / "cluster.json"
    try:
        deadline = time.monotonic() + 90
        while not manifest.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert manifest.exists(), first.stdout.read() if first.stdout else ""
        # Traffic through every listener, so the stop leaves connections behind.
        for i in range(2):
            assert run("put", f"k{i}", "v", "--node", f"127.0.0.1:{base + i}").returncode == 0
            run("status", "--node", f"127.0.0.1:{base + i}")
        first.send_signal(signal.SIGINT)  # Ctrl-C
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()
    again = run(*args, "--detach", timeout=120)
    try:
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already in use" not in again.stderr
    finally:
        doc = json.loads(manifest.read_text())
        run("cluster", "down", "--data-dir", str(tmp_path / "data"))
        for node in doc["nodes"]:
            try:
                os.kill(int(node["pid"]), signal.SIGKILL)
            except ProcessLookupError:
                pass
