"""The exception tree of dynamokv, shared by the client, the CLI and the servers.

Owns: every exception a user of dynamokv may catch. May import: stdlib only.

::

    DynamoKVError
    ├── ConfigError                 bad configuration or command-line arguments
    ├── InvalidRequest              the request itself is wrong; retrying will not help
    │   ├── KeyTooLarge
    │   ├── ValueTooLarge
    │   └── TooManySiblings
    ├── ProtocolError               a peer sent bytes we cannot decode (bad frame, bad version)
    ├── UnavailableError            the cluster could not serve the request right now
    │   ├── QuorumNotMet            fewer than R/W replicas answered in time (details attached)
    │   ├── RequestTimeout          no decision before the deadline
    │   ├── Overloaded              too many requests in flight on the node; back off and retry
    │   └── NoNodeAvailable         the client could reach no node at all
    ├── StorageError                a storage engine failed (disk full, corrupt page, ...)
    └── StaleRing                   (internal) the receiver's ring is newer than the sender's

Every error carries a stable ``code`` string (the class name) that travels on the wire, and a
``details`` dict (which replicas answered, which did not, the limits that were hit).
"""

from __future__ import annotations

from typing import Any


class DynamoKVError(Exception):
    """Base class of every dynamokv error."""

    code: str = "DynamoKVError"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message


class ConfigError(DynamoKVError):
    code = "ConfigError"


class InvalidRequest(DynamoKVError):
    code = "InvalidRequest"


class KeyTooLarge(InvalidRequest):
    code = "KeyTooLarge"


class ValueTooLarge(InvalidRequest):
    code = "ValueTooLarge"


class TooManySiblings(InvalidRequest):
    code = "TooManySiblings"


class ProtocolError(DynamoKVError):
    code = "ProtocolError"


class UnavailableError(DynamoKVError):
    code = "UnavailableError"


class QuorumNotMet(UnavailableError):
    code = "QuorumNotMet"


class RequestTimeout(UnavailableError):
    code = "RequestTimeout"


class Overloaded(UnavailableError):
    code = "Overloaded"


class NoNodeAvailable(UnavailableError):
    code = "NoNodeAvailable"


class StorageError(DynamoKVError):
    code = "StorageError"


class StaleRing(DynamoKVError):
    code = "StaleRing"


_BY_CODE: dict[str, type[DynamoKVError]] = {
    cls.code: cls
    for cls in (
        DynamoKVError, ConfigError, InvalidRequest, KeyTooLarge, ValueTooLarge, TooManySiblings,
        ProtocolError, UnavailableError, QuorumNotMet, RequestTimeout, Overloaded,
        NoNodeAvailable,
        StorageError, StaleRing,
    )
}


def error_from_code(
    code: str, message: str, details: dict[str, Any] | None = None
) -> DynamoKVError:
    """Rebuild an exception from its wire form; unknown codes become the base class."""
    return _BY_CODE.get(code, DynamoKVError)(message, details)


__all__ = [
    "ConfigError", "DynamoKVError", "InvalidRequest", "KeyTooLarge", "NoNodeAvailable",
    "Overloaded",
    "ProtocolError", "QuorumNotMet", "RequestTimeout", "StaleRing", "StorageError",
    "TooManySiblings", "UnavailableError", "ValueTooLarge", "error_from_code",
]
