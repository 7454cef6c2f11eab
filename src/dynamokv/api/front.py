"""The HTTP front matter of the DynamoDB endpoint, answered before any operation runs.

Owns: the health answer (``GET /``, as DynamoDB: ``healthy: <host>``), CORS (``Origin`` gets
``Access-Control-Allow-Origin: *``; an ``OPTIONS`` preflight with an ``Origin`` is answered 200
with the requested headers and method echoed, as DynamoDB does), the 404
``<UnknownOperationException/>`` of any other method or path or of a body that is not JSON,
``Content-Encoding`` of requests (gzip, deflate; the decoded size is bounded; a body that does
not decode is DynamoDB's 500) and of responses (gzip or deflate as DynamoDB picks from
``Accept-Encoding``, when the body is large enough; ``x-amz-crc32`` then covers the compressed
bytes, as DynamoDB's does), and the per-operation body caps that let a server refuse a request
by its size before parsing it.
May import: stdlib, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.attributes`.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dynamokv.api.attributes import MAX_ITEM_SIZE
from dynamokv.api.errors import DynamoDBError, InternalServerError, ValidationException

JSON_TYPES = ("application/x-amz-json-1.0", "application/json")
NOT_FOUND_BODY = b"<UnknownOperationException/>\n"
CORS_MAX_AGE = "172800"
# Browsers only show a script the response headers named here; the SDKs read these.
CORS_EXPOSE = "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,x-amz-crc32,Date"

# A PutItem or UpdateItem body larger than this cannot carry an item of at most 400 KB as any
# SDK encodes it (the JSON of the smallest attributes, e.g. ``"a": {"NULL": true}, ``, is at
# most ~10.5 bytes per byte of item size), so it is refused before it is parsed.
ITEM_BODY_CAP = MAX_ITEM_SIZE * 12 + 64 * 1024
ITEM_TOO_LARGE = {
    "PutItem": "Item size has exceeded the maximum allowed size",
    "UpdateItem": "Item size to update has exceeded the maximum allowed size",
}

COMPRESS_LEVEL = 1  # JSON compresses well even at level 1; a higher level costs loop time


class RequestTooLarge(DynamoDBError):
    """A body (or its decoded form) above the server's limit: HTTP 413."""

    error_type = "ValidationException"
    default_status = 413
    default_message = "Request body too large"


@dataclass(frozen=True, slots=True)
class BodyCap:
    """The largest body an operation accepts, and (made when asked for: every request looks
    its cap up, few exceed it) the error beyond it."""

    limit: int
    make_error: Callable[[], DynamoDBError]

    @property
    def error(self) -> DynamoDBError:
        return self.make_error()


def body_cap(target: str, max_body: int) -> BodyCap:
    """The cap for the operation named by an ``X-Amz-Target`` value."""
    operation = target.rpartition(".")[2]
    message = ITEM_TOO_LARGE.get(operation)
    if message is None or max_body <= ITEM_BODY_CAP:
        message = None  # any other target, known or not, shares one cap per size
    cap = _CAPS.get((message, max_body))
    if cap is None:
        if message is not None:
            cap = BodyCap(ITEM_BODY_CAP, functools.partial(ValidationException, message))
        else:
            cap = BodyCap(max_body, RequestTooLarge)
        if len(_CAPS) < 256:  # a handful of messages times the servers' body limits
            _CAPS[(message, max_body)] = cap
    return cap


_CAPS: dict[tuple[str | None, int], BodyCap] = {}


def precheck_items(operation: str, params: Mapping[str, object]) -> None:
    """Refuse an item write whose attribute names alone pass 400 KB, before the item is
    converted and validated (about 15 us per attribute on the event loop): the names are a
    lower bound of the item's size, summed in a few ms even for 600,000 attributes."""
    if operation == "PutItem":
        _check_names(params.get("Item"), ITEM_TOO_LARGE["PutItem"])
    elif operation == "BatchWriteItem":
        tables = params.get("RequestItems")
        for writes in tables.values() if isinstance(tables, dict) else ():
            for write in writes if isinstance(writes, list) else ():
                put = write.get("PutRequest") if isinstance(write, dict) else None
                if isinstance(put, dict):
                    _check_names(put.get("Item"), ITEM_TOO_LARGE["PutItem"])


def _check_names(item: object, message: str) -> None:
    if not isinstance(item, dict) or len(item) <= MAX_ITEM_SIZE // 64:
        return  # only an item of thousands of attributes is worth the sum
    names: dict[str, object] = item
    if sum(map(len, names)) > MAX_ITEM_SIZE:  # characters <= UTF-8 bytes: a lower bound
        raise ValidationException(message)


# --------------------------------------------------------------------------- health, CORS, 404


def is_health_path(target: str) -> bool:
    """Whether a ``GET`` of ``target`` is the health check: the root only, as DynamoDB
    (another path is a 404 there)."""
    return target.partition("?")[0] == "/"


def health_body(region: str, host: str | None = None) -> bytes:
    """``healthy: <the Host the client named>``: at AWS that is
    ``dynamodb.<region>.amazonaws.com``, the fallback for a request without ``Host``.
    DynamoDB's answer ends with a space; probes written against it may compare exactly."""
    name = host.strip() if host else f"dynamodb.{region}.amazonaws.com"
    return f"healthy: {name} ".encode("utf-8", "replace")


def cors_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """What every answer to a request with an ``Origin`` carries."""
    if not headers.get("origin"):
        return []
    return [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", CORS_EXPOSE)]


def preflight_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The answer to ``OPTIONS`` with an ``Origin``: echo what the browser asks to send."""
    out = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", CORS_EXPOSE)]
    asked_headers = headers.get("access-control-request-headers")
    if asked_headers:
        out.append(("Access-Control-Allow-Headers", asked_headers))
    asked_method = headers.get("access-control-request-method")
    if asked_method:
        out.append(("Access-Control-Allow-Methods", asked_method))
    out.append(("Access-Control-Max-Age", CORS_MAX_AGE))
    return out


def content_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def refused_content_type(headers: Mapping[str, str], body: bytes) -> bool:
    """A body DynamoDB would not read as JSON (its answer is the 404). A request without any
    ``Content-Type`` is read, as local tools and tests often omit it."""
    kind = content_type(headers)
    return bool(body) and bool(kind) and kind not in JSON_TYPES


def response_type(headers: Mapping[str, str]) -> str:
    """DynamoDB answers ``application/json`` to a request sent as such, else its own type."""
    return "application/json" if content_type(headers) == "application/json" else JSON_TYPES[0]


# --------------------------------------------------------------------------- content coding


def decode_body(headers: Mapping[str, str], body: bytes, limit: int) -> bytes:
    """The body with its ``Content-Encoding`` undone; at most ``limit`` decoded bytes.
    DynamoDB answers a coding it does not know, or a body that is not what the coding
    says, with a 500 (InternalServerError), not a 400."""
    coding = headers.get("content-encoding", "").strip().lower()
    if coding in ("", "identity"):
        return body
    if coding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif coding == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise InternalServerError(f"Unsupported Content-Encoding: {coding}")
    try:
        return _inflate(body, wbits, limit)
    except zlib.error:
        if coding != "deflate":
            raise _corrupt(coding) from None
    try:  # some clients send raw deflate (no zlib header) for "deflate"
        return _inflate(body, -zlib.MAX_WBITS, limit)
    except zlib.error:
        raise _corrupt(coding) from None


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    """Every member of ``body`` inflated (gzip allows members one after another; anything
    else after a member is an error, not silently dropped)."""
    out = bytearray()
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits)
        out += inflater.decompress(rest, limit + 1 - len(out))
        if len(out) > limit:
            raise RequestTooLarge()
        if not inflater.eof:
            raise zlib.error("truncated stream")
        rest = inflater.unused_data
        if not rest:
            return bytes(out)


def _corrupt(coding: str) -> InternalServerError:
    return InternalServerError(f"The request body is not valid {coding} data")


def accepted_coding(headers: Mapping[str, str]) -> str | None:
    """``gzip`` or ``deflate`` as DynamoDB picks one from ``Accept-Encoding``, else None.

    The highest weight wins (``q`` clamped to 0..1; a ``q`` that is no number counts as 1;
    the first ``q`` of an entry counts; a coding listed twice keeps its best weight). A
    coding named outright beats one only ``*`` admits; among codings named outright the one
    listed first wins, and ``*`` alone gives gzip. Weight 0 refuses a coding."""
    named: dict[str, float] = {}
    star: float | None = None
    for part in headers.get("accept-encoding", "").split(","):
        name, _, params = part.partition(";")
        name = name.strip().lower()
        if name not in ("gzip", "deflate", "*"):
            continue  # identity, other codings and malformed entries choose nothing
        weight = _weight(params)
        if name == "*":
            star = weight if star is None else max(star, weight)
        else:
            named[name] = max(named.get(name, weight), weight)
    best: tuple[float, int, int] | None = None
    choice = None
    for coding in ("gzip", "deflate"):
        if coding in named:
            rank = (named[coding], 1, -list(named).index(coding))
        elif star is not None:
            rank = (star, 0, 0)
        else:
            continue
        if rank[0] > 0 and (best is None or rank > best):
            best, choice = rank, coding
    return choice


def _weight(params: str) -> float:
    for param in params.split(";"):
        key, eq, value = param.partition("=")
        if eq and key.strip().lower() == "q":
            try:
                return min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                return 1.0
    return 1.0


def compress(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        out = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    else:
        out = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS)
    return out.compress(body) + out.flush()
