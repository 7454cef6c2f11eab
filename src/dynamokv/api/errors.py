"""DynamoDB's error types and their JSON envelope.

Owns: every exception the DynamoDB-compatible API returns to a client, the HTTP status of each,
and the body DynamoDB sends for it (``{"__type": "<namespace>#<Type>", "message": ...}``).
May import: stdlib, :mod:`dynamokv.errors`.

Every error is a :class:`DynamoDBError`; each DynamoDB error type is a subclass named like the
type, so a server can ``except DynamoDBError as e: return e.status, e.to_json()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from dynamokv.errors import DynamoKVError

# The namespace DynamoDB's own exceptions carry in ``__type``; SDKs only read the part after '#'.
DYNAMODB_NAMESPACE = "com.amazonaws.dynamodb.v20120810"
# Errors raised by the request-validation layer of the real service carry these instead.
CORAL_VALIDATE_NAMESPACE = "com.amazon.coral.validate"
CORAL_SERVICE_NAMESPACE = "com.amazon.coral.service"


class DynamoDBError(DynamoKVError):
    """An error DynamoDB would return: a type name, a message and an HTTP status."""

    error_type: ClassVar[str] = "InternalServerError"
    namespace: ClassVar[str] = DYNAMODB_NAMESPACE
    default_status: ClassVar[int] = 400
    default_message: ClassVar[str] = ""

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        error_type: str | None = None,
    ) -> None:
        text = self.default_message if message is None else message
        super().__init__(text)
        # ``type`` is the name the brief and the server use; ``code`` is DynamoKVError's.
        self.type: str = error_type or self.error_type
        self.code = self.type
        self.status: int = self.default_status if status is None else status

    @property
    def full_type(self) -> str:
        return f"{self.namespace}#{self.type}"

    def to_json(self) -> dict[str, Any]:
        """The body DynamoDB sends for this error."""
        return {"__type": self.full_type, "message": self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ValidationException(DynamoDBError):
    error_type = "ValidationException"


class SerializationException(DynamoDBError):
    error_type = "SerializationException"
    namespace = CORAL_SERVICE_NAMESPACE


class UnknownOperationException(DynamoDBError):
    error_type = "UnknownOperationException"
    namespace = CORAL_SERVICE_NAMESPACE


class MissingAuthenticationTokenException(DynamoDBError):
    error_type = "MissingAuthenticationTokenException"
    namespace = CORAL_SERVICE_NAMESPACE
    default_status = 403
    default_message = "Request is missing Authentication Token"


class ConditionalCheckFailedException(DynamoDBError):
    """A ConditionExpression evaluated to false; may carry the old item (wire form)."""

    error_type = "ConditionalCheckFailedException"
    default_message = "The conditional request failed"

    def __init__(
        self, message: str | None = None, *, item: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.item: dict[str, Any] | None = dict(item) if item is not None else None

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        if self.item is not None:
            body["Item"] = self.item
        return body


class ResourceNotFoundException(DynamoDBError):
    error_type = "ResourceNotFoundException"
    default_message = "Requested resource not found"


class TableNotFoundException(DynamoDBError):
    """DescribeContinuousBackups (and the backup operations) of a missing table."""

    error_type = "TableNotFoundException"


class ResourceInUseException(DynamoDBError):
    error_type = "ResourceInUseException"


class LimitExceededException(DynamoDBError):
    error_type = "LimitExceededException"


class ItemCollectionSizeLimitExceededException(DynamoDBError):
    error_type = "ItemCollectionSizeLimitExceededException"
    default_message = "Item collection size limit exceeded"


class ProvisionedThroughputExceededException(DynamoDBError):
    error_type = "ProvisionedThroughputExceededException"
    default_message = (
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API"
    )


class ThrottlingException(DynamoDBError):
    error_type = "ThrottlingException"
    namespace = CORAL_SERVICE_NAMESPACE


class RequestLimitExceeded(DynamoDBError):
    error_type = "RequestLimitExceeded"


class TransactionConflictException(DynamoDBError):
    error_type = "TransactionConflictException"
    default_message = "Transaction is ongoing for the item"


class TransactionInProgressException(DynamoDBError):
    error_type = "TransactionInProgressException"


class IdempotentParameterMismatchException(DynamoDBError):
    error_type = "IdempotentParameterMismatchException"


class InternalServerError(DynamoDBError):
    error_type = "InternalServerError"
    default_status = 500
    default_message = "Internal server error"


class ServiceUnavailable(DynamoDBError):
    error_type = "ServiceUnavailable"
    default_status = 503


class TransactionCanceledException(DynamoDBError):
    """A TransactWriteItems/TransactGetItems was cancelled; one reason per request item.

    Each reason is ``{"Code": "None" | "ConditionalCheckFailed" | ..., "Message"?: ...,
    "Item"?: ...}`` in request order, exactly as DynamoDB returns ``CancellationReasons``.
    """

    error_type = "TransactionCanceledException"

    def __init__(self, reasons: Sequence[Mapping[str, Any]], message: str | None = None) -> None:
        self.reasons: list[dict[str, Any]] = [dict(r) for r in reasons]
        if message is None:
            codes = ", ".join(str(r.get("Code", "None")) for r in self.reasons)
            message = (
                "Transaction cancelled, please refer cancellation reasons for specific "
                f"reasons [{codes}]"
            )
        super().__init__(message)

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        body["CancellationReasons"] = self.reasons
        return body


ERROR_TYPES: dict[str, type[DynamoDBError]] = {
    cls.error_type: cls
    for cls in (
        ValidationException,
        SerializationException,
        UnknownOperationException,
        MissingAuthenticationTokenException,
        ConditionalCheckFailedException,
        ResourceNotFoundException,
        ResourceInUseException,
        LimitExceededException,
        ItemCollectionSizeLimitExceededException,
        ProvisionedThroughputExceededException,
        ThrottlingException,
        RequestLimitExceeded,
        TransactionConflictException,
        TransactionInProgressException,
        IdempotentParameterMismatchException,
        InternalServerError,
        ServiceUnavailable,
    )
}


def validation(message: str) -> ValidationException:
    """Shorthand used throughout the api package."""
    return ValidationException(message)


def invalid_expression(label: str, message: str) -> ValidationException:
    """``Invalid <label>: <message>``, DynamoDB's form for every expression error."""
    return ValidationException(f"Invalid {label}: {message}")
