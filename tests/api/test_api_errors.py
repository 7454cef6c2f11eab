"""The DynamoDB error types and their JSON envelope."""

from __future__ import annotations

import pytest

from dynamokv.api import errors
from dynamokv.api.errors import (
    ConditionalCheckFailedException,
    DynamoDBError,
    InternalServerError,
    ResourceNotFoundException,
    TransactionCanceledException,
    ValidationException,
)
from dynamokv.errors import DynamoKVError


def test_validation_envelope() -> None:
    e = ValidationException("bad thing")
    assert e.type == "ValidationException"
    assert e.status == 400
    assert e.message == "bad thing"
    assert e.to_json() == {
        "__type": "com.amazonaws.dynamodb.v20120810#ValidationException",
        "message": "bad thing",
    }
    assert isinstance(e, DynamoDBError)
    assert isinstance(e, DynamoKVError)
    assert e.code == "ValidationException"


def test_conditional_check_failed_default_message_and_item() -> None:
    e = ConditionalCheckFailedException()
    assert e.message == "The conditional request failed"
    assert "Item" not in e.to_json()
    with_item = ConditionalCheckFailedException(item={"pk": {"S": "a"}})
    assert with_item.to_json()["Item"] == {"pk": {"S": "a"}}
    assert with_item.to_json()["__type"].endswith("#ConditionalCheckFailedException")


def test_transaction_cancelled_message_lists_reasons_in_order() -> None:
    e = TransactionCanceledException([{"Code": "ConditionalCheckFailed"}, {"Code": "None"}])
    assert e.message == (
        "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[ConditionalCheckFailed, None]"
    )
    body = e.to_json()
    assert body["CancellationReasons"] == [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}]


def test_statuses_and_defaults() -> None:
    assert InternalServerError().status == 500
    assert ResourceNotFoundException().message == "Requested resource not found"
    assert errors.UnknownOperationException("x").full_type == (
        "com.amazon.coral.service#UnknownOperationException"
    )
    assert (
        errors.SerializationException("x").to_json()["__type"].endswith("#SerializationException")
    )


@pytest.mark.parametrize("name", sorted(errors.ERROR_TYPES))
def test_every_registered_type_round_trips_its_name(name: str) -> None:
    cls = errors.ERROR_TYPES[name]
    instance = cls("m") if cls is not TransactionCanceledException else cls([])
    assert instance.type == name
    assert instance.to_json()["__type"].split("#")[1] == name


def test_error_type_override_and_helpers() -> None:
    e = DynamoDBError("x", status=418, error_type="Teapot")
    assert (e.type, e.status) == ("Teapot", 418)
    assert errors.invalid_expression("UpdateExpression", "boom").message == (
        "Invalid UpdateExpression: boom"
    )
    assert errors.validation("v").type == "ValidationException"
