"""Identifier types shared by the whole core.

Owns: ``NodeId``, ``PartitionId``, ``RequestId``, ``ClientRef`` and ``Actor``.
May import: stdlib typing only.

- ``NodeId`` names a node process (``"n1"``); stable across restarts.
- ``Actor`` names the writer in version vectors: ``"<node_id>.<incarnation>"``. The incarnation
  changes when a node's data directory is created afresh, so a node that lost its data can never
  re-issue a counter it issued before (Riak's KV679 data loss).
- ``ClientRef`` is an opaque integer the driver uses to find the client connection to answer.
"""

from __future__ import annotations

from typing import NewType

NodeId = NewType("NodeId", str)
Actor = NewType("Actor", str)
PartitionId = NewType("PartitionId", int)
RequestId = NewType("RequestId", int)
ClientRef = NewType("ClientRef", int)


def actor_for(node_id: str, incarnation: str) -> Actor:
    """The version-vector actor of a node in one incarnation of its data directory."""
    return Actor(f"{node_id}.{incarnation}")
