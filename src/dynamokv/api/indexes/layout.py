"""The stored form of global secondary indexes: the key and value of an item's entry, the
base key an entry refers to, the buckets of a stored table description, the index statuses.

Owns: :func:`entry_key`, :func:`base_key_of`, :func:`index_projection`,
:func:`stored_gsi_buckets`, ``CREATING`` and ``ACTIVE``.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.handle`,
:mod:`dynamokv.api.layout.keycodec`, :mod:`dynamokv.api.schema.catalog`.

Layout. Each global index has its own bucket (:func:`dynamokv.api.schema.catalog.gsi_bucket`, under
the table bucket prefix, so the ring places an entry by its hash part). An item's entry is keyed
``compose_key(enc(index hash value), enc(index range value) + enc(base hash) + enc(base
range))`` -- the index's partition, then index sort order, ties broken by the base key, which
the entry key therefore carries -- and its value is the item's projection (KEYS_ONLY, INCLUDE
or ALL; the projection always holds the base and index keys). Items without the index's key
attributes (or with other types than the index's) have no entry, as in DynamoDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dynamokv.api.attributes import MAX_HASH_KEY_SIZE, AttributeValue, B, Item, N, S, value_size
from dynamokv.api.handle import compose_key, split_key
from dynamokv.api.layout.keycodec import decode_key_prefix, encode_key
from dynamokv.api.schema.catalog import IndexInfo, TableInfo, gsi_bucket, index_key_limit

CREATING, ACTIVE = "CREATING", "ACTIVE"


def index_projection(table: TableInfo, index: IndexInfo, item: Mapping[str, AttributeValue]
                     ) -> Item:
    """What an index holds of ``item``: everything (ALL), or the base and index keys plus the
    INCLUDE list."""
    if index.projection_type == "ALL":
        return dict(item)
    keep = set(table.key_names) | set(index.key_names)
    if index.projection_type == "INCLUDE":
        keep.update(index.non_key_attributes)
    return {name: value for name, value in item.items() if name in keep}


def _key_part(table: TableInfo, name: str, item: Mapping[str, AttributeValue],
              limit: int = MAX_HASH_KEY_SIZE) -> bytes | None:
    """The encoding of one key attribute, or ``None`` when DynamoDB would not index the item
    by it: missing, of another type than defined, empty, or over the size limit (an item
    written before the index existed may have any of these)."""
    value = item.get(name)
    if not isinstance(value, (S, N, B)) or value.type_name != table.types.get(name):
        return None
    if isinstance(value, (S, B)) and (not value.value or value_size(value) > limit):
        return None
    return encode_key(value)


def _parts(table: TableInfo, index: IndexInfo | None, names: Iterable[str],
           item: Mapping[str, AttributeValue]) -> bytes | None:
    """The concatenated encodings of ``names`` (``index``'s key attributes, size-checked; or,
    with ``index`` None, the base key, valid already)."""
    out = b""
    for name in names:
        limit = index_key_limit(index, name) if index is not None else MAX_HASH_KEY_SIZE
        part = _key_part(table, name, item, limit)
        if part is None:
            return None
        out += part
    return out


def entry_key(table: TableInfo, index: IndexInfo, item: Mapping[str, AttributeValue]
              ) -> bytes | None:
    """The key of ``item``'s entry in ``index`` (``None``: the item is not in the index). Also
    the position of an ExclusiveStartKey (index keys plus base keys) in the index.

    The hash part is the partition-key attributes' encodings in schema order, the sort part
    the sort-key attributes' then the base key's: encodings are self-delimiting, so the
    concatenations sort attribute by attribute and split again."""
    hash_part = _parts(table, index, index.partition_names, item)
    if hash_part is None:
        return None
    sort_part = _parts(table, index, index.sort_names, item)
    base_part = _parts(table, None, table.key_names, item)
    if sort_part is None or base_part is None:
        return None
    return compose_key(hash_part, sort_part + base_part)


def base_key_of(index: IndexInfo, key: bytes) -> bytes:
    """The storage key of the base item an entry key refers to."""
    _, sort_part = split_key(key)
    position = 0
    for _ in index.sort_names:
        _, position = decode_key_prefix(sort_part, position)
    _, middle = decode_key_prefix(sort_part, position)
    return compose_key(sort_part[position:middle], sort_part[middle:])


def stored_gsi_buckets(description: Mapping[str, Any]) -> list[str]:
    return [gsi_bucket(description["TableId"], index)
            for index in description.get("GlobalSecondaryIndexes") or ()]
