"""Large request bodies: the stepwise parse gives orjson's value or refuses where orjson does,
items converted ahead of time behave as converted in the operation, and whole requests above
the size threshold go through a real server unchanged (boto3)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

from dynamokv.api import bodies, heap
from dynamokv.api.attributes import (
    PreparedItem,
    WireItem,
    from_wire,
    item_from_wire,
    item_size,
)
from dynamokv.api.errors import SerializationException, ValidationException
from dynamokv.api.layout.items import encode_item
from tests.api.test_app_harness import ServerThread, make_table, served

SPECIAL = ['"\\ud800"', '"\\ud83d\\ude00"', '"\\ude00\\ud83d"', "NaN", "-Infinity", "1e400",
           "01", "1.", "tru", "[1,]", '{"a":1,}', "[]]", "18446744073709551616", "-0", "-0.0",
           "\ufeff[]", '"\x01"', '"\\u0041"', "1" + "0" * 400, "[1e5, -2.5E-3]"]


def orjson_outcome(body: bytes) -> Any:
    try:
        return ("ok", orjson.dumps(orjson.loads(body)))
    except orjson.JSONDecodeError:
        return ("refused",)


def stepwise_outcome(body: bytes) -> Any:
    try:
        return ("ok", orjson.dumps(bodies.parse(body)))
    except bodies._Refused:
        return ("refused",)


def random_json(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 5 or roll < 0.4:
        return rng.choice([
            str(rng.randrange(-10**6, 10**6)), repr(rng.random() * 10 ** rng.randrange(-5, 30)),
            orjson.dumps("".join(rng.choice('ab"\\\u00e9\U0001F600\n x') for _ in range(5)))
            .decode(), "true", "false", "null", str(2**64 + rng.randrange(9)), "-0",
        ])
    if roll < 0.7:
        members = [random_json(rng, depth + 1) for _ in range(rng.randrange(0, 6))]
        return "[" + rng.choice([",", ", ", " ,"]).join(members) + "]"
    members = [orjson.dumps(rng.choice(["a", "b", "\u00e9", ""])).decode()
               + rng.choice([":", " : "]) + random_json(rng, depth + 1)
               for _ in range(rng.randrange(0, 6))]
    return "{" + ",".join(members) + "}"


def mutated(rng: random.Random, text: str) -> str:
    roll, i = rng.random(), rng.randrange(len(text) + 1)
    if roll < 0.4:
        return text
    if roll < 0.55:
        return text[:i] + text[i + 1:]
    if roll < 0.7:
        return text[:i] + rng.choice('[]{},:"\\ 0e-.') + text[i:]
    if roll < 0.85:
        return text[:i] + rng.choice(SPECIAL) + text[i:]
    return text[:i]


@pytest.mark.parametrize("window", [1, 2, 5, 16, 64 * 1024])
@pytest.mark.parametrize("misses", [0, 2, 64])
def test_stepwise_parse_is_orjson(monkeypatch: pytest.MonkeyPatch, window: int,
                                  misses: int) -> None:
    monkeypatch.setattr(bodies, "WINDOW", window)
    monkeypatch.setattr(bodies, "MISSES", misses)
    rng = random.Random(window * 100 + misses)
    cases = SPECIAL + [mutated(rng, random_json(rng)) for _ in range(1_500)]
    for text in cases:
        if not text.strip():
            continue
        body = text.encode("utf-8", "surrogatepass")
        assert stepwise_outcome(body) == orjson_outcome(body), text


def test_invalid_utf8_and_blank_bodies() -> None:
    assert stepwise_outcome(b'{"a": "\xff"}') == ("refused",)
    assert bodies.parse(b" \n\t ") == {}


def test_nesting_orjson_cannot_survive_is_parsed_without_recursion() -> None:
    # orjson.loads of ~50,000 nested objects crashes the process; this is never given it.
    depth = 100_000
    body = b'{"a":' * depth + b"1" + b"}" * depth
    assert bodies.is_large(body)
    value = bodies.parse(body)
    for _ in range(depth):
        value = value["a"]
    assert value == 1


def test_small_bodies_stay_on_the_loop_unless_deeply_nested() -> None:
    assert not bodies.is_large(b'{"TableName": "t"}')
    assert bodies.is_large(b"[" * 5_000 + b"]" * 5_000)
    assert bodies.is_large(b" " * (bodies.LARGE_BODY + 1))


def item_body(item: dict[str, Any], **extra: Any) -> bytes:
    return orjson.dumps({"TableName": "t", "Item": item, **extra})


def test_a_put_items_conversion_is_done_ahead_and_is_the_same() -> None:
    item = {"pk": {"S": "k"}, "n": {"N": "1.50"}, "l": {"L": [{"NULL": True}] * 10},
            "s": {"SS": ["b", "a"]}, "m": {"M": {"x": {"B": "AAE="}}}}
    prepared = bodies.prepare_body(item_body(item), "PutItem")
    wire = prepared["Item"]
    assert type(wire) is WireItem and wire == item  # reads and serialises as sent
    typed = item_from_wire(wire)
    assert type(typed) is PreparedItem and typed == item_from_wire(item)
    assert item_size(typed) == item_size(dict(typed))
    assert encode_item(typed) == encode_item(dict(typed))
    assert orjson.loads(orjson.dumps(prepared)) == {"TableName": "t", "Item": item}


def test_a_changed_prepared_item_forgets_its_size_and_bytes() -> None:
    prepared = bodies.prepare_body(item_body({"pk": {"S": "k"}}), "PutItem")
    typed = item_from_wire(prepared["Item"])
    typed["x"] = from_wire({"S": "more"})
    assert item_size(typed) == item_size(dict(typed))
    assert encode_item(typed) == encode_item(dict(typed))


@pytest.mark.parametrize("bad", [
    {"pk": {"S": "k"}, "x": {"SS": []}},
    {"pk": {"S": "k"}, "x": {"N": "1e999"}},
    {"pk": {"S": "k"}, "": {"S": "x"}},
    {"pk": {"S": "k"}, "x": {"S": 1}},
])
def test_a_bad_item_raises_the_same_error_when_the_operation_reaches_it(bad: Any) -> None:
    with pytest.raises((ValidationException, SerializationException)) as direct:
        item_from_wire(bad)
    prepared = bodies.prepare_body(item_body(bad), "PutItem")
    with pytest.raises(type(direct.value)) as ahead:
        item_from_wire(prepared["Item"])
    assert ahead.value.message == direct.value.message


def test_batch_and_transaction_items_and_expression_values_are_prepared() -> None:
    item = {"pk": {"S": "k"}}
    batch = bodies.prepare_body(orjson.dumps(
        {"RequestItems": {"t": [{"PutRequest": {"Item": item}}, {"DeleteRequest": {}}]}}),
        "BatchWriteItem")
    assert type(batch["RequestItems"]["t"][0]["PutRequest"]["Item"]) is WireItem
    transact = bodies.prepare_body(orjson.dumps({"TransactItems": [
        {"Put": {"TableName": "t", "Item": item}},
        {"Update": {"ExpressionAttributeValues": {":v": {"N": "x"}}}}]}), "TransactWriteItems")
    assert type(transact["TransactItems"][0]["Put"]["Item"]) is WireItem
    with pytest.raises(ValidationException):
        from_wire(transact["TransactItems"][1]["Update"]["ExpressionAttributeValues"][":v"])


def test_taking_a_body_apart_leaves_what_others_still_hold() -> None:
    value = bodies.prepare_body(item_body({"pk": {"S": "k"}, "l": {"L": [{"S": "x"}] * 3}}),
                                "PutItem")
    kept = item_from_wire(value["Item"])
    snapshot = dict(kept)
    heap._freeing += 1  # as _sweep does before handing a body over
    heap._take_apart([value])
    assert kept == snapshot and len(kept["l"].value) == 3  # type: ignore[attr-defined]


# ------------------------------------------------------------------ through a real server


@pytest.fixture(scope="module")
def running() -> Iterator[ServerThread]:
    with served() as server:
        make_table(server.client(), "big")
        yield server


def test_large_items_round_trip_through_the_server(running: ServerThread) -> None:
    client = running.client()
    wide = {"pk": {"S": "wide"}} | {f"a{i:05d}": {"N": str(i)} for i in range(20_000)}
    listed = {"pk": {"S": "list"}, "l": {"L": [{"S": f"v{i}"} for i in range(30_000)]}}
    client.put_item(TableName="big", Item=wide)
    client.batch_write_item(RequestItems={"big": [{"PutRequest": {"Item": listed}}]})
    assert client.get_item(TableName="big", Key={"pk": {"S": "wide"}})["Item"] == wide
    assert client.get_item(TableName="big", Key={"pk": {"S": "list"}})["Item"] == listed


def test_a_large_invalid_item_is_refused_with_dynamodbs_message(running: ServerThread) -> None:
    bad = {"pk": {"S": "bad"}} | {f"a{i:05d}": {"S": "x"} for i in range(10_000)}
    bad["z"] = {"NS": ["1", "1"]}
    with pytest.raises(ClientError) as info:
        running.client().put_item(TableName="big", Item=bad)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "contains duplicates" in info.value.response["Error"]["Message"]
