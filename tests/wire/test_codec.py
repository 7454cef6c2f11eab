"""Tests of ``dynamokv.wire.codec``: round trips, the wire layout, and hostile input.

The contract under test: ``decode(encode(m)) == m`` for every message a correct node can build,
and ``decode`` of anything else raises ``ProtocolError`` (with a message naming the fault), never
another exception type.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamokv.core.messages import (
    ALL_MESSAGES,
    AaeLevelRequest,
    CoordinatePut,
    ErrorReply,
    GetReply,
    GetRequest,
    GossipRing,
    HintBatch,
    KeyObject,
    PutRequest,
    ReplicaReadReply,
    ReplicaWrite,
    RingReply,
)
from dynamokv.core.ring import Member, MemberStatus, Ring
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.errors import ProtocolError
from dynamokv.wire.codec import (
    CLOCK_FORMAT_VERSION,
    OBJECT_FORMAT_VERSION,
    TAGS,
    decode,
    decode_clock,
    decode_object,
    encode,
    encode_clock,
    encode_object,
)

from .strategies import MESSAGE_STRATEGIES, clocks, messages, objects, plain_values

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def packed(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def raw(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def check_decode_total(data: bytes) -> None:
    """``decode`` either fails with ProtocolError or returns a message that round-trips."""
    try:
        msg = decode(data)
    except ProtocolError:
        return
    assert type(msg) in TAGS
    # Compared as bytes, not values: a mutated float may have become NaN, which is != itself.
    again = encode(msg)
    assert encode(decode(again)) == again


CLOCK = VectorClock.from_entries([("a", 3, 1000), ("b", 1, 2000), ("c", 7, 3000)])
PUT = PutRequest(7, "users", b"k", b"v", CLOCK, 2, None, 5000)
PUT_RAW: list[Any] = [1, 7, "users", b"k", b"v", [["a", 3, 1000], ["b", 1, 2000]], 2, None, 5000]
OBJ_RAW: list[Any] = [[b"x", "a", 1, [], 10], [None, "b", 2, [["c", 1, 5]], 11]]
RING_RAW: list[Any] = [2, ["n1", "n2"], [["n1", "h:1", "valid", "", ""]], 3, "n1", []]


# Valid messages as raw arrays, built by the codec itself so that fields appended (with
# defaults) to these classes later leave the cases below about the field they name.
OBJ = decode_object(bytes([OBJECT_FORMAT_VERSION]) + msgpack.packb(OBJ_RAW, use_bin_type=True))
WRITE_RAW = msgpack.unpackb(encode(ReplicaWrite(1, "b", b"k", OBJ)), raw=False)
GET_REPLY_RAW = msgpack.unpackb(encode(GetReply(1, (), VectorClock.empty(), True)), raw=False)
ERROR_RAW = msgpack.unpackb(encode(ErrorReply(1, "E", "m")), raw=False)
READ_REPLY_RAW = msgpack.unpackb(encode(ReplicaReadReply(1, OBJ)), raw=False)
COORD_RAW = msgpack.unpackb(encode(CoordinatePut(1, PUT)), raw=False)
GOSSIP_RAW = [TAGS[GossipRing], RING_RAW, {}, 0, "dynamokv"]
RING_REPLY_RAW = [TAGS[RingReply], 1, RING_RAW, {}]
HINT_RAW = msgpack.unpackb(encode(HintBatch(1, (KeyObject("b", b"k", OBJ),))), raw=False)
AAE_RAW = msgpack.unpackb(encode(AaeLevelRequest(1, 0, 0, (1, 2))), raw=False)


def nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def with_field(base: list[Any], index: int, value: Any) -> list[Any]:
    out = list(base)
    out[index] = value
    return out


# ---- round trips ----------------------------------------------------------------------------


def test_every_message_class_has_a_strategy() -> None:
    assert list(MESSAGE_STRATEGIES) == list(ALL_MESSAGES)


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_each_class(cls: type, data: st.DataObject) -> None:
    msg = data.draw(MESSAGE_STRATEGIES[cls])
    encoded = encode(msg)
    decoded = decode(encoded)
    assert type(decoded) is cls
    assert decoded == msg
    assert encode(decoded) == encoded  # deterministic: equal messages, equal bytes


@settings(max_examples=300, deadline=None)
@given(messages)
def test_round_trip_any_message(msg: Any) -> None:
    assert decode(encode(msg)) == msg


@settings(max_examples=100, deadline=None)
@given(messages)
def test_wire_layout_is_tag_then_fields(msg: Any) -> None:
    items = raw(encode(msg))
    assert isinstance(items, list)
    assert items[0] == ALL_MESSAGES.index(type(msg))
    assert len(items) == 1 + len(dataclasses.fields(msg))


def test_put_request_layout_is_compact() -> None:
    assert raw(encode(PUT)) == [
        1,
        7,
        "users",
        b"k",
        b"v",
        [["a", 3, 1000], ["b", 1, 2000], ["c", 7, 3000]],
        2,
        None,
        5000,
    ]


def test_nested_values_are_arrays_not_maps() -> None:
    obj = VersionedObject((Sibling(b"x", Dot("a", 1), CLOCK, 9),))
    ring = Ring(2, ("n1", "n1"), (Member("n1", "h:1", MemberStatus.JOINING),), 4, "n1")
    assert raw(encode(ReplicaWrite(1, "b", b"k", obj, False)))[4:6] == [
        [[b"x", "a", 1, [["a", 3, 1000], ["b", 1, 2000], ["c", 7, 3000]], 9]],
        False,
    ]
    assert raw(encode(GossipRing(ring, {"b": {"n": 3}}, 2)))[:4] == [
        18,
        [2, ["n1", "n1"], [["n1", "h:1", "joining", "", ""]], 4, "n1", []],
        {"b": {"n": 3}},
        2,
    ]
    batch = HintBatch(5, (KeyObject("b", b"k", obj),))
    assert raw(encode(batch))[2] == [["b", b"k", raw(encode_object(obj)[1:])]]
    assert raw(encode(CoordinatePut(9, PUT)))[2] == raw(encode(PUT))[1:]


def test_tags_are_stable() -> None:
    # Renumbering breaks every peer and every stored ring file: tags are append-only.
    expected = [
        "GetRequest",
        "PutRequest",
        "RingRequest",
        "StatusRequest",
        "BucketPropsRequest",
        "GetReply",
        "PutReply",
        "RingReply",
        "StatusReply",
        "BucketPropsReply",
        "ErrorReply",
        "Hello",
        "ReplicaRead",
        "ReplicaReadReply",
        "ReplicaWrite",
        "ReplicaWriteAck",
        "CoordinatePut",
        "JoinRequest",
        "GossipRing",
        "KeyObject",
        "KeyDigest",
        "Ping",
        "HintBatch",
        "HintBatchAck",
        "HandoffBatch",
        "HandoffAck",
        "AaeLevelRequest",
        "AaeLevelReply",
        "AaeKeysRequest",
        "AaeKeysReply",
        "ClusterRequest",
        "ClusterReply",
        "LeaveComplete",
    ]
    # A prefix, not equality: appending new messages is allowed, moving old ones is not.
    assert [cls.__name__ for cls in ALL_MESSAGES][: len(expected)] == expected
    assert {cls: tag for tag, cls in enumerate(ALL_MESSAGES)} == TAGS


def test_dict_fields_keep_lists_as_lists() -> None:
    msg = ErrorReply(1, "QuorumNotMet", "2 of 3", {"replied": ["n1", "n2"], "deep": {"x": [[]]}})
    assert decode(encode(msg)) == msg


def test_encode_rejects_non_messages() -> None:
    with pytest.raises(TypeError, match="not a class in ALL_MESSAGES"):
        encode(CLOCK)


def test_decoded_instances_are_ordinary_dataclasses() -> None:
    # The decoder fills slots directly; the result must behave like a constructed instance.
    decoded = decode(encode(PUT))
    assert decoded == PUT and hash(decoded.context) == hash(CLOCK)
    assert repr(decoded) == repr(PUT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.req_id = 8
    assert dataclasses.replace(decoded, req_id=8).req_id == 8


@settings(max_examples=200, deadline=None)
@given(objects)
def test_object_round_trip(obj: VersionedObject) -> None:
    data = encode_object(obj)
    assert data[0] == OBJECT_FORMAT_VERSION
    assert decode_object(data) == obj
    assert decode_object(bytearray(data)) == obj
    assert decode_object(memoryview(data)) == obj


@settings(max_examples=200, deadline=None)
@given(clocks)
def test_clock_round_trip(clock: VectorClock) -> None:
    data = encode_clock(clock)
    assert data[0] == CLOCK_FORMAT_VERSION
    assert decode_clock(data) == clock


def test_empty_values_round_trip() -> None:
    assert decode_clock(encode_clock(VectorClock.empty())) == VectorClock.empty()
    assert decode_object(encode_object(VersionedObject(()))) == VersionedObject(())
    msg = ReplicaReadReply(3, None, "")
    assert decode(encode(msg)) == msg


# ---- malformed messages ---------------------------------------------------------------------

BAD_MESSAGES: list[tuple[str, Any, str]] = [
    ("unknown tag", [99, 1], r"unknown message tag 99"),
    ("negative tag", [-1, 1], r"unknown message tag -1"),
    ("str tag", ["1", 1], r"message tag must be an int, got str"),
    ("bool tag", [True, 1], r"message tag must be an int, got bool"),
    ("empty array", [], r"non-empty array"),
    ("top level map", {"tag": 1}, r"got map"),
    ("top level int", 5, r"got int"),
    ("too few fields", PUT_RAW[:3], r"PutRequest has 8 fields, got 2"),
    ("too many fields", [*PUT_RAW, None], r"PutRequest has 8 fields, got 9"),
    ("key is str", with_field(PUT_RAW, 3, "k"), r"PutRequest\.key must be bytes .*got str"),
    ("key is nil", with_field(PUT_RAW, 3, None), r"PutRequest\.key must be bytes .*got nil"),
    ("bucket is bytes", with_field(PUT_RAW, 2, b"b"), r"PutRequest\.bucket must be a str, got bin"),
    ("value is int", with_field(PUT_RAW, 4, 5), r"PutRequest\.value must be bytes .*or nil"),
    ("negative req_id", with_field(PUT_RAW, 1, -1), r"PutRequest\.req_id must be >= 0, got -1"),
    ("bool req_id", with_field(PUT_RAW, 1, True), r"PutRequest\.req_id must be an int, got bool"),
    ("float req_id", with_field(PUT_RAW, 1, 1.0), r"PutRequest\.req_id must be an int, got float"),
    ("negative w", with_field(PUT_RAW, 6, -2), r"PutRequest\.w must be >= 0, got -2"),
    ("str w", with_field(PUT_RAW, 6, "2"), r"PutRequest\.w must be an int or nil, got str"),
    (
        "negative counter",
        with_field(PUT_RAW, 5, [["a", -1, 0]]),
        r"PutRequest\.context: counter of actor 'a' must be >= 1, got -1",
    ),
    (
        "zero counter",
        with_field(PUT_RAW, 5, [["a", 0, 0]]),
        r"counter of actor 'a' must be >= 1, got 0",
    ),
    (
        "negative timestamp",
        with_field(PUT_RAW, 5, [["a", 1, -5]]),
        r"timestamp_ms of actor 'a' must be >= 0, got -5",
    ),
    (
        "short entry",
        with_field(PUT_RAW, 5, [["a", 1]]),
        r"entry 0 must be \[actor, counter, timestamp_ms\]",
    ),
    ("entry not array", with_field(PUT_RAW, 5, ["a"]), r"entry 0 must be \[actor"),
    ("int actor", with_field(PUT_RAW, 5, [[1, 1, 0]]), r"entry 0 actor must be a str, got int"),
    (
        "unsorted actors",
        with_field(PUT_RAW, 5, [["b", 1, 0], ["a", 1, 0]]),
        r"actors must be sorted and unique, got 'b' before 'a'",
    ),
    (
        "duplicate actors",
        with_field(PUT_RAW, 5, [["a", 1, 0], ["a", 2, 0]]),
        r"actors must be sorted and unique",
    ),
    ("clock not array", with_field(PUT_RAW, 5, "a"), r"context must be an array of clock entries"),
    ("found is int", with_field(GET_REPLY_RAW, 4, 1), r"GetReply\.found must be a bool, got int"),
    (
        "values hold str",
        with_field(GET_REPLY_RAW, 2, ["v"]),
        r"GetReply\.values\[0\] must be bytes",
    ),
    (
        "values not array",
        with_field(GET_REPLY_RAW, 2, b"v"),
        r"GetReply\.values must be an array of bytes",
    ),
    ("details int key", with_field(ERROR_RAW, 4, {1: 2}), r"details keys must be str, got int"),
    (
        "details not map",
        with_field(ERROR_RAW, 4, []),
        r"ErrorReply\.details must be a map, got array",
    ),
    (
        "details ext",
        with_field(ERROR_RAW, 4, {"x": msgpack.ExtType(5, b"z")}),
        r"details\['x'\] holds a value of type ext \(ExtType\), not a plain value",
    ),
    (
        "details timestamp",
        with_field(ERROR_RAW, 4, {"x": [msgpack.Timestamp(1, 0)]}),
        r"not a plain value",
    ),
    (
        "details array key",
        with_field(ERROR_RAW, 4, {"x": {(1, 2): 3}}),
        r"details\['x'\] has a map key of type array",
    ),
    ("details too deep", with_field(ERROR_RAW, 4, {"x": nested_list(40)}), r"nests deeper than 32"),
    (
        "obj not array",
        with_field(READ_REPLY_RAW, 2, 5),
        r"ReplicaReadReply\.obj must be an array of siblings",
    ),
    (
        "unsorted siblings",
        with_field(WRITE_RAW, 4, [OBJ_RAW[1], OBJ_RAW[0]]),
        r"siblings must be sorted by dot with no duplicates, got \('b', 2\) before \('a', 1\)",
    ),
    (
        "duplicate dots",
        with_field(WRITE_RAW, 4, [OBJ_RAW[0], OBJ_RAW[0]]),
        r"siblings must be sorted by dot with no duplicates",
    ),
    ("short sibling", with_field(WRITE_RAW, 4, [[b"x", "a", 1]]), r"sibling 0 must be \[value"),
    (
        "zero dot counter",
        with_field(WRITE_RAW, 4, [[b"x", "a", 0, [], 1]]),
        r"sibling 0 dot counter must be >= 1, got 0",
    ),
    (
        "str sibling value",
        with_field(WRITE_RAW, 4, [["x", "a", 1, [], 1]]),
        r"sibling 0 value must be bytes",
    ),
    (
        "negative sibling timestamp",
        with_field(WRITE_RAW, 4, [[b"x", "a", 1, [], -1]]),
        r"sibling 0 timestamp_ms must be >= 0",
    ),
    (
        "bad sibling context",
        with_field(WRITE_RAW, 4, [OBJ_RAW[0], [None, "b", 2, [["a", -1, 5]], 11]]),
        r"ReplicaWrite\.obj: sibling 1 context: counter of actor 'a' must be >= 1",
    ),
    ("ack is nil", with_field(WRITE_RAW, 5, None), r"ReplicaWrite\.ack must be a bool, got nil"),
    (
        "ring q not power of 2",
        with_field(RING_REPLY_RAW, 2, with_field(RING_RAW, 0, 3)),
        r"q must be a positive power",
    ),
    (
        "ring q zero",
        with_field(RING_REPLY_RAW, 2, with_field(RING_RAW, 0, 0)),
        r"q must be a positive power",
    ),
    (
        "ring owners short",
        with_field(RING_REPLY_RAW, 2, with_field(RING_RAW, 1, ["n1"])),
        r"owners must be an array of q=2",
    ),
    (
        "ring owner int",
        with_field(RING_REPLY_RAW, 2, with_field(RING_RAW, 1, ["n1", 2])),
        r"owner of partition 1 must be a str",
    ),
    (
        "unknown member status",
        with_field(RING_REPLY_RAW, 2, with_field(RING_RAW, 2, [["n1", "h:1", "dead", "", ""]])),
        r"member 0 has unknown status 'dead'",
    ),
    (
        "unsorted members",
        with_field(
            RING_REPLY_RAW,
            2,
            with_field(RING_RAW, 2, [["n2", "h", "valid", "", ""], ["n1", "h", "valid", "", ""]]),
        ),
        r"members must be sorted by node_id with no duplicates, got 'n2' before 'n1'",
    ),
    (
        "short member",
        with_field(RING_REPLY_RAW, 2, with_field(RING_RAW, 2, [["n1", "h"]])),
        r"member 0 must be \[node_id",
    ),
    (
        "negative ring version",
        with_field(RING_REPLY_RAW, 2, with_field(RING_RAW, 3, -1)),
        r"version must be >= 0",
    ),
    (
        "ring not array",
        with_field(RING_REPLY_RAW, 2, "ring"),
        r"RingReply\.ring must be \[q, owners",
    ),
    ("nested arity", with_field(COORD_RAW, 2, [7]), r"PutRequest has 8 fields, got 1"),
    (
        "nested not array",
        with_field(COORD_RAW, 2, 7),
        r"CoordinatePut\.request must be a PutRequest field array",
    ),
    (
        "nested bad field",
        with_field(COORD_RAW, 2, with_field(PUT_RAW, 3, "k")[1:]),
        r"PutRequest\.key must be bytes",
    ),
    (
        "buckets value not map",
        with_field(GOSSIP_RAW, 2, {"b": 1}),
        r"GossipRing\.buckets\['b'\] must be a map",
    ),
    (
        "batch not array",
        with_field(HINT_RAW, 2, 5),
        r"HintBatch\.items must be an array of KeyObject field arrays, got int",
    ),
    (
        "batch item not array",
        with_field(HINT_RAW, 2, [5]),
        r"HintBatch\.items\[0\] must be a KeyObject field array, got int",
    ),
    (
        "batch item bad key",
        with_field(HINT_RAW, 2, [["b", b"k", OBJ_RAW], ["b", "k", OBJ_RAW]]),
        r"HintBatch\.items\[1\]: KeyObject\.key must be bytes",
    ),
    (
        "batch item bad object",
        with_field(HINT_RAW, 2, [["b", b"k", [OBJ_RAW[1], OBJ_RAW[0]]]]),
        r"HintBatch\.items\[0\]: KeyObject\.obj: siblings must be sorted by dot",
    ),
    (
        "negative index",
        with_field(AAE_RAW, 4, [1, -2]),
        r"AaeLevelRequest\.indexes\[1\] must be >= 0, got -2",
    ),
    (
        "str index",
        with_field(AAE_RAW, 4, ["1"]),
        r"AaeLevelRequest\.indexes\[0\] must be an int, got str",
    ),
    # Out of range: values no node could have produced, which would overflow later (a sibling
    # timestamp of 2^63 raised in every timer event that digested it).
    (
        "sibling timestamp 2^63",
        with_field(WRITE_RAW, 4, [[b"x", "a", 1, [], 1 << 63]]),
        r"ReplicaWrite\.obj: sibling 0 timestamp_ms must be <= 4611686018427387903",
    ),
    (
        "sibling counter 2^62",
        with_field(WRITE_RAW, 4, [[b"x", "a", 1 << 62, [], 10]]),
        r"sibling 0 dot counter must be <= 4611686018427387903",
    ),
    (
        "context timestamp 2^64 - 1",
        with_field(WRITE_RAW, 4, [[b"x", "a", 1, [["c", 1, (1 << 64) - 1]], 10]]),
        r"sibling 0 context: timestamp_ms of actor 'c' must be <= 4611686018427387903",
    ),
    (
        "clock counter 2^62",
        with_field(PUT_RAW, 5, [["a", 1 << 62, 1000]]),
        r"PutRequest\.context: counter of actor 'a' must be <= 4611686018427387903",
    ),
    (
        "request id 2^63",
        with_field(PUT_RAW, 1, 1 << 63),
        r"PutRequest\.req_id must be <= 9223372036854775807",
    ),
    (
        "optional int 2^63",
        with_field(PUT_RAW, 7, 1 << 63),
        r"PutRequest\.\w+ must be <= 9223372036854775807",
    ),
    (
        "ring version 2^63",
        with_field(RING_REPLY_RAW, 2, with_field(RING_RAW, 3, 1 << 63)),
        r"version must be <= 9223372036854775807",
    ),
    (
        "index 2^63",
        with_field(AAE_RAW, 4, [1 << 63]),
        r"AaeLevelRequest\.indexes\[0\] must be <= 9223372036854775807",
    ),
]


@pytest.mark.parametrize(
    ("value", "match"), [c[1:] for c in BAD_MESSAGES], ids=[c[0] for c in BAD_MESSAGES]
)
def test_malformed_message_is_a_precise_protocol_error(value: Any, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode(packed(value))


def test_the_bad_message_cases_start_from_valid_ones() -> None:
    # Guards the table above: its bases decode, so each case fails for its own reason only.
    assert decode(packed(PUT_RAW)).key == b"k"
    assert decode(packed(with_field(WRITE_RAW, 4, OBJ_RAW))).obj.siblings[1].value is None
    assert decode(packed(with_field(RING_REPLY_RAW, 2, RING_RAW))).ring.q == 2
    assert decode(packed(with_field(COORD_RAW, 2, PUT_RAW[1:]))).request == decode(packed(PUT_RAW))
    assert decode(packed(HINT_RAW)).items[0].obj == OBJ
    assert decode(packed(AAE_RAW)).indexes == (1, 2)


BAD_BYTES: list[tuple[str, bytes, str]] = [
    ("empty", b"", r"not valid msgpack"),
    ("reserved byte", b"\xc1", r"not valid msgpack"),
    ("truncated", encode(PUT)[:-1], r"not valid msgpack"),
    ("truncated header", b"\x99\x01\xcd", r"not valid msgpack"),
    ("trailing garbage", encode(PUT) + b"\x00\x01", r"trailing garbage: 2 bytes after the message"),
    ("bad utf-8", b"\x92\x0b\xa2\xff\xfe", r"not valid msgpack"),
    ("huge array length", b"\xdd\xff\xff\xff\xff", r"not valid msgpack"),
    ("huge bin length", b"\x93\x0c\x01\xc6\xff\xff\xff\xff", r"not valid msgpack"),
    ("deep nesting", b"\x91" * 5000 + b"\x01", r"nested too deeply"),
    ("unhashable key", b"\x81\x80\x01", r"not valid msgpack"),
]


@pytest.mark.parametrize(
    ("data", "match"), [c[1:] for c in BAD_BYTES], ids=[c[0] for c in BAD_BYTES]
)
def test_bad_bytes_are_a_protocol_error(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode(data)


def test_non_bytes_input_is_a_protocol_error() -> None:
    bad: Any = "not bytes"
    with pytest.raises(ProtocolError):
        decode(bad)
    with pytest.raises(ProtocolError):
        decode_object(bad)
    with pytest.raises(ProtocolError):
        decode_clock(bad)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", r"empty object: no format-version byte"),
        (b"\x02" + packed(OBJ_RAW), r"unknown object format version 2 \(expected 1\)"),
        (b"\x00", r"unknown object format version 0"),
        (b"\x01", r"not valid msgpack"),
        (b"\x01" + packed(OBJ_RAW) + b"\x00", r"trailing garbage: 1 bytes"),
        (b"\x01" + packed({"siblings": []}), r"object must be an array of siblings, got map"),
        (b"\x01" + packed([OBJ_RAW[1], OBJ_RAW[0]]), r"object: siblings must be sorted by dot"),
        (
            b"\x01" + packed([[b"x", "a", 1, [["b", 1, 0], ["a", 1, 0]], 1]]),
            r"sibling 0 context: actors must be sorted",
        ),
    ],
)
def test_malformed_object_is_a_protocol_error(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode_object(data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", r"empty clock"),
        (b"\x07" + packed([]), r"unknown clock format version 7"),
        (b"\x01" + packed([["a", 0, 0]]), r"clock: counter of actor 'a' must be >= 1, got 0"),
        (b"\x01" + packed([["a", 1, 0]]) + b"\xc0", r"trailing garbage"),
        (b"\x01" + packed(5), r"clock must be an array of clock entries, got int"),
    ],
)
def test_malformed_clock_is_a_protocol_error(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode_clock(data)


# ---- fuzzing --------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_only_protocol_error(data: bytes) -> None:
    check_decode_total(data)
    for decoder in (decode_object, decode_clock):
        try:
            decoder(data)
        except ProtocolError:
            pass


@FUZZ
@given(st.integers(min_value=-2, max_value=len(ALL_MESSAGES) + 1), st.lists(plain_values))
def test_random_msgpack_arrays_only_protocol_error(tag: int, fields: list[Any]) -> None:
    # Well-formed msgpack with a plausible tag: exercises the field checks, not just the parser.
    check_decode_total(packed([tag, *fields]))


@FUZZ
@given(messages, st.data())
def test_replacing_one_field_only_protocol_error(msg: Any, data: st.DataObject) -> None:
    items = raw(encode(msg))
    index = data.draw(st.integers(min_value=1, max_value=len(items) - 1), label="field")
    items[index] = data.draw(plain_values, label="replacement")
    check_decode_total(packed(items))


def value_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position inside a raw msgpack value, as a path of indexes and map keys."""
    out = [path]
    if isinstance(value, list):
        for i, x in enumerate(value):
            out += value_paths(x, (*path, i))
    elif isinstance(value, dict):
        for k, x in value.items():
            out += value_paths(x, (*path, k))
    return out


@FUZZ
@given(messages, st.data())
def test_replacing_any_nested_value_only_protocol_error(msg: Any, data: st.DataObject) -> None:
    # Reaches inside clocks, siblings, rings and batches, where the byte mutations below rarely
    # land on something that still parses.
    items = raw(encode(msg))
    paths = [p for p in value_paths(items) if p not in ((), (0,))]  # not the whole, not the tag
    if not paths:
        return
    path = data.draw(st.sampled_from(paths), label="path")
    parent = items
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = data.draw(plain_values, label="replacement")
    check_decode_total(packed(items))


Mutation = tuple[str, int, int]

mutations: st.SearchStrategy[list[Mutation]] = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate"]),
        st.integers(min_value=0, max_value=2**16),
        st.integers(min_value=0, max_value=255),
    ),
    min_size=1,
    max_size=4,
)


def mutate(data: bytes, steps: list[Mutation]) -> bytes:
    buf = bytearray(data)
    for kind, where, byte in steps:
        if not buf:
            buf.append(byte)
            continue
        i = where % len(buf)
        if kind == "flip":
            buf[i] ^= 1 << (byte % 8)
        elif kind == "set":
            buf[i] = byte
        elif kind == "insert":
            buf.insert(i, byte)
        elif kind == "delete":
            del buf[i]
        elif kind == "truncate":
            del buf[i:]
        else:
            buf[i:i] = buf[i : i + 1 + byte % 8]
    return bytes(buf)


@FUZZ
@given(messages, mutations)
def test_mutated_messages_only_protocol_error(msg: Any, steps: list[Mutation]) -> None:
    check_decode_total(mutate(encode(msg), steps))


@FUZZ
@given(objects, mutations)
def test_mutated_objects_only_protocol_error(obj: VersionedObject, steps: list[Mutation]) -> None:
    data = mutate(encode_object(obj), steps)
    try:
        decoded = decode_object(data)
    except ProtocolError:
        return
    assert decode_object(encode_object(decoded)) == decoded


@FUZZ
@given(clocks, mutations)
def test_mutated_clocks_only_protocol_error(clock: VectorClock, steps: list[Mutation]) -> None:
    data = mutate(encode_clock(clock), steps)
    try:
        decoded = decode_clock(data)
    except ProtocolError:
        return
    assert decode_clock(encode_clock(decoded)) == decoded
    assert list(decoded.entries) == sorted(decoded.entries)
    assert all(counter >= 1 and ts >= 0 for _, counter, ts in decoded.entries)


def test_decode_accepts_what_get_and_put_replies_really_carry() -> None:
    obj = VersionedObject.of(
        [Sibling(b"1", Dot("a", 1), VectorClock.empty(), 5), Sibling(None, Dot("b", 1), CLOCK, 6)]
    )
    for msg in (
        GetRequest(1, "b", b"k"),
        GetReply(2, tuple(obj.values()), obj.context(), True, 3),
        ReplicaWrite(3, "b", b"k", obj),
    ):
        assert decode(encode(msg)) == msg
