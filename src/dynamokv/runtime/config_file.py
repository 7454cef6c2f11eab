"""The node configuration file: TOML, one key per ``dynamokv node start`` flag.

Owns: ``load(path)`` — reading and checking the file, and naming every bad key with its file
and the form it should have — and the table of keys (``KEYS``, ``TABLES``).
May import: stdlib (``tomllib``), ``dynamokv.core.settings``, ``dynamokv.errors``.

Every top-level key is a flag of ``node start`` without the leading dashes and with ``_`` for
``-`` (``--data-dir`` is ``data_dir``; ``uvloop`` and ``admission_control`` are the ``--no-``
flags' opposites; only the fault-injection flags for tests have no key); ``[tls]`` holds the
certificate files and ``[limits]`` any field of ``Limits``. Relative paths are relative to
the file's directory, so a config and its certificates can move together. The result maps
argparse destinations to values; the CLI lets flags given on the command line override them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from dynamokv.core.settings import Limits
from dynamokv.errors import ConfigError

Convert = Callable[[Any, Path], Any]  # (TOML value, the file's directory) -> option value


class _Bad(Exception):
    """A value of the wrong form; the message says what was expected."""


def _text(v: Any, _: Path) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad("a non-empty string")
    return v


def _path(v: Any, base: Path) -> Path:
    return base / Path(_text(v, base)).expanduser()


def _int(v: Any, _: Path) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise _Bad("a whole number of at least 1")
    return v


def _count(v: Any, _: Path) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _Bad("a whole number of at least 0")
    return v


def _seconds(v: Any, _: Path) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
        raise _Bad("a number of seconds above 0")
    return float(v)


def _bool(v: Any, _: Path) -> bool:
    if not isinstance(v, bool):
        raise _Bad("true or false")
    return v


def _seeds(v: Any, base: Path) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(s, str) for s in v):
        return ",".join(v)
    raise _Bad('a list of "host:port" strings')


def _choice(*allowed: str) -> Convert:
    def convert(v: Any, base: Path) -> str:
        if v not in allowed:
            raise _Bad(" or ".join(repr(a) for a in allowed))
        return str(v)
    return convert


def _not(convert: Convert) -> Convert:
    return lambda v, base: not convert(v, base)


# key -> (argparse destination, converter)
KEYS: dict[str, tuple[str, Convert]] = {
    "id": ("node_id", _text),
    "cluster_name": ("cluster_name", _text),
    "listen": ("listen", _text),
    "advertise": ("advertise", _text),
    "seeds": ("seeds", _seeds),
    "data_dir": ("data_dir", _path),
    "engine": ("engine", _choice("lmdb", "sqlite", "memory")),
    "sync": ("sync", _choice("os", "fsync")),
    "metrics": ("metrics", _text),
    "http": ("http", _text),
    "ring_size": ("ring_size", _int),
    "n": ("n", _int),
    "r": ("r", _int),
    "w": ("w", _int),
    "aae_interval": ("aae_interval", _seconds),
    "staged_join": ("staged_join", _bool),
    "uvloop": ("no_uvloop", _not(_bool)),
    "credentials": ("credentials", _path),  # DynamoDB API keys, as --credentials FILE
    "table_sweep_interval": ("table_sweep_interval", _seconds),
    "stream_shard_roll": ("stream_shard_roll", _seconds),  # a stream shard's period
    "admission_control": ("no_admission_control", _not(_bool)),
    # The DynamoDB API's limits, as the --http-* flags.
    "http_max_connections": ("http_max_connections", _int),
    "http_max_connections_per_client": ("http_max_connections_per_client", _int),
    "http_max_buffered_mb": ("http_max_buffered_mb", _int),
    "http_idle_timeout": ("http_idle_timeout", _seconds),
    "http_compress_min_bytes": ("http_compress_min_bytes", _count),
}
TABLES: dict[str, dict[str, tuple[str, Convert]]] = {
    "tls": {
        "cert": ("tls_cert", _path),
        "key": ("tls_key", _path),
        "ca": ("tls_ca", _path),
        "http_cert": ("tls_http_cert", _path),
        "http_key": ("tls_http_key", _path),
        "verify_hostname": ("tls_verify_hostname", _bool),
    },
    "limits": {f.name: (f"limits.{f.name}", _int) for f in fields(Limits)},
}


def load(path: Path) -> dict[str, Any]:
    """The options in the TOML file at ``path``, by argparse destination (``limits.X`` for a
    field of ``Limits``). ``ConfigError`` names the file and the key of any mistake."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    base = path.resolve().parent
    out: dict[str, Any] = {}
    for key, value in doc.items():
        table = TABLES.get(key)
        if table is not None:
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: [{key}] must be a table")
            for sub, sub_value in value.items():
                _put(out, table, sub, sub_value, base, path, f"{key}.")
        else:
            _put(out, KEYS, key, value, base, path, "")
    return out


def _put(out: dict[str, Any], keys: dict[str, tuple[str, Convert]], key: str, value: Any,
         base: Path, path: Path, prefix: str) -> None:
    entry = keys.get(key)
    if entry is None:
        known = ", ".join(sorted(keys) + ([f"[{t}]" for t in TABLES] if not prefix else []))
        raise ConfigError(f"{path}: unknown key '{prefix}{key}'; known: {known}")
    dest, convert = entry
    try:
        out[dest] = convert(value, base)
    except _Bad as exc:
        raise ConfigError(f"{path}: {prefix}{key} must be {exc}, not {value!r}") from None


__all__ = ["KEYS", "TABLES", "load"]
