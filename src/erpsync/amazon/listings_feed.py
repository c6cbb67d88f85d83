"""JSON_LISTINGS_FEED messages for stock, prices and attributes, and the per-message results of a processing report.

Values travel through erpsync as JSON-safe dicts — ``{"quantity": 7, "price": "19.99", "minimum_price": "17.99",
"maximum_price": "24.99", "attributes": {"item_name": "Tent"}}`` (money as decimal strings) — and become one
``PATCH`` message per SKU here (spapi-notes §5.1): ``fulfillment_availability`` for the seller-fulfilled quantity,
``purchasable_offer`` for the price (with the optional seller-allowed bounds), one ``replace`` per attribute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

SELLER_FULFILLED = "DEFAULT"


def _schedule(amount: str) -> list[dict[str, Any]]:
    return [{"schedule": [{"value_with_tax": Decimal(amount)}]}]


def patches(values: dict[str, Any], *, marketplace_id: str, currency: str,
            language_tag: str = "en_US") -> list[dict[str, Any]]:
    """The JSON Patch operations for ``values`` (see the module docstring)."""
    ops: list[dict[str, Any]] = []
    if "quantity" in values:
        ops.append({"op": "replace", "path": "/attributes/fulfillment_availability",
                    "value": [{"fulfillment_channel_code": SELLER_FULFILLED, "quantity": int(values["quantity"])}]})
    if "price" in values:
        offer: dict[str, Any] = {"marketplace_id": marketplace_id, "currency": currency,
                                 "our_price": _schedule(values["price"])}
        if values.get("minimum_price"):
            offer["minimum_seller_allowed_price"] = _schedule(values["minimum_price"])
        if values.get("maximum_price"):
            offer["maximum_seller_allowed_price"] = _schedule(values["maximum_price"])
        ops.append({"op": "replace", "path": "/attributes/purchasable_offer", "value": [offer]})
    for name, text in sorted((values.get("attributes") or {}).items()):
        ops.append({"op": "replace", "path": f"/attributes/{name}",
                    "value": [{"value": text, "language_tag": language_tag, "marketplace_id": marketplace_id}]})
    return ops


def message(message_id: int, sku: str, values: dict[str, Any], *, product_type: str, marketplace_id: str,
            currency: str) -> dict[str, Any]:
    return {"messageId": message_id, "sku": sku, "operationType": "PATCH", "productType": product_type,
            "patches": patches(values, marketplace_id=marketplace_id, currency=currency)}


@dataclass
class MessageResults:
    """A processing report read per message: ``accepted`` message ids, ``errors`` (message id → its ERROR issues),
    ``warnings`` likewise, and ``feed_issues``: issues tied to no message (the whole feed)."""

    accepted: set[int] = field(default_factory=set)
    errors: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    warnings: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    feed_issues: list[dict[str, Any]] = field(default_factory=list)


def results(report: dict[str, Any], message_ids: Iterable[int]) -> MessageResults:
    """Which messages Amazon accepted: every message without an ERROR issue, when the report processed messages
    (``summary.messagesProcessed`` > 0); with none processed, nothing is accepted."""
    found = MessageResults()
    for issue in report.get("issues") or ():
        number = issue.get("messageId")
        if number is None:
            found.feed_issues.append(issue)
        elif issue.get("severity") == "ERROR":
            found.errors.setdefault(int(number), []).append(issue)
        else:
            found.warnings.setdefault(int(number), []).append(issue)
    processed = (report.get("summary") or {}).get("messagesProcessed") or 0
    if processed:
        found.accepted = {number for number in message_ids if number not in found.errors}
    return found


def describe(issues: Iterable[dict[str, Any]]) -> str:
    """Amazon's issues as one line: ``90220 item_name: 'item_name' is required …; …``."""
    parts = []
    for issue in issues:
        about = issue.get("attributeName") or (issue.get("attributeNames") or [None])[0]
        parts.append(f"{issue.get('code', '?')} {about + ': ' if about else ''}{issue.get('message', '')}".strip())
    return "; ".join(parts)
