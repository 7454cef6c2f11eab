"""The table catalog: which tables exist, their key schemas, indexes, tags and settings.

Owns: :class:`TableInfo` / :class:`IndexInfo` (a table's stored description and the key logic
that depends on it: extracting, validating and encoding item keys; the bucket and status of each
global secondary index, :func:`gsi_bucket`) and :class:`Catalog`, the replicated registry of
tables with a small per-node cache.
May import: stdlib, ``orjson``, :mod:`dynamokv.api.handle`, :mod:`dynamokv.api.attributes`,
:mod:`dynamokv.api.layout.keycodec`, :mod:`dynamokv.api.errors`.

Replication. Each table's description is one item of the system bucket ``~catalog`` (key: the
table name), read and written through the ``NodeHandle`` like any data, so every node of a
cluster sees the same tables. Creating, deleting and updating a table are ``cas`` operations,
so two nodes creating the same table race safely: one wins, the other gets
ResourceInUseException. Each node caches descriptions for ``ttl`` seconds (a table is looked
up on every item request); a node's own writes refresh its cache, a miss is always re-read
(consistently), so a table created anywhere is usable everywhere at once, while a table
deleted or updated elsewhere may look unchanged here for up to ``ttl`` seconds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from dynamokv.api.attributes import (
    MAX_HASH_KEY_SIZE,
    MAX_RANGE_KEY_SIZE,
    AttributeValue,
    B,
    Item,
    KeyValue,
    N,
    S,
    from_wire,
    to_wire,
    validate_key_attribute,
    value_size,
)
from dynamokv.api.errors import (
    DynamoDBError,
    ResourceInUseException,
    ResourceNotFoundException,
    SerializationException,
    ValidationException,
)
from dynamokv.api.handle import (
    MAX_BUCKET_BYTES,
    Abort,
    NodeHandle,
    compose_key,
    table_bucket,
)
from dynamokv.api.layout.keycodec import encode_key

CATALOG_BUCKET = "~catalog"
_INVALID = "One or more parameter values were invalid: "
KEY_MISMATCH = "The provided key element does not match the schema"


# Members of a stored global secondary index that are ours, not DynamoDB's (DescribeTable
# leaves them out): the suffix of the index's bucket name, and the lease of the node running its
# backfill (see :mod:`dynamokv.api.indexes`).
INDEX_INTERNAL = ("BucketId", "BackfillLease", "BackfillOwner", "BackfillFailures",
                  "RepairNeeded")


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """A secondary index. A global index may have a multi-attribute key (up to four partition
    and four sort-key attributes): ``hash_keys`` / ``range_keys`` list them in schema order,
    ``hash_key`` / ``range_key`` are their first elements (the whole key of a one-attribute
    index)."""

    name: str
    hash_key: str
    range_key: str | None
    projection_type: str  # ALL | KEYS_ONLY | INCLUDE
    non_key_attributes: tuple[str, ...]
    is_global: bool
    bucket: str | None = None  # where a global index's entries live (None: a local index)
    status: str = "ACTIVE"  # CREATING while a global index is being backfilled
    lease: float | None = None  # when the backfill's lease ends (wall clock), while CREATING
    owner: str | None = None  # who holds that lease
    hash_keys: tuple[str, ...] = ()  # every partition-key attribute (empty: just hash_key)
    range_keys: tuple[str, ...] = ()  # every sort-key attribute (empty: range_key, if any)
    failures: int = 0  # backfill runs that failed (see dynamokv.api.indexes)
    repair: bool = False  # an ACTIVE index whose upkeep gave up: rebuilt by a backfill run

    @property
    def partition_names(self) -> tuple[str, ...]:
        return self.hash_keys or (self.hash_key,)

    @property
    def sort_names(self) -> tuple[str, ...]:
        if self.range_keys:
            return self.range_keys
        return () if self.range_key is None else (self.range_key,)

    @property
    def key_names(self) -> tuple[str, ...]:
        """The index's key attributes: partition attributes, then sort attributes."""
        return self.partition_names + self.sort_names


def gsi_bucket(table_id: str, index: Mapping[str, Any]) -> str:
    """The bucket of a global secondary index's entries. It starts with the table bucket
    prefix, so the ring places its keys by their hash part (the index's partition key); an index
    created by UpdateTable carries a fresh ``BucketId``, so one deleted and created again never
    sees its predecessor's entries."""
    suffix = f".{index['BucketId']}" if index.get("BucketId") else ""
    name = index["IndexName"]
    bucket = table_bucket(f"{table_id}.gsi.{name}{suffix}")
    if len(bucket.encode()) <= MAX_BUCKET_BYTES:
        return bucket
    # A long index name (legal up to 255 characters) would make the bucket name longer than a
    # node accepts: name the bucket by a digest of the index name instead (still unique).
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    return table_bucket(f"{table_id}.gsi.~{digest}{suffix}")


@dataclass(slots=True)
class TableInfo:
    """A table as the catalog stores it: ``description`` is the stored JSON document; the other
    fields are derived from it for the hot paths."""

    description: dict[str, Any]
    name: str = ""
    table_id: str = ""
    hash_key: str = ""
    range_key: str | None = None
    types: dict[str, str] = field(default_factory=dict)
    indexes: dict[str, IndexInfo] = field(default_factory=dict)
    gsis: tuple[IndexInfo, ...] = ()  # the global ones (maintained on every write)

    def __post_init__(self) -> None:
        d = self.description
        self.name = d["TableName"]
        self.table_id = d["TableId"]
        self.types = {a["AttributeName"]: a["AttributeType"] for a in d["AttributeDefinitions"]}
        self.hash_key, self.range_key = _schema_keys(d["KeySchema"])
        self.indexes = {}
        for kind, is_global in (("LocalSecondaryIndexes", False), ("GlobalSecondaryIndexes", True)):
            for index in d.get(kind) or ():
                hash_key, range_key = _schema_keys(index["KeySchema"])
                hash_keys, range_keys = _schema_key_lists(index["KeySchema"])
                projection = index.get("Projection") or {}
                self.indexes[index["IndexName"]] = IndexInfo(
                    index["IndexName"],
                    hash_key,
                    range_key,
                    projection.get("ProjectionType", "ALL"),
                    tuple(projection.get("NonKeyAttributes") or ()),
                    is_global,
                    gsi_bucket(self.table_id, index) if is_global else None,
                    # A global index stored without a status predates stored indexes: it has
                    # no entries yet, so it is backfilled like a new one.
                    index.get("IndexStatus", "CREATING") if is_global else "ACTIVE",
                    index.get("BackfillLease"),
                    index.get("BackfillOwner"),
                    hash_keys,
                    range_keys,
                    index.get("BackfillFailures", 0),
                    bool(index.get("RepairNeeded")),
                )
        self.gsis = tuple(index for index in self.indexes.values() if index.is_global)

    @property
    def bucket(self) -> str:
        return table_bucket(self.table_id)

    @property
    def key_names(self) -> tuple[str, ...]:
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)

    # ----------------------------------------------------------------------------- keys

    def key_from_wire(self, wire: Any, *, label: str = "") -> tuple[Item, bytes]:
        """Validate a request's ``Key`` map; return the typed key and its storage key."""
        # Per request on GetItem/DeleteItem/UpdateItem: plain loops and locals, no generator,
        # no ABC check for the JSON dict every request has, the label only for an error.
        if type(wire) is not dict and not isinstance(wire, Mapping):
            raise SerializationException("Start of structure or map found where not expected")
        names = self.key_names
        if len(wire) != len(names):
            raise ValidationException(_labelled(label, KEY_MISMATCH))
        for name in names:
            if name not in wire:
                raise ValidationException(_labelled(label, KEY_MISMATCH))
        key: Item = {}
        types, range_key = self.types, self.range_key
        for name in names:
            value = from_wire(wire[name])
            if value.type_name != types[name]:
                raise ValidationException(_labelled(label, KEY_MISMATCH))
            validate_key_attribute(name, value, is_range=name == range_key)
            key[name] = value
        return key, self.storage_key(key)

    def storage_key(self, item: Mapping[str, AttributeValue]) -> bytes:
        """The storage key of an item (or key) whose key attributes are already valid."""
        hash_value = item[self.hash_key]
        assert isinstance(hash_value, (S, N, B))
        if self.range_key is None:
            return compose_key(encode_key(hash_value))
        range_value = item[self.range_key]
        assert isinstance(range_value, (S, N, B))
        return compose_key(encode_key(hash_value), encode_key(range_value))

    def validate_item(self, item: Mapping[str, AttributeValue]) -> None:
        """A whole item's key attributes and index key attributes (PutItem, BatchWrite)."""
        for name in self.key_names:
            value = item.get(name)
            if value is None:
                raise ValidationException(_INVALID + f"Missing the key {name} in the item")
            validate_key_attribute(name, value, self.types[name], is_range=name == self.range_key)
        self.validate_index_keys(item)

    def validate_index_keys(self, item: Mapping[str, AttributeValue]) -> None:
        for index in self.indexes.values():
            for name in index.key_names:
                if name in self.key_names:
                    continue
                value = item.get(name)
                if value is None:
                    continue
                expected = self.types.get(name)
                if expected is not None and value.type_name != expected:
                    raise ValidationException(
                        _INVALID + f"Type mismatch for Index Key {name} Expected: {expected} "
                        f"Actual: {value.type_name} IndexName: {index.name}"
                    )
                if (isinstance(value, S) and not value.value) or (
                    isinstance(value, B) and not value.value
                ):
                    raise ValidationException(
                        "One or more parameter values are not valid. A value specified for a "
                        "secondary index key is not supported. The AttributeValue for a key "
                        f"attribute cannot contain an empty {'string' if isinstance(value, S) else 'binary'} "  # noqa: E501
                        f"value. IndexName: {index.name}, IndexKey: {name}"
                    )
                limit = index_key_limit(index, name)
                if value_size(value) > limit:
                    raise ValidationException(
                        _INVALID + f"Size of key attribute {name} of index {index.name} "
                        f"exceeded the limit of {limit} bytes"
                    )

    def key_of(self, item: Mapping[str, AttributeValue], index: IndexInfo | None = None) -> Item:
        """The key attributes of ``item`` (the table's, plus the index's for index reads)."""
        names = list(self.key_names)
        if index is not None:
            names += [n for n in index.key_names if n not in names]
        return {name: item[name] for name in names if name in item}

    def wire_key_of(
        self, item: Mapping[str, AttributeValue], index: IndexInfo | None = None
    ) -> dict[str, Any]:
        return {name: to_wire(value) for name, value in self.key_of(item, index).items()}

    def arn(self, region: str, account: str) -> str:
        return table_arn(region, account, self.name)


def table_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def _schema_keys(schema: list[dict[str, str]]) -> tuple[str, str | None]:
    hash_key = next(e["AttributeName"] for e in schema if e["KeyType"] == "HASH")
    range_key = next((e["AttributeName"] for e in schema if e["KeyType"] == "RANGE"), None)
    return hash_key, range_key


def index_key_limit(index: IndexInfo, name: str) -> int:
    """The size limit of one key attribute of ``index``: a partition-key attribute's 2048
    bytes or a sort-key attribute's 1024 (each attribute of a multi-attribute key alone)."""
    return MAX_HASH_KEY_SIZE if name in index.partition_names else MAX_RANGE_KEY_SIZE


def _schema_key_lists(schema: list[dict[str, str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (tuple(e["AttributeName"] for e in schema if e["KeyType"] == "HASH"),
            tuple(e["AttributeName"] for e in schema if e["KeyType"] == "RANGE"))


def key_value_sort(value: KeyValue) -> bytes:
    """The order-preserving bytes of one key value (for sorting index query results)."""
    return encode_key(value)


class _Exists(Abort):
    pass


class _Missing(Abort):
    pass


class _Refused(Abort):
    def __init__(self, error: DynamoDBError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(slots=True)
class _Cached:
    info: TableInfo
    fetched: float


class Catalog:
    """The replicated table registry of one node, with its cache."""

    def __init__(
        self,
        handle: NodeHandle,
        *,
        ttl: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        on_table: Callable[[TableInfo], None] | None = None,
    ) -> None:
        self._handle = handle
        self._on_table = on_table  # told every description this node reads or writes
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, _Cached] = {}

    @property
    def ttl(self) -> float:
        """How long this node may keep answering from a cached description."""
        return self._ttl

    def _remember(self, info: TableInfo) -> TableInfo:
        self._cache[info.name] = _Cached(info, self._clock())
        if self._on_table is not None:
            self._on_table(info)
        return info

    def invalidate(self, name: str | None = None) -> None:
        if name is None:
            self._cache.clear()
        else:
            self._cache.pop(name, None)

    async def get(self, name: str, *, fresh: bool = False) -> TableInfo | None:
        """The table's description; ``fresh`` skips the cache (control-plane reads such as
        DescribeTable must show a change made through any node once it was acknowledged)."""
        cached = None if fresh else self._cache.get(name)
        if cached is not None and self._clock() - cached.fetched < self._ttl:
            return cached.info
        raw = await self._handle.read(CATALOG_BUCKET, name.encode("utf-8"), consistent=True)
        if raw is None:
            self._cache.pop(name, None)
            return None
        return self._remember(TableInfo(orjson.loads(raw)))

    async def require(self, name: str, *, fresh: bool = False) -> TableInfo:
        info = await self.get(name, fresh=fresh)
        if info is None:
            raise ResourceNotFoundException(
                f"Requested resource not found: Table: {name} not found"
            )
        return info

    async def create(self, description: dict[str, Any]) -> TableInfo:
        name = description["TableName"]
        data = orjson.dumps(description)

        def decide(current: bytes | None) -> bytes | None:
            if current is not None:
                raise _Exists()
            return data

        try:
            await self._handle.cas(CATALOG_BUCKET, name.encode("utf-8"), decide)
        except _Exists:
            raise ResourceInUseException(f"Table already exists: {name}") from None
        return self._remember(TableInfo(description))

    async def _cas_existing(self, name: str, decide: Callable[[bytes | None], bytes | None]
                            ) -> None:
        """Compare-and-set the description of a table that must exist (``decide`` raises
        ``_Missing`` when it does not, ``_Refused`` to refuse the change)."""
        try:
            await self._handle.cas(CATALOG_BUCKET, name.encode("utf-8"), decide)
        except _Missing:
            self._cache.pop(name, None)
            raise ResourceNotFoundException(
                f"Requested resource not found: Table: {name} not found"
            ) from None
        except _Refused as refused:
            raise refused.error from None

    async def update(
        self, name: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> TableInfo:
        """Replace a table's description with ``change(old)`` (which may raise DynamoDBError)."""
        result: list[dict[str, Any]] = []

        def decide(current: bytes | None) -> bytes | None:
            if current is None:
                raise _Missing()
            try:
                new = change(orjson.loads(current))
            except DynamoDBError as exc:
                raise _Refused(exc) from None
            result[:] = [new]
            return orjson.dumps(new)

        await self._cas_existing(name, decide)
        return self._remember(TableInfo(result[0]))

    async def delete(
        self, name: str, check: Callable[[dict[str, Any]], None] | None = None
    ) -> TableInfo:
        result: list[dict[str, Any]] = []

        def decide(current: bytes | None) -> bytes | None:
            if current is None:
                raise _Missing()
            old = orjson.loads(current)
            if check is not None:
                try:
                    check(old)
                except DynamoDBError as exc:
                    raise _Refused(exc) from None
            result[:] = [old]
            return None

        await self._cas_existing(name, decide)
        self._cache.pop(name, None)
        return TableInfo(result[0])

    async def names(self, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Table names in order after ``after``: up to ``limit`` and whether more exist."""
        found: list[str] = []
        cursor: bytes | None = None
        # The catalog bucket is not a table bucket: a scan visits it in storage-key order per
        # segment only, so read all names (tables are few) and sort them here.
        while True:
            page = await self._handle.scan(CATALOG_BUCKET, 0, 1, cursor, 1000)
            found.extend(key.decode("utf-8") for key, _ in page.items)
            if page.last_key is None:
                break
            cursor = page.last_key
        found.sort()
        if after is not None:
            found = [n for n in found if n > after]
        return found[:limit], len(found) > limit

    async def all_tables(self) -> list[TableInfo]:
        tables: list[TableInfo] = []
        cursor: bytes | None = None
        while True:
            page = await self._handle.scan(CATALOG_BUCKET, 0, 1, cursor, 1000)
            tables.extend(TableInfo(orjson.loads(value)) for _, value in page.items)
            if page.last_key is None:
                return tables
            cursor = page.last_key


def _labelled(label: str, message: str) -> str:
    return f"{label}: {message}" if label else message
