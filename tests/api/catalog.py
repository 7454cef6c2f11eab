"""Shared fixtures data for the api tests: the developer guide's ProductCatalog item."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from dynamokv.api.attributes import Item, item_from_wire, item_to_wire
from dynamokv.api.errors import DynamoDBError

# Item 123 of the ProductCatalog table used throughout the DynamoDB Developer Guide.
PRODUCT_WIRE: dict[str, Any] = {
    "Id": {"N": "123"},
    "Title": {"S": "Bicycle 123"},
    "Description": {"S": "123 description"},
    "BicycleType": {"S": "Hybrid"},
    "Brand": {"S": "Brand-Company C"},
    "Price": {"N": "500"},
    "Color": {"SS": ["Red", "Black"]},
    "ProductCategory": {"S": "Bicycle"},
    "InStock": {"BOOL": True},
    "QuantityOnHand": {"NULL": True},
    "RelatedItems": {"L": [{"N": "341"}, {"N": "472"}, {"N": "649"}]},
    "Pictures": {
        "M": {
            "FrontView": {"S": "http://example.com/products/123_front.jpg"},
            "RearView": {"S": "http://example.com/products/123_rear.jpg"},
            "SideView": {"S": "http://example.com/products/123_left_side.jpg"},
        }
    },
    "ProductReviews": {
        "M": {
            "FiveStar": {
                "L": [
                    {"S": "Excellent! Can't recommend it highly enough! Buy it!"},
                    {"S": "Do yourself a favor and buy this."},
                ]
            },
            "OneStar": {"L": [{"S": "Terrible product! Do not buy this."}]},
        }
    },
    "Comment": {"S": "This product sells out quickly during the summer"},
    "Safety.Warning": {"S": "Always wear a helmet"},
}


def product() -> Item:
    return item_from_wire(PRODUCT_WIRE)


def wire(item: Mapping[str, Any]) -> dict[str, Any]:
    return item_to_wire(item)


def error_of(call: Callable[[], object]) -> str:
    """The message of the DynamoDBError ``call`` raises."""
    with pytest.raises(DynamoDBError) as info:
        call()
    return info.value.message


def sv(text: str) -> dict[str, Any]:
    """Wire form of a string value."""
    return {"S": text}


def nv(number: object) -> dict[str, Any]:
    """Wire form of a number value."""
    return {"N": str(number)}
