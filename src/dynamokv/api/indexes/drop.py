"""Dropping the buckets of deleted global indexes (or tables), in the background.

Owns: :func:`drop_buckets` and ``DROP_ATTEMPTS``.
May import: stdlib, :mod:`dynamokv.api.operations.common`, :mod:`dynamokv.api.indexes.retry`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from dynamokv.api.indexes.retry import retried
from dynamokv.api.operations.common import ApiContext

DROP_ATTEMPTS = 3  # tries of dropping a bucket


def drop_buckets(ctx: ApiContext, buckets: Iterable[str], what: str) -> None:
    """Delete the entries of dropped indexes (or tables), in the background (retried; a drop
    that still fails is logged by ``spawn``)."""
    for bucket in buckets:
        ctx.spawn(retried(partial(ctx.handle.drop_bucket, bucket), DROP_ATTEMPTS), what)
