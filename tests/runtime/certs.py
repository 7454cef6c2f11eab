"""Certificates made at test time with ``cryptography``: a cluster CA, node and client
certificates it signs, an expired one, and a foreign CA's. Nothing is stored in the repo."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest

x509 = pytest.importorskip("cryptography.x509", reason="the cryptography package is needed "
                           "to make test certificates (pip install cryptography)")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


class CA:
    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(name)
        self.cert = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.path = root / f"{name}-ca.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, cn: str, *, expired: bool = False,
              valid_for: dt.timedelta | None = None) -> Pair:
        """A certificate for ``cn``: valid for 30 days, expired, or expiring ``valid_for``
        from now."""
        key = ec.generate_private_key(ec.SECP256R1())
        start, end = ((NOW - dt.timedelta(days=10), NOW - dt.timedelta(days=1)) if expired
                      else (NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=30)))
        if valid_for is not None:
            end = dt.datetime.now(dt.UTC) + valid_for
        cert = (
            x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(self.key, hashes.SHA256())
        )
        pair = Pair(self.root / f"{cn}.pem", self.root / f"{cn}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, pair.key)
        return pair
