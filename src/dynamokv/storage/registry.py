"""Engine names to engine classes, and opening an engine under a node's data directory.

Owns: ``ENGINES`` and ``open_engine``.
May import: stdlib, ``dynamokv.storage.base``, ``dynamokv.errors``; engine modules are imported
lazily by name, so that choosing ``memory`` never imports ``lmdb``, and a missing optional
dependency fails only when its engine is asked for.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from dynamokv.errors import ConfigError
from dynamokv.storage.base import StorageEngine

# name -> "module:Class"
ENGINES: dict[str, str] = {
    "memory": "dynamokv.storage.memory:MemoryEngine",
    "lmdb": "dynamokv.storage.lmdb_engine:LmdbEngine",
    "sqlite": "dynamokv.storage.sqlite_engine:SqliteEngine",
}

SYNC_MODES = ("os", "fsync")

# Engines that keep nothing on disk: constructed without a directory or a sync mode.
_IN_MEMORY = frozenset({"memory"})


def engine_class(name: str) -> Any:
    """The class registered as ``name``; ``ConfigError`` listing the valid names if none is."""
    target = ENGINES.get(name)
    if target is None:
        raise ConfigError(
            f"unknown storage engine {name!r}: use one of {', '.join(sorted(ENGINES))}"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"storage engine {name!r} cannot be loaded ({exc}): install its dependency or "
            f"choose another of {', '.join(sorted(ENGINES))}"
        ) from exc
    return getattr(module, class_name)


def open_engine(name: str, data_dir: Path, *, sync_mode: str = "os") -> StorageEngine:
    """Open engine ``name`` in ``data_dir/<name>`` (created as needed).

    ``sync_mode`` is ``"os"`` (a write survives kill -9) or ``"fsync"`` (it survives power
    loss); it is ignored by the memory engine, which keeps nothing.
    """
    if sync_mode not in SYNC_MODES:
        raise ConfigError(f"unknown sync mode {sync_mode!r}: use one of {', '.join(SYNC_MODES)}")
    cls = engine_class(name)
    if name in _IN_MEMORY:
        engine: StorageEngine = cls()
        return engine
    directory = Path(data_dir) / name
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the data directory {directory}: {exc}") from exc
    engine = cls(directory, sync_mode=sync_mode)
    return engine


__all__ = ["ENGINES", "SYNC_MODES", "engine_class", "open_engine"]
