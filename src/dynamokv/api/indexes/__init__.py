"""Global secondary indexes: their stored entries, kept up to date in the background and
checked against the base table when read.

Owns nothing itself: the modules below own the parts, each importing only those above it
(no cycles; the lower ones are handed what they need from the higher ones as callables).

* :mod:`~dynamokv.api.indexes.layout` -- the entries' keys and values, index statuses;
* :mod:`~dynamokv.api.indexes.retry` -- the retry pacing the others share;
* :mod:`~dynamokv.api.indexes.drop` -- dropping the buckets of deleted indexes;
* :mod:`~dynamokv.api.indexes.upkeep` -- the per-node state and in-memory upkeep queue
  (:class:`~dynamokv.api.indexes.upkeep.IndexWork`), used by handles without an outbox;
* :mod:`~dynamokv.api.indexes.drain` -- the log-driven upkeep from the partitions' index outbox;
* :mod:`~dynamokv.api.indexes.backfill` -- building an index created by UpdateTable;
* :mod:`~dynamokv.api.indexes.node` -- one node's upkeep wired together (``work``,
  ``start_drain``), the upkeep after a base write (``maintain``) and the check of entries a
  read returns (``verify``).

May import: nothing (the package's modules import from one another, never from here).
"""
