"""``cluster up``'s port check: a port held only by TIME_WAIT connections of a cluster stopped
a moment ago is free (the node's listener binds it with SO_REUSEADDR); a listening one is not."""

from __future__ import annotations

import socket

from dynamokv.cli.cluster import port_in_use


def _listener(family: int, host: str) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen()
    return s


def test_a_listening_port_is_in_use() -> None:
    with _listener(socket.AF_INET, "127.0.0.1") as s:
        assert port_in_use(f"127.0.0.1:{s.getsockname()[1]}")


def test_a_port_left_in_time_wait_is_free() -> None:
    server = _listener(socket.AF_INET, "127.0.0.1")
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server side closes first: its end of the connection enters TIME_WAIT
    client.recv(1)
    client.close()
    server.close()
    # Without SO_REUSEADDR this bind fails with EADDRINUSE for a minute.
    plain = socket.socket()
    try:
        plain.bind(("127.0.0.1", port))
        held = False
    except OSError:
        held = True
    finally:
        plain.close()
    assert held, "the kernel released TIME_WAIT at once; the test cannot show the bug"
    assert not port_in_use(f"127.0.0.1:{port}")


def test_ipv6_addresses_are_probed_on_ipv6() -> None:
    try:
        s = _listener(socket.AF_INET6, "::1")
    except OSError:
        import pytest

        pytest.skip("no IPv6 loopback on this machine")
    with s:
        assert port_in_use(f"[::1]:{s.getsockname()[1]}")
