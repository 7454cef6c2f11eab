"""TLS for a node: the SSL contexts of its listeners and of the connections it dials.

Owns: ``peer_server_context`` / ``peer_client_context`` (mutual TLS on the binary protocol: a
node and everything that talks to it present certificates signed by the cluster's CA),
``http_server_context`` (HTTPS for the DynamoDB API, no client certificate), and the checks
that turn a wrong, unreadable or expired certificate into a ``ConfigError`` at start-up instead
of a silent handshake failure later.
May import: ``ssl``, stdlib, ``dynamokv.runtime.config``, ``dynamokv.errors``.

Why mutual TLS and not a shared cluster secret: a secret would prove membership but neither
encrypt the traffic nor survive being leaked without a cluster-wide restart; certificates
encrypt every byte, identify each node separately, expire, and are revoked by re-issuing from
the CA, which deployment tools (cert-manager, an internal CA) already automate.
"""

from __future__ import annotations

import logging
import ssl
import time
from pathlib import Path

from dynamokv.errors import ConfigError
from dynamokv.runtime.config import TlsFiles

MIN_VERSION = ssl.TLSVersion.TLSv1_2
REPORT_EVERY_S = 30.0  # a peer retrying every second must not flood the log
EXPIRY_WARNING_DAYS = 14  # a certificate expiring sooner is warned about at start-up

log = logging.getLogger("dynamokv.tls")
_reported: dict[str, float] = {}


class _ReportingSSLObject(ssl.SSLObject):
    """Logs why a handshake failed: asyncio drops the reason of a failed *inbound* handshake
    (a peer with an expired or foreign certificate) unless the loop runs in debug mode."""

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            # Outbound failures reach the caller, which names the address it dialled.
            if self.server_side:
                report(f"inbound TLS handshake failed: {describe(exc)}")
            raise


def report(text: str, level: int = logging.ERROR) -> None:
    """Log ``text`` unless it was logged in the last ``REPORT_EVERY_S``."""
    now = time.monotonic()
    if now - _reported.get(text, -1e9) >= REPORT_EVERY_S:
        if len(_reported) > 1000:
            _reported.clear()
        _reported[text] = now
        log.log(level, "%s", text)


def peer_server_context(tls: TlsFiles) -> ssl.SSLContext:
    """The binary protocol's listener: presents our certificate, requires one signed by the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MIN_VERSION
    ctx.sslobject_class = _ReportingSSLObject
    _load_pair(ctx, tls.cert, tls.key, "tls.cert", "tls.key")
    _load_ca(ctx, tls.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def peer_client_context(tls: TlsFiles) -> ssl.SSLContext:
    """Dialling a peer (or, with an operator's certificate, a node from the CLI)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = MIN_VERSION
    ctx.sslobject_class = _ReportingSSLObject
    _load_pair(ctx, tls.cert, tls.key, "tls.cert", "tls.key")
    _load_ca(ctx, tls.ca)
    # Peers are dialled by the address in the ring; the cluster's own CA vouches for them. Name
    # checking is on request, for certificates issued with each node's address as a SAN.
    ctx.check_hostname = tls.verify_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def http_server_context(tls: TlsFiles) -> ssl.SSLContext:
    """HTTPS for the DynamoDB API: clients authenticate with SigV4, not certificates."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MIN_VERSION
    ctx.sslobject_class = _ReportingSSLObject
    cert = tls.http_cert or tls.cert
    key = tls.http_key or (tls.key if tls.http_cert is None else None)
    if key is None:
        raise ConfigError("tls.http_cert is set without tls.http_key; give both")
    _load_pair(ctx, cert, key, "tls.http_cert" if tls.http_cert else "tls.cert",
               "tls.http_key" if tls.http_key else "tls.key")
    return ctx


def client_context(ca: Path, cert: Path | None = None, key: Path | None = None
                   ) -> ssl.SSLContext:
    """A client of the binary protocol: trusts ``ca``, presents ``cert``/``key`` if given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = MIN_VERSION
    ctx.sslobject_class = _ReportingSSLObject
    _load_ca(ctx, ca)
    ctx.check_hostname = False  # the dedicated cluster CA vouches; see peer_client_context
    if cert is not None:
        if key is None:
            raise ConfigError("a TLS client certificate needs its key too")
        _load_pair(ctx, cert, key, "--tls-cert", "--tls-key")
    return ctx


def describe(exc: BaseException) -> str:
    """A handshake failure in words an operator can act on."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = str(exc.verify_message)
        if "expired" in why:
            return f"the peer's certificate has expired ({why}): it must be issued again"
        if "not yet valid" in why:
            return (f"the peer's certificate is not valid yet ({why}): check the clocks of "
                    "both machines")
        if any(s in why for s in ("self-signed", "unable to get local issuer", "self signed")):
            return (f"the peer's certificate is not signed by this node's CA ({why}): is it "
                    "of another cluster, or is tls.ca the wrong file?")
        return f"the peer's certificate was rejected: {why}"
    reason = getattr(exc, "reason", None) or str(exc)
    if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNEXPECTED_EOF_WHILE_READING"):
        return f"the peer does not speak TLS, or not this TLS ({reason}): is TLS set up on it?"
    if "EXPIRED" in str(reason).upper():
        return f"the peer rejected our certificate: it has expired ({reason})"
    if "UNKNOWN_CA" in str(reason).upper() or "BAD_CERTIFICATE" in str(reason).upper():
        return f"the peer rejected our certificate: not signed by its CA ({reason})"
    return f"TLS failed: {reason}"


# ---- loading and checking ---------------------------------------------------------------------


def _readable(path: Path, what: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in head:
        raise ConfigError(f"{what}: {path} is not a PEM file (no -----BEGIN line)")


def _load_pair(ctx: ssl.SSLContext, cert: Path, key: Path, cert_what: str, key_what: str
               ) -> None:
    _readable(cert, cert_what)
    _readable(key, key_what)
    check_validity(cert, cert_what)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in str(reason).upper():
            raise ConfigError(f"{key_what} {key} is not the key of {cert_what} {cert}") from None
        raise ConfigError(f"{cert_what} {cert} / {key_what} {key}: {reason}") from None


def _load_ca(ctx: ssl.SSLContext, ca: Path) -> None:
    _readable(ca, "tls.ca")
    try:
        ctx.load_verify_locations(cafile=str(ca))
    except ssl.SSLError as exc:
        raise ConfigError(f"tls.ca {ca}: not a CA certificate bundle ({exc.reason})") from None


def check_validity(cert: Path, what: str, *, now: float | None = None) -> None:
    """``ConfigError`` if the certificate has expired or is not valid yet: peers would refuse
    every handshake, so refusing to start says it once, in the right place."""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:
        return  # no way to read the dates without a third-party parser: the handshake tells
    try:
        info = decode(str(cert))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"{what} {cert} is not a PEM certificate: {exc}") from None
    now = time.time() if now is None else now
    not_after = ssl.cert_time_to_seconds(info["notAfter"])
    not_before = ssl.cert_time_to_seconds(info["notBefore"])
    if now >= not_after:
        raise ConfigError(f"{what} {cert} expired on {info['notAfter']}; issue a new one")
    if now < not_before:
        raise ConfigError(f"{what} {cert} is not valid until {info['notBefore']} (check the "
                          "clock of this machine)")
    days = (not_after - now) / 86_400
    if days < EXPIRY_WARNING_DAYS:
        # Peers will refuse it from then on: say so while there is time to issue a new one.
        report(f"{what} {cert} expires on {info['notAfter']} (in {days:.1f} days); issue a "
               "new one and restart the node before then", logging.WARNING)


__all__ = [
    "check_validity",
    "client_context",
    "describe",
    "http_server_context",
    "peer_client_context",
    "peer_server_context",
]
