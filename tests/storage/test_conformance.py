"""Runs the storage conformance kit (``dynamokv.storage.conformance``) on every registered engine.

Also on ``lmdb-overflow``: LMDB with a 2-byte inline-key threshold, so that the short random keys
of the kit exercise the overflow groups that real keys only reach past 509 bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from dynamokv.errors import ConfigError
from dynamokv.storage import conformance
from dynamokv.storage.base import StorageEngine
from dynamokv.storage.lmdb_engine import LmdbEngine
from dynamokv.storage.registry import ENGINES, open_engine

KINDS = [*sorted(ENGINES), "lmdb-overflow", "lmdb-fsync", "sqlite-fsync"]
DURABLE = [k for k in KINDS if k != "memory"]

Factory = Callable[[], StorageEngine]


def _factories(kind: str, root: Path) -> tuple[Factory, Factory]:
    """(make a fresh engine, reopen the last one made)."""
    counter = itertools.count()
    dirs: list[Path] = []

    def open_at(directory: Path) -> StorageEngine:
        if kind == "lmdb-overflow":
            return LmdbEngine(directory, max_inline_key_bytes=2, map_size_bytes=1 << 30)
        if kind.endswith("-fsync"):
            return open_engine(kind.removesuffix("-fsync"), directory, sync_mode="fsync")
        return open_engine(kind, directory)

    def make() -> StorageEngine:
        directory = root / f"engine{next(counter)}"
        dirs.append(directory)
        return open_at(directory)

    def reopen() -> StorageEngine:
        return open_at(dirs[-1])

    return make, reopen


@pytest.mark.parametrize("check", conformance.CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kind", KINDS)
def test_check(kind: str, check: Callable[[Factory], None], tmp_path: Path) -> None:
    make, _ = _factories(kind, tmp_path)
    check(make)


@pytest.mark.parametrize("kind", KINDS)
def test_model_comparison(kind: str, tmp_path: Path) -> None:
    make, _ = _factories(kind, tmp_path)
    conformance.run_model_comparison(make)


@pytest.mark.parametrize("kind", DURABLE)
def test_survives_reopen(kind: str, tmp_path: Path) -> None:
    make, reopen = _factories(kind, tmp_path)
    conformance.check_survives_reopen(make, reopen)


def test_check_engine_runs_the_whole_kit(tmp_path: Path) -> None:
    make, reopen = _factories("lmdb", tmp_path)
    conformance.check_engine(make, reopen)


def test_unknown_engine_lists_the_valid_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        open_engine("rocksdb", tmp_path)
    for name in ENGINES:
        assert name in str(info.value)


def test_unknown_sync_mode(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fsync"):
        open_engine("lmdb", tmp_path, sync_mode="sometimes")


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_open_engine_places_data_under_its_name(name: str, tmp_path: Path) -> None:
    engine = open_engine(name, tmp_path / "data")
    try:
        assert engine.info.name == name
        engine.put(b"k", b"v")
    finally:
        engine.close()
    if engine.info.durable:
        assert (tmp_path / "data" / name).is_dir()
        assert any((tmp_path / "data" / name).iterdir())
