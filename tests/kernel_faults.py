"""Kernel-level network faults for real-process tests: iptables rules between loopback hosts.

Nodes on distinct loopback addresses (``LocalCluster(distinct_hosts=True)``) connect to each
other from their own address, so a rule dropping packets between two of those addresses cuts
that link while test clients on 127.0.0.1 still reach every node. Every rule added is removed
when the block exits, also after an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def iptables_missing() -> str | None:
    """Why iptables rules cannot be used here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "needs root to add iptables rules on loopback"
    if shutil.which("iptables") is None:
        return "needs the iptables command (apt-get install iptables)"
    probe = subprocess.run(["iptables", "-L", "INPUT", "-n"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        return f"iptables does not work here: {probe.stderr.decode(errors='replace')[:200]}"
    return None


@contextmanager
def dropped_between(side_a: Sequence[str], side_b: Sequence[str]) -> Iterator[None]:
    """Drop every packet between each host of ``side_a`` and each of ``side_b``, both ways."""
    rules = [rule for a in side_a for b in side_b
             for rule in (["-s", a, "-d", b, "-j", "DROP"], ["-s", b, "-d", a, "-j", "DROP"])]
    added: list[list[str]] = []
    try:
        for rule in rules:
            subprocess.run(["iptables", "-I", "INPUT", *rule], check=True, timeout=10)
            added.append(rule)
        yield
    finally:
        for rule in added:
            subprocess.run(["iptables", "-D", "INPUT", *rule], check=False, timeout=10)
