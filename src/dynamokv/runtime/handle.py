"""ClusterHandle: the DynamoDB API's ``NodeHandle`` over this node's core.

Owns: binding ``dynamokv.api.request_handle.RequestHandle`` (which turns the API's calls into
local requests and their replies into values or exceptions) to this process's ``NodeRunner``.
May import: ``dynamokv.api``, ``dynamokv.core``, ``dynamokv.runtime.runner``.
"""

from __future__ import annotations

from typing import Any

from dynamokv.api.request_handle import RequestHandle
from dynamokv.core.hashing import compose_key
from dynamokv.runtime.runner import NodeRunner


class _RunnerRequester:
    """A ``Requester`` over a ``NodeRunner``: its futures and its core's partition count."""

    def __init__(self, runner: NodeRunner) -> None:
        self.runner = runner

    @property
    def q(self) -> int:
        ring = self.runner.core.ring
        return ring.q if ring is not None else self.runner.core.settings.q

    def local_request(self, request: object) -> Any:
        return self.runner.local_request(request)


class ClusterHandle(RequestHandle):
    def __init__(self, runner: NodeRunner) -> None:
        super().__init__(_RunnerRequester(runner))
        self.runner = runner

    def leading_partitions(self) -> list[int]:
        """Partitions whose log this node leads (where TTL sweeps and counts are cheap)."""
        logs = self.runner.core.logs
        return sorted(g for g, raft in logs.groups.items() if raft.is_leader())

    def admit_background(self) -> bool:
        """Whether one more batch of background table work (a page of the table sweep) may
        start now, by this node's admission control (slowed while foreground p99 is high)."""
        return self.runner.core.admission.admit(self.runner.now_ms()) > 0


__all__ = ["ClusterHandle", "compose_key"]
