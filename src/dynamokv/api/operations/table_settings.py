"""Control-plane operations on a table's settings besides UpdateTable: tags, time to live,
limits and continuous backups.

Owns: TagResource, UntagResource, ListTagsOfResource, DescribeTimeToLive, UpdateTimeToLive,
DescribeLimits and DescribeContinuousBackups, and the resolution of a table ARN.
May import: stdlib, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.operations.common`,
:mod:`dynamokv.api.schema.table_requests` (tag rules).
"""

from __future__ import annotations

from typing import Any

from dynamokv.api.errors import (
    CORAL_SERVICE_NAMESPACE,
    DynamoDBError,
    ResourceNotFoundException,
    TableNotFoundException,
    ValidationException,
)
from dynamokv.api.operations.common import ApiContext, Params, one_error
from dynamokv.api.schema.table_requests import MAX_TAGS, TOO_MANY_TAGS, parse_tags


def _arn_not_found(arn: str) -> ResourceNotFoundException:
    # "ResourcArn" is DynamoDB's own spelling.
    return ResourceNotFoundException(f"Requested resource not found: ResourcArn: {arn} not found")


class _AccessDenied(DynamoDBError):
    error_type = "AccessDeniedException"
    namespace = CORAL_SERVICE_NAMESPACE


def _invalid_arn(arn: str) -> ValidationException:
    return ValidationException(f"Invalid TableArn: Invalid ResourceArn provided as input {arn}")


def _table_of_arn(ctx: ApiContext, arn: str, operation: str) -> str:
    """The table an ARN names, with DynamoDB's error for each kind of wrong ARN: no ``arn:``
    prefix or another region is a ValidationException, another service or account is
    AccessDeniedException (the caller may not touch it), an index ARN is not taggable."""
    if not arn.startswith("arn:"):
        raise ValidationException(f"ARNs must start with 'arn:': {arn}")
    parts = arn.split(":", 5)
    if len(parts) < 6:
        raise _invalid_arn(arn)
    _, _, service, region, account, resource = parts
    if service != "dynamodb" or account != ctx.account_id:
        raise _AccessDenied(
            f"User: arn:aws:iam::{ctx.account_id}:root is not authorized to perform: "
            f"dynamodb:{operation} on resource: {arn}")
    if region != ctx.region:
        raise _invalid_arn(arn)
    kind, _, name = resource.partition("/")
    if kind != "table" or not name:
        raise _invalid_arn(arn)
    if "/" in name:
        if "/stream/" in f"/{name}":
            raise _arn_not_found(arn)  # a stream has no tags here
        raise ValidationException(
            "One or more parameter values were invalid: Invalid resource arn provided, only "
            f"table or stream is accepted. Provided resource arn: {arn}")
    return name


async def _tagged_table(ctx: ApiContext, params: Params, operation: str) -> tuple[str, str]:
    arn = params.req_string("ResourceArn")
    name = _table_of_arn(ctx, arn, operation)
    if await ctx.catalog.get(name, fresh=True) is None:
        raise _arn_not_found(arn)
    return arn, name


async def tag_resource(ctx: ApiContext, params: Params) -> dict[str, Any]:
    _, name = await _tagged_table(ctx, params, "TagResource")
    if params.sequence("Tags", required=True) == []:
        raise ValidationException("Atleast one Tag needs to be provided as Input.")
    tags = parse_tags(params)

    def change(old: dict[str, Any]) -> dict[str, Any]:
        merged = {t["Key"]: t["Value"] for t in old.get("Tags") or ()}
        merged.update({t["Key"]: t["Value"] for t in tags})
        if len(merged) > MAX_TAGS:
            raise ValidationException(TOO_MANY_TAGS)
        return {**old, "Tags": [{"Key": k, "Value": v} for k, v in merged.items()]}

    await ctx.catalog.update(name, change)
    return {}


async def untag_resource(ctx: ApiContext, params: Params) -> dict[str, Any]:
    _, name = await _tagged_table(ctx, params, "UntagResource")
    keys = params.strings("TagKeys")
    if keys is None:
        raise params.missing("TagKeys")
    if not keys:
        raise ValidationException("Atleast one Tag Key needs to be provided as Input.")
    drop = set(keys)

    def change(old: dict[str, Any]) -> dict[str, Any]:
        kept = [t for t in old.get("Tags") or () if t["Key"] not in drop]
        return {**old, "Tags": kept}

    await ctx.catalog.update(name, change)
    return {}


async def list_tags_of_resource(ctx: ApiContext, params: Params) -> dict[str, Any]:
    _, name = await _tagged_table(ctx, params, "ListTagsOfResource")
    params.string("NextToken")
    info = await ctx.catalog.require(name, fresh=True)
    return {"Tags": list(info.description.get("Tags") or [])}


async def describe_time_to_live(ctx: ApiContext, params: Params) -> dict[str, Any]:
    info = await ctx.catalog.require(params.table_name(), fresh=True)
    ttl = info.description.get("TimeToLive") or {}
    if ttl.get("Enabled"):
        return {
            "TimeToLiveDescription": {
                "TimeToLiveStatus": "ENABLED",
                "AttributeName": ttl["AttributeName"],
            }
        }
    return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}


async def update_time_to_live(ctx: ApiContext, params: Params) -> dict[str, Any]:
    name = params.table_name()
    spec = params.nested("TimeToLiveSpecification", required=True)
    assert spec is not None
    attribute = spec.req_string("AttributeName")
    if spec.raw("Enabled") is None:
        raise spec.missing("Enabled")
    enabled = spec.boolean("Enabled")
    if not 1 <= len(attribute) <= 255:
        raise one_error(
            f"Value '{attribute}' at 'timeToLiveSpecification.attributeName' failed to satisfy "
            "constraint: Member must have length between 1 and 255"
        )

    def change(old: dict[str, Any]) -> dict[str, Any]:
        current = old.get("TimeToLive") or {}
        if current.get("Enabled") and current.get("AttributeName") != attribute:
            raise ValidationException(
                "TimeToLive is active on a different AttributeName: current AttributeName is "
                + current["AttributeName"]
            )
        if enabled and current.get("Enabled"):
            raise ValidationException("TimeToLive is already enabled")
        if not enabled and not current.get("Enabled"):
            raise ValidationException("TimeToLive is already disabled")
        return {**old, "TimeToLive": {"AttributeName": attribute, "Enabled": enabled}}

    await ctx.catalog.update(name, change)
    return {"TimeToLiveSpecification": {"AttributeName": attribute, "Enabled": enabled}}


async def describe_limits(ctx: ApiContext, params: Params) -> dict[str, Any]:
    return {
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    }


async def describe_continuous_backups(ctx: ApiContext, params: Params) -> dict[str, Any]:
    name = params.table_name()
    if await ctx.catalog.get(name, fresh=True) is None:
        raise TableNotFoundException(f"Table not found: {name}")
    return {
        "ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "DISABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"},
        }
    }
