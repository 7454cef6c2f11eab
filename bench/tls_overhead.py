"""What mutual TLS costs: the same 3-node cluster on 127.0.0.1, plain and with mutual TLS.

Owns: nothing the product imports; run by hand.
May import: ``dynamokv``, ``cryptography`` (to make a throwaway CA and certificates).

Usage (from the repository root)::

    PYTHONPATH=src python bench/tls_overhead.py [--ops 2000] [--connects 200]

Per mode it reports sequential put and get latency (p50, p99, ops/s) over one kept-alive
connection, and the cost of a fresh connection (connect, handshake, one status request).
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import dynamokv  # noqa: F401
except ImportError:  # run without PYTHONPATH: use the source tree next to this script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import free_ports
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dynamokv import Client
from dynamokv.errors import DynamoKVError
from dynamokv.runtime.tls import client_context


def _cert(root: Path, cn: str, ca: tuple[Any, Any] | None) -> tuple[Path, Path, Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    issuer_cert, issuer_key = ca if ca else (None, key)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=1)))
    if ca is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    cert = builder.sign(issuer_key, hashes.SHA256())
    cert_path, key_path = root / f"{cn}.pem", root / f"{cn}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path, cert, key


def _start(root: Path, tls: dict[str, Path] | None
           ) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    ports = free_ports(3)
    procs = []
    for i, port in enumerate(ports, 1):
        argv = [sys.executable, "-m", "dynamokv", "node", "start", "--id", f"n{i}", "--listen",
                f"127.0.0.1:{port}", "--data-dir", str(root / f"n{i}"), "--engine", "memory"]
        if i > 1:
            argv += ["--seeds", f"127.0.0.1:{ports[0]}"]
        if tls:
            argv += ["--tls-cert", str(tls[f"n{i}.pem"]), "--tls-key", str(tls[f"n{i}.key"]),
                     "--tls-ca", str(tls["ca.pem"])]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        if i == 1:
            time.sleep(1.0)
    return procs, [f"127.0.0.1:{p}" for p in ports]


def _wait(addresses: list[str], ctx: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with Client(addresses[:1], timeout_s=2, tls=ctx) as c:
                if len(c.status()["members"]) == 3:
                    return
        except DynamoKVError:
            pass
        time.sleep(0.3)
    raise SystemExit("cluster did not form")


def _pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(p * len(s)))] * 1000


def _measure(addresses: list[str], ctx: Any, ops: int, connects: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with Client(addresses[:1], timeout_s=5, tls=ctx) as c:
        for op in ("put", "get"):
            samples = []
            t0 = time.perf_counter()
            for i in range(ops):
                t = time.perf_counter()
                if op == "put":
                    c.put(f"k{i}", b"x" * 100)
                else:
                    c.get(f"k{i}")
                samples.append(time.perf_counter() - t)
            out[f"{op}_ops_s"] = ops / (time.perf_counter() - t0)
            out[f"{op}_p50_ms"], out[f"{op}_p99_ms"] = _pct(samples, .5), _pct(samples, .99)
    samples = []
    for _ in range(connects):
        t = time.perf_counter()
        with Client(addresses[:1], timeout_s=5, tls=ctx) as c:
            c.status()
        samples.append(time.perf_counter() - t)
    out["connect_p50_ms"] = _pct(samples, .5)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--connects", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca_pem, _, ca_cert, ca_key = _cert(root, "ca", None)
        files = {"ca.pem": ca_pem}
        for cn in ("n1", "n2", "n3", "bench"):
            cert, key, _, _ = _cert(root, cn, (ca_cert, ca_key))
            files[f"{cn}.pem"], files[f"{cn}.key"] = cert, key
        results = {}
        for mode in ("plain", "mutual TLS"):
            tls = files if mode != "plain" else None
            ctx = client_context(files["ca.pem"], files["bench.pem"], files["bench.key"]) \
                if tls else None
            procs, addresses = _start(root / mode.replace(" ", "-"), tls)
            try:
                _wait(addresses, ctx)
                results[mode] = _measure(addresses, ctx, args.ops, args.connects)
            finally:
                for p in procs:
                    p.terminate()
                    p.wait(timeout=15)
    keys = list(next(iter(results.values())))
    print(f"{'':16}" + "".join(f"{k:>16}" for k in keys))
    for mode, r in results.items():
        print(f"{mode:16}" + "".join(f"{r[k]:16.2f}" for k in keys))


if __name__ == "__main__":
    main()
