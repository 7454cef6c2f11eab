"""TLS for the CLI's connections to nodes that run with mutual TLS.

Owns: the ``--tls-ca/--tls-cert/--tls-key`` client flags (defaulting to ``$DYNAMOKV_TLS_CA``,
``$DYNAMOKV_TLS_CERT``, ``$DYNAMOKV_TLS_KEY``), and the one SSL context every client the CLI
makes for this command uses (``context()``).
May import: stdlib, ``dynamokv.runtime.tls``, ``dynamokv.errors``.
"""

from __future__ import annotations

import argparse
import os
import ssl
from pathlib import Path

ENV = {"tls_ca": "DYNAMOKV_TLS_CA", "tls_cert": "DYNAMOKV_TLS_CERT",
       "tls_key": "DYNAMOKV_TLS_KEY"}

_context: ssl.SSLContext | None = None


def add_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--tls-ca", type=Path, metavar="PEM",
                       help=f"talk TLS to nodes whose certificates this CA signed "
                       f"(default ${ENV['tls_ca']})")
    group.add_argument("--tls-cert", type=Path, metavar="PEM",
                       help=f"client certificate for mutual TLS (default ${ENV['tls_cert']})")
    group.add_argument("--tls-key", type=Path, metavar="PEM",
                       help=f"its key (default ${ENV['tls_key']})")


def configure(args: argparse.Namespace) -> None:
    """Build the context for this command from its flags or the environment (none: plain)."""
    global _context
    values = {}
    for dest, env in ENV.items():
        value = getattr(args, dest, None)
        values[dest] = value or (Path(os.environ[env]) if os.environ.get(env) else None)
    if not hasattr(args, "nodes") or values["tls_ca"] is None:  # not a client command
        _context = None
        return
    from dynamokv.runtime.tls import client_context

    _context = client_context(values["tls_ca"], values["tls_cert"], values["tls_key"])


def context() -> ssl.SSLContext | None:
    return _context


__all__ = ["add_options", "configure", "context"]
