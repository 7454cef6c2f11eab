"""AWS Signature Version 4 verification of incoming DynamoDB requests, and the access keys.

Owns: :class:`AuthConfig` (the access keys a server accepts), :func:`load_credentials` (reads
them from a file of ``ACCESS_KEY_ID SECRET`` lines) and :func:`verify_request`, which checks a
request in the order DynamoDB does -- an ``AWS4-`` Authorization header, its parameters and a
date, the date's format and freshness, ``host`` among the signed headers, the algorithm, the
credential scope, the access key, then the signature itself (canonical request, string to sign,
HMAC chain) -- and raises DynamoDB's error, with its wording, for the first check that fails.
May import: stdlib, :mod:`dynamokv.api.errors`, :mod:`dynamokv.errors`.

Policy. Without an ``AuthConfig`` (the default, meant for local use like DynamoDB Local) any
credentials are accepted: an unsigned request (no ``Authorization``, no ``X-Amz-Date``: curl, a
test) is served unchecked, and a signed one -- SDKs always sign, with whatever keys they were
given -- is checked as DynamoDB checks it up to the key: a malformed or missing Authorization,
a stale or future date, a bad scope get DynamoDB's errors, but no key or secret is looked up.
With an ``AuthConfig`` every request must carry
an ``Authorization: AWS4-HMAC-SHA256 ...`` header signed by one of its access keys, within
``max_skew_seconds`` (15 minutes, as AWS) of the server's clock. The region in the credential
scope is taken from the request (a client signs for the region it was configured with); the
service must be ``dynamodb``. Session tokens (temporary credentials) are never valid here.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dynamokv.api.errors import (
    CORAL_SERVICE_NAMESPACE,
    DynamoDBError,
    MissingAuthenticationTokenException,
)
from dynamokv.errors import ConfigError

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "dynamodb"
_UNSIGNED = "UNSIGNED-PAYLOAD"
_STAMP = "%Y%m%dT%H%M%SZ"
OPEN_SKEW_SECONDS = 900.0  # how far a signed request's date may be off, as AWS allows


@dataclass(frozen=True)
class AuthConfig:
    """Access key id -> secret access key; a request must be signed by one of them."""

    credentials: Mapping[str, str] = field(default_factory=dict)
    max_skew_seconds: float = 900.0


def load_credentials(path: Path) -> AuthConfig:
    """Read ``ACCESS_KEY_ID SECRET`` lines (blank lines and ``#`` comments skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--credentials {path}: cannot read it: {exc}") from None
    keys: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ConfigError(
                f"--credentials {path}, line {number}: expected ACCESS_KEY_ID SECRET "
                f"(two words), found {len(fields)}"
            )
        key, secret = fields
        if key in keys:
            raise ConfigError(f"--credentials {path}, line {number}: {key} is listed twice")
        keys[key] = secret
    if not keys:
        raise ConfigError(f"--credentials {path}: no access keys in the file")
    return AuthConfig(keys)


class _AuthError(DynamoDBError):
    namespace = CORAL_SERVICE_NAMESPACE


class UnrecognizedClientException(_AuthError):
    error_type = "UnrecognizedClientException"
    default_message = "The security token included in the request is invalid."


class InvalidSignatureException(_AuthError):
    error_type = "InvalidSignatureException"
    default_message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service "
        "documentation for details."
    )


class IncompleteSignatureException(_AuthError):
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
    algorithm: str
    credential: str


def parse_authorization(value: str, has_date: bool = True) -> _Authorization:
    """Split ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""
    algorithm, _, rest = value.strip().partition(" ")
    parts: dict[str, str] = {}
    for piece in rest.replace(",", " ").split():
        name, sep, text = piece.partition("=")
        if sep:
            parts[name] = text
    message = "".join(
        f"Authorization header requires '{p}' parameter. "
        for p in ("Credential", "Signature", "SignedHeaders") if not parts.get(p)
    )
    if not has_date:
        message += ("Authorization header requires existence of either a 'X-Amz-Date' or a "
                    "'Date' header. ")
    if message:
        raise IncompleteSignatureException(message + f"Authorization={value}")
    scope = parts["Credential"].rstrip("/").split("/")
    if len(scope) != 5:
        scope = ["", "", "", "", ""]  # reported after the date and algorithm checks, as AWS
    access_key, date, region, service, terminal = scope
    signed = tuple(parts["SignedHeaders"].lower().split(";"))
    return _Authorization(access_key, date, region, service, terminal, signed,
                          parts["Signature"], algorithm, parts["Credential"])


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
    """Seconds since the epoch of ``YYYYMMDDTHHMMSSZ`` (by hand: ``time.strptime`` cost more
    than the rest of the open server's check of a signed request)."""
    if len(text) != 16 or text[8] != "T" or text[15] != "Z":
        return None
    digits = text[:8] + text[9:15]
    if not (digits.isascii() and digits.isdigit()):
        return None
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    hour, minute, second = int(digits[8:10]), int(digits[10:12]), int(digits[12:14])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year or 1, month)[1]
            and hour < 24 and minute < 60 and second < 62):
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def payload_hash_of(body: bytes) -> str:
    """The SHA-256 of a body (hashlib releases the GIL: large bodies can hash in a thread)."""
    return hashlib.sha256(body).hexdigest()


def verify_request(
    auth: AuthConfig | None,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    body_hash: str | None = None,
) -> str | None:
    """Check the request's signature; return the access key id that signed it.

    ``headers`` has lower-case names (repeated headers joined by ``,``). Without ``auth`` a
    request with neither ``Authorization`` nor ``X-Amz-Date`` is accepted unchecked (``None``
    is returned), and a signed one is checked for everything but its key and secret. ``body_hash``
    is the body's SHA-256 if the caller computed it already. Raises the DynamoDB error the
    service would.
    """
    if auth is None and not headers.get("authorization") and not headers.get("x-amz-date"):
        return None  # unsigned: a local tool (curl, a test) talking to an open server
    clock = time.time() if now is None else now
    if auth is None:  # any key, any secret: the open server's policy
        return _open_check(headers, clock)
    parsed, amz_date = _check_form(headers, clock, auth.max_skew_seconds)
    secret = auth.credentials.get(parsed.access_key)
    if secret is None:
        raise UnrecognizedClientException()
    if headers.get("x-amz-security-token"):
        # Temporary credentials are never issued here, so no session token can be valid.
        raise UnrecognizedClientException("The security token included in the request is invalid")
    digest = body_hash or payload_hash_of(body)
    payload_hash = headers.get("x-amz-content-sha256") or digest
    if payload_hash not in (_UNSIGNED, digest):
        raise InvalidSignatureException(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    _check_signature(parsed, secret, method, path, query, headers, amz_date, payload_hash)
    return parsed.access_key


# The open server's passed checks: (Authorization up to its signature, date) -> (key, signed
# at). A client sends the same ones for every request of a second; checking them anew cost
# ~20 us a request.
_OPEN_PASSED: dict[tuple[str, str], tuple[str, float]] = {}


def _open_check(headers: Mapping[str, str], clock: float) -> str:
    header = headers.get("authorization", "")
    amz_date = headers.get("x-amz-date") or headers.get("date", "")
    head, _, signature = header.partition("Signature=")
    known = _OPEN_PASSED.get((head, amz_date))
    if known is not None and signature.strip() and abs(clock - known[1]) <= OPEN_SKEW_SECONDS:
        return known[0]
    parsed, _ = _check_form(headers, clock, OPEN_SKEW_SECONDS)
    if len(_OPEN_PASSED) >= 256:
        _OPEN_PASSED.clear()
    signed_at = _parse_amz_date(amz_date)
    assert signed_at is not None  # _check_form refused any other date
    _OPEN_PASSED[(head, amz_date)] = (parsed.access_key, signed_at)
    return parsed.access_key


def _check_form(headers: Mapping[str, str], now: float, skew: float
                ) -> tuple[_Authorization, str]:
    """What DynamoDB checks before it looks the key up: an ``AWS4-`` Authorization with its
    parameters, a fresh date, ``host`` signed, the algorithm and the credential scope."""
    header = headers.get("authorization", "")
    if not header.strip().startswith("AWS4-"):
        raise MissingAuthenticationTokenException(status=400)
    amz_date = headers.get("x-amz-date") or headers.get("date", "")
    parsed = parse_authorization(header, has_date=bool(amz_date))
    _check_date(amz_date, now, skew)
    if "host" not in parsed.signed_headers:
        raise InvalidSignatureException(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    if parsed.algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported AWS 'algorithm': '{parsed.algorithm}' (only {ALGORITHM} for now). "
        )
    _check_scope(parsed, amz_date)
    return parsed, amz_date


def _check_date(amz_date: str, clock: float, skew: float) -> None:
    signed_at = _parse_amz_date(amz_date)
    if signed_at is None:
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601"
        )
    minutes = int(skew // 60)
    if signed_at < clock - skew:
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier than {_stamp(clock - skew)} "
            f"({_stamp(clock)} - {minutes} min.)"
        )
    if signed_at > clock + skew:
        raise InvalidSignatureException(
            f"Signature not yet current: {amz_date} is still later than {_stamp(clock + skew)} "
            f"({_stamp(clock)} + {minutes} min.)"
        )


def _stamp(seconds: float) -> str:
    return time.strftime(_STAMP, time.gmtime(seconds))


def _check_scope(parsed: _Authorization, amz_date: str) -> None:
    if not parsed.access_key:
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{parsed.credential}'"
        )
    problems = ""
    if not parsed.region:
        problems += f"Credential should be scoped to a valid region, not '{parsed.region}'. "
    if parsed.service != SERVICE:
        problems += f"Credential should be scoped to correct service: '{SERVICE}'. "
    if parsed.terminal != "aws4_request":
        problems += ("Credential should be scoped with a valid terminator: 'aws4_request', "
                     f"not '{parsed.terminal}'. ")
    if parsed.date != amz_date[:8]:
        problems += (
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{parsed.date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    if problems:
        raise InvalidSignatureException(problems.strip())


def _check_signature(parsed: _Authorization, secret: str, method: str, path: str, query: str,
                     headers: Mapping[str, str], amz_date: str, payload_hash: str) -> None:
    request = canonical_request(method, path, query, headers, parsed.signed_headers, payload_hash)
    scope = f"{parsed.date}/{parsed.region}/{parsed.service}/{parsed.terminal}"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(request.encode("utf-8")).hexdigest()]
    )
    key = signing_key(secret, parsed.date, parsed.region, parsed.service)
    expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parsed.signature):
        # AWS shows what it signed, so a client author can find the step that differs.
        raise InvalidSignatureException(
            InvalidSignatureException.default_message
            + f"\n\nThe Canonical String for this request should have been\n'{request}'\n\n"
            f"The String-to-Sign should have been\n'{string_to_sign}'\n"
        )
