"""Dropping the buckets of deleted global indexes (or tables), in the background.

Owns: :func:`drop_buckets`, ``DROP_ATTEMPTS`` and the drop counters of a handle
(:func:`drop_status`, shown by ``dynamokv status`` and the node's metrics as ``table_drops``).
May import: stdlib, :mod:`dynamokv.api.operations.common`, :mod:`dynamokv.api.indexes.retry`.

A drop is retried with pauses growing from 0.05 s to about 3.5 minutes (about 4.5 minutes
in all), so it outlasts a node restart or a short partition. One that still fails leaves the
bucket's items in storage (unreachable: no table or index names the bucket any more); it is
logged, counted in ``failed`` with its error in ``last_error``, so an operator sees it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import partial
from typing import Any

from dynamokv.api.indexes.retry import retried
from dynamokv.api.operations.common import ApiContext

DROP_ATTEMPTS = 8  # tries of dropping a bucket


class _DropStats:
    """Drops started, done and failed by this node (one per handle), and the last failure."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.last_error: str | None = None

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: self.counts[k] for k in ("started", "done", "failed")}
        if self.last_error is not None:
            out["last_error"] = self.last_error
        return out


def _stats(ctx: ApiContext) -> _DropStats:
    found = getattr(ctx.handle, "table_drops", None)
    if not isinstance(found, _DropStats):
        found = _DropStats()
        setattr(ctx.handle, "table_drops", found)  # noqa: B010 - any NodeHandle
    return found


def drop_status(ctx: ApiContext) -> dict[str, Any]:
    """This node's drop counters: ``started``, ``done``, ``failed`` and ``last_error``."""
    return _stats(ctx).status()


def drop_buckets(ctx: ApiContext, buckets: Iterable[str], what: str) -> None:
    """Delete the entries of dropped indexes (or tables), in the background (retried; a drop
    that still fails is counted and logged by ``spawn``)."""
    for bucket in buckets:
        ctx.spawn(_drop(ctx, bucket), what)


async def _drop(ctx: ApiContext, bucket: str) -> None:
    stats = _stats(ctx)
    stats.counts["started"] += 1
    try:
        await retried(partial(ctx.handle.drop_bucket, bucket), DROP_ATTEMPTS)
    except Exception as exc:
        stats.counts["failed"] += 1
        stats.last_error = f"bucket {bucket}: {type(exc).__name__}: {exc}"[:300]
        raise
    stats.counts["done"] += 1
