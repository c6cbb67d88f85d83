"""FBA Inventory v1 getInventorySummaries over the Amazon-fulfilled listings of ``world.listings`` (spapi-notes §8).

A listing whose fulfillment channel is not ``DEFAULT`` is stocked at Amazon: its ``quantity`` is the fulfillable
quantity (the sandbox has no inbound, reserved, researching or unfulfillable units). Pages hold 50 summaries;
a ``nextToken`` expires 30 seconds (sandbox time) after it was made.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request

from erpsync.sandbox import catalog, query
from erpsync.sandbox.core import Caller, invalid_input, operation, world_of
from erpsync.sandbox.world import Listing, iso

router = APIRouter(tags=["inventory"])
PAGE_SIZE = 50
TOKEN_SECONDS = 30
MAX_SKUS = 50
HISTORY = timedelta(days=548)  # startDateTime may go back 18 months


def summary(listing: Listing, details: bool, now: datetime) -> dict[str, Any]:
    quantity = listing.quantity
    item: dict[str, Any] = {"asin": listing.asin, "fnSku": listing.fnsku or listing.asin, "sellerSku": listing.sku,
                            "condition": "NewItem", "lastUpdatedTime": iso(listing.updated or listing.created or now),
                            "productName": listing.title, "totalQuantity": quantity}
    if details:
        item["inventoryDetails"] = {
            "fulfillableQuantity": quantity, "inboundWorkingQuantity": 0, "inboundShippedQuantity": 0,
            "inboundReceivingQuantity": 0,
            "reservedQuantity": {"totalReservedQuantity": 0, "pendingCustomerOrderQuantity": 0,
                                 "pendingTransshipmentQuantity": 0, "fcProcessingQuantity": 0},
            "researchingQuantity": {"totalResearchingQuantity": 0, "researchingQuantityBreakdown": []},
            "unfulfillableQuantity": {"totalUnfulfillableQuantity": 0, "customerDamagedQuantity": 0,
                                      "warehouseDamagedQuantity": 0, "distributorDamagedQuantity": 0,
                                      "carrierDamagedQuantity": 0, "defectiveQuantity": 0, "expiredQuantity": 0},
        }
    return item


def _filters(request: Request, now: datetime) -> dict[str, Any]:
    world = world_of(request)
    granularity_type = request.query_params.get("granularityType")
    granularity_id = request.query_params.get("granularityId")
    marketplace_ids = query.values(request, "marketplaceIds")
    missing = [name for name, value in (("granularityType", granularity_type), ("granularityId", granularity_id),
                                        ("marketplaceIds", marketplace_ids)) if not value]
    if missing:
        raise invalid_input(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required.")
    if granularity_type != "Marketplace":
        raise invalid_input(f"granularityType {granularity_type!r} is invalid; use Marketplace.")
    if len(marketplace_ids) > 1:
        raise invalid_input("marketplaceIds takes exactly one marketplace.")
    query.known_marketplaces(world, "granularityId", [granularity_id])
    query.known_marketplaces(world, "marketplaceIds", marketplace_ids)
    skus = query.values(request, "sellerSkus")
    if len(skus) > MAX_SKUS:
        raise invalid_input(f"sellerSkus takes at most {MAX_SKUS} SKUs, got {len(skus)}.")
    single = request.query_params.get("sellerSku")
    start = query.timestamp(request, "startDateTime")
    if start is not None and start < now - HISTORY:
        raise invalid_input("startDateTime may be at most 18 months in the past.")
    # Amazon's precedence: startDateTime ignores the SKU filters; sellerSkus ignores sellerSku.
    skus = [] if start is not None else skus or ([single] if single else [])
    return {"type": granularity_type, "id": granularity_id, "skus": skus,
            "start": start.isoformat() if start else None, "details": query.boolean(request, "details")}


@router.get("/fba/inventory/v1/summaries")
def get_inventory_summaries(request: Request,
                            caller: Caller = Depends(operation("getInventorySummaries"))) -> dict[str, Any]:
    world = world_of(request)
    now = world.now()
    filters = _filters(request, now)
    offset = 0
    token = request.query_params.get("nextToken")
    if token is not None:
        state = query.decode_token(token)
        if state.get("filters") != filters:
            raise invalid_input("nextToken belongs to a request with other parameters; repeat the same parameters "
                                "with the token.")
        if now > datetime.fromisoformat(state["issued"]) + timedelta(seconds=TOKEN_SECONDS):
            raise invalid_input("nextToken has expired (tokens live 30 seconds); start again without it.")
        offset = state["offset"]
    start = datetime.fromisoformat(filters["start"]) if filters["start"] else None
    with world.lock:
        stocked = [listing for sku, listing in sorted(world.listings.items())
                   if catalog.is_amazon_fulfilled(listing) and (not filters["skus"] or sku in filters["skus"])
                   and (start is None or (listing.updated or listing.created or now) >= start)]
        page = [summary(listing, filters["details"], now) for listing in stocked[offset:offset + PAGE_SIZE]]
    body: dict[str, Any] = {"payload": {"granularity": {"granularityType": filters["type"],
                                                        "granularityId": filters["id"]},
                                        "inventorySummaries": page}}
    if offset + PAGE_SIZE < len(stocked):
        body["pagination"] = {"nextToken": query.encode_token(
            {"filters": filters, "offset": offset + PAGE_SIZE, "issued": now.isoformat()})}
    return body
