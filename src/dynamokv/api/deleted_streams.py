"""The streams of deleted tables, kept readable for the retention period.

Owns: the system bucket ``~streams``: one item per stream of a deleted table (key
``{table}/{label}``; value the table's stored description as that one stream sees it, disabled
at the deletion at the latest), and :func:`keep`, :func:`find`, :func:`listed` over it.
May import: stdlib, ``orjson``, :mod:`dynamokv.api.handle`,
:mod:`dynamokv.core.replog.streams` (``RETENTION_MS``).

DynamoDB: when a table with a stream is deleted, "the corresponding stream on that table goes
into the DISABLED state, and the stream is automatically deleted after 24 hours" (DeleteTable,
API Reference). The records of a stream are not items of the table's bucket:
``core.replog.streams`` keeps them per partition and trims them by age only, so dropping the
table's items leaves them. What the deletion takes away is the catalog entry naming the stream
(its label, view type, creation time and the table's bucket); this bucket keeps that. An entry
whose stream was disabled more than the retention period ago is no longer found, and the next
listing deletes it.
"""

from __future__ import annotations

from typing import Any

import orjson

from dynamokv.api.handle import NodeHandle
from dynamokv.core.replog.streams import RETENTION_MS

STREAMS_BUCKET = "~streams"


def _key(table: str, label: str) -> bytes:
    return f"{table}/{label}".encode()


def retained(disabled_ms: int, now_ms: int) -> bool:
    """Whether a stream disabled at ``disabled_ms`` is still readable at ``now_ms``."""
    return int(disabled_ms) >= now_ms - RETENTION_MS


def _live(description: dict[str, Any], now_ms: int) -> bool:
    return retained(description["StreamDisabledMs"], now_ms)


async def keep(handle: NodeHandle, descriptions: list[dict[str, Any]]) -> None:
    """Store the streams of a deleted table (each a description with ``LatestStreamLabel``
    and ``StreamDisabledMs``)."""
    for d in descriptions:
        await handle.write(STREAMS_BUCKET, _key(d["TableName"], d["LatestStreamLabel"]),
                           orjson.dumps(d))


async def find(handle: NodeHandle, table: str, label: str, now_ms: int
               ) -> dict[str, Any] | None:
    """The stored stream ``label`` of the deleted table ``table``, if still retained."""
    raw = await handle.read(STREAMS_BUCKET, _key(table, label), consistent=True)
    if raw is None:
        return None
    found: dict[str, Any] = orjson.loads(raw)
    return found if _live(found, now_ms) else None


async def listed(handle: NodeHandle, now_ms: int, table: str | None = None
                 ) -> list[dict[str, Any]]:
    """Every retained stream of deleted tables (of ``table`` only, if given); entries past
    the retention period are deleted on the way."""
    out: list[dict[str, Any]] = []
    cursor: bytes | None = None
    while True:
        page = await handle.scan(STREAMS_BUCKET, 0, 1, cursor, 1000, consistent=True)
        for key, value in page.items:
            d = orjson.loads(value)
            if not _live(d, now_ms):
                await handle.write(STREAMS_BUCKET, key, None)
            elif table is None or d["TableName"] == table:
                out.append(d)
        if page.last_key is None:
            return out
        cursor = page.last_key
