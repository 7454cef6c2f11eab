"""Consumed capacity as DynamoDB reports it (ReturnConsumedCapacity TOTAL / INDEXES).

Owns: the units an item operation consumes on its table and on each secondary index it
touches, and the ConsumedCapacity structure with its per-index breakdown (``Table``,
``GlobalSecondaryIndexes``, ``LocalSecondaryIndexes``) under INDEXES. TOTAL reports the sum
only; NONE nothing.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.schema.catalog`,
:mod:`dynamokv.api.indexes`, :mod:`dynamokv.api.operations.common`.

An index write costs what writing the item's projection into the index costs (1 KB units): a
put or update of an item in the index writes its entry once; one that moves the entry (its
index key changed) deletes the old entry and writes the new one; an update that leaves the
projection unchanged writes nothing to that index. Nothing is throttled by these figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynamokv.api.attributes import Item, item_size
from dynamokv.api.indexes.layout import entry_key, index_projection
from dynamokv.api.operations.common import write_units
from dynamokv.api.schema.catalog import IndexInfo, TableInfo


def _entry(table: TableInfo, index: IndexInfo, item: Item | None
           ) -> tuple[bytes, Item] | None:
    """``item``'s entry in ``index`` (its key and projection), or None when the index does not
    hold the item: a key attribute (any of a multi-attribute key's) missing, of another type,
    empty or over its size limit, as the index's own upkeep decides."""
    if item is None:
        return None
    key = entry_key(table, index, item)
    if key is None:
        return None
    return key, index_projection(table, index, item)


def index_write_units(
    table: TableInfo, old: Item | None, new: Item | None
) -> tuple[dict[str, float], dict[str, float]]:
    """Write units per global and per local index for replacing ``old`` by ``new`` (either
    ``None``: absent or unknown)."""
    gsi: dict[str, float] = {}
    lsi: dict[str, float] = {}
    for name, index in table.indexes.items():
        before = _entry(table, index, old)
        after = _entry(table, index, new)
        if before == after:  # not in the index, or an entry the write leaves as it was
            continue
        if before is not None and after is not None and before[0] == after[0]:
            units = write_units(max(item_size(before[1]), item_size(after[1])))
        else:
            units = sum(write_units(item_size(e[1])) for e in (before, after) if e is not None)
        (gsi if index.is_global else lsi)[name] = units
    return gsi, lsi


def consumed(
    table: str,
    mode: str,
    *,
    read: bool,
    table_units: float,
    gsi: Mapping[str, float] | None = None,
    lsi: Mapping[str, float] | None = None,
) -> dict[str, Any] | None:
    """A ConsumedCapacity structure (``None`` when the client did not ask for one)."""
    if mode == "NONE":
        return None
    kind = "ReadCapacityUnits" if read else "WriteCapacityUnits"
    gsi = gsi or {}
    lsi = lsi or {}
    total = table_units + sum(gsi.values()) + sum(lsi.values())
    out: dict[str, Any] = {"TableName": table, "CapacityUnits": total, kind: total}
    if mode == "INDEXES":
        out["Table"] = {"CapacityUnits": table_units, kind: table_units}
        if gsi:
            out["GlobalSecondaryIndexes"] = {
                name: {"CapacityUnits": units, kind: units} for name, units in gsi.items()
            }
        if lsi:
            out["LocalSecondaryIndexes"] = {
                name: {"CapacityUnits": units, kind: units} for name, units in lsi.items()
            }
    return out


def write_consumed(
    table: TableInfo, mode: str, size: int, old: Item | None, new: Item | None
) -> dict[str, Any] | None:
    """The capacity of one item write of ``size`` bytes that replaced ``old`` by ``new``."""
    if mode == "NONE":
        return None
    gsi, lsi = index_write_units(table, old, new)
    return consumed(table.name, mode, read=False, table_units=write_units(size), gsi=gsi, lsi=lsi)


def read_consumed(
    table: TableInfo, index: IndexInfo | None, mode: str, units: float
) -> dict[str, Any] | None:
    """The capacity of a read of ``units``: of the table, or of one of its indexes."""
    if index is None:
        return consumed(table.name, mode, read=True, table_units=units)
    where = {index.name: units}
    if index.is_global:
        return consumed(table.name, mode, read=True, table_units=0.0, gsi=where)
    return consumed(table.name, mode, read=True, table_units=0.0, lsi=where)
