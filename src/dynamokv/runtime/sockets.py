"""Socket options of every node connection, and how much of what we wrote is still unacknowledged.

Owns: ``LinkSettings`` (timeouts and limits of the binary port's connections),
``configure_socket`` (the one place a connection's socket is set up: no-delay, keepalive,
``TCP_USER_TIMEOUT``) and ``kernel_unacked`` (bytes in the kernel send queue).
May import: stdlib, ``dynamokv.core.settings``.

Why both kernel options and our own stall check: during a partition TCP retransmits with an
exponential back-off, so after the heal a connection may sit silent for tens of seconds before
its next retransmission, while the peers look alive. ``TCP_USER_TIMEOUT`` makes the kernel give
up on data unacknowledged for twice ``link_stall_ms``; keepalive catches an idle connection whose
peer vanished; and the transport's own check (no byte acknowledged for ``link_stall_ms`` while
bytes wait, counting the event loop's buffer and the kernel's queue) covers a peer that stopped
reading (zero window), which older kernels do not time out, and platforms without the options.
"""

from __future__ import annotations

import array
import contextlib
import socket
import sys
from dataclasses import dataclass
from typing import Any

from dynamokv.core.settings import Limits

_TIOCOUTQ = 0x5411  # Linux: bytes in a TCP socket's send queue (unsent + unacknowledged)


@dataclass(frozen=True, slots=True)
class LinkSettings:
    link_stall_ms: int = 1_500  # bytes waiting, none acknowledged for this long: the link is dead
    reconnect_backoff_min_ms: int = 50  # reconnect back-off after a failed connect, doubling ...
    reconnect_backoff_max_ms: int = 500  # ... up to this
    keepalive_idle_s: int = 5  # an idle connection is probed after this long,
    keepalive_interval_s: int = 1  # every this long,
    keepalive_count: int = 3  # and dropped after this many unanswered probes
    connections_max: int = 1_024  # inbound connections on the binary port
    connections_per_address_max: int = 256  # of them from one client address
    idle_timeout_ms: int = 300_000  # an inbound connection with no message for this long closes
    frame_timeout_ms: int = 30_000  # a frame begun must be complete within this long
    inbound_buffered_bytes_max: int = 128 * 1024 * 1024  # partial inbound frames held in all

    @staticmethod
    def from_limits(limits: Limits) -> LinkSettings:
        """The node's ``Limits`` fields of the same names, where it has them."""
        names = LinkSettings.__dataclass_fields__
        return LinkSettings(**{n: getattr(limits, n) for n in names if hasattr(limits, n)})


def configure_socket(sock: Any, settings: LinkSettings) -> None:
    """No-delay, keepalive and the user timeout on one connection's socket (best effort: an
    option this platform lacks is skipped)."""
    if sock is None:
        return
    options: list[tuple[int, int, int]] = [
        (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    ]
    for name, value in (("TCP_KEEPIDLE", settings.keepalive_idle_s),
                        ("TCP_KEEPINTVL", settings.keepalive_interval_s),
                        ("TCP_KEEPCNT", settings.keepalive_count),
                        # A backstop at twice the watchdog's bound: the watchdog, which
                        # logs and counts what it closes, normally acts first.
                        ("TCP_USER_TIMEOUT", 2 * settings.link_stall_ms)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, option, value in options:
        with contextlib.suppress(OSError):
            sock.setsockopt(level, option, value)


def kernel_unacked(sock: Any) -> int:
    """Bytes written to ``sock`` that the peer has not acknowledged yet (0 where the platform
    cannot say: the event loop's own buffer still counts toward a stall)."""
    if sock is None or not sys.platform.startswith("linux"):
        return 0
    import fcntl

    buf = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), _TIOCOUTQ, buf, True)
    except (OSError, ValueError):
        return 0
    return int(buf[0])
