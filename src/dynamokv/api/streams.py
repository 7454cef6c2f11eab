"""DynamoDB Streams: a table's StreamSpecification and the Streams API over the stream records.

Owns: parsing and applying ``StreamSpecification`` (CreateTable, UpdateTable), the stream
members of a TableDescription, and the ``DynamoDBStreams_20120810`` operations: ListStreams,
DescribeStream, GetShardIterator, GetRecords (shard iterators, sequence numbers, records).
May import: stdlib, ``orjson``, :mod:`dynamokv.api.schema.catalog`, :mod:`dynamokv.api.errors`,
:mod:`dynamokv.api.layout.items`, :mod:`dynamokv.api.operations.common`,
:mod:`dynamokv.core.replog.shards`, :mod:`dynamokv.core.replog.streams`,
:mod:`dynamokv.api.deleted_streams` (the streams of deleted tables).

Where records come from. A write of a table whose stream is enabled (as this node's catalog
sees it) is a log entry flagged ``STREAMED``; every replica of the partition keeps a record of
it, keyed by the log index, when it applies the entry (``core.replog.streams``). A stream has
one shard per ring partition; a record's sequence number is its log index and partition
(``{index:016d}{partition:05d}``), so sequence numbers grow within a shard and name one record
in the stream. Records of one item are in its partition's log order.

Shard iterators are opaque (base64url of the stream, shard, position and creation time) and
expire after 15 minutes, as DynamoDB's do. Records are kept 24 hours, at most
``core.replog.streams.CAP_PER_PARTITION`` per partition (all tables of the partition together).
A deleted table's streams stay listed and readable, DISABLED, for the retention period
(:func:`keep_deleted`, :mod:`dynamokv.api.deleted_streams`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
from typing import Any, Protocol

import orjson

from dynamokv.api import deleted_streams
from dynamokv.api.errors import DynamoDBError, ResourceNotFoundException, ValidationException
from dynamokv.api.layout.items import committed_value, stored_wire
from dynamokv.api.operations.common import ApiContext, Params, enum_error
from dynamokv.api.schema.catalog import TableInfo, table_arn
from dynamokv.core.replog.shards import Lineage
from dynamokv.core.replog.streams import RETENTION_MS

VIEW_TYPES = ("NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY")
ITERATOR_TYPES = ("TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER")
ITERATOR_LIFETIME_MS = 15 * 60 * 1000
_INVALID = "One or more parameter values were invalid: "
# Records stamped this long before a stream was created still belong to it (the replicas'
# clocks stamp records, the coordinator's clock names the stream); older ones are of an
# earlier stream of the same table.
CLOCK_MARGIN_MS = 5_000
SERVICE_IDENTITY = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}


class TrimmedDataAccessException(DynamoDBError):
    error_type = "TrimmedDataAccessException"


class ExpiredIteratorException(DynamoDBError):
    error_type = "ExpiredIteratorException"


class StreamHandle(Protocol):
    """What the Streams API needs beyond ``NodeHandle`` (``runtime.handle.ClusterHandle``)."""

    @property
    def q(self) -> int: ...

    async def stream_read(self, partition: int, bucket: str, after: int, limit: int
                          ) -> Any: ...


# ------------------------------------------------------------------------------ the table side


def parse_spec(params: Params, *, creating: bool) -> dict[str, Any] | None:
    """A request's StreamSpecification, validated: ``{"StreamEnabled": bool,
    "StreamViewType": ...}`` (no view type when disabled), or None when absent."""
    spec = params.nested("StreamSpecification")
    if spec is None:
        return None
    if spec.raw("StreamEnabled") is None:
        raise spec.missing("StreamEnabled")
    enabled = spec.boolean("StreamEnabled")
    view = spec.string("StreamViewType")
    if view is not None and view not in VIEW_TYPES:
        raise enum_error(view, spec.label("StreamViewType"), VIEW_TYPES)
    # DynamoDB's own wording, which names the view type "UpdateViewType".
    if enabled and view is None:
        raise ValidationException(_INVALID + (
            "Table is being created with a stream enabled, UpdateViewType is required"
            if creating else "If stream is being enabled then UpdateViewType is required"))
    if not enabled and view is not None:
        raise ValidationException(_INVALID + (
            "Table is being created with a stream disabled, UpdateViewType should not be "
            "specified" if creating
            else "If stream is being disabled, then UpdateViewType must not be specified"))
    return {"StreamEnabled": True, "StreamViewType": view} if enabled else {
        "StreamEnabled": False}


def apply_spec(description: dict[str, Any], spec: dict[str, Any], now: float,
               *, updating: bool) -> None:
    """Enable or disable the stream of a stored table description (in place). Enabling
    starts a new stream (a new label); disabling keeps the last one readable."""
    name = description["TableName"]
    enabled_now = stream_enabled(description)
    if spec["StreamEnabled"]:
        if enabled_now:
            raise ValidationException(f"Table already has an enabled stream: TableName: {name}")
        _keep_disabled_stream(description, int(now * 1000))
        description["StreamSpecification"] = spec
        description["LatestStreamLabel"] = _label(now)
        description["StreamCreatedMs"] = int(now * 1000)
        description.pop("StreamDisabledMs", None)
    elif updating:
        if not enabled_now:
            raise ValidationException(f"Table has no stream to disable: TableName: {name}")
        was = description["StreamSpecification"].get("StreamViewType", "KEYS_ONLY")
        description["StreamSpecification"] = spec
        description["StreamViewTypeWas"] = was
        description["StreamDisabledMs"] = int(now * 1000)


def _keep_disabled_stream(description: dict[str, Any], now_ms: int) -> None:
    """Before a new stream replaces a disabled one: keep the disabled one readable for the
    retention period, as DynamoDB does (``StreamHistory``; older ones are dropped)."""
    history = [old for old in description.get("StreamHistory") or ()
               if deleted_streams.retained(old["DisabledMs"], now_ms)]
    label = description.get("LatestStreamLabel")
    disabled = description.get("StreamDisabledMs")
    if label and disabled is not None and deleted_streams.retained(disabled, now_ms):
        history.append({"Label": label, "CreatedMs": _created_ms_of(description),
                        "DisabledMs": int(disabled),
                        "ViewType": description.get("StreamViewTypeWas", "KEYS_ONLY")})
    if history:
        description["StreamHistory"] = history
    else:
        description.pop("StreamHistory", None)


def _created_ms_of(description: dict[str, Any]) -> int:
    return int(description.get("StreamCreatedMs", 0))


def _streams_of(info: TableInfo, now_ms: int) -> list[TableInfo]:
    """The table's readable streams, the latest first, each as the table with that stream's
    fields (a disabled earlier stream within the retention period is still readable)."""
    d = info.description
    out = [info] if d.get("LatestStreamLabel") else []
    for old in reversed(d.get("StreamHistory") or ()):
        if deleted_streams.retained(old["DisabledMs"], now_ms):
            out.append(TableInfo({
                **d, "LatestStreamLabel": old["Label"], "StreamCreatedMs": old["CreatedMs"],
                "StreamDisabledMs": old["DisabledMs"], "StreamViewTypeWas": old["ViewType"],
                "StreamSpecification": {"StreamEnabled": False}}))
    return out


async def keep_deleted(ctx: ApiContext, info: TableInfo) -> None:
    """After DeleteTable: keep the table's readable streams, the enabled one now DISABLED,
    for the retention period (its records outlive the table's items anyway)."""
    now_ms = int(ctx.clock() * 1000)
    kept: list[dict[str, Any]] = []
    for stream in _streams_of(info, now_ms):
        d = {k: v for k, v in stream.description.items() if k != "StreamHistory"}
        if stream_enabled(d):
            d["StreamViewTypeWas"] = d["StreamSpecification"].get("StreamViewType",
                                                                  "KEYS_ONLY")
            d["StreamSpecification"] = {"StreamEnabled": False}
            d["StreamDisabledMs"] = now_ms
        if d.get("StreamDisabledMs") is not None and deleted_streams.retained(
                d["StreamDisabledMs"], now_ms):
            kept.append(d)
    await deleted_streams.keep(ctx.handle, kept)


def stream_enabled(description: dict[str, Any]) -> bool:
    spec = description.get("StreamSpecification") or {}
    return bool(spec.get("StreamEnabled"))


def describe_fields(ctx: ApiContext, info: TableInfo) -> dict[str, Any]:
    """The stream members of a TableDescription."""
    d = info.description
    out: dict[str, Any] = {}
    if stream_enabled(d):
        out["StreamSpecification"] = d["StreamSpecification"]
    label = d.get("LatestStreamLabel")
    if label:
        out["LatestStreamLabel"] = label
        out["LatestStreamArn"] = stream_arn(ctx, info.name, label)
    return out


def _label(now: float) -> str:
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def stream_arn(ctx: ApiContext, table: str, label: str) -> str:
    return f"{table_arn(ctx.region, ctx.account_id, table)}/stream/{label}"


# ------------------------------------------------------------------------------ streams and shards


def _handle(ctx: ApiContext) -> StreamHandle:
    handle = ctx.handle
    if not hasattr(handle, "stream_read"):
        raise ValidationException("DynamoDB Streams are not available on this endpoint")
    return handle  # type: ignore[return-value]


def _not_found(arn: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Requested resource not found: Stream: {arn} not found")


async def _stream(ctx: ApiContext, arn: str) -> TableInfo:
    """The table whose latest stream ``arn`` names."""
    prefix = f"arn:aws:dynamodb:{ctx.region}:{ctx.account_id}:table/"
    _check_arn(arn)
    if not arn.startswith(prefix):
        raise _not_found(arn)
    table, _, label = arn[len(prefix):].partition("/stream/")
    if not 3 <= len(table) <= 255:
        raise _not_found(arn)
    now_ms = int(ctx.clock() * 1000)
    for fresh in (False, True):
        # The cache may predate a stream enabled through another node: ask once more, fresh.
        info = await ctx.catalog.get(table, fresh=fresh)
        for stream in _streams_of(info, now_ms) if info is not None else ():
            if stream.description["LatestStreamLabel"] == label:
                return stream
    deleted = await deleted_streams.find(ctx.handle, table, label, now_ms)
    if deleted is not None:
        return TableInfo(deleted)
    raise _not_found(arn)


def _check_arn(arn: str) -> None:
    """Refuse what cannot be a stream ARN at all, as DynamoDB does (a ValidationException,
    where a well-formed ARN of no stream is not found)."""
    if not arn.startswith("arn:aws:dynamodb:") or "/stream/" not in arn:
        raise ValidationException(f"Invalid StreamArn: {arn}")


def _created_ms(info: TableInfo) -> int:
    return _created_ms_of(info.description)


def shard_id(info: TableInfo, partition: int, start: int) -> str:
    """The ID of ``partition``'s shard that begins after log index ``start``."""
    return f"shardId-{_created_ms(info):020d}-{partition:08x}-{start:012x}"


def _no_shard() -> ResourceNotFoundException:
    return ResourceNotFoundException("Requested resource not found: Shard does not exist")


def _parse_shard(info: TableInfo, shard: str, q: int) -> tuple[int, int]:
    """(partition, start) of a shard ID of this stream."""
    head = f"shardId-{_created_ms(info):020d}-"
    partition_hex, dash, start_hex = shard[len(head):].partition("-")
    if (shard.startswith(head) and dash and len(partition_hex) == 8
            and len(start_hex) == 12 and all(c in _HEX for c in partition_hex + start_hex)):
        partition, start = int(partition_hex, 16), int(start_hex, 16)
        if partition < q:
            return partition, start
    raise _no_shard()


_HEX = frozenset("0123456789abcdef")


def _shard_partition(info: TableInfo, shard: str, q: int) -> int | None:
    """The partition of an ``ExclusiveStartShardId``; None for an ID that is no shard of this
    stream, after which DynamoDB lists no shards (it is not an error there)."""
    try:
        return _parse_shard(info, shard, q)[0]
    except ResourceNotFoundException:
        return None


def sequence_number(index: int, partition: int) -> str:
    return f"{index:016d}{partition:05d}"


def _parse_sequence(text: str, partition: int) -> int:
    """The log index a sequence number of ``partition``'s shard names."""
    if len(text) == 21 and text.isdigit() and int(text[16:]) == partition:
        return int(text[:16])
    raise ValidationException(
        f"Invalid SequenceNumber: {text} is not a sequence number of this shard")


async def list_streams(ctx: ApiContext, params: Params) -> dict[str, Any]:
    _handle(ctx)
    limit = params.integer("Limit", minimum=1, maximum=100) or 100
    start = params.string("ExclusiveStartStreamArn")
    name = params.string("TableName")
    if start is not None:
        _check_arn(start)
    now_ms = int(ctx.clock() * 1000)
    if name is not None:
        name = params.table_name()
        found = await ctx.catalog.get(name, fresh=True)
        tables = [] if found is None else [found]
    else:
        tables = await ctx.catalog.all_tables()
    ours = [t for table in tables for t in _streams_of(table, now_ms)]
    ours += [TableInfo(d) for d in await deleted_streams.listed(ctx.handle, now_ms, name)]
    if name is not None and not tables and not ours:
        raise ResourceNotFoundException(f"Requested resource not found: Table: {name} not found")
    streams = sorted(
        ({"StreamArn": stream_arn(ctx, t.name, t.description["LatestStreamLabel"]),
          "TableName": t.name, "StreamLabel": t.description["LatestStreamLabel"]} for t in ours),
        key=lambda s: s["StreamArn"])
    if start is not None:
        streams = [s for s in streams if s["StreamArn"] > start]
    out: dict[str, Any] = {"Streams": streams[:limit]}
    if len(streams) > limit:
        out["LastEvaluatedStreamArn"] = streams[limit - 1]["StreamArn"]
    return out


def _shards(info: TableInfo, partition: int, bounds: Any, now_ms: int
            ) -> list[dict[str, Any]]:
    """The shards of ``partition`` in this stream, oldest first: every shard of the
    partition's lineage but those closed before the stream was created or more than the
    retention period ago (the lineage drops those at its next roll)."""
    lineage = Lineage.decode(bounds.shards)
    enabled = stream_enabled(info.description)
    shards: list[dict[str, Any]] = []
    parent: str | None = None
    for start in lineage.starts():
        closed_ms = lineage.closed_ms(start)
        sid = shard_id(info, partition, start)
        if closed_ms is not None and (closed_ms < _created_ms(info) - CLOCK_MARGIN_MS
                                      or closed_ms < now_ms - RETENTION_MS):
            continue  # closed before this stream began, or every record of it is trimmed
        end = lineage.end_of(start)
        numbers = {"StartingSequenceNumber": sequence_number(start + 1, partition)}
        if end is not None:
            numbers["EndingSequenceNumber"] = sequence_number(end, partition)
        elif not enabled:
            numbers["EndingSequenceNumber"] = sequence_number(
                max(bounds.last, start + 1), partition)
        shard: dict[str, Any] = {"ShardId": sid, "SequenceNumberRange": numbers}
        if parent is not None:
            shard["ParentShardId"] = parent
        shards.append(shard)
        parent = sid
    return shards


async def _shards_from(handle: StreamHandle, info: TableInfo, first: int, after: str | None,
                       limit: int, now_ms: int) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` shards from partition ``first`` on (of it, only those after the shard
    ``after``); and whether more follow."""
    out: list[dict[str, Any]] = []
    partition = first
    while partition < handle.q and len(out) <= limit:
        # Every partition has an open shard, so this many partitions fill the page.
        batch = list(range(partition, min(handle.q, partition + limit + 1 - len(out))))
        reads = await asyncio.gather(*(handle.stream_read(p, info.bucket, 0, 0)
                                       for p in batch))
        for p, bounds in zip(batch, reads, strict=True):
            shards = _shards(info, p, bounds, now_ms)
            if p == first and after is not None:
                ids = [s["ShardId"] for s in shards]
                shards = shards[ids.index(after) + 1:] if after in ids else [
                    s for s in shards if s["ShardId"] > after]
            out.extend(shards)
        partition = batch[-1] + 1
    return out[:limit], len(out) > limit


async def describe_stream(ctx: ApiContext, params: Params) -> dict[str, Any]:
    handle = _handle(ctx)
    arn = params.req_string("StreamArn")
    limit = params.integer("Limit", minimum=1, maximum=100) or 100
    start = params.string("ExclusiveStartShardId")
    parent = _shard_filter(params)
    info = await _stream(ctx, arn)
    now_ms = int(ctx.clock() * 1000)
    if parent is not None:
        partition, _ = _parse_shard(info, parent, handle.q)
        bounds = await handle.stream_read(partition, info.bucket, 0, 0)
        shards = [s for s in _shards(info, partition, bounds, now_ms)
                  if s.get("ParentShardId") == parent]
        more = False
    else:
        shards, more = [], False
        first = 0 if start is None else _shard_partition(info, start, handle.q)
        if first is not None:
            shards, more = await _shards_from(handle, info, first, start, limit, now_ms)
    d = info.description
    spec = d.get("StreamSpecification") or {}
    description: dict[str, Any] = {
        "StreamArn": arn,
        "StreamLabel": d["LatestStreamLabel"],
        "StreamStatus": "ENABLED" if stream_enabled(d) else "DISABLED",
        "StreamViewType": spec.get("StreamViewType") or d.get("StreamViewTypeWas", "KEYS_ONLY"),
        "CreationRequestDateTime": _created_ms(info) / 1000,
        "TableName": info.name,
        "KeySchema": d["KeySchema"],
        "Shards": shards,
    }
    if more:
        description["LastEvaluatedShardId"] = shards[-1]["ShardId"]
    return {"StreamDescription": description}


def _shard_filter(params: Params) -> str | None:
    """The parent shard ID of a ``CHILD_SHARDS`` ShardFilter (None: no filter)."""
    spec = params.nested("ShardFilter")
    if spec is None:
        return None
    kind = spec.string("Type")
    if kind is None:
        raise spec.missing("Type")
    if kind != "CHILD_SHARDS":
        raise enum_error(kind, spec.label("Type"), ("CHILD_SHARDS",))
    parent = spec.string("ShardId")
    if parent is None:
        raise spec.missing("ShardId")
    return parent


# ------------------------------------------------------------------------------ iterators


def _encode_iterator(arn: str, partition: int, start: int, after: int, horizon: bool,
                     now_ms: int) -> str:
    raw = orjson.dumps([arn, partition, start, after, horizon, now_ms])
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_iterator(text: str) -> tuple[str, int, int, int, bool, int]:
    try:
        arn, partition, start, after, horizon, created = orjson.loads(
            base64.urlsafe_b64decode(text.encode("ascii")))
        if not (isinstance(arn, str) and isinstance(partition, int) and isinstance(start, int)
                and isinstance(after, int) and isinstance(horizon, bool)
                and isinstance(created, int)):
            raise ValueError("wrong member types")
    except (ValueError, TypeError, UnicodeError, binascii.Error, orjson.JSONDecodeError):
        raise ValidationException("Invalid ShardIterator") from None
    return arn, partition, start, after, horizon, created


def _trimmed() -> TrimmedDataAccessException:
    return TrimmedDataAccessException(
        "The operation attempted to read past the oldest stream record in a shard.")


async def get_shard_iterator(ctx: ApiContext, params: Params) -> dict[str, Any]:
    handle = _handle(ctx)
    arn = params.req_string("StreamArn")
    shard = params.req_string("ShardId")
    kind = params.string("ShardIteratorType", required=True)
    assert kind is not None
    if kind not in ITERATOR_TYPES:
        raise enum_error(kind, params.label("ShardIteratorType"), ITERATOR_TYPES)
    number = params.string("SequenceNumber")
    info = await _stream(ctx, arn)
    partition, start = _parse_shard(info, shard, handle.q)
    bounds = await handle.stream_read(partition, info.bucket, 0, 0)
    now_ms = int(ctx.clock() * 1000)
    if shard not in {s["ShardId"] for s in _shards(info, partition, bounds, now_ms)}:
        raise _no_shard()
    end = Lineage.decode(bounds.shards).end_of(start)
    if kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        if number is None:
            raise ValidationException(
                f"Must specify a SequenceNumber for ShardIteratorType {kind}")
        index = _parse_sequence(number, partition)
        if index <= start or (end is not None and index > end):
            raise ValidationException(
                f"Invalid SequenceNumber: {number} is not a sequence number of this shard")
        after = index - 1 if kind == "AT_SEQUENCE_NUMBER" else index
        if after < bounds.trimmed:
            raise _trimmed()
        return {"ShardIterator": _encode_iterator(arn, partition, start, after, False, now_ms)}
    if number is not None:
        raise ValidationException(
            f"SequenceNumber cannot be specified for ShardIteratorType {kind}")
    if kind == "LATEST":
        after = end if end is not None else max(bounds.last, start)
        return {"ShardIterator": _encode_iterator(arn, partition, start, after, False, now_ms)}
    return {"ShardIterator": _encode_iterator(arn, partition, start,
                                              max(bounds.trimmed, start), True, now_ms)}


async def get_records(ctx: ApiContext, params: Params) -> dict[str, Any]:
    handle = _handle(ctx)
    text = params.req_string("ShardIterator")
    limit = params.integer("Limit", minimum=1, maximum=1000) or 1000
    arn, partition, start, after, horizon, created = _decode_iterator(text)
    now_ms = int(ctx.clock() * 1000)
    if now_ms - created > ITERATOR_LIFETIME_MS:
        raise ExpiredIteratorException(
            f"Iterator expired. The iterator was created at time {_when(created)} while right "
            f"now it is {_when(now_ms)} which is further in the future than the tolerated "
            f"delay of {ITERATOR_LIFETIME_MS} milliseconds.")
    info = await _stream(ctx, arn)
    if not 0 <= partition < handle.q or after < start:
        raise ValidationException("Invalid ShardIterator")
    read = await handle.stream_read(partition, info.bucket, after, limit)
    if not horizon and after < read.trimmed:
        raise _trimmed()
    lineage = Lineage.decode(read.shards)
    starts = lineage.starts()
    if start not in starts and start < starts[-1]:
        raise _trimmed()  # the shard left the lineage: it closed more than 24 hours ago
    # A replica that has not applied the roll yet knows no records after it either.
    end = lineage.end_of(start) if start in starts else None
    scanned = read.scanned if end is None else min(read.scanned, end)
    records = [r for rec in read.records
               if (end is None or rec.index <= end)
               and (r := _record(ctx, info, partition, rec)) is not None]
    out: dict[str, Any] = {"Records": records}
    if end is not None:
        closed = scanned >= end
    else:
        closed = (not stream_enabled(info.description) and not read.records
                  and read.scanned >= read.last)
    if not closed:
        out["NextShardIterator"] = _encode_iterator(arn, partition, start, scanned, False,
                                                    now_ms)
    return out


def _when(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime(
        "%a %b %d %H:%M:%S UTC %Y")


# ------------------------------------------------------------------------------ records


def _record(ctx: ApiContext, info: TableInfo, partition: int, rec: Any
            ) -> dict[str, Any] | None:
    """The DynamoDB Streams record of one stored record, shaped by the stream's view type
    (None: a record of an earlier stream, or a write that left the item as it was)."""
    d = info.description
    if rec.wall_ms < _created_ms(info) - CLOCK_MARGIN_MS:
        return None
    disabled = d.get("StreamDisabledMs")
    if disabled is not None and rec.wall_ms > int(disabled) + CLOCK_MARGIN_MS:
        return None
    old = committed_value(rec.old) if rec.old is not None else None
    new = committed_value(rec.new) if rec.new is not None else None
    if old == new:
        return None  # a transaction's intent came or went: the item did not change
    old_wire = stored_wire(old) if old is not None else None
    new_wire = stored_wire(new) if new is not None else None
    image = new_wire if new_wire is not None else old_wire
    assert image is not None
    keys = {name: image[name] for name in info.key_names if name in image}
    view = (d.get("StreamSpecification") or {}).get("StreamViewType") or d.get(
        "StreamViewTypeWas", "KEYS_ONLY")
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": rec.wall_ms // 1000,
        "Keys": keys,
        "SequenceNumber": sequence_number(rec.index, partition),
        "StreamViewType": view,
    }
    size = len(orjson.dumps(keys))
    if view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and new_wire is not None:
        body["NewImage"] = new_wire
        size += len(new)  # type: ignore[arg-type]
    if view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and old_wire is not None:
        body["OldImage"] = old_wire
        size += len(old)  # type: ignore[arg-type]
    body["SizeBytes"] = size
    out: dict[str, Any] = {
        "eventID": f"{partition:08x}{rec.index:024x}",
        "eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": ctx.region,
        "dynamodb": body,
    }
    if rec.service:
        out["userIdentity"] = dict(SERVICE_IDENTITY)
    return out


OPERATIONS = {
    "ListStreams": list_streams,
    "DescribeStream": describe_stream,
    "GetShardIterator": get_shard_iterator,
    "GetRecords": get_records,
}

__all__ = ["OPERATIONS", "apply_spec", "describe_fields", "keep_deleted", "parse_spec",
           "stream_enabled"]
