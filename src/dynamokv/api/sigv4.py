"""AWS Signature Version 4 verification of incoming DynamoDB requests.

Owns: :class:`AuthConfig` (the access keys a server accepts) and :func:`verify_request`, which
rebuilds the canonical request and string to sign of a request, derives the signing key with
the HMAC chain and compares signatures; and DynamoDB's errors for each way a request can fail
authentication.
May import: stdlib, :mod:`dynamokv.api.errors`.

Policy. Without an ``AuthConfig`` (the default, meant for local use like DynamoDB Local) every
request is accepted, signed or not, whatever its credentials: SDKs always sign, with whatever
keys they were given, and nothing is checked. With an ``AuthConfig`` every request must carry
an ``Authorization: AWS4-HMAC-SHA256 ...`` header signed by one of its access keys, within
``max_skew_seconds`` of the server's clock. The region and service in the credential scope are
taken from the request (a client signs for the region it was configured with).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from dynamokv.api.errors import DynamoDBError, MissingAuthenticationTokenException

ALGORITHM = "AWS4-HMAC-SHA256"
_UNSIGNED = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class AuthConfig:
    """Access key id -> secret access key; a request must be signed by one of them."""

    credentials: Mapping[str, str] = field(default_factory=dict)
    max_skew_seconds: float = 900.0


class UnrecognizedClientException(DynamoDBError):
    error_type = "UnrecognizedClientException"
    default_message = "The security token included in the request is invalid."


class InvalidSignatureException(DynamoDBError):
    error_type = "InvalidSignatureException"
    default_message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service "
        "documentation for details."
    )


class IncompleteSignatureException(DynamoDBError):
    error_type = "IncompleteSignatureException"


@dataclass(frozen=True, slots=True)
class _Authorization:
    access_key: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    terminal: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> _Authorization:
    """Split ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} is supported)"
        )
    parts: dict[str, str] = {}
    for piece in rest.split(","):
        name, sep, text = piece.strip().partition("=")
        if sep:
            parts[name.strip()] = text.strip()
    missing = [p for p in ("Credential", "SignedHeaders", "Signature") if not parts.get(p)]
    if missing:
        raise IncompleteSignatureException(
            " ".join(f"Authorization header requires '{p}' parameter." for p in missing)
            + f" Authorization={value}"
        )
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or not all(scope):
        raise IncompleteSignatureException(
            f"Credential should be scoped to a valid region, not '{parts['Credential']}'. "
        )
    access_key, date, region, service, terminal = scope
    if terminal != "aws4_request":
        raise IncompleteSignatureException(
            "Credential should be scoped with a valid terminator: 'aws4_request', "
            f"not '{terminal}'. "
        )
    signed = tuple(parts["SignedHeaders"].split(";"))
    return _Authorization(access_key, date, region, service, terminal, signed, parts["Signature"])


def _uri_encode(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.~")


def canonical_uri(path: str) -> str:
    """Each path segment decoded then encoded once, as botocore does for non-S3 services."""
    return urllib.parse.quote(urllib.parse.unquote(path or "/"), safe="/~") or "/"


def canonical_query(query: str) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(pairs))


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    payload_hash: str,
) -> str:
    lines = [method.upper(), canonical_uri(path), canonical_query(query)]
    # Header values are trimmed and inner runs of spaces collapsed (the SigV4 rule).
    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed_headers
    )
    lines.append(canonical_headers)
    lines.append(";".join(signed_headers))
    lines.append(payload_hash)
    return "\n".join(lines)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The HMAC chain: kDate, kRegion, kService, kSigning."""
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def _parse_amz_date(text: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(text, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        return None


def verify_request(
    auth: AuthConfig | None,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
) -> str | None:
    """Check the request's signature; return the access key id that signed it.

    ``headers`` has lower-case names (repeated headers joined by ``,``). Without ``auth``
    nothing is checked and ``None`` is returned. Raises the DynamoDB error the service would.
    """
    if auth is None:
        return None
    header = headers.get("authorization")
    if not header:
        raise MissingAuthenticationTokenException()
    parsed = parse_authorization(header)
    secret = auth.credentials.get(parsed.access_key)
    if secret is None:
        raise UnrecognizedClientException()
    amz_date = headers.get("x-amz-date", "")
    signed_at = _parse_amz_date(amz_date)
    if signed_at is None:
        raise IncompleteSignatureException(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
            "header."
        )
    if "host" not in parsed.signed_headers:
        raise InvalidSignatureException(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    clock = time.time() if now is None else now
    if abs(clock - signed_at) > auth.max_skew_seconds:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock))
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier than {stamp} "
            f"({stamp} - {int(auth.max_skew_seconds // 60)} min.)"
            if signed_at < clock
            else f"Signature not yet current: {amz_date} is still later than {stamp} "
            f"({stamp} + {int(auth.max_skew_seconds // 60)} min.)"
        )
    if not amz_date.startswith(parsed.date):
        raise InvalidSignatureException(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{parsed.date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    payload_hash = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    if payload_hash != _UNSIGNED and payload_hash != hashlib.sha256(body).hexdigest():
        raise InvalidSignatureException(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    request = canonical_request(method, path, query, headers, parsed.signed_headers, payload_hash)
    scope = f"{parsed.date}/{parsed.region}/{parsed.service}/{parsed.terminal}"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(request.encode("utf-8")).hexdigest()]
    )
    key = signing_key(secret, parsed.date, parsed.region, parsed.service)
    expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parsed.signature):
        raise InvalidSignatureException()
    return parsed.access_key
