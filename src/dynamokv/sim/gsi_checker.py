"""Global secondary index convergence: at rest, an index is exactly a projection of its table.

Owns: ``IndexSpec`` (what the index is keyed and projects) and ``check_gsi``.
May import: stdlib only.

Given the final base items and the final index entries (both as DynamoDB JSON maps, attribute
name -> ``{"S": ...}``), after the system has quiesced:

1. every index entry is backed: it carries the base table's key, the base item with that key
   exists, has the index key attributes with the same values, and the entry's attributes are
   exactly the projection of the base item (``ALL``: every attribute; ``KEYS_ONLY``: the table
   and index keys; ``INCLUDE``: those and the listed attributes the item has);
2. every base item that has all the index key attributes is indexed, exactly once.

Violations come in the order of the inputs, at most ``VIOLATIONS_MAX``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

VIOLATIONS_MAX = 50

Item = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class IndexSpec:
    table_key: tuple[str, ...]  # the base table's key attributes: (hash,) or (hash, range)
    index_key: tuple[str, ...]  # the index's key attributes
    projection: Literal["ALL", "KEYS_ONLY", "INCLUDE"] = "ALL"
    include: tuple[str, ...] = ()  # NonKeyAttributes of an INCLUDE projection
    name: str = "index"

    def project(self, item: Item) -> dict[str, Any]:
        if self.projection == "ALL":
            return dict(item)
        keep = set(self.table_key) | set(self.index_key)
        if self.projection == "INCLUDE":
            keep |= set(self.include)
        return {name: value for name, value in item.items() if name in keep}


def _freeze(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value if isinstance(value, Hashable) else repr(value)


def _key_of(item: Item, names: tuple[str, ...]) -> Hashable | None:
    if any(name not in item for name in names):
        return None
    return tuple(_freeze(item[name]) for name in names)


def _show_key(item: Item, names: tuple[str, ...]) -> str:
    return ", ".join(f"{n}={_plain(item.get(n))}" for n in names)


def _plain(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value.values())))
    return repr(value)


def check_gsi(base_items: Iterable[Item], entries: Iterable[Item],
              spec: IndexSpec) -> list[str]:
    """Violations of rules 1 and 2 of the module docstring (empty when the index is exact)."""
    out: list[str] = []

    def report(text: str) -> None:
        if len(out) < VIOLATIONS_MAX:
            out.append(f"{spec.name}: {text}")

    base: dict[Hashable, Item] = {}
    for item in base_items:
        key = _key_of(item, spec.table_key)
        if key is None:
            raise ValueError(f"a base item lacks the table key {spec.table_key}: {item!r}")
        base[key] = item
    seen: set[Hashable] = set()
    for entry in entries:
        key = _key_of(entry, spec.table_key)
        if key is None:
            report(f"entry without the table key ({_show_key(entry, spec.table_key)})")
            continue
        where = _show_key(entry, spec.table_key)
        if key in seen:
            report(f"item {where} indexed more than once")
            continue
        seen.add(key)
        backing = base.get(key)
        if backing is None:
            report(f"entry for item {where}, which does not exist (orphan)")
        elif _key_of(backing, spec.index_key) is None:
            report(f"entry for item {where}, which no longer has the index key "
                   f"{'/'.join(spec.index_key)} (stale)")
        else:
            _compare(spec.project(backing), entry, where, report)
    for key, item in base.items():
        if key not in seen and _key_of(item, spec.index_key) is not None:
            report(f"item {_show_key(item, spec.table_key)} has the index key "
                   f"({_show_key(item, spec.index_key)}) but is not indexed (missing)")
    return out


def _compare(expected: dict[str, Any], entry: Item, where: str, report: Any) -> None:
    names = sorted(set(expected) | set(entry))
    differ = [n for n in names if _freeze(expected.get(n)) != _freeze(entry.get(n))]
    if differ:
        detail = "; ".join(f"{n}: item {_plain(expected.get(n))}, entry {_plain(entry.get(n))}"
                           for n in differ[:5])
        report(f"entry for item {where} differs from the item's projection ({detail})")
