"""Scenarios: a generator of realistic orders, and the ``/_sandbox/`` control API (no auth, no throttling).

The generator makes Orders v2026-01-01 orders whose money adds up per item (ITEM + SHIPPING + GIFT_WRAP + TAX +
DISCOUNT = proceedsTotal) and per order (grandTotal = Σ items), with a seeded mix of multi-line orders,
quantities above one, promotions, gift wrap, business and Prime orders, MFN and AFN, US and international
recipients with three address lines, and SKUs from a list, from a Sage 500 replica (``timItem.ItemID``) or from
the world's listings, plus a chosen share of SKUs unknown to Sage.
"""

from __future__ import annotations

import random
import string
from dataclasses import asdict, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, column, create_engine, select, table
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from erpsync.sandbox.core import invalid_input, not_found, world_of
from erpsync.sandbox.notifications import SENDERS, SqsSink, WebhookSink
from erpsync.sandbox.orders import item_charges, ship_items
from erpsync.sandbox.world import Faults, Listing, MoneyEvent, World, cents, iso, money

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis", "Radia",
         "Linus", "Hedy", "Tim", "Katherine", "John", "Sophie", "Jean", "Hiro", "Ingrid"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie",
        "Perlman", "Torvalds", "Lamarr", "Berners-Lee", "Johnson", "McCarthy", "Wilson", "Sammet", "Tanaka", "Berg"]
STREETS = ["Main Street", "Oak Avenue", "Pine Road", "Maple Drive", "Cedar Lane", "Elm Street", "Lakeview Blvd",
           "Hillcrest Ave", "Sunset Way", "River Road"]
US_CITIES = [("Seattle", "WA", "98101", Decimal("0.1025")), ("Austin", "TX", "73301", Decimal("0.0825")),
             ("Portland", "OR", "97201", Decimal("0")), ("Denver", "CO", "80202", Decimal("0.0881")),
             ("Columbus", "OH", "43004", Decimal("0.0750")), ("Miami", "FL", "33101", Decimal("0.0700")),
             ("Boston", "MA", "02108", Decimal("0.0625")), ("Chicago", "IL", "60601", Decimal("0.1025"))]
ABROAD = [("Toronto", "ON", "M5H 2N2", "CA"), ("London", "", "SW1A 1AA", "GB"), ("Berlin", "", "10115", "DE"),
          ("Lyon", "", "69001", "FR"), ("Melbourne", "VIC", "3000", "AU"), ("Osaka", "", "530-0001", "JP")]
PRODUCTS = ["Widget", "Gadget", "Sprocket", "Gizmo", "Bracket", "Adapter", "Cable", "Lamp", "Mug", "Notebook"]
COLORS = ["Red", "Blue", "Black", "White", "Green", "Steel"]
DEFAULT_SKUS = [f"SBX-{name.upper()}-{color.upper()[:3]}" for name in PRODUCTS for color in COLORS[:3]]
SERVICE_LEVELS = ["STANDARD", "STANDARD", "STANDARD", "EXPEDITED", "SECOND_DAY", "NEXT_DAY"]
GIFT_WRAP_PER_UNIT = Decimal("3.99")
# Amazon Business quantity discounts: (from this many units, off the list price), highest tier first
QUANTITY_TIERS = ((100, Decimal("0.12")), (10, Decimal("0.05")))
VAT = {"DE": Decimal("0.19"), "CA": Decimal("0.13")}


class GenerateOrders(BaseModel):
    """``POST /_sandbox/orders``: what to generate. Shares are probabilities in 0..1."""

    model_config = ConfigDict(extra="forbid")
    count: int = Field(1, ge=1, le=10_000)
    skus: list[str] | None = None  # SKUs known to Sage; default: the world's listings, or a built-in catalog
    sage_url: str | None = None  # read SKUs from timItem.ItemID of this Sage (replica) database
    sage_company_id: str | None = None
    unknown_sku_share: float = Field(0.0, ge=0, le=1)  # order lines whose SKU is not in the list above
    marketplace_id: str = "ATVPDKIKX0DER"
    status: Literal["PENDING", "UNSHIPPED"] = "PENDING"
    pending_seconds: float | None = Field(60.0, ge=0)  # PENDING -> UNSHIPPED after this (sandbox s); null: stay
    multi_line_share: float = Field(0.35, ge=0, le=1)
    multi_quantity_share: float = Field(0.25, ge=0, le=1)
    quantity: int | None = Field(None, ge=1, le=10_000)  # every line in this quantity (bulk orders); default: random
    promotion_share: float = Field(0.2, ge=0, le=1)
    gift_share: float = Field(0.1, ge=0, le=1)
    business_share: float = Field(0.1, ge=0, le=1)
    prime_share: float = Field(0.5, ge=0, le=1)
    afn_share: float = Field(0.15, ge=0, le=1)
    international_share: float = Field(0.1, ge=0, le=1)
    seed: int | None = None  # default: the world's random stream


def sage_items_query(company_id: str | None = None) -> Select:
    """``SELECT ItemID FROM timItem [WHERE CompanyID = :company] ORDER BY ItemID`` (SQLAlchemy Core)."""
    items = table("timItem", column("ItemID"), column("CompanyID"))
    query = select(items.c.ItemID).order_by(items.c.ItemID)
    return query.where(items.c.CompanyID == company_id) if company_id else query


def sage_skus(url: str, company_id: str | None = None) -> list[str]:
    """Item ids of a Sage 500 (replica) database at SQLAlchemy ``url``."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0].strip() for row in conn.execute(sage_items_query(company_id))]
    finally:
        engine.dispose()


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def ensure_listing(world: World, sku: str, rng: random.Random, currency: str) -> Listing:
    listing = world.listings.get(sku)
    if listing is None:
        now = world.now()
        listing = Listing(
            sku=sku, asin="B0" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(8)),
            title=f"{rng.choice(PRODUCTS)} {sku.title()}",
            price=cents(Decimal(rng.randint(599, 19999)) / 100), quantity=rng.randint(20, 200), currency=currency,
            created=now, updated=now)
        world.listings[sku] = listing
    return listing


class OrderFactory:
    """Builds one consistent v2026 order at a time from a :class:`GenerateOrders` request."""

    def __init__(self, world: World, request: GenerateOrders, known: list[str]):
        self.world, self.request, self.known = world, request, known
        self.rng = random.Random(request.seed) if request.seed is not None else world.rng
        self.market = world.marketplaces[request.marketplace_id]

    def _order_id(self) -> str:
        while True:
            order_id = f"{self.rng.randint(111, 114)}-{_digits(self.rng, 7)}-{_digits(self.rng, 7)}"
            if order_id not in self.world.orders:
                return order_id

    def _sku(self) -> str:
        if self.rng.random() < self.request.unknown_sku_share or not self.known:
            return f"NOSAGE-{self.rng.choice(PRODUCTS).upper()}-{_digits(self.rng, 4)}"
        return self.rng.choice(self.known)

    def _address(self, name: str, business: bool, abroad: bool) -> tuple[dict[str, Any], Decimal]:
        rng = self.rng
        address: dict[str, Any] = {"name": name,
                                   "addressLine1": f"{rng.randint(1, 9999)} {rng.choice(STREETS)}"}
        if abroad or rng.random() < 0.3:
            address["addressLine2"] = f"Apt {rng.randint(1, 99)}{rng.choice('ABCD')}"
        if abroad or rng.random() < 0.1:
            address["addressLine3"] = f"c/o {rng.choice(FIRST)} {rng.choice(LAST)}"
        if self.market.country != "US":
            abroad_city = next(c for c in ABROAD if c[3] == self.market.country) if not abroad else rng.choice(ABROAD)
            city, state, postal, country = abroad_city
            rate = VAT.get(country, Decimal("0")) if country == self.market.country else Decimal("0")
        elif abroad:
            city, state, postal, country = rng.choice(ABROAD)
            rate = Decimal("0")  # exports carry no US sales tax
        else:
            city, state, postal, rate = rng.choice(US_CITIES)
            country = "US"
        address.update({"city": city, "postalCode": postal, "countryCode": country,
                        "phone": f"+1 206-555-{_digits(rng, 4)}",
                        "addressType": "COMMERCIAL" if business else "RESIDENTIAL"})
        if state:
            address["stateOrRegion"] = state
        if business:
            address["companyName"] = f"{rng.choice(LAST)} {rng.choice(['LLC', 'Inc.', 'GmbH', 'Ltd'])}"
        return address, rate

    def build(self, now: datetime) -> dict[str, Any]:
        rng, req, currency = self.rng, self.request, self.market.currency
        business = rng.random() < req.business_share
        prime = rng.random() < req.prime_share
        afn = rng.random() < req.afn_share
        abroad = rng.random() < req.international_share
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        address, rate = self._address(name, business, abroad)
        level = "STANDARD" if afn else rng.choice(SERVICE_LEVELS)
        lines = rng.randint(2, 4) if rng.random() < req.multi_line_share else 1
        free_shipping = prime or afn
        promo_id = f"PLM-{_digits(rng, 6)}" if rng.random() < req.promotion_share else None
        items = []
        for index in range(lines):
            sku = self._sku()
            listing = ensure_listing(self.world, sku, rng, currency)
            qty = req.quantity or (rng.randint(2, 5) if rng.random() < req.multi_quantity_share else 1)
            gift = rng.random() < req.gift_share
            items.append(self._item(listing, qty, index, gift, promo_id, free_shipping, level, rate, currency,
                                    business))
            if not afn:
                listing.quantity = max(0, listing.quantity - qty)
                listing.updated = now
        order_id = self._order_id()
        totals: dict[str, Decimal] = {}
        for item in items:
            for part in item["proceeds"]["breakdowns"]:
                totals[part["type"]] = totals.get(part["type"], Decimal("0")) + Decimal(part["subtotal"]["amount"])
        grand = sum((Decimal(i["proceeds"]["proceedsTotal"]["amount"]) for i in items), Decimal("0"))
        programs = (["PRIME"] if prime else []) + (["AMAZON_BUSINESS"] if business else [])
        buyer: dict[str, Any] = {"buyerName": name,
                                 "buyerEmail": f"{''.join(rng.choice(string.ascii_lowercase) for _ in range(14))}"
                                               "@marketplace.amazon.com"}
        if business:
            buyer["buyerCompanyName"] = address["companyName"]
            buyer["buyerPurchaseOrderNumber"] = f"PO-{_digits(rng, 6)}"
        created = iso(now)
        ship_days = {"NEXT_DAY": 1, "SECOND_DAY": 2, "EXPEDITED": 3}.get(level, 5)
        return {
            "orderId": order_id,
            "createdTime": created,
            "lastUpdatedTime": created,
            "programs": programs,
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": self.market.id,
                             "marketplaceName": self.market.name},
            "buyer": buyer,
            "recipient": {"deliveryAddress": address},
            "proceeds": {"grandTotal": money(grand, currency),
                         "breakdowns": [{"type": kind, "subtotal": money(value, currency)}
                                        for kind, value in totals.items()]},
            "payment": {"paymentExecutions": [{"paymentMethod": "CREDIT_CARD",
                                               "paymentAmount": money(grand, currency)}]},
            "tax": {"taxInvoicing": {"buyerInvoicePreference": "BUSINESS" if business else "INDIVIDUAL"}},
            "fulfillment": {
                "fulfillmentStatus": "PENDING",
                "fulfilledBy": "AMAZON" if afn else "MERCHANT",
                "fulfillmentServiceLevel": level,
                "shipByWindow": {"earliestDateTime": created, "latestDateTime": iso(now + timedelta(days=2))},
                "deliverByWindow": {"earliestDateTime": iso(now + timedelta(days=ship_days)),
                                    "latestDateTime": iso(now + timedelta(days=ship_days + 3))},
            },
            "orderItems": items,
            "packages": [],
        }

    def _item(self, listing: Listing, qty: int, index: int, gift: bool, promo_id: str | None, free_shipping: bool,
              level: str, rate: Decimal, currency: str, business: bool) -> dict[str, Any]:
        rng = self.rng
        unit_price = listing.price
        off = next((share for minimum, share in QUANTITY_TIERS if business and qty >= minimum), Decimal("0"))
        # the tier price is rounded on the line, so its amount need not be a whole number of cents a unit
        principal = cents(listing.price * qty * (1 - off))
        if off:
            unit_price = cents(principal / qty)
        shipping = Decimal("0") if free_shipping and level == "STANDARD" else \
            cents((Decimal("4.99") if index == 0 else Decimal("1.99")) + (Decimal("5") if level != "STANDARD"
                                                                           else Decimal("0")))
        wrap = GIFT_WRAP_PER_UNIT * qty if gift else Decimal("0")
        promo_item = cents(principal * Decimal("0.10")) if promo_id else Decimal("0")
        promo_shipping = shipping if promo_id and shipping and rng.random() < 0.5 else Decimal("0")
        taxes = {"ITEM": cents(principal * rate), "SHIPPING": cents(shipping * rate),
                 "GIFT_WRAP": cents(wrap * rate),
                 "DISCOUNT": -cents((promo_item + promo_shipping) * rate)}
        breakdowns: list[dict[str, Any]] = [{"type": "ITEM", "subtotal": money(principal, currency)}]
        if shipping:
            breakdowns.append({"type": "SHIPPING", "subtotal": money(shipping, currency)})
        if wrap:
            breakdowns.append({"type": "GIFT_WRAP", "subtotal": money(wrap, currency)})
        tax_total = sum(taxes.values(), Decimal("0"))
        if any(taxes.values()):
            breakdowns.append({"type": "TAX", "subtotal": money(tax_total, currency),
                               "detailedBreakdowns": [{"subtype": kind, "value": money(value, currency)}
                                                      for kind, value in taxes.items() if value]})
        discount = promo_item + promo_shipping
        if discount:
            details = [{"subtype": kind, "value": money(-value, currency)}
                       for kind, value in (("ITEM", promo_item), ("SHIPPING", promo_shipping)) if value]
            breakdowns.append({"type": "DISCOUNT", "subtotal": money(-discount, currency),
                               "detailedBreakdowns": details})
        total = principal + shipping + wrap + tax_total - discount
        fulfillment: dict[str, Any] = {"quantityFulfilled": 0, "quantityUnfulfilled": qty}
        if gift:
            fulfillment["packing"] = {"giftOption": {"giftMessage": "Happy birthday!", "giftWrapLevel": "Classic"}}
        item: dict[str, Any] = {
            "orderItemId": _digits(rng, 14),
            "quantityOrdered": qty,
            "programs": [],
            "product": {"asin": listing.asin, "title": listing.title, "sellerSku": listing.sku,
                        "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
                        "price": {"unitPrice": money(unit_price, currency)}},
            "proceeds": {"proceedsTotal": money(total, currency), "breakdowns": breakdowns},
            "fulfillment": fulfillment,
        }
        if promo_id:
            item["promotion"] = {"breakdowns": [{"promotionId": promo_id}]}
        if rate:
            item["tax"] = {"taxCollections": [{"model": "MarketplaceFacilitator",
                                               "responsibleParty": "Amazon Services, Inc."}]}
        return item


def amazon_fulfils(world: World, order: dict[str, Any], status: str) -> None:
    """Status hook: Amazon ships an AFN order as soon as it becomes UNSHIPPED (one shipment per order)."""
    if status == "UNSHIPPED" and order["fulfillment"]["fulfilledBy"] == "AMAZON":
        quantities = {i["orderItemId"]: i["fulfillment"]["quantityUnfulfilled"] for i in order["orderItems"]}
        ship_items(world, order, quantities, shipment_id=f"D{world.next_id(9)}", reason="Shipped by Amazon")


def generate_orders(world: World, request: GenerateOrders) -> list[str]:
    """Add ``request.count`` orders to the world (notifications queued); returns their ids."""
    if request.marketplace_id not in world.marketplaces:
        raise invalid_input(f"Unknown marketplace_id {request.marketplace_id}.",
                            f"Known: {', '.join(world.marketplaces)}.")
    known = list(request.skus or [])
    if request.sage_url:
        try:
            known += sage_skus(request.sage_url, request.sage_company_id)
        except (SQLAlchemyError, ArgumentError) as exc:
            raise invalid_input("Cannot read SKUs from sage_url.",
                                f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    with world.lock:
        if not known and not request.skus:
            known = [sku for sku in world.listings if not sku.startswith("NOSAGE-")] or DEFAULT_SKUS
        factory = OrderFactory(world, request, known)
        if amazon_fulfils not in world.status_hooks:
            world.status_hooks.append(amazon_fulfils)
        ids = []
        now = world.now()
        for _ in range(request.count):
            order = factory.build(now)
            world.add_order(order, pending_seconds=request.pending_seconds if request.status == "PENDING" else None)
            if request.status == "UNSHIPPED":
                world.set_status(order, "UNSHIPPED", "Payment authorized")
            ids.append(order["orderId"])
        return ids


def cancel_order(world: World, order_id: str, reason: str, buyer_request: bool) -> dict[str, Any]:
    with world.lock:
        order = world.order(order_id)
        if order is None:
            raise not_found(f"Order {order_id} was not found.")
        if buyer_request:  # the buyer asks; the seller decides (BuyerRequestedChange notification)
            for item in order["orderItems"]:
                item["cancellation"] = {"cancellationRequest": {"requester": "BUYER", "cancelReason": reason}}
            order["lastUpdatedTime"] = iso(world.now())
            world.emit(order, "Buyer Requested Cancel")
            return order
        if any(item["fulfillment"]["quantityFulfilled"] for item in order["orderItems"]):
            raise invalid_input(f"Order {order_id} has shipped items and cannot be cancelled.",
                                "Refund it instead: POST /_sandbox/orders/{orderId}/refund.")
        if order["fulfillment"]["fulfillmentStatus"] == "CANCELLED":
            return order
        for item in order["orderItems"]:
            item["cancellation"] = {**item.get("cancellation", {}),
                                    "cancellationExecution": {"cancelledBy": "BUYER", "cancelReason": reason}}
            listing = world.listings.get(item["product"]["sellerSku"])
            if listing is not None and order["fulfillment"]["fulfilledBy"] == "MERCHANT":
                listing.quantity += item["quantityOrdered"]
        world.set_status(order, "CANCELLED", reason)
        return order


def refund_order(world: World, order_id: str, item_ids: list[str] | None) -> list[dict[str, Any]]:
    with world.lock:
        order = world.order(order_id)
        if order is None:
            raise not_found(f"Order {order_id} was not found.")
        wanted = [item for item in order["orderItems"] if not item_ids or item["orderItemId"] in item_ids]
        not_shipped = [item["orderItemId"] for item in wanted if item["fulfillment"]["quantityUnfulfilled"]]
        if not wanted or not_shipped:
            raise invalid_input(f"Only fully shipped items of order {order_id} can be refunded.",
                                f"Not shipped: {', '.join(not_shipped) or 'no item matches'}.")
        events = []
        for item in wanted:
            events += item_charges(world, order, item, refund=True, adjustment_id=f"R{world.next_id(9)}")
        world.record(events)
        return [_event_json(event) for event in events]


def _event_json(event: Any) -> dict[str, Any]:
    out = asdict(event)
    for key, value in out.items():
        if isinstance(value, Decimal):
            out[key] = str(value)
        elif isinstance(value, datetime):
            out[key] = iso(value)
    return out


# --- the control API ----------------------------------------------------------------------------------------

class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = "Buyer canceled"
    buyer_request: bool = False


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_item_ids: list[str] | None = None


class Advance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(gt=0)


class FaultsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error_rate: float | None = Field(None, ge=0, le=1)
    latency_seconds: float | None = Field(None, ge=0, le=60)
    throttle_storm_rate: float | None = Field(None, ge=0, le=1)
    operations: list[str] | None = None
    duplicate_notifications: float | None = Field(None, ge=0, le=1)
    out_of_order_notifications: bool | None = None
    drop_notifications: float | None = Field(None, ge=0, le=1)
    malformed_notifications: float | None = Field(None, ge=0, le=1)
    stuck_feeds: bool | None = None
    settlement_format_change: bool | None = None
    settlement_locale: Literal["US", "EU"] | None = None


class SinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sqs_queue_url: str | None = None
    sqs_endpoint_url: str | None = None
    sqs_region: str = "us-east-1"
    webhook_url: str | None = None
    webhook_headers: dict[str, str] = Field(default_factory=dict)
    senders: int = Field(default=SENDERS, ge=1, le=64)  # deliveries in flight at once per sink


class ListingSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1)
    price: Decimal = Field(gt=0)
    quantity: int = Field(ge=0)
    fulfillment_channel: str = "DEFAULT"
    title: str | None = None
    asin: str | None = None


def faults_json(faults: Faults) -> dict[str, Any]:
    out = asdict(faults)
    out["operations"] = sorted(faults.operations)
    return out


def listing_json(listing: Listing) -> dict[str, Any]:
    return {"sku": listing.sku, "asin": listing.asin, "title": listing.title, "price": str(listing.price),
            "currency": listing.currency, "quantity": listing.quantity, "product_type": listing.product_type,
            "fulfillment_channel": listing.fulfillment_channel, "status": listing.status,
            "updated": iso(listing.updated) if listing.updated else None}


@router.get("/state")
def state(request: Request) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        statuses: dict[str, int] = {}
        for order in world.orders.values():
            status = order["fulfillment"]["fulfillmentStatus"]
            statuses[status] = statuses.get(status, 0) + 1
        return {"now": iso(world.now()), "time_scale": world.clock.time_scale, "seller_id": world.seller_id,
                "orders": statuses, "listings": len(world.listings), "shipments": len(world.shipments),
                "ledger_events": len(world.ledger), "notifications_published": len(world.published),
                "notification_failures": len(world.delivery_failures), "faults": faults_json(world.faults)}


@router.post("/orders", status_code=201)
def post_orders(body: GenerateOrders, request: Request) -> dict[str, Any]:
    return {"orderIds": generate_orders(world_of(request), body)}


@router.get("/orders/{orderId}")
def get_full_order(orderId: str, request: Request) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        order = world.order(orderId)
        if order is None:
            raise not_found(f"Order {orderId} was not found.")
        return {"order": order}


@router.post("/orders/{orderId}/cancel")
def post_cancel(orderId: str, body: CancelRequest, request: Request) -> dict[str, Any]:
    order = cancel_order(world_of(request), orderId, body.reason, body.buyer_request)
    return {"orderId": orderId, "fulfillmentStatus": order["fulfillment"]["fulfillmentStatus"]}


@router.post("/orders/{orderId}/refund")
def post_refund(orderId: str, body: RefundRequest, request: Request) -> dict[str, Any]:
    return {"events": refund_order(world_of(request), orderId, body.order_item_ids)}


@router.get("/time")
def get_time(request: Request) -> dict[str, Any]:
    world = world_of(request)
    return {"now": iso(world.now()), "time_scale": world.clock.time_scale}


@router.post("/time/advance")
def advance(body: Advance, request: Request) -> dict[str, Any]:
    world = world_of(request)
    return {"now": iso(world.advance(body.seconds)), "time_scale": world.clock.time_scale}


@router.get("/faults")
def get_faults(request: Request) -> dict[str, Any]:
    return faults_json(world_of(request).faults)


@router.patch("/faults")
def patch_faults(body: FaultsPatch, request: Request) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        for name, value in body.model_dump(exclude_unset=True).items():
            setattr(world.faults, name, set(value) if name == "operations" else value)
        return faults_json(world.faults)


@router.delete("/faults")
def reset_faults(request: Request) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        for item in fields(Faults):
            setattr(world.faults, item.name, getattr(Faults(), item.name))
        return faults_json(world.faults)


@router.put("/notifications/sinks")
def put_sinks(body: SinkConfig, request: Request) -> dict[str, Any]:
    world = world_of(request)
    sinks: list[Any] = []
    if body.sqs_queue_url:
        sinks.append(SqsSink(body.sqs_queue_url, body.sqs_endpoint_url, body.sqs_region, senders=body.senders))
    if body.webhook_url:
        sinks.append(WebhookSink(body.webhook_url, body.webhook_headers, senders=body.senders))
    with world.lock:
        replaced = list(world.notification_sinks)
        world.notification_sinks[:] = sinks
    for sink in replaced:  # their senders and HTTP clients
        if hasattr(sink, "close"):
            sink.close()
    return {"sinks": [sink.name for sink in sinks]}


@router.get("/notifications")
def get_notifications(request: Request) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        return {"published": list(world.published),
                "failures": [{"sink": s, "error": e, "message": m} for s, e, m in world.delivery_failures]}


@router.get("/shipments")
def get_shipments(request: Request, orderId: str | None = None) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        return {"shipments": [_event_json(s) for s in world.shipments if orderId in (None, s.order_id)]}


@router.get("/listings")
def get_listings(request: Request) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        return {"listings": [listing_json(listing) for listing in world.listings.values()]}


@router.put("/listings")
def put_listings(body: list[ListingSeed], request: Request) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        rng = world.rng
        for seed in body:
            currency = world.marketplaces["ATVPDKIKX0DER"].currency
            listing = ensure_listing(world, seed.sku, rng, currency)
            listing.price, listing.quantity = cents(seed.price), seed.quantity
            listing.fulfillment_channel = seed.fulfillment_channel
            listing.title = seed.title or listing.title
            listing.asin = seed.asin or listing.asin
            listing.updated = world.now()
        return {"listings": [listing_json(world.listings[seed.sku]) for seed in body]}


@router.get("/ledger")
def get_ledger(request: Request) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        return {"events": [_event_json(event) for event in world.ledger]}


class LedgerEntry(BaseModel):
    """``POST /_sandbox/ledger``: book one amount for the next settlement, e.g. a fee type Amazon adds later."""

    model_config = ConfigDict(extra="forbid")
    transaction_type: str = Field(min_length=1)
    amount_type: str = Field(min_length=1)
    amount_description: str = Field(min_length=1)
    amount: Decimal  # the seller's sign: + Amazon pays, - the seller pays
    marketplace_id: str = "ATVPDKIKX0DER"
    order_id: str = ""
    fulfillment_id: str = ""
    sku: str = ""


@router.post("/ledger", status_code=201)
def post_ledger(body: LedgerEntry, request: Request) -> dict[str, Any]:
    world = world_of(request)
    marketplace = world.marketplaces.get(body.marketplace_id)
    if marketplace is None:
        raise invalid_input(f"Unknown marketplace_id {body.marketplace_id}.", f"Known: {', '.join(world.marketplaces)}.")
    event = MoneyEvent(world.now(), body.transaction_type, body.amount_type, body.amount_description,
                       cents(body.amount), marketplace.currency, body.marketplace_id, order_id=body.order_id,
                       fulfillment_id=body.fulfillment_id, sku=body.sku)
    world.record([event])
    return _event_json(event)
