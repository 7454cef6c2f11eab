"""dynamokv: Amazon's Dynamo, built for real in Python.

Public surface: ``Client`` and ``AsyncClient`` (get/put/delete with siblings and contexts),
``Context``, ``GetResult``, and the exception tree from ``dynamokv.errors``.
May import: ``dynamokv.client``, ``dynamokv.errors``.
"""

from typing import TYPE_CHECKING, Any

from dynamokv.errors import (
    ConfigError,
    DynamoKVError,
    InvalidRequest,
    KeyTooLarge,
    NoNodeAvailable,
    Overloaded,
    ProtocolError,
    QuorumNotMet,
    RequestTimeout,
    StorageError,
    TooManySiblings,
    UnavailableError,
    ValueTooLarge,
)

if TYPE_CHECKING:
    from dynamokv.client import AsyncClient, Client, Context, GetResult

__version__ = "0.1.0"

_CLIENT_NAMES = {"AsyncClient", "Client", "Context", "GetResult"}


def __getattr__(name: str) -> Any:
    # The client (and with it asyncio, sockets and msgpack) loads on first use, so importing
    # the pure core (``dynamokv.core``) stays cheap and free of I/O modules.
    if name in _CLIENT_NAMES:
        from dynamokv import client

        return getattr(client, name)
    raise AttributeError(f"module 'dynamokv' has no attribute {name!r}")

__all__ = [
    "AsyncClient",
    "Client",
    "ConfigError",
    "Context",
    "DynamoKVError",
    "GetResult",
    "InvalidRequest",
    "KeyTooLarge",
    "NoNodeAvailable",
    "Overloaded",
    "ProtocolError",
    "QuorumNotMet",
    "RequestTimeout",
    "StorageError",
    "TooManySiblings",
    "UnavailableError",
    "ValueTooLarge",
    "__version__",
]
