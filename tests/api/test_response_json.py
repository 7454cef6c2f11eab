"""An answer's JSON with stored items spliced in unparsed (api/response_json.py)."""

from __future__ import annotations

import orjson
import pytest

from dynamokv.api.response_json import RawJson, dumps


def test_an_answer_without_raw_parts_is_plain_json() -> None:
    answer = {"Count": 2, "Items": [{"a": {"S": "x"}}]}
    assert dumps(answer) == orjson.dumps(answer)


@pytest.mark.parametrize("others", [{}, {"ConsumedCapacity": {"TableName": "t",
                                                              "CapacityUnits": 0.5}}])
def test_raw_members_are_copied_byte_for_byte(others: dict[str, object]) -> None:
    item = {"pk": {"S": "k"}, "l": {"L": [{"NULL": True}] * 3}, "ü": {"S": "\"quoted\""}}
    stored = orjson.dumps(item)
    body = dumps({"Item": RawJson(stored), **others})
    assert stored in body
    assert orjson.loads(body) == {"Item": item, **others}


def test_several_raw_members_and_an_empty_answer() -> None:
    body = dumps({"A": RawJson(b"[1,2]"), "B": RawJson(b"{}")})
    assert orjson.loads(body) == {"A": [1, 2], "B": {}}
    assert dumps({}) == b"{}"
