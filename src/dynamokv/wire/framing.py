"""Length-prefixed frames: how one byte stream (a TCP connection) carries many messages.

Owns: ``frame`` (payload to frame), ``FrameDecoder`` (stream chunks to payloads), the header
layout and ``PROTOCOL_VERSION``.
May import: ``dynamokv.errors`` (and, like the rest of ``dynamokv.wire``, ``dynamokv.core.*``).

A frame is a 5-byte header then the payload::

    +--------+--------+--------+--------+---------+------------------------+
    |   payload length (uint32, big-endian)     | version | payload (length bytes) |
    +--------+--------+--------+--------+---------+------------------------+

The version byte is in every frame rather than in a connection handshake so that a peer speaking
another protocol is caught on its very first frame, whichever side opened the connection.

The length limit is checked as soon as a header is complete, before any of the body is waited
for, so a peer cannot make us buffer a huge frame just by announcing one. By default a frame over
the limit fails the stream; a decoder made with ``skip_up_to=N`` instead skips a body of up to N
bytes as it streams past (keeping only its first ``OVERSIZE_HEAD_BYTES``, enough to name the
request) and reports it in ``skipped``, so the connection lives on and the sender can get an
error reply. A frame announcing more than N bytes is taken for garbage and fails the stream.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, NoReturn

from dynamokv.errors import ProtocolError

__all__ = [
    "HEADER_SIZE",
    "MAX_PAYLOAD_BYTES",
    "OVERSIZE_HEAD_BYTES",
    "PROTOCOL_VERSION",
    "FrameDecoder",
    "OversizeFrame",
    "frame",
    "frame_header",
]

PROTOCOL_VERSION: Final = 1
_HEADER: Final = struct.Struct(">IB")
HEADER_SIZE: Final = _HEADER.size  # 5
MAX_PAYLOAD_BYTES: Final = 0xFFFF_FFFF  # what a uint32 length can say
OVERSIZE_HEAD_BYTES: Final = 64  # kept of a skipped frame: its message tag and request id


@dataclass(frozen=True, slots=True)
class OversizeFrame:
    """A frame over the limit, skipped: its announced ``size`` and the first bytes of it."""

    size: int
    head: bytes


def frame(payload: bytes) -> bytes:
    """``payload`` with its header, ready to write to a stream."""
    return frame_header(len(payload)) + payload


def frame_header(size: int) -> bytes:
    """The header of a frame carrying ``size`` payload bytes.

    For writers that send the header and the payload as separate buffers (``writelines``), so
    the payload is not copied just to be prefixed.
    """
    if size > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"payload of {size} bytes does not fit in a frame")
    return _HEADER.pack(size, PROTOCOL_VERSION)


class FrameDecoder:
    """Cuts a byte stream, fed in chunks of any size, into frame payloads.

    ``max_frame_bytes`` bounds a payload (the header not counted). After a ``ProtocolError`` the
    stream is out of sync for good: every later ``feed`` raises the same error, and the caller
    should close the connection.
    """

    __slots__ = ("_buf", "_error", "_max", "_skip_head", "_skip_left", "_skip_size",
                 "_skip_up_to", "skipped")

    def __init__(self, max_frame_bytes: int, *, skip_up_to: int = 0) -> None:
        if max_frame_bytes < 0:
            raise ValueError(f"max_frame_bytes must be >= 0, got {max_frame_bytes}")
        self._max = max_frame_bytes
        # Bytes of the frame in progress (a partial header or body), never a complete frame.
        self._buf = bytearray()
        self._error: ProtocolError | None = None
        self._skip_up_to = skip_up_to
        self._skip_left = 0  # body bytes of an oversize frame still to skip
        self._skip_size = 0
        self._skip_head = bytearray()
        #: Oversize frames skipped so far (``skip_up_to`` only); the caller drains it.
        self.skipped: list[OversizeFrame] = []

    @property
    def buffered_bytes(self) -> int:
        """How many bytes of an incomplete frame are waiting for the rest."""
        return len(self._buf)

    @property
    def in_frame(self) -> bool:
        """A frame is under way: part of one is buffered, or an oversize body is being skipped."""
        return bool(self._buf) or self._skip_left > 0

    def feed(self, data: bytes) -> list[bytes]:
        """Every payload completed by ``data``, in stream order (often none, often one)."""
        if self._error is not None:
            raise ProtocolError(f"frame stream already failed: {self._error}")
        if not self._buf and not self._skip_left:
            # The usual case, kept to one scan: whole messages per read, nothing pending. Parse
            # ``data`` in place and keep only its incomplete tail.
            frames, used = self._scan(data)
            if not self._skip_left:
                if used < len(data):
                    self._buf += memoryview(data)[used:]
                return frames
            data = data[used:]  # an oversize body starts here: skip it, then go on
        else:
            frames = []
        while data:
            if self._skip_left:
                data = self._skip(data)
                continue
            data = self._feed_frames(data, frames)
        return frames

    def _feed_frames(self, data: bytes, frames: list[bytes]) -> bytes:
        """Scan ``data`` for frames into ``frames``; what is left when an oversize frame's body
        starts (to be skipped), else nothing."""
        buf = self._buf
        if buf:
            buf += data
            found, used = self._scan(buf)
            frames.extend(found)
            # CPython deletes a bytearray's prefix by moving its start offset, without copying
            # the rest, so consuming frames costs nothing per byte left over.
            del buf[:used]
            if self._skip_left:  # the scan stopped at an oversize header: skip on from there
                rest = bytes(buf)
                buf.clear()
                return rest
            return b""
        # Nothing pending (the usual case: whole messages per read): parse ``data`` in place
        # and keep only its incomplete tail, so complete frames are copied once, not twice.
        found, used = self._scan(data)
        frames.extend(found)
        if self._skip_left:
            return data[used:]
        if used < len(data):
            buf += memoryview(data)[used:]
        return b""

    def _skip(self, data: bytes) -> bytes:
        """Drop the oversize body's bytes at the start of ``data``; what follows it."""
        take = min(self._skip_left, len(data))
        room = OVERSIZE_HEAD_BYTES - len(self._skip_head)
        if room > 0:
            self._skip_head += data[:min(room, take)]
        self._skip_left -= take
        if not self._skip_left:
            self.skipped.append(OversizeFrame(self._skip_size, bytes(self._skip_head)))
            self._skip_head = bytearray()
        return data[take:]

    def _scan(self, data: bytes | bytearray) -> tuple[list[bytes], int]:
        """The complete frames at the start of ``data`` and how many bytes they take."""
        frames: list[bytes] = []
        end = len(data)
        pos = 0
        with memoryview(data) as view:
            while end - pos >= HEADER_SIZE:
                size, version = _HEADER.unpack_from(data, pos)
                if version != PROTOCOL_VERSION:
                    self._fail(
                        f"unknown protocol version {version} "
                        f"(this node speaks version {PROTOCOL_VERSION})"
                    )
                if size > self._max:
                    if size > self._skip_up_to:
                        self._fail(f"frame of {size} bytes exceeds the limit of {self._max} "
                                   "bytes")
                    self._skip_left, self._skip_size = size, size
                    pos += HEADER_SIZE
                    break
                stop = pos + HEADER_SIZE + size
                if stop > end:
                    break
                frames.append(view[pos + HEADER_SIZE : stop].tobytes())
                pos = stop
        return frames, pos

    def _fail(self, message: str) -> NoReturn:
        self._error = ProtocolError(message)
        self._buf = bytearray()  # what follows a bad header means nothing; free it
        raise self._error
