"""ClusterHandle: the DynamoDB API's ``NodeHandle`` over this node's core.

Owns: turning the API's async calls into local requests of the node (item writes, conditional
writes and consistent reads through the partitions' replicated logs; range and scan reads;
stream record reads, TTL deletes) and their replies into values or exceptions, and which table
buckets have a stream (their writes carry the ``STREAMED`` flag into the log).
May import: ``asyncio``, ``dynamokv.api.handle``, ``dynamokv.core``, ``dynamokv.runtime.runner``.
"""

from __future__ import annotations

import itertools
from typing import Any

from dynamokv.api.handle import Abort, Decide, Page
from dynamokv.core.hashing import compose_key, key_partition
from dynamokv.core.messages import ErrorReply
from dynamokv.core.replog.log import SERVICE, STREAMED
from dynamokv.core.requests import (
    CasAborted,
    CasRequest,
    CasResult,
    RangeRequest,
    RangeResult,
    ScanRequest,
    StreamRead,
    StreamResult,
    TableRead,
    TableWrite,
)
from dynamokv.errors import DynamoKVError, ProtocolError, error_from_code
from dynamokv.runtime.runner import NodeRunner


def _raise_if_error(reply: Any) -> None:
    if isinstance(reply, ErrorReply):
        raise error_from_code(reply.code, reply.message, reply.details)


class ClusterHandle:
    def __init__(self, runner: NodeRunner) -> None:
        self.runner = runner
        self._ids = itertools.count(1)
        self.streamed: set[str] = set()  # table buckets whose StreamSpecification is enabled

    def note_stream(self, bucket: str, enabled: bool) -> None:
        """What the catalog last said about a table's stream (see ``api.catalog``)."""
        if enabled:
            self.streamed.add(bucket)
        else:
            self.streamed.discard(bucket)

    def _flags(self, bucket: str) -> int:
        return STREAMED if bucket in self.streamed else 0

    @property
    def q(self) -> int:
        ring = self.runner.core.ring
        return ring.q if ring is not None else self.runner.core.settings.q

    async def read(self, bucket: str, key: bytes, *, consistent: bool = False) -> bytes | None:
        reply = await self.runner.local_request(TableRead(bucket, key, consistent))
        _raise_if_error(reply)
        if not isinstance(reply, CasResult):
            raise ProtocolError(f"unexpected reply {type(reply).__name__}")
        return reply.old

    async def write(self, bucket: str, key: bytes, value: bytes | None) -> None:
        reply = await self.runner.local_request(TableWrite(bucket, key, value,
                                                           flags=self._flags(bucket)))
        _raise_if_error(reply)
        if not isinstance(reply, CasResult):
            raise ProtocolError(f"unexpected reply {type(reply).__name__}")

    async def cas(self, bucket: str, key: bytes, decide: Decide
                  ) -> tuple[bytes | None, bytes | None]:
        return await self._cas(bucket, key, decide, read_only=False)

    async def expire(self, bucket: str, key: bytes, decide: Decide
                     ) -> tuple[bytes | None, bytes | None]:
        """A ``cas`` made by the service itself (TTL): its stream record says so."""
        return await self._cas(bucket, key, decide, read_only=False, flags=SERVICE)

    async def _cas(self, bucket: str, key: bytes, decide: Decide | None, *, read_only: bool,
                   flags: int = 0) -> tuple[bytes | None, bytes | None]:
        flags |= 0 if read_only else self._flags(bucket)
        reply = await self.runner.local_request(CasRequest(bucket, key, decide, read_only,
                                                           flags=flags))
        _raise_if_error(reply)
        if isinstance(reply, CasAborted):
            if isinstance(reply.error, Abort | DynamoKVError):
                raise reply.error
            raise reply.error
        if not isinstance(reply, CasResult):
            raise ProtocolError(f"unexpected reply {type(reply).__name__}")
        return reply.old, reply.new

    async def query(self, bucket: str, hash_part: bytes, start: bytes | None,
                    end: bytes | None, *, reverse: bool = False, limit: int = 1000,
                    consistent: bool = False) -> Page:
        reply = await self.runner.local_request(RangeRequest(
            bucket, hash_part, start, end, reverse, limit, consistent))
        _raise_if_error(reply)
        if not isinstance(reply, RangeResult):
            raise ProtocolError(f"unexpected reply {type(reply).__name__}")
        return Page(reply.items, reply.last_key)

    async def scan(self, bucket: str, segment: int, total_segments: int,
                   after: bytes | None, limit: int) -> Page:
        """The ring's partitions split evenly among segments; cursors are storage keys (the
        partition of a cursor is the key's own, so a page can resume mid-partition)."""
        q = self.q
        first = segment * q // total_segments
        stop = (segment + 1) * q // total_segments
        partition, key = first, None
        if after is not None:
            partition, key = key_partition(bucket, after, q), after
            if not first <= partition < stop:
                return Page([], None)  # a cursor from another segment: nothing here
        items: list[tuple[bytes, bytes]] = []
        while partition < stop and len(items) < limit:
            reply = await self.runner.local_request(
                ScanRequest(bucket, partition, key, limit - len(items)))
            _raise_if_error(reply)
            if not isinstance(reply, RangeResult):
                raise ProtocolError(f"unexpected reply {type(reply).__name__}")
            items.extend(reply.items)
            if reply.last_key is not None:
                return Page(items, reply.last_key)
            partition, key = partition + 1, None
        if partition < stop and items:
            return Page(items, items[-1][0])
        return Page(items, None)

    async def stream_read(self, partition: int, bucket: str, after: int, limit: int
                          ) -> StreamResult:
        """Stream records of ``bucket`` in ``partition`` after log index ``after``."""
        reply = await self.runner.local_request(StreamRead(partition, bucket, max(after, 0),
                                                           max(limit, 0)))
        _raise_if_error(reply)
        if not isinstance(reply, StreamResult):
            raise ProtocolError(f"unexpected reply {type(reply).__name__}")
        return reply

    def leading_partitions(self) -> list[int]:
        """Partitions whose log this node leads (where TTL sweeps and counts are cheap)."""
        logs = self.runner.core.logs
        return sorted(g for g, raft in logs.groups.items() if raft.is_leader())

    async def drop_bucket(self, bucket: str) -> None:
        """Delete every item of ``bucket`` by scanning it and writing tombstones (no stream
        records: a deleted table's stream ends with the table)."""
        self.streamed.discard(bucket)
        for segment in range(4):
            after: bytes | None = None
            for _ in range(1_000_000):
                page = await self.scan(bucket, segment, 4, after, 500)
                for key, _ in page.items:
                    await self.write(bucket, key, None)
                if page.last_key is None:
                    break
                after = page.last_key


__all__ = ["ClusterHandle", "compose_key"]
