"""Tests of ``dynamokv.wire.framing``: frames survive any chunking; bad headers are refused."""

from __future__ import annotations

import itertools
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamokv.errors import ProtocolError
from dynamokv.wire.codec import decode, encode
from dynamokv.wire.framing import HEADER_SIZE, PROTOCOL_VERSION, FrameDecoder, frame

from .strategies import messages

PAYLOADS = [b"hello", b"", b"\x00" * 300, bytes(range(256)), b"x"]
STREAM = b"".join(frame(p) for p in PAYLOADS)


def header(size: int, version: int = PROTOCOL_VERSION) -> bytes:
    return struct.pack(">IB", size, version)


def test_header_layout() -> None:
    assert PROTOCOL_VERSION == 1
    assert HEADER_SIZE == 5
    assert frame(b"abc") == b"\x00\x00\x00\x03\x01abc"
    assert frame(b"") == b"\x00\x00\x00\x00\x01"
    assert frame(b"\xff" * 70000)[:5] == b"\x00\x01\x11\x70\x01"


def test_whole_stream_in_one_feed() -> None:
    decoder = FrameDecoder(1024)
    assert decoder.feed(STREAM) == PAYLOADS
    assert decoder.buffered_bytes == 0


def test_split_at_every_boundary() -> None:
    for cut in range(len(STREAM) + 1):
        decoder = FrameDecoder(1024)
        got = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:])
        assert got == PAYLOADS, cut
        assert decoder.buffered_bytes == 0


def test_split_at_every_pair_of_boundaries() -> None:
    payloads = [b"ab", b"", b"cde", b"f" * 9]
    stream = b"".join(frame(p) for p in payloads)
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            decoder = FrameDecoder(64)
            got = decoder.feed(stream[:i]) + decoder.feed(stream[i:j]) + decoder.feed(stream[j:])
            assert got == payloads, (i, j)


def test_byte_by_byte() -> None:
    decoder = FrameDecoder(1024)
    got: list[bytes] = []
    for i in range(len(STREAM)):
        got += decoder.feed(STREAM[i : i + 1])
    assert got == PAYLOADS


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=200), max_size=8),
    st.lists(st.integers(min_value=0, max_value=300), max_size=20),
)
def test_any_chunking(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(p) for p in payloads)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    decoder = FrameDecoder(200)
    got: list[bytes] = []
    for start, stop in itertools.pairwise(points):
        got += decoder.feed(stream[start:stop])
    assert got == payloads
    assert decoder.buffered_bytes == 0


def test_partial_frame_is_buffered_until_complete() -> None:
    decoder = FrameDecoder(100)
    data = frame(b"0123456789")
    assert decoder.feed(data[:3]) == []
    assert decoder.buffered_bytes == 3
    assert decoder.feed(data[3:8]) == []
    assert decoder.buffered_bytes == 8
    assert decoder.feed(data[8:] + data[:2]) == [b"0123456789"]
    assert decoder.buffered_bytes == 2


def test_feed_of_nothing() -> None:
    decoder = FrameDecoder(10)
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\x00\x00") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\x00\x01\x01z") == [b"z"]


def test_many_small_frames_in_one_chunk() -> None:
    payloads = [i.to_bytes(4, "big") for i in range(20_000)]
    decoder = FrameDecoder(16)
    assert decoder.feed(b"".join(frame(p) for p in payloads)) == payloads


def test_large_frame_in_small_chunks() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    data = frame(payload)
    decoder = FrameDecoder(len(payload))
    got: list[bytes] = []
    for i in range(0, len(data), 1000):
        got += decoder.feed(data[i : i + 1000])
    assert got == [payload]
    assert decoder.buffered_bytes == 0


def test_limit_is_inclusive() -> None:
    assert FrameDecoder(10).feed(frame(b"x" * 10)) == [b"x" * 10]
    assert FrameDecoder(0).feed(frame(b"")) == [b""]


def test_oversize_frame_rejected_from_its_header_alone() -> None:
    decoder = FrameDecoder(10)
    with pytest.raises(ProtocolError, match="frame of 11 bytes exceeds the limit of 10 bytes"):
        decoder.feed(header(11))  # no body sent: the header alone must be enough


def test_oversize_frame_rejected_when_header_arrives_in_pieces() -> None:
    decoder = FrameDecoder(1000)
    assert decoder.feed(header(2**32 - 1)[:3]) == []
    with pytest.raises(ProtocolError, match="frame of 4294967295 bytes exceeds the limit of 1000"):
        decoder.feed(header(2**32 - 1)[3:])
    assert decoder.buffered_bytes == 0  # nothing kept for a stream that is already lost


def test_oversize_frame_after_good_frames_in_one_chunk() -> None:
    decoder = FrameDecoder(10)
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        decoder.feed(frame(b"ok") + header(11) + b"y" * 11)


@pytest.mark.parametrize("version", [0, 2, 255])
def test_unknown_version_rejected(version: int) -> None:
    decoder = FrameDecoder(100)
    with pytest.raises(ProtocolError, match=f"unknown protocol version {version}"):
        decoder.feed(header(3, version))  # rejected before the body arrives


def test_unknown_version_after_partial_input() -> None:
    decoder = FrameDecoder(100)
    stream = frame(b"abc") + header(3, 9) + b"abc"
    assert decoder.feed(stream[:10]) == [b"abc"]
    with pytest.raises(ProtocolError, match="unknown protocol version 9"):
        decoder.feed(stream[10:])


def test_failed_decoder_stays_failed() -> None:
    decoder = FrameDecoder(100)
    with pytest.raises(ProtocolError):
        decoder.feed(header(3, 7))
    with pytest.raises(ProtocolError, match="already failed: unknown protocol version 7"):
        decoder.feed(frame(b"fine"))


def test_negative_limit_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_frame_bytes"):
        FrameDecoder(-1)


def test_payload_too_large_for_a_frame() -> None:
    class Huge(bytes):
        def __len__(self) -> int:
            return 2**32

    with pytest.raises(ProtocolError, match="does not fit in a frame"):
        frame(Huge())


@settings(max_examples=100, deadline=None)
@given(st.lists(messages, max_size=5), st.integers(min_value=1, max_value=64))
def test_messages_through_frames(msgs: list[Any], chunk: int) -> None:
    stream = b"".join(frame(encode(m)) for m in msgs)
    decoder = FrameDecoder(1 << 20)
    got: list[Any] = []
    for i in range(0, len(stream), chunk):
        got += [decode(p) for p in decoder.feed(stream[i : i + chunk])]
    assert got == msgs


# -- skip_up_to: an oversize frame is skipped and reported, the stream goes on --------------


def _skipping_feed(stream: bytes, cuts: list[int], limit: int) -> tuple[list[bytes], list[Any]]:
    dec = FrameDecoder(limit, skip_up_to=1 << 20)
    out: list[bytes] = []
    bounds = [0, *sorted(set(cuts)), len(stream)]
    for a, b in itertools.pairwise(bounds):
        out.extend(dec.feed(stream[a:b]))
    assert dec.buffered_bytes == 0
    return out, dec.skipped


def test_skipped_oversize_frame_keeps_its_head_and_the_stream_in_sync() -> None:
    big = bytes(range(256)) * 40  # 10,240 bytes
    stream = frame(b"one") + frame(big) + frame(b"two") + frame(big[:20]) + frame(b"three")
    out, skipped = _skipping_feed(stream, [], 100)
    assert out == [b"one", b"two", big[:20], b"three"]
    assert [(s.size, s.head) for s in skipped] == [(len(big), big[:64])]


@given(st.lists(st.integers(0, 10_400), max_size=12))
@settings(max_examples=200, deadline=None)
def test_skipping_works_under_any_chunking(cuts: list[int]) -> None:
    big = b"\x01" * 5_000
    stream = frame(b"a") + frame(big) + frame(big[:30]) + frame(big) + frame(b"b")
    out, skipped = _skipping_feed(stream, [c % len(stream) for c in cuts], 1_000)
    assert out == [b"a", big[:30], b"b"]
    assert [s.size for s in skipped] == [5_000, 5_000]
    assert all(s.head == big[:64] for s in skipped)


def test_skipping_never_buffers_the_oversize_body() -> None:
    dec = FrameDecoder(100, skip_up_to=10**7)
    assert dec.feed(struct.pack(">IB", 10**6, PROTOCOL_VERSION) + b"x" * 500_000) == []
    assert dec.buffered_bytes == 0 and not dec.skipped  # still skipping, nothing held


def test_a_frame_past_what_may_be_skipped_still_fails_the_stream() -> None:
    dec = FrameDecoder(100, skip_up_to=1000)
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        dec.feed(struct.pack(">IB", 1001, PROTOCOL_VERSION) + b"x")


def test_a_bad_version_still_fails_a_skipping_decoder() -> None:
    dec = FrameDecoder(100, skip_up_to=1000)
    with pytest.raises(ProtocolError, match="unknown protocol version"):
        dec.feed(struct.pack(">IB", 3, PROTOCOL_VERSION + 1) + b"abc")
