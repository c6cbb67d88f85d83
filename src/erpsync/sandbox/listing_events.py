"""What happens to listings outside the seller's feeds, for reconciliation and the inventory notifications
(control API, ``/_sandbox/…``):

* ``POST /_sandbox/listings/drift`` — seller-fulfilled quantities change on Amazon without any feed (a lost update,
  an edit in Seller Central): what reconciliation has to find. Silent: no notification.
* ``POST /_sandbox/listings/{sku}/fba`` — Amazon's fulfillable quantity of an FBA listing changes; sends
  FBA_INVENTORY_AVAILABILITY_CHANGES (``FBAInventoryAvailabilityChangeNotification.json``).
* ``POST /_sandbox/listings/{sku}/status`` — the listing's status changes (BUYABLE, DISCOVERABLE, none); sends
  LISTINGS_ITEM_STATUS_CHANGE (``ListingsItemStatusChangeNotification.json``, payload version 1.0).
* ``POST /_sandbox/listings/{sku}/issues`` — Amazon finds an issue with the listing (readable with getListingsItem
  ``includedData=issues``); sends LISTINGS_ITEM_ISSUES_CHANGE (payload version 2023-12-13: severities and
  enforcement actions only — the messages are read with getListingsItem).

Notifications go at once to the sinks of ``world.notification_sinks`` and to the destination of every Notifications
API subscription to their type (``notifications_api.py``; an envelope of its own, with that subscription's id and a
NotificationId of its own); each envelope is kept in ``world.published``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from erpsync.sandbox.core import invalid_input, not_found, world_of
from erpsync.sandbox.notifications import APPLICATION_ID
from erpsync.sandbox.world import Listing, World, iso

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])
SUBSCRIPTION_IDS = {"FBA_INVENTORY_AVAILABILITY_CHANGES": "erpsync-sandbox-fba-inventory",
                    "LISTINGS_ITEM_STATUS_CHANGE": "erpsync-sandbox-listing-status",
                    "LISTINGS_ITEM_ISSUES_CHANGE": "erpsync-sandbox-listing-issues"}
ENFORCEMENTS = ("SEARCH_SUPPRESSED", "LISTING_SUPPRESSED", "ATTRIBUTE_SUPPRESSED", "CATALOG_ITEM_REMOVED")


class Drift(BaseModel):
    skus: list[str] | None = None  # default: `count` seller-fulfilled listings chosen by the world's rng
    count: int = Field(default=1, ge=1, le=10_000)
    delta: int | None = None  # default: a random non-zero change of at most 5 units


class FbaQuantity(BaseModel):
    quantity: int = Field(ge=0)
    marketplace_id: str = "ATVPDKIKX0DER"


class Status(BaseModel):
    status: list[str]
    marketplace_id: str = "ATVPDKIKX0DER"


class Issue(BaseModel):
    message: str = Field(min_length=1)
    code: str = "18027"
    severity: str = Field(default="ERROR", pattern="^(ERROR|WARNING|INFO)$")
    attribute: str | None = None
    enforcements: list[str] = Field(default_factory=lambda: ["LISTING_SUPPRESSED"])
    marketplace_id: str = "ATVPDKIKX0DER"


def envelope(world: World, notification_type: str, payload_version: str, payload: dict[str, Any]) -> dict[str, Any]:
    now = iso(world.now())
    return {"NotificationVersion": "1.0", "NotificationType": notification_type, "PayloadVersion": payload_version,
            "EventTime": now, "Payload": payload,
            "NotificationMetadata": {"ApplicationId": APPLICATION_ID,
                                     "SubscriptionId": SUBSCRIPTION_IDS[notification_type], "PublishTime": now,
                                     "NotificationId": str(uuid.uuid4())}}


def publish(world: World, body: dict[str, Any]) -> None:
    """Send one envelope to every sink, and a copy to every subscription of its type, now (a failed send is
    recorded, not retried)."""
    with world.lock:
        world.published.append(body)
        targets = [(sink, body) for sink in world.notification_sinks]
        for subscription in world.subscriptions.values():
            if subscription.notification_type != body["NotificationType"]:
                continue
            copy = {**body, "NotificationMetadata": {**body["NotificationMetadata"],
                                                     "SubscriptionId": subscription.id,
                                                     "NotificationId": str(uuid.uuid4())}}
            world.published.append(copy)
            targets.append((world.destinations[subscription.destination_id].sink, copy))
    for sink, envelope_ in targets:
        try:
            sink.send(json.dumps(envelope_))
        except Exception as exc:  # noqa: BLE001 - the sink is down: count it, keep the others going
            world.delivery_failures.append((sink.name, type(exc).__name__, str(exc)[:200]))


def _listing(world: World, sku: str) -> Listing:
    listing = world.listings.get(sku)
    if listing is None:
        raise not_found(f"SKU {sku!r} has no listing; create it with PUT /_sandbox/listings.")
    return listing


@router.post("/listings/drift")
def drift(body: Drift, request: Request) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        mfn = sorted(s for s, listing in world.listings.items() if listing.fulfillment_channel == "DEFAULT")
        if body.skus is not None:
            unknown = [s for s in body.skus if s not in mfn]
            if unknown:
                raise invalid_input(f"SKUs {unknown} have no seller-fulfilled listing.")
            chosen = body.skus
        else:
            chosen = world.rng.sample(mfn, min(body.count, len(mfn)))
        changed = []
        for sku in chosen:
            listing = world.listings[sku]
            delta = body.delta if body.delta is not None else world.rng.choice((-5, -4, -3, -2, -1, 1, 2, 3, 4, 5))
            before = listing.quantity
            listing.quantity = max(before + delta, 0)
            changed.append({"sku": sku, "before": before, "after": listing.quantity})
    return {"drifted": changed}


@router.post("/listings/{sku}/fba")
def fba_quantity(sku: str, body: FbaQuantity, request: Request) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        listing = _listing(world, sku)
        if listing.fulfillment_channel == "DEFAULT":
            listing.fulfillment_channel = "AMAZON_NA"
        listing.fnsku = listing.fnsku or f"X00{abs(hash(sku)) % 10**7:07d}"
        listing.quantity, listing.updated = body.quantity, world.now()
        body_out = envelope(world, "FBA_INVENTORY_AVAILABILITY_CHANGES", "1.0", {
            "SellerId": world.seller_id, "FNSKU": listing.fnsku, "ASIN": listing.asin, "SKU": sku,
            "FulfillmentInventoryByMarketplace": [{
                "MarketplaceId": body.marketplace_id, "ItemName": listing.title,
                "FulfillmentInventory": {
                    "InboundQuantityBreakdown": {"Working": 0, "Shipped": 0, "Receiving": 0},
                    "Fulfillable": body.quantity, "Unfulfillable": 0, "Researching": 0,
                    "ReservedQuantityBreakdown": {"WarehouseProcessing": 0, "WarehouseTransfer": 0,
                                                  "PendingCustomerOrder": 0},
                    "FutureSupplyBuyable": 0, "PendingCustomerOrderInTransit": 0},
                "Stores": []}]})
    publish(world, body_out)
    return body_out


@router.post("/listings/{sku}/status")
def status(sku: str, body: Status, request: Request) -> dict[str, Any]:
    world = world_of(request)
    bad = [s for s in body.status if s not in ("BUYABLE", "DISCOVERABLE")]
    if bad:
        raise invalid_input(f"status {bad} is not BUYABLE or DISCOVERABLE.")
    with world.lock:
        listing = _listing(world, sku)
        listing.status, listing.updated = list(body.status), world.now()
        body_out = envelope(world, "LISTINGS_ITEM_STATUS_CHANGE", "1.0", {
            "SellerId": world.seller_id, "MarketplaceId": body.marketplace_id, "Asin": listing.asin, "Sku": sku,
            "CreatedDate": iso(listing.created or world.now()), "Status": list(body.status)})
    publish(world, body_out)
    return body_out


@router.post("/listings/{sku}/issues")
def issues(sku: str, body: Issue, request: Request) -> dict[str, Any]:
    world = world_of(request)
    bad = [e for e in body.enforcements if e not in ENFORCEMENTS]
    if bad:
        raise invalid_input(f"enforcements {bad}; expected some of {list(ENFORCEMENTS)}.")
    with world.lock:
        listing = _listing(world, sku)
        issue = {"code": body.code, "message": body.message, "severity": body.severity,
                 "categories": ["INVALID_ATTRIBUTE"] if body.attribute else []}
        if body.attribute:
            issue["attributeNames"] = [body.attribute]
        listing.issues = [*listing.issues, issue]  # read by getListingsItem includedData=issues
        if body.severity == "ERROR" and "LISTING_SUPPRESSED" in body.enforcements:
            listing.status = [s for s in listing.status if s != "BUYABLE"]
        listing.updated = world.now()
        body_out = envelope(world, "LISTINGS_ITEM_ISSUES_CHANGE", "2023-12-13", {
            "SellerId": world.seller_id, "MarketplaceId": body.marketplace_id, "Asin": listing.asin, "Sku": sku,
            "Severities": [body.severity], "EnforcementActions": list(body.enforcements)})
    publish(world, body_out)
    return body_out
