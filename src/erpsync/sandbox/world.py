"""The sandbox's in-memory state: one seller's orders, listings, shipments, money ledger, documents and faults.

Routers reach it through ``request.app.state.world`` and hold ``world.lock`` while they read or change it.
Orders are stored in the Orders v2026-01-01 shape (complete: buyer and recipient included; routers strip what the
caller did not ask for). Time is the world's :class:`SandboxClock`.
"""

from __future__ import annotations

import copy
import random
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from erpsync.sandbox.core import UTC, SandboxClock, Throttler

DEFAULT_CLIENT_ID = "amzn1.application-oa2-client.erpsync-sandbox"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_REFRESH_TOKEN = "Atzr|sandbox-refresh-token"
DEFAULT_SELLER_ID = "A1SANDBOXSELLER"

# spapi-notes §9: the amzn-base.xsd CarrierCode list plus newer marketplace additions. Configurable per World.
DEFAULT_CARRIER_CODES = frozenset({
    "USPS", "UPS", "UPSMI", "FedEx", "DHL", "Fastway", "GLS", "GO!", "Hermes Logistik Gruppe", "Royal Mail",
    "Parcelforce", "City Link", "TNT", "Target", "SagawaExpress", "NipponExpress", "YamatoTransport",
    "DHL Global Mail", "UPS Mail Innovations", "FedEx SmartPost", "OSM", "OnTrac", "Streamlite", "Newgistics",
    "Canada Post", "Blue Package", "Chronopost", "Deutsche Post", "DPD", "La Poste", "Parcelnet", "Poste Italiane",
    "SDA", "Smartmail", "FEDEX_JP", "JP_EXPRESS", "NITTSU", "SAGAWA", "YAMATO", "BlueDart", "AFL/Fedex", "Aramex",
    "India Post", "Professional", "DTDC", "Overnite Express", "First Flight", "Delhivery", "Lasership", "Yodel",
    "Amazon Shipping", "Evri", "Correos", "SEUR", "MRW", "BRT", "PostNL", "Colissimo", "InPost", "DHL eCommerce",
    "China Post", "SF Express", "4PX", "Yanwen", "Other",
})


@dataclass(frozen=True)
class Marketplace:
    id: str
    name: str  # sales channel, e.g. "Amazon.com"
    country: str
    currency: str
    settlement_name: str  # marketplace-name in settlement files


MARKETPLACES = {
    "ATVPDKIKX0DER": Marketplace("ATVPDKIKX0DER", "Amazon.com", "US", "USD", "Amazon.com"),
    "A2EUQ1WTGCTBG2": Marketplace("A2EUQ1WTGCTBG2", "Amazon.ca", "CA", "CAD", "Amazon.ca"),
    "A1PA6795UKMFR9": Marketplace("A1PA6795UKMFR9", "Amazon.de", "DE", "EUR", "Amazon.de"),
}


@dataclass
class Faults:
    """Fault switches. Rates are probabilities per request / per notification (0..1)."""

    error_rate: float = 0.0  # 5xx answers
    latency_seconds: float = 0.0  # real seconds added before answering
    throttle_storm_rate: float = 0.0  # 429 regardless of the bucket
    operations: set[str] = field(default_factory=set)  # the three above apply to these operations; empty = all
    duplicate_notifications: float = 0.0  # deliver a notification twice
    out_of_order_notifications: bool = False  # deliver each batch in reverse order
    drop_notifications: float = 0.0  # never deliver
    malformed_notifications: float = 0.0  # deliver a body that fails the schema
    stuck_feeds: bool = False  # feeds stay IN_PROGRESS (read by feeds.py)
    settlement_format_change: bool = False  # settlement files change shape: extra column, reordered (settlement.py)
    settlement_locale: Literal["US", "EU"] = "US"  # EU: decimal comma and dd.mm.yyyy dates (settlement.py)

    def applies_to(self, operation: str) -> bool:
        return not self.operations or operation in self.operations


@dataclass(frozen=True)
class AccessToken:
    token: str
    client_id: str
    seller_id: str | None  # None: grantless (client_credentials)
    scope: str | None
    expires_at: datetime  # sandbox time


@dataclass(frozen=True)
class RefreshGrant:
    client_id: str
    seller_id: str


@dataclass
class Listing:
    """One SKU of the seller. ``quantity``/``price`` are what feeds and patches last set."""

    sku: str
    asin: str
    title: str
    price: Decimal
    quantity: int
    currency: str = "USD"
    product_type: str = "PRODUCT"
    fulfillment_channel: str = "DEFAULT"  # DEFAULT = seller-fulfilled; AMAZON_NA etc. = FBA
    fnsku: str | None = None
    condition: str = "new_new"
    status: list[str] = field(default_factory=lambda: ["BUYABLE", "DISCOVERABLE"])
    attributes: dict[str, Any] = field(default_factory=dict)
    created: datetime | None = None
    updated: datetime | None = None
    issues: list[dict[str, Any]] = field(default_factory=list)  # Amazon's own findings (listing_events.py)


@dataclass(frozen=True)
class ConfirmedShipment:
    """A confirmShipment call the sandbox accepted."""

    order_id: str
    marketplace_id: str
    package_reference_id: str
    carrier_code: str
    carrier_name: str | None
    shipping_method: str | None
    tracking_number: str
    ship_date: datetime
    items: tuple[tuple[str, int], ...]  # (orderItemId, quantity)
    received_at: datetime


@dataclass(frozen=True)
class MoneyEvent:
    """One amount for the settlement ledger, in settlement-file terms (spapi-notes §7.1).

    ``amount`` is signed from the seller's view (charges positive, fees and refunds negative).
    """

    posted: datetime
    transaction_type: str  # Order | Refund | ServiceFee | other-transaction | ...
    amount_type: str  # ItemPrice | ItemFees | Promotion | ItemWithheldTax | ...
    amount_description: str  # Principal | Commission | ...
    amount: Decimal
    currency: str
    marketplace_id: str
    order_id: str = ""
    shipment_id: str = ""
    adjustment_id: str = ""
    fulfillment_id: str = ""  # MFN | AFN
    order_item_code: str = ""
    sku: str = ""
    quantity: int | None = None


@dataclass(frozen=True)
class OrderChangeEvent:
    """An order status change waiting to be published as ORDER_CHANGE (see notifications.py)."""

    order: dict[str, Any]  # deep copy of the v2026 order at the time of the change
    reason: str
    at: datetime


def _token(prefix: str) -> str:
    return f"{prefix}|{secrets.token_urlsafe(48)}"


@dataclass
class World:
    clock: SandboxClock
    seed: int = 7
    seller_id: str = DEFAULT_SELLER_ID
    marketplaces: dict[str, Marketplace] = field(default_factory=lambda: dict(MARKETPLACES))
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # orderId -> v2026 Order
    pending_until: dict[str, datetime] = field(default_factory=dict)  # PENDING orders -> when they go UNSHIPPED
    listings: dict[str, Listing] = field(default_factory=dict)  # SKU -> Listing
    shipments: list[ConfirmedShipment] = field(default_factory=list)
    ledger: list[MoneyEvent] = field(default_factory=list)
    # Feeds and Reports registries (feeds.py, reports.py own their value shapes)
    feeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    feed_documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    report_documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Notifications: sinks are notifications.Sink objects; outbox holds changes not yet published
    notification_sinks: list[Any] = field(default_factory=list)
    # Notifications API (notifications_api.py): id -> notifications.Destination / notifications.Subscription
    destinations: dict[str, Any] = field(default_factory=dict)
    subscriptions: dict[str, Any] = field(default_factory=dict)
    sqs_endpoint_url: str | None = None  # where SQS destinations are reached (e.g. a moto server); None: AWS
    outbox: list[OrderChangeEvent] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)  # every envelope built (before faults)
    delivery_failures: list[tuple[str, str, str]] = field(default_factory=list)  # (sink, error class, message)
    faults: Faults = field(default_factory=Faults)
    accepted_carrier_codes: set[str] = field(default_factory=lambda: set(DEFAULT_CARRIER_CODES))
    # LWA
    token_lifetime_seconds: int = 3600  # sandbox seconds
    lwa_clients: dict[str, str] = field(default_factory=lambda: {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET})
    refresh_tokens: dict[str, RefreshGrant] = field(
        default_factory=lambda: {DEFAULT_REFRESH_TOKEN: RefreshGrant(DEFAULT_CLIENT_ID, DEFAULT_SELLER_ID)})
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    # Called by tick() under the lock with the world: background work of other modules (feed processing, ...)
    tickers: list[Callable[[World], None]] = field(default_factory=list)
    # Called by set_status() under the lock with (world, order, new status) after the change is queued
    status_hooks: list[Callable[[World, dict[str, Any], str], None]] = field(default_factory=list)
    throttler: Throttler = field(init=False)
    rng: random.Random = field(init=False)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        self.throttler = Throttler(self.clock)
        self.rng = random.Random(self.seed)
        self._sequence = 0

    @classmethod
    def create(cls, *, time_scale: float = 1.0, seed: int = 7, start: datetime | None = None, **kwargs: Any) -> World:
        return cls(clock=SandboxClock(time_scale, start), seed=seed, **kwargs)

    # --- small helpers shared by routers -------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def chance(self, probability: float) -> bool:
        with self.lock:
            return self.rng.random() < probability

    def next_id(self, digits: int = 11) -> str:
        """A fresh numeric id (feed, report, document ids): unique within this world."""
        with self.lock:
            self._sequence += 1
            return str(10 ** (digits - 1) + self._sequence * 7919 + self.rng.randrange(7919))

    def next_uuid(self) -> str:
        """A fresh UUID (document, destination and subscription ids), reproducible from the seed."""
        with self.lock:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # --- LWA ------------------------------------------------------------------------------------------------
    def issue_access_token(self, client_id: str, seller_id: str | None, scope: str | None) -> AccessToken:
        token = AccessToken(_token("Atza"), client_id, seller_id, scope,
                            self.now() + timedelta(seconds=self.token_lifetime_seconds))
        with self.lock:
            # expired tokens are kept a week (they answer "has expired", not "invalid"), then forgotten
            forget = self.now() - timedelta(days=7)
            for stale in [key for key, old in self.access_tokens.items() if old.expires_at < forget]:
                del self.access_tokens[stale]
            self.access_tokens[token.token] = token
        return token

    def access_token(self, value: str) -> AccessToken | None:
        """The live token named ``value``, or None (unknown or expired; :meth:`token_expired` tells which)."""
        with self.lock:
            token = self.access_tokens.get(value)
            return None if token is None or token.expires_at <= self.now() else token

    def token_expired(self, value: str) -> bool:
        """``value`` is a token this world issued and whose hour is over (Amazon's "has expired" answer)."""
        with self.lock:
            token = self.access_tokens.get(value)
            return token is not None and token.expires_at <= self.now()

    def register_seller(self, refresh_token: str, seller_id: str, client_id: str = DEFAULT_CLIENT_ID) -> None:
        with self.lock:
            self.refresh_tokens[refresh_token] = RefreshGrant(client_id, seller_id)

    # --- orders ---------------------------------------------------------------------------------------------
    def order(self, order_id: str) -> dict[str, Any] | None:
        return self.orders.get(order_id)

    def add_order(self, order: dict[str, Any], *, pending_seconds: float | None = None) -> None:
        """Store a new v2026 order; PENDING orders move to UNSHIPPED after ``pending_seconds`` (sandbox)."""
        with self.lock:
            self.orders[order["orderId"]] = order
            if order["fulfillment"]["fulfillmentStatus"] == "PENDING" and pending_seconds is not None:
                self.pending_until[order["orderId"]] = self.now() + timedelta(seconds=pending_seconds)
            self.emit(order, "Order placed")

    def set_status(self, order: dict[str, Any], status: str, reason: str) -> None:
        """Change an order's fulfillmentStatus (v2026 enum), touch lastUpdatedTime, queue ORDER_CHANGE."""
        with self.lock:
            order["fulfillment"]["fulfillmentStatus"] = status
            order["lastUpdatedTime"] = iso(self.now())
            if status != "PENDING":
                self.pending_until.pop(order["orderId"], None)
            self.emit(order, reason)
            for hook in self.status_hooks:
                hook(self, order, status)

    def emit(self, order: dict[str, Any], reason: str) -> None:
        with self.lock:
            self.outbox.append(OrderChangeEvent(copy.deepcopy(order), reason, self.now()))

    def take_outbox(self) -> list[OrderChangeEvent]:
        with self.lock:
            events, self.outbox = self.outbox, []
            return events

    def record(self, events: list[MoneyEvent]) -> None:
        with self.lock:
            self.ledger.extend(events)

    # --- time -----------------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Run what is due at the current sandbox time: pending orders become unshipped, then the tickers."""
        with self.lock:
            now = self.now()
            for order_id, due in list(self.pending_until.items()):
                if due <= now:
                    order = self.orders[order_id]
                    if order["fulfillment"]["fulfillmentStatus"] == "PENDING":
                        self.set_status(order, "UNSHIPPED", "Payment authorized")
                    self.pending_until.pop(order_id, None)
            for ticker in self.tickers:
                ticker(self)

    def advance(self, seconds: float) -> datetime:
        now = self.clock.advance(seconds)
        self.tick()
        return now


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, second precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    """``value`` rounded to the cent, halves away from zero."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(amount: Decimal, currency: str) -> dict[str, str]:
    """Orders v2026 ``Money``: ``{"amount": "12.34", "currencyCode": "USD"}`` (amount is a decimal string)."""
    return {"amount": str(Decimal(amount).quantize(CENT)), "currencyCode": currency}


def amount_of(value: dict[str, str] | None) -> Decimal:
    return Decimal(value["amount"]) if value else Decimal("0")
