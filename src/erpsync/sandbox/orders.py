"""Orders API v2026-01-01 (searchOrders, getOrder) and Orders v0 (confirmShipment; getOrders, getOrder,
getOrderItems for compatibility) over the world's orders.

Orders are kept in the v2026 shape; v0 answers are translated from it (Money amounts as strings; no restricted
PII since the sandbox issues no Restricted Data Tokens). Shipping an item (confirmShipment, or Amazon for AFN)
records its money in the settlement ledger.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from erpsync.sandbox import query
from erpsync.sandbox.core import UTC, AmazonError, Caller, invalid_input, not_found, operation, world_of
from erpsync.sandbox.notifications import FULFILLMENT_TYPE, V0_STATUS
from erpsync.sandbox.world import ConfirmedShipment, MoneyEvent, World, amount_of, cents, iso

router = APIRouter()

FULFILLMENT_STATUSES = ("PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED",
                        "CANCELLED", "UNFULFILLABLE")
FULFILLED_BY = ("MERCHANT", "AMAZON")
# includedData value -> (order-level keys, item-level keys) it adds to the always-present core fields
INCLUDED_DATA: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "BUYER": (("buyer",), ()),
    "RECIPIENT": (("recipient",), ()),
    "PROCEEDS": (("proceeds",), ("proceeds",)),
    "EXPENSE": ((), ("expense",)),
    "PROMOTION": ((), ("promotion",)),
    "CANCELLATION": ((), ("cancellation",)),
    "FULFILLMENT": (("fulfillment",), ("fulfillment",)),
    "PACKAGES": (("packages",), ()),
    "TAX": (("tax",), ("tax",)),
    "PAYMENT": (("payment",), ()),
    "FULFILLMENT_ORDERS": (("fulfillmentOrders",), ()),
}
ORDER_CORE = ("orderId", "orderAliases", "createdTime", "lastUpdatedTime", "programs", "associatedOrders",
              "salesChannel", "orderItems")
ITEM_CORE = ("orderItemId", "quantityOrdered", "measurement", "associatedOrderItems", "programs", "product")
BEFORE_MARGIN = timedelta(minutes=2)

COMMISSION_RATE = Decimal("0.15")
FBA_FEE_PER_UNIT = Decimal("3.22")


# --- helpers shared with scenario.py ------------------------------------------------------------------------

def components(item: dict[str, Any]) -> dict[str, Decimal]:
    """The money of one v2026 item as positive components (discounts and discount tax as positive amounts)."""
    out = {key: Decimal("0") for key in ("item", "shipping", "gift_wrap", "item_tax", "shipping_tax",
                                         "gift_wrap_tax", "discount_tax", "promo_item", "promo_shipping")}
    for part in (item.get("proceeds") or {}).get("breakdowns", []):
        kind, subtotal = part["type"], amount_of(part["subtotal"])
        details = {d["subtype"]: amount_of(d["value"]) for d in part.get("detailedBreakdowns", [])}
        if kind == "ITEM":
            out["item"] += subtotal
        elif kind == "SHIPPING":
            out["shipping"] += subtotal
        elif kind == "GIFT_WRAP":
            out["gift_wrap"] += subtotal
        elif kind == "TAX":
            out["item_tax"] += details.get("ITEM", Decimal("0"))
            out["shipping_tax"] += details.get("SHIPPING", Decimal("0"))
            out["gift_wrap_tax"] += details.get("GIFT_WRAP", Decimal("0"))
            out["discount_tax"] -= details.get("DISCOUNT", Decimal("0"))
        elif kind == "DISCOUNT":
            out["promo_item"] -= details.get("ITEM", Decimal("0"))
            out["promo_shipping"] -= details.get("SHIPPING", Decimal("0"))
    return out


def item_charges(world: World, order: dict[str, Any], item: dict[str, Any], *, refund: bool = False,
                 shipment_id: str = "", adjustment_id: str = "") -> list[MoneyEvent]:
    """The settlement ledger rows of one order item (charges, promotions, withheld tax, fees), or its refund."""
    c = components(item)
    channel = order["salesChannel"]
    marketplace = world.marketplaces[channel["marketplaceId"]]
    afn = order["fulfillment"]["fulfilledBy"] == "AMAZON"
    facilitator = marketplace.country == "US"
    commission = cents(COMMISSION_RATE * (c["item"] - c["promo_item"] + c["gift_wrap"]))
    rows: list[tuple[str, str, Decimal]] = [
        ("ItemPrice", "Principal", c["item"]),
        ("ItemPrice", "Shipping", c["shipping"]),
        ("ItemPrice", "GiftWrap", c["gift_wrap"]),
        ("ItemPrice", "Tax", c["item_tax"] - c["discount_tax"]),
        ("ItemPrice", "ShippingTax", c["shipping_tax"]),
        ("ItemPrice", "GiftWrapTax", c["gift_wrap_tax"]),
        ("Promotion", "Principal", -c["promo_item"]),
        ("Promotion", "Shipping", -c["promo_shipping"]),
    ]
    if facilitator:
        rows += [("ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", -(c["item_tax"] - c["discount_tax"])),
                 ("ItemWithheldTax", "MarketplaceFacilitatorTax-Shipping", -c["shipping_tax"]),
                 ("ItemWithheldTax", "MarketplaceFacilitatorTax-Other", -c["gift_wrap_tax"])]
    if refund:
        rows = [(kind, what, -value) for kind, what, value in rows]
        rows += [("ItemFees", "Commission", commission),
                 ("ItemFees", "RefundCommission", -min(Decimal("5.00"), cents(commission * Decimal("0.2"))))]
    else:
        rows.append(("ItemFees", "Commission", -commission))
        if afn:
            rows.append(("ItemFees", "FBAPerUnitFulfillmentFee", -FBA_FEE_PER_UNIT * item["quantityOrdered"]))
    return [MoneyEvent(
        posted=world.now(), transaction_type="Refund" if refund else "Order", amount_type=kind,
        amount_description=what, amount=cents(value), currency=marketplace.currency,
        marketplace_id=marketplace.id, order_id=order["orderId"], shipment_id=shipment_id,
        adjustment_id=adjustment_id, fulfillment_id="AFN" if afn else "MFN",
        order_item_code=item["orderItemId"], sku=item["product"]["sellerSku"],
        quantity=item["quantityOrdered"]) for kind, what, value in rows if value != 0]


def ship_items(world: World, order: dict[str, Any], quantities: dict[str, int], *, shipment_id: str = "",
               reason: str = "Shipment confirmed") -> None:
    """Move ``quantities`` (orderItemId -> qty) from unfulfilled to fulfilled; update status; book fully shipped
    items in the ledger. The caller has validated the quantities and holds the lock."""
    booked: list[MoneyEvent] = []
    for item in order["orderItems"]:
        qty = quantities.get(item["orderItemId"], 0)
        if not qty:
            continue
        fulfillment = item["fulfillment"]
        fulfillment["quantityFulfilled"] += qty
        fulfillment["quantityUnfulfilled"] -= qty
        if fulfillment["quantityUnfulfilled"] == 0:
            booked += item_charges(world, order, item, shipment_id=shipment_id)
    world.record(booked)
    done = all(item["fulfillment"]["quantityUnfulfilled"] == 0 for item in order["orderItems"])
    status = "SHIPPED" if done else "PARTIALLY_SHIPPED"
    if order["fulfillment"]["fulfillmentStatus"] != status:
        world.set_status(order, status, reason)
    else:
        order["lastUpdatedTime"] = iso(world.now())


def _marketplaces(world: World, name: str, values: list[str] | None, *, required: bool) -> list[str]:
    ids = query.split(values)
    if required and not ids:
        raise invalid_input(f"{name} is required.", f"Pass {name}=<marketplace id>.")
    if len(ids) > 50:
        raise invalid_input(f"{name} accepts at most 50 values.")
    return query.known_marketplaces(world, name, ids)


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class _Window:
    """The Created* or LastUpdated* window of a search, with Amazon's rules on which may be combined."""

    def __init__(self, world: World, names: tuple[str, str, str, str], values: tuple[str | None, ...]):
        created_after, created_before, updated_after, updated_before = (
            None if value is None else query.parse_time(value, name) for name, value in zip(names, values))
        a_created, b_created, a_updated, b_updated = names
        if (created_after is None) == (updated_after is None):
            raise invalid_input(f"Exactly one of {a_created} and {a_updated} must be provided.")
        if created_after is not None and updated_before is not None:
            raise invalid_input(f"{b_updated} cannot be combined with {a_created}.")
        if updated_after is not None and created_before is not None:
            raise invalid_input(f"{b_created} cannot be combined with {a_updated}.")
        self.field = "createdTime" if created_after is not None else "lastUpdatedTime"
        self.after = created_after or updated_after
        before = created_before if created_after is not None else updated_before
        before_name = b_created if created_after is not None else b_updated
        now = world.now()
        if before is not None:
            if before < self.after:
                raise invalid_input(f"{before_name} must be equal to or after the *After date.")
            if before > now - BEFORE_MARGIN:
                raise invalid_input(f"{before_name} must be at least two minutes before the time of the request.",
                                    f"Sandbox time is {iso(now)}.")
        self.before = before
        self.before_name = before_name

    def matches(self, order: dict[str, Any], before: datetime) -> bool:
        moment = _parse_time(order[self.field])
        return self.after <= moment <= before


def _page_token(offset: int, before: datetime, key: str) -> str:
    return query.encode_token({"o": offset, "b": iso(before), "q": key})


def _read_token(token: str, name: str, key: str) -> tuple[int, datetime]:
    """(offset, upper bound) of a page token, which must belong to the query named by ``key``."""
    state = query.decode_token(token, name)
    try:
        offset, before, same = int(state["o"]), _parse_time(state["b"]), state["q"] == key
    except (ValueError, KeyError, TypeError):
        raise invalid_input(f"Invalid {name}.", "Pass the nextToken of the previous page unchanged.") from None
    if not same or offset < 0:
        raise invalid_input(f"{name} does not belong to this query.",
                            "Keep every other parameter the same while paging.")
    return offset, before


def _query_key(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def view(order: dict[str, Any], included: list[str]) -> dict[str, Any]:
    """The order as searchOrders/getOrder return it: core fields plus the ``includedData`` datasets."""
    order_keys, item_keys = set(ORDER_CORE), set(ITEM_CORE)
    for name in included:
        order_keys.update(INCLUDED_DATA[name][0])
        item_keys.update(INCLUDED_DATA[name][1])
    out = {key: value for key, value in order.items() if key in order_keys}
    out["orderItems"] = [{key: value for key, value in item.items() if key in item_keys}
                         for item in order["orderItems"]]
    return json.loads(json.dumps(out))  # a copy: the caller may serialize outside the lock


def _order_or_404(world: World, order_id: str) -> dict[str, Any]:
    order = world.order(order_id)
    if order is None:
        raise not_found(f"Order {order_id} was not found.", "Check the orderId (3-7-7 digits).")
    return order


# --- Orders v2026-01-01 -------------------------------------------------------------------------------------

@router.get("/orders/2026-01-01/orders")
def search_orders(
    request: Request,
    caller: Caller = Depends(operation("searchOrders")),
    createdAfter: str | None = None,
    createdBefore: str | None = None,
    lastUpdatedAfter: str | None = None,
    lastUpdatedBefore: str | None = None,
    fulfillmentStatuses: Annotated[list[str] | None, Query()] = None,
    marketplaceIds: Annotated[list[str] | None, Query()] = None,
    fulfilledBy: Annotated[list[str] | None, Query()] = None,
    maxResultsPerPage: int = 100,
    paginationToken: str | None = None,
    includedData: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    world = world_of(request)
    window = _Window(world, ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore"),
                     (createdAfter, createdBefore, lastUpdatedAfter, lastUpdatedBefore))
    statuses = set(query.enum("fulfillmentStatuses", query.split(fulfillmentStatuses), FULFILLMENT_STATUSES))
    markets = set(_marketplaces(world, "marketplaceIds", marketplaceIds, required=False))
    by = set(query.enum("fulfilledBy", query.split(fulfilledBy), FULFILLED_BY))
    included = query.enum("includedData", query.split(includedData), INCLUDED_DATA)
    if not 1 <= maxResultsPerPage <= 100:
        raise invalid_input("maxResultsPerPage must be between 1 and 100.")
    key = _query_key({"w": [window.field, iso(window.after)], "s": sorted(statuses), "m": sorted(markets),
                        "f": sorted(by), "n": maxResultsPerPage, "i": sorted(included),
                        "b": iso(window.before) if window.before else None})
    if paginationToken:
        offset, before = _read_token(paginationToken, "paginationToken", key)
    else:
        offset, before = 0, window.before or world.now()
    with world.lock:
        found = [order for order in world.orders.values()
                 if window.matches(order, before)
                 and (not statuses or order["fulfillment"]["fulfillmentStatus"] in statuses)
                 and (not markets or order["salesChannel"]["marketplaceId"] in markets)
                 and (not by or order["fulfillment"]["fulfilledBy"] in by)]
        found.sort(key=lambda order: (order[window.field], order["orderId"]))
        page = [view(order, included) for order in found[offset:offset + maxResultsPerPage]]
    body: dict[str, Any] = {"orders": page}
    if offset + maxResultsPerPage < len(found):
        body["pagination"] = {"nextToken": _page_token(offset + maxResultsPerPage, before, key)}
    body["createdBefore" if window.field == "createdTime" else "lastUpdatedBefore"] = iso(before)
    return body


@router.get("/orders/2026-01-01/orders/{orderId}")
def get_order(orderId: str, request: Request, caller: Caller = Depends(operation("getOrder")),
              includedData: Annotated[list[str] | None, Query()] = None) -> dict[str, Any]:
    world = world_of(request)
    included = query.enum("includedData", query.split(includedData), INCLUDED_DATA)
    with world.lock:
        return {"order": view(_order_or_404(world, orderId), included)}


# --- Orders v0: confirmShipment -----------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ConfirmItem(_Strict):
    orderItemId: str = Field(min_length=1)
    quantity: int = Field(gt=0, strict=True)
    transparencyCodes: list[str] | None = None


class PackageDetail(_Strict):
    packageReferenceId: str
    carrierCode: str = Field(min_length=1)
    carrierName: str | None = None
    shippingMethod: str | None = None
    trackingNumber: str = Field(min_length=1)
    shipDate: datetime
    shipFromSupplySourceId: str | None = None
    orderItems: list[ConfirmItem] = Field(min_length=1)

    @field_validator("packageReferenceId")
    @classmethod
    def _positive_number(cls, value: str) -> str:
        if not value.isdigit() or int(value) <= 0:
            raise ValueError("must be a positive numeric string, e.g. \"1\"")
        return value

    @field_validator("shipDate")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


class ConfirmShipmentRequest(_Strict):
    marketplaceId: str = Field(min_length=1)
    packageDetail: PackageDetail
    codCollectionMethod: str | None = None


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in error['loc']) or 'body'}: "
                     f"{'is required' if error['type'] == 'missing' else error['msg']}" for error in exc.errors())


@router.post("/orders/v0/orders/{orderId}/shipmentConfirmation", status_code=204)
async def confirm_shipment(orderId: str, request: Request,
                           caller: Caller = Depends(operation("confirmShipment"))) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise AmazonError(415, "UnsupportedMediaType", "The request's Content-Type header is invalid.",
                          f"Expected application/json, got {content_type or 'none'}.")
    raw = await request.body()
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise invalid_input("The request body is not valid JSON.", str(exc)) from None
    try:
        body = ConfirmShipmentRequest.model_validate(payload)
    except ValidationError as exc:
        raise invalid_input("Invalid shipment confirmation.", _problems(exc)) from None
    world = world_of(request)
    with world.lock:
        _confirm(world, orderId, body)
    return Response(status_code=204)


def _confirm(world: World, order_id: str, body: ConfirmShipmentRequest) -> None:
    order = _order_or_404(world, order_id)
    package = body.packageDetail
    if body.marketplaceId not in world.marketplaces:
        raise invalid_input(f"Invalid marketplaceId {body.marketplaceId}.")
    if body.marketplaceId != order["salesChannel"]["marketplaceId"]:
        raise invalid_input(f"Order {order_id} was not placed in marketplace {body.marketplaceId}.",
                            f"Use {order['salesChannel']['marketplaceId']}.")
    if package.carrierCode not in world.accepted_carrier_codes:
        raise invalid_input(f"Invalid carrierCode {package.carrierCode!r}.",
                            "Use a carrier code from Amazon's list, or \"Other\" with carrierName.")
    if package.carrierCode == "Other" and not package.carrierName:
        raise invalid_input("carrierName is required when carrierCode is Other.")
    now = world.now()
    if package.shipDate > max(now, datetime.now(UTC)) + timedelta(days=2):
        raise invalid_input(f"shipDate {iso(package.shipDate)} is in the future.")
    if order["fulfillment"]["fulfilledBy"] != "MERCHANT":
        raise invalid_input(f"Order {order_id} is fulfilled by Amazon; it cannot be confirmed by the seller.")
    status = order["fulfillment"]["fulfillmentStatus"]
    if status in ("CANCELLED", "PENDING", "PENDING_AVAILABILITY", "UNFULFILLABLE"):
        raise invalid_input(f"Order {order_id} is {V0_STATUS[status]}; only Unshipped or PartiallyShipped orders "
                            "can be confirmed.")
    wanted: dict[str, int] = {}
    for line in package.orderItems:
        wanted[line.orderItemId] = wanted.get(line.orderItemId, 0) + line.quantity
    items = {item["orderItemId"]: item for item in order["orderItems"]}
    unknown = [item_id for item_id in wanted if item_id not in items]
    if unknown:
        raise invalid_input(f"orderItemId {', '.join(unknown)} is not in order {order_id}.")
    existing = next((p for p in order.get("packages", []) if p["packageReferenceId"] == package.packageReferenceId),
                    None)
    if existing is not None:  # the same package again: a retry or an edit of carrier/tracking, not more goods
        before = {p["orderItemId"]: p["quantity"] for p in existing["packageItems"]}
        if before != wanted:
            raise invalid_input(f"packageReferenceId {package.packageReferenceId} is already used in order "
                                f"{order_id} for other items.", "Use a new packageReferenceId for a new package.")
        existing.update(_package_fields(package, now, existing["createdTime"]))
        order["lastUpdatedTime"] = iso(now)
    else:
        for item_id, qty in wanted.items():
            open_qty = items[item_id]["fulfillment"]["quantityUnfulfilled"]
            if qty > open_qty:
                raise invalid_input(f"Quantity {qty} for orderItemId {item_id} exceeds the unshipped quantity "
                                    f"{open_qty}.")
        order.setdefault("packages", []).append({
            "packageReferenceId": package.packageReferenceId,
            **_package_fields(package, now, iso(now)),
            "packageItems": [{"orderItemId": item_id, "quantity": qty} for item_id, qty in wanted.items()],
        })
        ship_items(world, order, wanted)
    world.shipments.append(ConfirmedShipment(
        order_id=order_id, marketplace_id=body.marketplaceId, package_reference_id=package.packageReferenceId,
        carrier_code=package.carrierCode, carrier_name=package.carrierName, shipping_method=package.shippingMethod,
        tracking_number=package.trackingNumber, ship_date=package.shipDate,
        items=tuple(wanted.items()), received_at=now))


def _package_fields(package: PackageDetail, now: datetime, created: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "createdTime": created,
        "packageStatus": {"status": "SHIPPED"},
        "carrier": package.carrierName if package.carrierCode == "Other" else package.carrierCode,
        "shipTime": iso(package.shipDate),
        "trackingNumber": package.trackingNumber,
    }
    if package.shippingMethod:
        fields["shippingService"] = package.shippingMethod
    return fields


# --- Orders v0: read operations (deprecated by Amazon; kept for compatibility) -----------------------------

def _m0(value: Decimal, currency: str) -> dict[str, str]:
    return {"CurrencyCode": currency, "Amount": str(cents(value))}


SERVICE_LEVEL_V0 = {"STANDARD": ("Std US D2D Dom", "Standard"), "EXPEDITED": ("Expedited US D2D Dom", "Expedited"),
                    "SECOND_DAY": ("Second US D2D Dom", "SecondDay"), "NEXT_DAY": ("Next US D2D Dom", "NextDay"),
                    "FREE_ECONOMY": ("Econ US Dom", "FreeEconomy"), "SAME_DAY": ("Same US D2D Dom", "SameDay"),
                    "PRIORITY": ("Priority US D2D Dom", "Priority"), "SCHEDULED": ("Scheduled", "Scheduled")}


def order_v0(order: dict[str, Any]) -> dict[str, Any]:
    fulfillment = order["fulfillment"]
    status = fulfillment["fulfillmentStatus"]
    programs = set(order.get("programs", []))
    items = order["orderItems"]
    level, category = SERVICE_LEVEL_V0.get(fulfillment.get("fulfillmentServiceLevel", "STANDARD"),
                                           SERVICE_LEVEL_V0["STANDARD"])
    out: dict[str, Any] = {
        "AmazonOrderId": order["orderId"],
        "PurchaseDate": order["createdTime"],
        "LastUpdateDate": order["lastUpdatedTime"],
        "OrderStatus": V0_STATUS[status],
        "FulfillmentChannel": FULFILLMENT_TYPE[fulfillment["fulfilledBy"]],
        "SalesChannel": order["salesChannel"].get("marketplaceName", ""),
        "ShipServiceLevel": level,
        "ShipmentServiceLevelCategory": category,
        "NumberOfItemsShipped": sum(i["fulfillment"]["quantityFulfilled"] for i in items),
        "NumberOfItemsUnshipped": sum(i["fulfillment"]["quantityUnfulfilled"] for i in items),
        "PaymentMethod": "Other",
        "PaymentMethodDetails": ["Standard"],
        "MarketplaceId": order["salesChannel"]["marketplaceId"],
        "OrderType": "Preorder" if "PREORDER" in programs else "StandardOrder",
        "IsBusinessOrder": "AMAZON_BUSINESS" in programs,
        "IsPrime": "PRIME" in programs,
        "IsPremiumOrder": "PREMIUM" in programs,
        "IsGlobalExpressEnabled": False,
        "IsReplacementOrder": False,
        "IsSoldByAB": False,
        "IsISPU": False,
        "IsAccessPointOrder": False,
    }
    if status not in ("PENDING", "PENDING_AVAILABILITY"):
        grand = (order.get("proceeds") or {}).get("grandTotal")
        if grand:
            out["OrderTotal"] = {"CurrencyCode": grand["currencyCode"], "Amount": grand["amount"]}
    for key, window in (("Ship", fulfillment.get("shipByWindow")), ("Delivery", fulfillment.get("deliverByWindow"))):
        if window:
            out[f"Earliest{key}Date"] = window["earliestDateTime"]
            out[f"Latest{key}Date"] = window["latestDateTime"]
    address = (order.get("recipient") or {}).get("deliveryAddress")
    if address and status in ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"):
        # without a Restricted Data Token only the non-restricted parts are returned
        out["ShippingAddress"] = {key: address[src] for key, src in (
            ("City", "city"), ("StateOrRegion", "stateOrRegion"), ("PostalCode", "postalCode"),
            ("CountryCode", "countryCode")) if address.get(src)}
    buyer = order.get("buyer") or {}
    if buyer.get("buyerEmail"):
        out["BuyerInfo"] = {"BuyerEmail": buyer["buyerEmail"]}
    return out


def item_v0(order: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    product = item["product"]
    out: dict[str, Any] = {
        "ASIN": product["asin"],
        "SellerSKU": product["sellerSku"],
        "OrderItemId": item["orderItemId"],
        "Title": product.get("title", ""),
        "QuantityOrdered": item["quantityOrdered"],
        "QuantityShipped": item["fulfillment"]["quantityFulfilled"],
        "ProductInfo": {"NumberOfItems": "1"},
        "ConditionId": "New",
        "ConditionSubtypeId": "New",
        "IsTransparency": "TRANSPARENCY" in item.get("programs", []),
    }
    if order["fulfillment"]["fulfillmentStatus"] in ("PENDING", "PENDING_AVAILABILITY"):
        return out  # Amazon returns no prices, taxes, promotions or gift data while an order is Pending
    currency = product["price"]["unitPrice"]["currencyCode"]
    c = components(item)
    promo_total = c["promo_item"] + c["promo_shipping"]
    promo_tax = cents(c["discount_tax"] * c["promo_item"] / promo_total) if promo_total else Decimal("0")
    out.update({
        "ItemPrice": _m0(c["item"], currency),
        "ShippingPrice": _m0(c["shipping"], currency),
        "ItemTax": _m0(c["item_tax"], currency),
        "ShippingTax": _m0(c["shipping_tax"], currency),
        "PromotionDiscount": _m0(c["promo_item"], currency),
        "PromotionDiscountTax": _m0(promo_tax, currency),
        "ShippingDiscount": _m0(c["promo_shipping"], currency),
        "ShippingDiscountTax": _m0(c["discount_tax"] - promo_tax, currency),
        "PromotionIds": [p["promotionId"] for p in (item.get("promotion") or {}).get("breakdowns", [])
                         if p.get("promotionId")],
        "IsGift": "true" if (item["fulfillment"].get("packing") or {}).get("giftOption") else "false",
    })
    return out


@router.get("/orders/v0/orders")
def get_orders_v0(
    request: Request,
    caller: Caller = Depends(operation("getOrders")),
    MarketplaceIds: Annotated[list[str] | None, Query()] = None,
    CreatedAfter: str | None = None,
    CreatedBefore: str | None = None,
    LastUpdatedAfter: str | None = None,
    LastUpdatedBefore: str | None = None,
    OrderStatuses: Annotated[list[str] | None, Query()] = None,
    FulfillmentChannels: Annotated[list[str] | None, Query()] = None,
    AmazonOrderIds: Annotated[list[str] | None, Query()] = None,
    MaxResultsPerPage: int = 100,
    NextToken: str | None = None,
) -> dict[str, Any]:
    world = world_of(request)
    markets = set(_marketplaces(world, "MarketplaceIds", MarketplaceIds, required=True))
    ids = set(query.split(AmazonOrderIds))
    if len(ids) > 50:
        raise invalid_input("AmazonOrderIds accepts at most 50 values.")
    window = None
    if not ids:
        window = _Window(world, ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore"),
                         (CreatedAfter, CreatedBefore, LastUpdatedAfter, LastUpdatedBefore))
    v0_to_2026 = {v0: v2026 for v2026, v0 in V0_STATUS.items()}
    statuses = {v0_to_2026[s] for s in query.enum("OrderStatuses", query.split(OrderStatuses), v0_to_2026)}
    channels = set(query.enum("FulfillmentChannels", query.split(FulfillmentChannels), ("AFN", "MFN")))
    if not 1 <= MaxResultsPerPage <= 100:
        raise invalid_input("MaxResultsPerPage must be between 1 and 100.")
    key = _query_key({"m": sorted(markets), "i": sorted(ids), "s": sorted(statuses), "c": sorted(channels),
                        "n": MaxResultsPerPage, "w": [window.field, iso(window.after)] if window else None,
                        "b": iso(window.before) if window and window.before else None})
    if NextToken:
        offset, before = _read_token(NextToken, "NextToken", key)
    else:
        offset, before = 0, (window.before if window and window.before else world.now())
    with world.lock:
        found = [order for order in world.orders.values()
                 if order["salesChannel"]["marketplaceId"] in markets
                 and (not ids or order["orderId"] in ids)
                 and (window is None or window.matches(order, before))
                 and (not statuses or order["fulfillment"]["fulfillmentStatus"] in statuses)
                 and (not channels or FULFILLMENT_TYPE[order["fulfillment"]["fulfilledBy"]] in channels)]
        field = window.field if window else "createdTime"
        found.sort(key=lambda order: (order[field], order["orderId"]))
        page = [order_v0(order) for order in found[offset:offset + MaxResultsPerPage]]
    payload: dict[str, Any] = {"Orders": page}
    if offset + MaxResultsPerPage < len(found):
        payload["NextToken"] = _page_token(offset + MaxResultsPerPage, before, key)
    payload["CreatedBefore" if window and window.field == "createdTime" else "LastUpdatedBefore"] = iso(before)
    return {"payload": payload}


@router.get("/orders/v0/orders/{orderId}")
def get_order_v0(orderId: str, request: Request, caller: Caller = Depends(operation("getOrderV0"))):
    world = world_of(request)
    with world.lock:
        return {"payload": order_v0(_order_or_404(world, orderId))}


@router.get("/orders/v0/orders/{orderId}/orderItems")
def get_order_items_v0(orderId: str, request: Request, caller: Caller = Depends(operation("getOrderItems")),
                       NextToken: str | None = None):
    world = world_of(request)
    with world.lock:
        order = _order_or_404(world, orderId)
        if NextToken:
            raise invalid_input("Invalid NextToken.", "This order's items fit in one page.")
        return {"payload": {"AmazonOrderId": orderId,
                            "OrderItems": [item_v0(order, item) for item in order["orderItems"]]}}
