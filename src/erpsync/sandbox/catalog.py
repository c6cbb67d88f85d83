"""The seller's listings as the Listings Items API sees them: attributes in, checked and applied; items out.

Pure functions over :class:`~erpsync.sandbox.world.Listing`, shared by the JSON_LISTINGS_FEED processor
(``listings_feed.py``) and the Listings Items routes (``listings.py``). A listing's quantity, price, title and
condition live in its fields; every other attribute is kept as sent in ``Listing.attributes``.

Attribute shapes (spapi-notes §5.1, the official feed example):
``fulfillment_availability: [{"fulfillment_channel_code": "DEFAULT", "quantity": 10}]`` (``AMAZON_NA`` etc. for
FBA: Amazon counts those units, a quantity sent is ignored with a warning) and
``purchasable_offer: [{"marketplace_id": ..., "currency": "USD",
"our_price": [{"schedule": [{"value_with_tax": 19.99}]}]}]``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from erpsync.sandbox.world import Listing, iso

SELLER_FULFILLED = "DEFAULT"
OWN_FIELDS = ("fulfillment_availability", "purchasable_offer", "item_name", "condition_type")
CONDITIONS = frozenset({
    "new_new", "new_open_box", "new_oem", "refurbished_refurbished", "used_like_new", "used_very_good", "used_good",
    "used_acceptable", "collectible_like_new", "collectible_very_good", "collectible_good", "collectible_acceptable",
    "club_club",
})
INCLUDED_DATA = ("summaries", "attributes", "issues", "offers", "fulfillmentAvailability", "procurement",
                 "relationships", "productTypes")
PATCH_PATH = re.compile(r"^/attributes/([A-Za-z0-9_]+)$")

# Issue codes the sandbox uses (Amazon's own codes are numeric strings too; these are the sandbox's).
INVALID_VALUE = "90244"
MISSING_VALUE = "90220"
BAD_PATH = "90215"
IGNORED_VALUE = "18470"


@dataclass(frozen=True)
class Problem:
    """One issue found in a submission: ``attribute`` names the attribute it is about, when there is one."""

    code: str
    message: str
    attribute: str | None = None
    severity: str = "ERROR"


def is_amazon_fulfilled(listing: Listing) -> bool:
    return listing.fulfillment_channel != SELLER_FULFILLED


def _show(value: Any) -> str:
    """A submitted value as the submitter wrote it (JSON text; Decimals as numbers)."""
    return json.dumps(_plain(value))


def _plain(value: Any) -> Any:
    """Decimals (how the sandbox parses JSON numbers) as JSON numbers again, recursively."""
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, Decimal) and value == value.to_integral_value()


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, Decimal))


def _entries(name: str, value: Any) -> tuple[list[dict[str, Any]], list[Problem]]:
    if not isinstance(value, list) or not value or not all(isinstance(entry, dict) for entry in value):
        return [], [Problem(INVALID_VALUE, f"'{name}' must be a non-empty array of objects, got {_show(value)}", name)]
    return value, []


def _first_price(entry: dict[str, Any]) -> Any:
    prices = entry.get("our_price")
    if not isinstance(prices, list) or not prices or not isinstance(prices[0], dict):
        return None
    schedule = prices[0].get("schedule")
    if not isinstance(schedule, list) or not schedule or not isinstance(schedule[0], dict):
        return None
    return schedule[0].get("value_with_tax", None)


def check(name: str, value: Any) -> list[Problem]:
    """Problems with one attribute value (known attributes get their values checked)."""
    entries, problems = _entries(name, value)
    if problems:
        return problems
    if name == "fulfillment_availability":
        for entry in entries:
            code = entry.get("fulfillment_channel_code")
            if not isinstance(code, str) or not code:
                problems.append(Problem(MISSING_VALUE, "'fulfillment_channel_code' is required but not supplied.",
                                        "fulfillment_availability.fulfillment_channel_code"))
                continue
            quantity = entry.get("quantity")
            if code == SELLER_FULFILLED and quantity is None:
                problems.append(Problem(MISSING_VALUE, "'quantity' is required for fulfillment channel DEFAULT.",
                                        "fulfillment_availability.quantity"))
            elif quantity is not None and (not _is_integer(quantity) or quantity < 0):
                problems.append(Problem(
                    INVALID_VALUE, f"The value {_show(quantity)} for 'quantity' is invalid: it must be a whole number "
                    "of 0 or more.", "fulfillment_availability.quantity"))
            elif quantity is not None and code != SELLER_FULFILLED:
                problems.append(Problem(
                    IGNORED_VALUE, f"'quantity' is ignored for fulfillment channel {code}: Amazon counts the units "
                    "in its fulfillment centers.", "fulfillment_availability.quantity", "WARNING"))
    elif name == "purchasable_offer":
        for entry in entries:
            currency = entry.get("currency")
            if currency is not None and (not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency)):
                problems.append(Problem(INVALID_VALUE, f"The value {_show(currency)} for 'currency' is not an ISO 4217 "
                                        "currency code.", "purchasable_offer.currency"))
            price = _first_price(entry)
            if price is None:
                problems.append(Problem(
                    MISSING_VALUE, "'our_price' must hold at least one schedule with a 'value_with_tax'.",
                    "purchasable_offer.our_price"))
            elif not _is_number(price) or price <= 0:
                problems.append(Problem(
                    INVALID_VALUE, f"The value {_show(price)} for 'value_with_tax' is invalid: it must be a number "
                    "greater than 0.", "purchasable_offer.our_price"))
    elif name == "item_name":
        if not all(isinstance(entry.get("value"), str) and entry["value"].strip() for entry in entries):
            problems.append(Problem(INVALID_VALUE, "'item_name' values must be non-empty text.", "item_name"))
    elif name == "condition_type":
        if not all(entry.get("value") in CONDITIONS for entry in entries):
            problems.append(Problem(INVALID_VALUE, f"'condition_type' must be one of {sorted(CONDITIONS)}.",
                                    "condition_type"))
    return problems


def check_all(attributes: dict[str, Any]) -> list[Problem]:
    return [problem for name, value in attributes.items() for problem in check(name, value)]


def _set(listing: Listing, name: str, value: list[dict[str, Any]]) -> None:
    """Store one attribute that :func:`check` accepted."""
    if name == "fulfillment_availability":
        entry = value[0]
        listing.fulfillment_channel = entry["fulfillment_channel_code"]
        if entry["fulfillment_channel_code"] == SELLER_FULFILLED:
            listing.quantity = int(entry["quantity"])
        elif listing.fnsku is None:
            listing.fnsku = "X00" + hashlib.sha1(listing.sku.encode()).hexdigest()[:7].upper()
    elif name == "purchasable_offer":
        entry = value[0]
        listing.price = Decimal(str(_first_price(entry)))
        listing.currency = entry.get("currency", listing.currency)
        if "BUYABLE" not in listing.status:
            listing.status = ["BUYABLE", *listing.status]
    elif name == "item_name":
        listing.title = value[0]["value"]
    elif name == "condition_type":
        listing.condition = value[0]["value"]
    else:
        listing.attributes[name] = copy.deepcopy(value)


def _unset(listing: Listing, name: str) -> None:
    if name == "fulfillment_availability":
        if not is_amazon_fulfilled(listing):
            listing.quantity = 0
    elif name == "purchasable_offer":
        listing.status = [s for s in listing.status if s != "BUYABLE"]
    else:
        listing.attributes.pop(name, None)


def put_attributes(listing: Listing, attributes: dict[str, Any], now: datetime, *, replace_all: bool) -> None:
    """Apply checked attributes: ``replace_all`` (UPDATE) removes every attribute not given."""
    if replace_all:
        for name in ("fulfillment_availability", "purchasable_offer", *list(listing.attributes)):
            if name not in attributes:
                _unset(listing, name)
    for name, value in attributes.items():
        _set(listing, name, value)
    listing.updated = now


def new_listing(sku: str, product_type: str, now: datetime, currency: str) -> Listing:
    """A listing created by an UPDATE for a SKU the seller did not have (not buyable until it gets an offer)."""
    digest = hashlib.sha1(sku.encode()).hexdigest().upper()
    return Listing(sku=sku, asin="B0" + digest[:8], title=sku, price=Decimal("0"), quantity=0, currency=currency,
                   product_type=product_type, status=["DISCOVERABLE"], created=now, updated=now)


def _merge(current: list[dict[str, Any]], value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON Patch ``merge`` on an attribute array: entries with the same selector are updated, others added."""
    merged = copy.deepcopy(current)
    for entry in value:
        key = next((k for k in ("fulfillment_channel_code", "marketplace_id", "language_tag") if k in entry), None)
        match = next((m for m in merged if key is not None and m.get(key) == entry[key]), None)
        if match is None:
            merged.append(copy.deepcopy(entry))
        else:
            match.update(copy.deepcopy(entry))
    return merged


def patch(listing: Listing, patches: list[dict[str, Any]], marketplace_id: str, now: datetime) -> list[Problem]:
    """Apply JSON Patch operations to top-level attributes; nothing is applied when any operation has an error.

    ``add`` and ``replace`` set the attribute, ``merge`` updates the entries with the same selector
    (fulfillment_channel_code, marketplace_id or language_tag) and adds the others, ``delete`` removes the
    whole attribute (quantity 0, or no offer: not buyable)."""
    problems: list[Problem] = []
    planned: list[tuple[str, str, Any]] = []
    for number, operation in enumerate(patches, start=1):
        op, path, value = operation.get("op"), operation.get("path"), operation.get("value")
        match = PATCH_PATH.match(path) if isinstance(path, str) else None
        if match is None:
            problems.append(Problem(BAD_PATH, f"Patch {number}: path {path!r} is not a top-level attribute; only "
                                    "paths like '/attributes/fulfillment_availability' can be patched."))
            continue
        name = match.group(1)
        if op == "delete":
            if name in ("item_name", "condition_type"):
                problems.append(Problem(INVALID_VALUE, f"Patch {number}: '{name}' is required and cannot be "
                                        "deleted.", name))
            else:
                planned.append(("delete", name, None))
            continue
        if op not in ("add", "replace", "merge"):
            problems.append(Problem(INVALID_VALUE, f"Patch {number}: op {op!r} is not one of add, replace, "
                                    "merge, delete.", name))
            continue
        if op == "merge":
            entries, bad = _entries(name, value)
            if bad:
                problems += bad
                continue
            value = _merge(attributes_of(listing, marketplace_id).get(name, []), entries)
        found = check(name, value)
        problems += found
        if not any(p.severity == "ERROR" for p in found):
            planned.append(("set", name, value))
    if any(p.severity == "ERROR" for p in problems):
        return problems
    for action, name, value in planned:
        if action == "delete":
            _unset(listing, name)
        else:
            _set(listing, name, value)
    listing.updated = now
    return problems


def _number(value: Decimal) -> int | float:
    """A JSON number for a Decimal (the wire format; the state keeps the Decimal)."""
    return int(value) if value == value.to_integral_value() else float(value)


def attributes_of(listing: Listing, marketplace_id: str) -> dict[str, Any]:
    """The listing's attributes in Amazon's shape, including the ones kept in fields."""
    attributes = _plain(listing.attributes)
    attributes["item_name"] = [{"value": listing.title, "language_tag": "en_US", "marketplace_id": marketplace_id}]
    attributes["condition_type"] = [{"value": listing.condition, "marketplace_id": marketplace_id}]
    availability: dict[str, Any] = {"fulfillment_channel_code": listing.fulfillment_channel}
    if not is_amazon_fulfilled(listing):
        availability["quantity"] = listing.quantity
    attributes["fulfillment_availability"] = [availability]
    if "BUYABLE" in listing.status:
        attributes["purchasable_offer"] = [{
            "marketplace_id": marketplace_id, "currency": listing.currency,
            "our_price": [{"schedule": [{"value_with_tax": _number(listing.price)}]}],
        }]
    return attributes


def render_item(listing: Listing, marketplace_ids: list[str], included: list[str], now: datetime) -> dict[str, Any]:
    """A Listings Items API ``Item`` with the ``included`` data sets (``procurement``, ``relationships`` and
    ``productTypes`` are empty for the sandbox's simple listings)."""
    item: dict[str, Any] = {"sku": listing.sku}
    created = iso(listing.created or now)
    updated = iso(listing.updated or listing.created or now)
    for name in included:
        if name == "summaries":
            item["summaries"] = []
            for marketplace_id in marketplace_ids:
                summary = {"marketplaceId": marketplace_id, "asin": listing.asin, "productType": listing.product_type,
                           "conditionType": listing.condition, "status": list(listing.status),
                           "itemName": listing.title, "createdDate": created, "lastUpdatedDate": updated}
                if listing.fnsku:
                    summary["fnSku"] = listing.fnsku
                item["summaries"].append(summary)
        elif name == "attributes":
            item["attributes"] = attributes_of(listing, marketplace_ids[0])
        elif name == "issues":
            item["issues"] = [dict(issue) for issue in listing.issues]
        elif name == "offers":
            item["offers"] = [
                {"marketplaceId": marketplace_id, "offerType": "B2C",
                 "price": {"currencyCode": listing.currency, "amount": f"{listing.price:f}"},
                 "audience": {"value": "ALL", "displayName": "Sell on Amazon"}}
                for marketplace_id in marketplace_ids] if "BUYABLE" in listing.status else []
        elif name == "fulfillmentAvailability":
            availability: dict[str, Any] = {"fulfillmentChannelCode": listing.fulfillment_channel}
            if not is_amazon_fulfilled(listing):
                availability["quantity"] = listing.quantity
            item["fulfillmentAvailability"] = [availability]
        elif name == "procurement":
            item["procurement"] = []
        elif name == "relationships":
            item["relationships"] = [{"marketplaceId": m, "relationships": []} for m in marketplace_ids]
        elif name == "productTypes":
            item["productTypes"] = [{"marketplaceId": m, "productType": listing.product_type}
                                    for m in marketplace_ids]
    return item
