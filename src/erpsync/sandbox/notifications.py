"""ORDER_CHANGE notifications: envelopes built from order changes, delivered to SQS and/or webhook sinks.

``world.set_status`` (and ``add_order``) queue an :class:`~erpsync.sandbox.world.OrderChangeEvent`; the server's
ticker calls :func:`deliver` which turns each event into the official envelope (``OrderChangeNotification.json``)
with a unique ``NotificationId`` and hands it to every sink in ``world.notification_sinks`` (set up by the control
API or the CLI), and to the destination of every :class:`Subscription` the event passes (made through the
Notifications API, ``notifications_api.py``), with that subscription's id in the envelope. The fault switches in
``world.faults`` drop, duplicate, reorder or corrupt deliveries. A failed send is recorded in
``world.delivery_failures`` (the envelope stays in ``world.published``); it is not retried.

As Amazon delivers notifications independently (not one after the other behind a single sender), the SQS and
webhook sinks each send on a small pool of ``senders`` threads (default :data:`SENDERS`): the changes of up to that
many orders are in flight at once; one order's changes go in turn, in the order of the batch (which the reorder
fault reverses). :func:`deliver` returns once the batch is sent; ``close()`` (the sandbox's ``stop()``, or
replacing the sinks) shuts the pool down.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from erpsync.sandbox.world import OrderChangeEvent, World, iso

log = logging.getLogger(__name__)
_CLIENT_LOCK = threading.Lock()

APPLICATION_ID = "amzn1.sellerapps.app.erpsync-sandbox"
SUBSCRIPTION_ID = "erpsync-sandbox-order-change"

V0_STATUS = {
    "PENDING_AVAILABILITY": "PendingAvailability", "PENDING": "Pending", "UNSHIPPED": "Unshipped",
    "PARTIALLY_SHIPPED": "PartiallyShipped", "SHIPPED": "Shipped", "CANCELLED": "Canceled",
    "UNFULFILLABLE": "Unfulfillable",
}
FULFILLMENT_TYPE = {"MERCHANT": "MFN", "AMAZON": "AFN"}
ORDER_PROGRAMS = {"AMAZON_BUSINESS": "Business", "PRIME": "Prime", "PREMIUM": "Premium",
                  "INVOICE_BY_AMAZON": "IBA"}
SENDERS = 1  # deliveries in flight at once per sink, unless a sink is given more (the CLI: 6; the P1 benchmark: 6)


class Sink(Protocol):
    name: str

    def send(self, body: str) -> None: ...


@dataclass(kw_only=True)
class Senders:
    """A sink's pool of ``senders`` threads (made on first use): ``submit`` hands it an order's envelopes, ``close``
    lets the sends in flight finish, drops those not started and stops the threads."""

    senders: int = SENDERS
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.senders < 1:
            raise ValueError(f"a notification sink needs at least 1 sender, not {self.senders}")

    def submit(self, bodies: list[str]) -> Future:
        """Send ``bodies`` one after the other on a sender; the future's result: :func:`sink_each`'s."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.senders, thread_name_prefix=f"sandbox-{self.name}")
        return self._pool.submit(sink_each, self, bodies)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@dataclass
class SqsSink(Senders):
    """Sends each envelope as the message body to ``queue_url`` (boto3; ``endpoint_url`` for moto)."""

    queue_url: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    name: str = "sqs"
    _client: Any = field(default=None, repr=False)

    def send(self, body: str) -> None:
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs", endpoint_url=self.endpoint_url, region_name=self.region,
                                        aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=body)


@dataclass
class WebhookSink(Senders):
    """POSTs each envelope as JSON to ``url`` with ``headers`` (e.g. the receiver's auth header), on one HTTP
    client kept for the sink's life, shared by its senders (its connections reused; a client per notification cost
    the pipeline benchmark a fifth of its CPU in TLS contexts and connects); ``close()`` (the sandbox's ``stop()``)
    stops the senders and closes it."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    name: str = "webhook"
    _client: httpx.Client | None = field(default=None, repr=False)

    def send(self, body: str) -> None:
        client = self._http()
        response = client.post(self.url, content=body)
        response.raise_for_status()

    def _http(self) -> httpx.Client:
        with _CLIENT_LOCK:  # the senders share one client: made once, not once per thread
            if self._client is None or self._client.is_closed:
                self._client = httpx.Client(timeout=self.timeout,
                                            limits=httpx.Limits(max_connections=self.senders),
                                            headers={"content-type": "application/json", **self.headers})
            return self._client

    def close(self) -> None:
        super().close()
        if self._client is not None:
            self._client.close()


@dataclass(frozen=True)
class Destination:
    """An SQS queue registered by createDestination (``client_id``: the application that owns it)."""

    id: str
    name: str
    arn: str
    client_id: str
    sink: SqsSink


@dataclass(frozen=True)
class Subscription:
    """A createSubscription of ``seller_id`` (through application ``client_id``) to ``notification_type``.

    ``processing_directive`` is kept as sent; its eventFilter's ``marketplaceIds`` / ``orderChangeTypes`` (empty:
    all) decide which changes reach the destination.
    """

    id: str
    notification_type: str
    payload_version: str
    destination_id: str
    client_id: str
    seller_id: str | None
    processing_directive: dict[str, Any] | None
    marketplace_ids: frozenset[str] = frozenset()
    change_types: frozenset[str] = frozenset()

    def wants(self, event: OrderChangeEvent) -> bool:
        return (self.notification_type == "ORDER_CHANGE"
                and (not self.marketplace_ids or event.order["salesChannel"]["marketplaceId"] in self.marketplace_ids)
                and (not self.change_types or change_type(event) in self.change_types))


def change_type(event: OrderChangeEvent) -> str:
    """The envelope's ``OrderChangeType``."""
    return "BuyerRequestedChange" if event.reason == "Buyer Requested Cancel" else "OrderStatusChange"


def envelope(world: World, event: OrderChangeEvent, subscription_id: str = SUBSCRIPTION_ID) -> dict[str, Any]:
    """The official ORDER_CHANGE envelope for one change (no PII, no prices)."""
    order = event.order
    fulfillment = order["fulfillment"]
    items = order["orderItems"]
    shipped = sum(item["fulfillment"]["quantityFulfilled"] for item in items)
    unshipped = sum(item["fulfillment"]["quantityUnfulfilled"] for item in items)
    address = (order.get("recipient") or {}).get("deliveryAddress") or {}
    programs = [ORDER_PROGRAMS[p] for p in order.get("programs", []) if p in ORDER_PROGRAMS]
    summary: dict[str, Any] = {
        "MarketplaceId": order["salesChannel"]["marketplaceId"],
        "OrderStatus": V0_STATUS[fulfillment["fulfillmentStatus"]],
        "PurchaseDate": order["createdTime"],
        "DestinationPostalCode": address.get("postalCode"),
        "FulfillmentType": FULFILLMENT_TYPE[fulfillment["fulfilledBy"]],
        "OrderType": "Preorder" if "PREORDER" in order.get("programs", []) else "StandardOrder",
        "NumberOfItemsShipped": shipped,
        "NumberOfItemsUnshipped": unshipped,
        "OrderPrograms": programs,
        "ShippingPrograms": [],
        "OrderItems": [{
            "OrderItemId": item["orderItemId"],
            "SellerSKU": item["product"]["sellerSku"],
            "SupplySourceId": None,
            "OrderItemStatus": "Shipped" if item["fulfillment"]["quantityUnfulfilled"] == 0
            and item["fulfillment"]["quantityFulfilled"] > 0 else "Unshipped",
            "Quantity": item["quantityOrdered"],
            "QuantityShipped": item["fulfillment"]["quantityFulfilled"],
            "IsBuyerRequestedCancel": bool((item.get("cancellation") or {}).get("cancellationRequest")),
        } for item in items],
    }
    for key, window in (("Ship", fulfillment.get("shipByWindow")), ("Delivery", fulfillment.get("deliverByWindow"))):
        if window:
            summary[f"Earliest{key}Date"] = window["earliestDateTime"]
            summary[f"Latest{key}Date"] = window["latestDateTime"]
    if fulfillment["fulfillmentStatus"] == "CANCELLED":
        summary["CancelNotifyDate"] = iso(event.at)
    return {
        "NotificationVersion": "1.0",
        "NotificationType": "ORDER_CHANGE",
        "PayloadVersion": "1.0",
        "EventTime": iso(event.at),
        "Payload": {"OrderChangeNotification": {
            "NotificationLevel": "OrderLevel",
            "SellerId": world.seller_id,
            "AmazonOrderId": order["orderId"],
            "OrderChangeType": change_type(event),
            "OrderChangeTrigger": {"TimeOfOrderChange": iso(event.at), "ChangeReason": event.reason},
            "Summary": summary,
        }},
        "NotificationMetadata": {
            "ApplicationId": APPLICATION_ID,
            "SubscriptionId": subscription_id,
            "PublishTime": iso(world.now()),
            "NotificationId": str(uuid.uuid4()),
        },
    }


def _malformed(body: dict[str, Any]) -> dict[str, Any]:
    """A delivery that fails the schema: the order id and the summary's status are missing."""
    broken = json.loads(json.dumps(body))
    notification = broken["Payload"]["OrderChangeNotification"]
    del notification["AmazonOrderId"]
    del notification["Summary"]["OrderStatus"]
    return broken


def deliver(world: World) -> int:
    """Publish the queued order changes to every sink and subscription, applying the notification faults.
    Returns the bodies sent."""
    events = world.take_outbox()
    if not events:
        return 0
    sent = _send(world, list(world.notification_sinks), _bodies(world, events, SUBSCRIPTION_ID))
    with world.lock:
        subscribed = [(subscription, world.destinations[subscription.destination_id].sink)
                      for subscription in world.subscriptions.values()]
    for subscription, sink in subscribed:
        wanted = [event for event in events if subscription.wants(event)]
        if wanted:
            sent += _send(world, [sink], _bodies(world, wanted, subscription.id))
    return sent


def _bodies(world: World, events: list[OrderChangeEvent], subscription_id: str) -> list[tuple[str, str]]:
    """The envelopes of ``events`` as sent, each with its order id: each recorded in ``world.published``, then the
    faults applied."""
    faults = world.faults
    bodies: list[tuple[str, str]] = []
    for event in events:
        body = envelope(world, event, subscription_id)
        world.published.append(body)
        if faults.drop_notifications and world.chance(faults.drop_notifications):
            continue
        if faults.malformed_notifications and world.chance(faults.malformed_notifications):
            body = _malformed(body)
        text = json.dumps(body)
        bodies.append((event.order["orderId"], text))
        if faults.duplicate_notifications and world.chance(faults.duplicate_notifications):
            bodies.append((event.order["orderId"], text))
    if faults.out_of_order_notifications:
        bodies.reverse()
    return bodies


def _send(world: World, sinks: list[Sink], bodies: list[tuple[str, str]]) -> int:
    """Hand the bodies to every sink, then wait for them all. A sink with senders gets one task per order (that
    order's bodies in turn, the orders side by side); any other sink is sent to in this thread, in turn. A failed
    send is recorded; the others go on."""
    lanes: dict[str, list[str]] = {}
    for order_id, text in bodies:
        lanes.setdefault(order_id, []).append(text)
    outcomes: list[tuple[Sink, Future | None, list[str]]] = []
    for sink in sinks:
        if isinstance(sink, Senders):
            outcomes.extend((sink, sink.submit(texts), texts) for texts in lanes.values())
        else:
            outcomes.append((sink, None, [text for _order_id, text in bodies]))
    sent = 0
    for sink, future, texts in outcomes:
        try:
            errors = future.result() if future is not None else sink_each(sink, texts)
        except Exception as exc:  # the pool was shut down under the batch (the sinks were replaced)
            errors = [exc] * len(texts)
        for error in errors:
            if error is None:
                sent += 1
                continue
            world.delivery_failures.append((sink.name, type(error).__name__, str(error)[:200]))
            log.warning("sandbox notification to %s failed: %s", sink.name, type(error).__name__)
    return sent


def sink_each(sink: Sink, texts: list[str]) -> list[Exception | None]:
    """Send ``texts`` to ``sink`` one after the other; per text, the exception its send raised (the sink is down,
    it refused) or None. One failure does not stop the next text."""
    errors: list[Exception | None] = []
    for text in texts:
        try:
            sink.send(text)
            errors.append(None)
        except Exception as exc:  # noqa: BLE001 - recorded by the caller
            errors.append(exc)
    return errors
