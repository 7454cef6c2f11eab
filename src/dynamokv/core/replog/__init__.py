"""Replicated logs for DynamoDB tables: one Raft group per ring partition, with a leased leader.

Modules, each owning one thing:

- ``log``: ``RaftLog``, a group's entries (in memory, persisted through ``LogStore``), its
  compaction base and its configuration;
- ``lease``: ``Timings`` and the leader's lease arithmetic (monotonic time, drift bound);
- ``raft``: ``RaftGroup``, election (pre-vote, leader stickiness, transfer), replication and
  commitment for one group, sans-IO;
- ``membership``: the next single-server configuration change towards a ring's preference list;
- ``snapshot``: catching a new or lagging member up from the partition's applied state;
- ``groups``: ``PartitionLogs``, every group of one node: routing, applying committed entries to
  the store, proposals and reads for the table layer, the applied-change feed.

May import: ``dynamokv.core.*`` and ``dynamokv.errors``; nothing outside the core.
See ``docs/replicated-logs.md`` for the design and its guarantees.
"""
