"""TLS: certificate checks at start-up, and real processes talking mutual TLS (peers and CLI
clients) with HTTPS for the DynamoDB API; certificates of another CA are refused."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.client import HTTPException
from pathlib import Path

import pytest
from tests.cluster_harness import LocalCluster, NodeProc, free_ports
from tests.runtime.certs import CA, Pair

from dynamokv import Client
from dynamokv.errors import ConfigError, NoNodeAvailable
from dynamokv.runtime.config import TlsFiles
from dynamokv.runtime.tls import (
    client_context,
    describe,
    http_server_context,
    peer_server_context,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("pki")
    ca, foreign = CA(root, "cluster"), CA(root, "foreign")
    return {"ca": ca, "foreign": foreign, "n1": ca.issue("n1"), "n2": ca.issue("n2"),
            "admin": ca.issue("admin"), "expired": ca.issue("old", expired=True),
            "stranger": foreign.issue("stranger")}


def _files(pki: dict[str, object], who: str, ca: str = "ca") -> TlsFiles:
    pair, authority = pki[who], pki[ca]
    assert isinstance(pair, Pair) and isinstance(authority, CA)
    return TlsFiles(pair.cert, pair.key, authority.path)


# ---- start-up checks -------------------------------------------------------------------------


def test_an_expired_certificate_is_refused_at_start(pki: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"tls.cert .*old.pem expired on"):
        peer_server_context(_files(pki, "expired"))


def test_a_key_of_another_certificate_is_refused(pki: dict[str, object]) -> None:
    files = _files(pki, "n1")
    other = pki["n2"]
    assert isinstance(other, Pair)
    with pytest.raises(ConfigError, match=r"tls.key .*n2.key is not the key of tls.cert"):
        peer_server_context(TlsFiles(files.cert, other.key, files.ca))


def test_unreadable_and_non_pem_files_are_named(pki: dict[str, object], tmp_path: Path) -> None:
    files = _files(pki, "n1")
    with pytest.raises(ConfigError, match=r"tls.ca: cannot read .*missing.pem"):
        peer_server_context(TlsFiles(files.cert, files.key, tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    with pytest.raises(ConfigError, match="is not a PEM file"):
        http_server_context(TlsFiles(junk, files.key, files.ca))


# ---- real processes --------------------------------------------------------------------------


def _config(path: Path, node_id: str, port: int, files: TlsFiles, *, seeds: str = "",
            http: int | None = None) -> Path:
    lines = [f'id = "{node_id}"', f'listen = "127.0.0.1:{port}"', 'engine = "memory"',
             f'data_dir = "{node_id}"']
    if seeds:
        lines.append(f'seeds = ["{seeds}"]')
    if http:
        lines.append(f'http = "127.0.0.1:{http}"')
    lines += ["[tls]", f'cert = "{files.cert}"', f'key = "{files.key}"', f'ca = "{files.ca}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def _start(tmp: Path, node_id: str, port: int, files: TlsFiles, **kw: object) -> NodeProc:
    config = _config(tmp / f"{node_id}.toml", node_id, port, files, **kw)  # type: ignore[arg-type]
    node = NodeProc(node_id, f"127.0.0.1:{port}", tmp / node_id,
                    [sys.executable, "-m", "dynamokv", "node", "start", "--config", str(config)])
    node.start()
    return node


@pytest.fixture(scope="module")
def tls_cluster(pki: dict[str, object], tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[Path, list[NodeProc], int, ssl.SSLContext]]:
    tmp = tmp_path_factory.mktemp("tls")
    p1, p2, http = free_ports(3)
    admin = pki["admin"]
    ca = pki["ca"]
    assert isinstance(admin, Pair) and isinstance(ca, CA)
    ctx = client_context(ca.path, admin.cert, admin.key)
    nodes = [_start(tmp, "n1", p1, _files(pki, "n1"), http=http)]
    try:
        LocalCluster.wait_for(lambda: _status(nodes[0].address, ctx), timeout_s=30,
                              what="n1 to answer over TLS")
        nodes.append(_start(tmp, "n2", p2, _files(pki, "n2"), seeds=f"127.0.0.1:{p1}"))
        LocalCluster.wait_for(
            lambda: len(_status(nodes[1].address, ctx)["members"]) == 2, timeout_s=40,
            what="n2 to join n1 over mutual TLS")
        yield tmp, nodes, http, ctx
    finally:
        for node in nodes:
            node.stop()


def _status(address: str, ctx: ssl.SSLContext | None) -> dict:  # type: ignore[type-arg]
    with Client([address], timeout_s=3, tls=ctx) as c:
        return c.status()


def test_peers_and_clients_talk_mutual_tls(tls_cluster: tuple[Path, list[NodeProc], int,
                                                               ssl.SSLContext]) -> None:
    _, nodes, _, ctx = tls_cluster
    with Client([nodes[0].address], tls=ctx) as c:
        c.put("secret", "kept")
    with Client([nodes[1].address], tls=ctx) as c:
        assert c.get("secret", r=2).values == [b"kept"]


def test_a_plain_client_gets_nothing(tls_cluster: tuple[Path, list[NodeProc], int,
                                                        ssl.SSLContext]) -> None:
    _, nodes, _, _ = tls_cluster
    with pytest.raises(NoNodeAvailable), Client([nodes[0].address], timeout_s=2) as c:
        c.status()


def test_a_client_certificate_of_another_ca_is_refused(
    pki: dict[str, object], tls_cluster: tuple[Path, list[NodeProc], int, ssl.SSLContext]
) -> None:
    tmp, nodes, _, _ = tls_cluster
    stranger, ca = pki["stranger"], pki["ca"]
    assert isinstance(stranger, Pair) and isinstance(ca, CA)
    ctx = client_context(ca.path, stranger.cert, stranger.key)
    with pytest.raises(NoNodeAvailable) as info, Client([nodes[0].address], timeout_s=2,
                                                       tls=ctx) as c:
        c.status()
    assert "client certificate" in str(info.value.details)  # a hint, not a bare close
    LocalCluster.wait_for(
        lambda: "inbound TLS handshake failed" in (tmp / "n1.log").read_text(errors="replace"),
        timeout_s=20, what="n1 to log the refused handshake")


def test_the_cli_uses_tls_from_its_flags(pki: dict[str, object], tls_cluster: tuple[
        Path, list[NodeProc], int, ssl.SSLContext]) -> None:
    _, nodes, _, _ = tls_cluster
    admin, ca = pki["admin"], pki["ca"]
    assert isinstance(admin, Pair) and isinstance(ca, CA)
    proc = subprocess.run(
        [sys.executable, "-m", "dynamokv", "get", "secret-cli", "--json", "--node",
         nodes[0].address, "--tls-ca", str(ca.path), "--tls-cert", str(admin.cert),
         "--tls-key", str(admin.key)],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["found"] is False


def test_the_dynamodb_api_is_served_over_https(
    pki: dict[str, object], tls_cluster: tuple[Path, list[NodeProc], int, ssl.SSLContext]
) -> None:
    _, _, http, _ = tls_cluster
    ca = pki["ca"]
    assert isinstance(ca, CA)
    ctx = ssl.create_default_context(cafile=str(ca.path))
    request = urllib.request.Request(
        f"https://127.0.0.1:{http}/", data=b"{}", method="POST",
        headers={"X-Amz-Target": "DynamoDB_20120810.ListTables",
                 "Content-Type": "application/x-amz-json-1.0"})
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as e:  # unsigned: an auth error is still a DynamoDB answer
        body = json.loads(e.read())
    assert "TableNames" in body or "__type" in body
    with pytest.raises((OSError, HTTPException)):  # never over plain HTTP
        urllib.request.urlopen(request.full_url.replace("https", "http"), data=b"{}",
                               timeout=10)


def test_a_node_with_another_cas_certificate_cannot_join(
    pki: dict[str, object], tls_cluster: tuple[Path, list[NodeProc], int, ssl.SSLContext]
) -> None:
    tmp, nodes, _, ctx = tls_cluster
    port = free_ports(1)[0]
    rogue = _start(tmp, "x1", port, _files(pki, "stranger", "foreign"),
                   seeds=nodes[0].address)
    said = (f"cannot connect to seed {nodes[0].address}: the peer's certificate is not "
            "signed by this node's CA")
    try:
        LocalCluster.wait_for(
            lambda: said in (tmp / "x1.log").read_text(errors="replace"), timeout_s=30,
            what="the rogue node to say why it cannot join")
        time.sleep(2)  # it retries every second or so ...
        assert (tmp / "x1.log").read_text(errors="replace").count(said) == 1  # ... said once
        assert [m["node"] for m in _status(nodes[0].address, ctx)["members"]] == ["n1", "n2"]
    finally:
        rogue.stop()


def test_a_node_whose_certificate_the_seed_refuses_is_told_so(
    pki: dict[str, object], tls_cluster: tuple[Path, list[NodeProc], int, ssl.SSLContext]
) -> None:
    """It trusts the cluster's CA, but its own certificate is another CA's: the seed refuses
    it after the handshake (TLS 1.3), and both logs say so."""
    tmp, nodes, _, ctx = tls_cluster
    stranger, ca = pki["stranger"], pki["ca"]
    assert isinstance(stranger, Pair) and isinstance(ca, CA)
    port = free_ports(1)[0]
    rogue = _start(tmp, "x2", port, TlsFiles(stranger.cert, stranger.key, ca.path),
                   seeds=nodes[0].address)
    try:
        LocalCluster.wait_for(
            lambda: (f"seed {nodes[0].address} closed our TLS connection at once: did it "
                     "refuse our certificate") in (tmp / "x2.log").read_text(errors="replace"),
            timeout_s=30, what="the refused node to say it was refused")
        assert ("inbound TLS handshake failed: the peer's certificate is not signed by this "
                "node's CA") in (tmp / "n1.log").read_text(errors="replace")
        assert [m["node"] for m in _status(nodes[0].address, ctx)["members"]] == ["n1", "n2"]
    finally:
        rogue.stop()


def test_a_certificate_that_expired_since_start_is_named_expired(
        pki: dict[str, object], caplog: pytest.LogCaptureFixture) -> None:
    """A node's certificate that expires while it runs: its peers' handshakes fail, and say
    so in words. The node warned at start that it expires soon."""
    ca = pki["ca"]
    assert isinstance(ca, CA)
    short = ca.issue("short", valid_for=dt.timedelta(seconds=2))
    with caplog.at_level(logging.WARNING, "dynamokv.tls"):
        server = peer_server_context(TlsFiles(short.cert, short.key, ca.path))
    assert "expires on" in caplog.text and "issue a new one" in caplog.text
    admin = pki["admin"]
    assert isinstance(admin, Pair)
    client = client_context(ca.path, admin.cert, admin.key)
    time.sleep(3)  # now expired
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with contextlib.suppress(OSError), server.wrap_socket(conn, server_side=True):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(ssl.SSLCertVerificationError) as failure, \
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            client.wrap_socket(raw)
    finally:
        thread.join(timeout=10)
        listener.close()
    assert describe(failure.value).startswith("the peer's certificate has expired")


def test_a_node_with_an_expired_certificate_does_not_start(
    pki: dict[str, object], tmp_path: Path
) -> None:
    port = free_ports(1)[0]
    config = _config(tmp_path / "old.toml", "old", port, _files(pki, "expired"))
    proc = subprocess.run([sys.executable, "-m", "dynamokv", "node", "start", "--config",
                           str(config)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "expired on" in proc.stderr
