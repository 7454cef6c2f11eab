"""RequestHandle: the DynamoDB API's ``NodeHandle`` over a node's local requests.

Owns: ``Requester`` (what it needs of a node: ``q`` and ``local_request``) and
``RequestHandle`` -- turning the API's async calls into local requests of the node (item writes,
conditional writes and reads through the partitions' replicated logs; range and scan reads;
the index outbox of the partitions the node leads)
and their replies into values or exceptions.
May import: stdlib, ``dynamokv.api.handle``, ``dynamokv.core``, ``dynamokv.errors``.

Requesters: ``dynamokv.runtime.handle.ClusterHandle`` (a real node's ``NodeRunner``) and
``dynamokv.simapi.requester.SimRequester`` (a node of the simulator, in virtual time).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable
from typing import Any, Protocol

from dynamokv.api import handle as api_handle
from dynamokv.api.handle import Abort, Decide, Page
from dynamokv.core.hashing import key_partition
from dynamokv.core.messages import ErrorReply
from dynamokv.core.replog.log import INDEXED, SERVICE, STREAMED
from dynamokv.core.replog.outbox import OutboxAck, OutboxBatch, OutboxDone, OutboxPoll
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
    WriteRefused,
)
from dynamokv.errors import DynamoKVError, ProtocolError, error_from_code


def _raise_if_error(reply: Any) -> None:
    if isinstance(reply, ErrorReply):
        raise error_from_code(reply.code, reply.message, reply.details)


class Requester(Protocol):
    """What ``RequestHandle`` needs of a node: its partition count and its local requests."""

    @property
    def q(self) -> int:
        """The ring's partition count (the node's setting before it has a ring)."""
        ...

    def local_request(self, request: object) -> Awaitable[Any]:
        """Hand ``request`` to the node's core; resolves with the core's reply message."""
        ...


class RequestHandle:
    """A ``NodeHandle`` over any ``Requester``."""

    def __init__(self, requester: Requester) -> None:
        self.requester = requester
        self._ids = itertools.count(1)
        self.streamed: set[str] = set()  # table buckets whose StreamSpecification is enabled
        self.indexed: set[str] = set()  # table buckets with global secondary indexes
        self.index_drain: object | None = None  # api.indexes.drain.OutboxDrain, once started

    def note_stream(self, bucket: str, enabled: bool) -> None:
        """What the catalog last said about a table's stream (see ``api.schema.catalog``): writes of
        a streamed table carry the ``STREAMED`` flag into the log."""
        if enabled:
            self.streamed.add(bucket)
        else:
            self.streamed.discard(bucket)

    def note_indexes(self, bucket: str, indexed: bool) -> None:
        """What the catalog last said about a table's global secondary indexes: writes of a
        table that has some carry the ``INDEXED`` flag, so every replica keeps an index
        outbox record of them (``core.replog.outbox``), drained by ``api.indexes``."""
        if indexed:
            self.indexed.add(bucket)
        else:
            self.indexed.discard(bucket)

    def _flags(self, bucket: str) -> int:
        return ((STREAMED if bucket in self.streamed else 0)
                | (INDEXED if bucket in self.indexed else 0))

    async def outbox_poll(self, after: tuple[tuple[int, int, int], ...], limit: int
                          ) -> OutboxBatch:
        """Index outbox records of the partitions this node leads (see ``api.indexes``)."""
        reply = await self.requester.local_request(OutboxPoll(after, limit))
        _raise_if_error(reply)
        if not isinstance(reply, OutboxBatch):
            raise ProtocolError(f"unexpected reply {type(reply).__name__}")
        return reply

    async def outbox_done(self, partition: int, term: int, through: int) -> bool:
        """Ask for the partition's indexed-through mark; False if no longer its leader."""
        reply = await self.requester.local_request(OutboxDone(partition, term, through))
        _raise_if_error(reply)
        if not isinstance(reply, OutboxAck):
            raise ProtocolError(f"unexpected reply {type(reply).__name__}")
        return reply.proposed

    @property
    def q(self) -> int:
        return self.requester.q

    async def read(self, bucket: str, key: bytes, *, consistent: bool = False) -> bytes | None:
        reply = await self.requester.local_request(TableRead(bucket, key, consistent))
        _raise_if_error(reply)
        if not isinstance(reply, CasResult):
            raise ProtocolError(f"unexpected reply {type(reply).__name__}")
        return reply.old

    async def write(self, bucket: str, key: bytes, value: bytes | None, *,
                    refuse_prefix: bytes = b"") -> None:
        reply = await self.requester.local_request(
            TableWrite(bucket, key, value, refuse_prefix=refuse_prefix,
                       flags=self._flags(bucket)))
        _raise_if_error(reply)
        if isinstance(reply, WriteRefused):
            raise api_handle.WriteRefused(reply.current)
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
        reply = await self.requester.local_request(CasRequest(bucket, key, decide, read_only,
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
        reply = await self.requester.local_request(RangeRequest(
            bucket, hash_part, start, end, reverse, limit, consistent))
        _raise_if_error(reply)
        if not isinstance(reply, RangeResult):
            raise ProtocolError(f"unexpected reply {type(reply).__name__}")
        return Page(reply.items, reply.last_key)

    async def scan(self, bucket: str, segment: int, total_segments: int,
                   after: bytes | None, limit: int, *, consistent: bool = False) -> Page:
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
            reply = await self.requester.local_request(
                ScanRequest(bucket, partition, key, limit - len(items),
                            consistent=consistent))
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

    def segment_of(self, bucket: str, key: bytes, total_segments: int) -> int:
        """The scan segment ``key`` falls in (the inverse of the split in :meth:`scan`)."""
        partition = key_partition(bucket, key, self.q)
        return ((partition + 1) * total_segments - 1) // self.q

    async def stream_read(self, partition: int, bucket: str, after: int, limit: int
                          ) -> StreamResult:
        """Stream records of ``bucket`` in ``partition`` after log index ``after``."""
        reply = await self.requester.local_request(
            StreamRead(partition, bucket, max(after, 0), max(limit, 0)))
        _raise_if_error(reply)
        if not isinstance(reply, StreamResult):
            raise ProtocolError(f"unexpected reply {type(reply).__name__}")
        return reply

    async def drop_bucket(self, bucket: str) -> None:
        """Delete every item of ``bucket`` by scanning it and writing tombstones."""
        self.streamed.discard(bucket)  # a deleted table's stream ends with it
        self.indexed.discard(bucket)
        for segment in range(4):
            after: bytes | None = None
            for _ in range(1_000_000):
                page = await self.scan(bucket, segment, 4, after, 500)
                for key, _ in page.items:
                    await self.write(bucket, key, None)
                if page.last_key is None:
                    break
                after = page.last_key



__all__ = ["RequestHandle", "Requester"]
