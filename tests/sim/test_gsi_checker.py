"""The GSI checker: entries backed by their base items, base items with the index key indexed."""

from __future__ import annotations

import pytest

from dynamokv.sim.gsi_checker import IndexSpec, check_gsi

SPEC = IndexSpec(table_key=("pk",), index_key=("city", "age"), projection="ALL", name="byCity")


def item(pk: str, **attrs: str) -> dict[str, dict[str, str]]:
    out = {"pk": {"S": pk}}
    for name, value in attrs.items():
        out[name] = {"N": value} if value.isdigit() else {"S": value}
    return out


def test_an_exact_index_passes() -> None:
    base = [item("1", city="Oslo", age="30", x="a"), item("2", city="Rome", age="40"),
            item("3", x="no index key")]
    entries = [item("2", city="Rome", age="40"), item("1", city="Oslo", age="30", x="a")]
    assert check_gsi(base, entries, SPEC) == []


def test_orphan_stale_duplicate_and_missing_entries_are_reported() -> None:
    base = [item("1", city="Oslo", age="30"), item("2", x="lost its city"),
            item("4", city="Lima", age="20")]
    entries = [item("1", city="Oslo", age="30"), item("1", city="Oslo", age="30"),
               item("2", city="Rome", age="40"), item("3", city="Rome", age="50"),
               {"city": {"S": "Rome"}}]
    assert check_gsi(base, entries, SPEC) == [
        "byCity: item pk=1 indexed more than once",
        "byCity: entry for item pk=2, which no longer has the index key city/age (stale)",
        "byCity: entry for item pk=3, which does not exist (orphan)",
        "byCity: entry without the table key (pk=None)",
        "byCity: item pk=4 has the index key (city=Lima, age=20) but is not indexed (missing)",
    ]


def test_projected_attributes_must_equal_the_items() -> None:
    base = [item("1", city="Oslo", age="30", x="new", y="big")]
    stale = [item("1", city="Oslo", age="30", x="old", y="big")]
    assert check_gsi(base, stale, SPEC) == [
        "byCity: entry for item pk=1 differs from the item's projection (x: item new, entry old)"]
    moved = [item("1", city="Bergen", age="30", x="new", y="big")]
    assert "city: item Oslo, entry Bergen" in check_gsi(base, moved, SPEC)[0]


def test_keys_only_and_include_projections() -> None:
    base = [item("1", city="Oslo", age="30", x="a", y="b")]
    keys_only = IndexSpec(("pk",), ("city", "age"), "KEYS_ONLY")
    assert check_gsi(base, [item("1", city="Oslo", age="30")], keys_only) == []
    assert check_gsi(base, [item("1", city="Oslo", age="30", x="a")], keys_only) != []
    include = IndexSpec(("pk",), ("city", "age"), "INCLUDE", ("x", "z"))
    assert check_gsi(base, [item("1", city="Oslo", age="30", x="a")], include) == []
    assert check_gsi(base, [item("1", city="Oslo", age="30")], include) != []


def test_a_base_item_without_its_table_key_is_bad_input() -> None:
    with pytest.raises(ValueError, match="lacks the table key"):
        check_gsi([{"x": {"S": "1"}}], [], SPEC)
