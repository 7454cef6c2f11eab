"""``dynamokv node start`` options beyond the basics: the config file, cluster name, advertised
address and TLS files, and how a file and flags combine.

Owns: ``add_options`` (the extra flags, and deferring every flag's default so that a flag left
out can come from ``--config``), ``resolve`` (flags > config file > defaults), and the
``TlsFiles`` / ``Limits`` the resolved options describe.
May import: stdlib, ``dynamokv.errors``, ``dynamokv.runtime.config``,
``dynamokv.runtime.config_file``, ``dynamokv.core.settings``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from dynamokv.core.messages import DEFAULT_CLUSTER
from dynamokv.core.settings import Limits
from dynamokv.errors import ConfigError
from dynamokv.runtime import config_file
from dynamokv.runtime.config import TlsFiles

REQUIRED = {"node_id": "--id", "listen": "--listen", "data_dir": "--data-dir"}
FILE_KEY = {"node_id": "id", "listen": "listen", "data_dir": "data_dir"}


def add_options(start: argparse.ArgumentParser) -> None:
    """Add the flags, then make every flag's default a fallback applied by ``resolve``."""
    start.add_argument("--config", type=Path, metavar="FILE",
                       help="TOML file with any of these options (key = flag without dashes, "
                       "- as _; see docs/operations.md); flags given here override it")
    start.add_argument("--cluster-name", default=DEFAULT_CLUSTER, metavar="NAME",
                       help="this node's cluster; peers, joins and rings of another cluster "
                       f"are refused (default {DEFAULT_CLUSTER})")
    start.add_argument("--advertise", metavar="HOST:PORT",
                       help="the address peers and clients dial (default: --listen, which "
                       "must then not be 0.0.0.0 or [::])")
    tls = start.add_argument_group("TLS (all three, or none)")
    tls.add_argument("--tls-cert", type=Path, metavar="PEM",
                     help="this node's certificate, signed by --tls-ca")
    tls.add_argument("--tls-key", type=Path, metavar="PEM", help="its private key")
    tls.add_argument("--tls-ca", type=Path, metavar="PEM",
                     help="the cluster's CA: peers and clients must present a certificate it "
                     "signed (mutual TLS); the HTTP API is served over HTTPS")
    defaults: dict[str, Any] = {}
    for action in start._actions:
        if action.dest in ("help", "config"):
            continue
        defaults[action.dest] = action.default
        action.default = None
        if action.dest in REQUIRED:
            action.required = False  # may come from the file; ``resolve`` checks
    start.set_defaults(_flag_defaults=defaults)


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fill what the command line left out from ``--config``, then from the defaults."""
    from_file: dict[str, Any] = config_file.load(args.config) if args.config else {}
    limits = {k.partition(".")[2]: v for k, v in from_file.items() if k.startswith("limits.")}
    for dest, value in from_file.items():
        if not dest.startswith("limits.") and getattr(args, dest, None) is None:
            setattr(args, dest, value)
    for dest, default in getattr(args, "_flag_defaults", {}).items():
        if getattr(args, dest, None) is None:
            setattr(args, dest, default)
    args.limits = replace(Limits(), **limits)
    for dest, flag in REQUIRED.items():
        if getattr(args, dest, None) is None:
            raise ConfigError(f"{flag} is required (or {FILE_KEY[dest]} = ... in --config)")
    return args


def tls_files(args: argparse.Namespace) -> TlsFiles | None:
    given: dict[str, Path | None] = {
        name: getattr(args, f"tls_{name}", None) for name in ("cert", "key", "ca")}
    if not any(given.values()):
        if getattr(args, "tls_http_cert", None) or getattr(args, "tls_http_key", None):
            raise ConfigError("tls.http_cert/http_key need tls.cert, tls.key and tls.ca too")
        return None
    missing = [f"--tls-{n} (tls.{n})" for n, v in given.items() if v is None]
    if missing:
        raise ConfigError(f"TLS needs a certificate, its key and the cluster CA; missing: "
                          f"{', '.join(missing)}")
    cert, key, ca = (Path(str(given[n])) for n in ("cert", "key", "ca"))
    return TlsFiles(cert=cert, key=key, ca=ca,
                    http_cert=getattr(args, "tls_http_cert", None),
                    http_key=getattr(args, "tls_http_key", None),
                    verify_hostname=bool(getattr(args, "tls_verify_hostname", False)))


__all__ = ["add_options", "resolve", "tls_files"]
