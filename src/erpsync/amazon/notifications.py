"""Event-Driven Consumer for ORDER_CHANGE: envelope validation, the SQS consumer, and the Notifications API calls
that set up a destination and a subscription.

:func:`parse_notification` checks an envelope against what ``schemas/notifications/OrderChangeNotification.json``
requires (fields, types, enums, nullability) and returns an :class:`OrderChange`, or raises
:class:`errors.InvalidData` naming each bad field. :class:`SqsConsumer` long-polls a queue and deletes a message
only after the handler returned normally — i.e. after the job it enqueued is durable; a handler failure leaves the
message to SQS (visible again after its visibility timeout, then the queue's redrive policy).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from erpsync import logs, model
from erpsync.errors import AmazonRejected, InvalidData, RateLimited, Throttled

if TYPE_CHECKING:
    from erpsync.amazon.client import AmazonClient
    from erpsync.config import Settings

log = logs.get("erpsync.amazon.notifications")
NOTIFICATIONS_SCOPE = "sellingpartnerapi::notifications"  # LWA scope of the grantless Notifications operations
# the notification types erpsync consumes and the payload version it reads of each (LISTINGS_ITEM_ISSUES_CHANGE 1.0
# was retired on 2024-09-25); subscribe with erpsync notifications subscribe
PAYLOAD_VERSIONS = {"ORDER_CHANGE": "1.0", "FBA_INVENTORY_AVAILABILITY_CHANGES": "1.0",
                    "LISTINGS_ITEM_STATUS_CHANGE": "1.0", "LISTINGS_ITEM_ISSUES_CHANGE": "2023-12-13"}

# --- what an envelope may be, beyond the schema: bounded, shallow, ids in Amazon's formats ---------------------
MAX_BYTES = 256 * 1024  # SQS's largest message; an ORDER_CHANGE is a few kilobytes
MAX_DEPTH = 16  # an ORDER_CHANGE nests 6 deep; deeper JSON is an attack on the parser, not a notification
AMAZON_ORDER_ID = r"^\d{3}-\d{7}-\d{7}$"  # 3-7-7 digits
NOTIFICATION_ID = r"^[\x21-\x7e]{1,128}$"  # Amazon sends a UUID; printable, no spaces, fits the inbox key
AMAZON_TOKEN = r"^[A-Za-z0-9]{1,32}$"  # merchant (SellerId) and marketplace ids: A3TH9S8BH6GOGM, ATVPDKIKX0DER
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"  # no NUL, no control characters
FORMATS = {  # how a refused id is described in the 400's message (it never echoes the value)
    AMAZON_ORDER_ID: "is not an Amazon order id (3-7-7 digits, e.g. 113-1234567-7654321)",
    NOTIFICATION_ID: "is not a NotificationId (1 to 128 printable characters, no spaces)",
    AMAZON_TOKEN: "is not an Amazon id (1 to 32 letters and digits)",
    PLAIN_TEXT: "holds control characters",
}
_Id = Annotated[str, Field(pattern=AMAZON_TOKEN)]
_Text = Annotated[str, Field(max_length=200, pattern=PLAIN_TEXT)]

# --- the envelope, as the official schema requires it ----------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class _Item(_Strict):
    OrderItemId: _Text
    SellerSKU: _Text
    SupplySourceId: str | None
    Quantity: int
    QuantityShipped: int | None = None
    OrderItemStatus: Literal["Unshipped", "Shipped"] | None = None
    IsBuyerRequestedCancel: bool | None = None


class _Summary(_Strict):
    MarketplaceId: _Id
    OrderStatus: Literal["Pending", "Unshipped", "PartiallyShipped", "Shipped", "Canceled", "Unfulfillable",
                         "InvoiceUnconfirmed", "PendingAvailability"]
    PurchaseDate: str | None
    DestinationPostalCode: str | None
    FulfillmentType: Literal["AFN", "MFN"]
    OrderType: Literal["StandardOrder", "LongLeadTimeOrder", "Preorder", "BackOrder", "SourcingOnDemandOrder"]
    OrderItems: list[_Item]
    NumberOfItemsShipped: int | None = None
    NumberOfItemsUnshipped: int | None = None
    OrderPrograms: list[Literal["Business", "Prime", "Premium", "IBA", "Replacement"]] | None = None
    ShippingPrograms: list[Literal["ShipDateSet", "GlobalExpress", "ISPU", "AccessPoint", "TFM", "EasyShip"]] | None \
        = None
    EasyShipShipmentStatus: Literal[
        "PendingSchedule", "PendingPickUp", "PendingDropOff", "LabelCanceled", "PickedUp", "DroppedOff", "AtOriginFC",
        "AtDestinationFC", "Delivered", "RejectedByBuyer", "Undeliverable", "ReturningToSeller", "ReturnedToSeller",
        "Lost", "OutForDelivery", "Damaged"] | None = None
    ElectronicInvoiceStatus: Literal["NotRequired", "NotFound", "Processing", "Errored", "Accepted"] | None = None


class _Trigger(_Strict):
    TimeOfOrderChange: str | None
    ChangeReason: _Text


class _OrderChangeNotification(_Strict):
    NotificationLevel: Literal["OrderItemLevel", "OrderLevel"]
    SellerId: _Id
    AmazonOrderId: str = Field(pattern=AMAZON_ORDER_ID)
    OrderChangeType: Literal["BuyerRequestedChange", "DeliveryTipChange", "OrderStatusChange"]
    OrderChangeTrigger: _Trigger
    Summary: _Summary


class _Payload(_Strict):
    OrderChangeNotification: _OrderChangeNotification


class _Metadata(_Strict):
    ApplicationId: str
    SubscriptionId: str
    PublishTime: str
    NotificationId: str = Field(pattern=NOTIFICATION_ID)


class _Envelope(_Strict):
    NotificationVersion: str
    NotificationType: Literal["ORDER_CHANGE"]
    PayloadVersion: str
    EventTime: datetime
    Payload: _Payload
    NotificationMetadata: _Metadata


class OrderChangeItem(model.Record):
    order_item_id: str
    sku: str
    quantity: int
    quantity_shipped: int | None = None
    buyer_requested_cancel: bool = False


class OrderChange(model.Record):
    """An ORDER_CHANGE notification: a trigger to read the order (it carries no prices and no PII)."""

    notification_id: str
    amazon_order_id: str
    marketplace_id: str
    order_status: model.OrderStatus
    event_time: model.UtcDatetime
    seller_id: str
    change_type: str
    change_reason: str
    fulfillment_channel: model.FulfillmentChannel
    notification_level: str
    subscription_id: str
    items: tuple[OrderChangeItem, ...] = ()


def parse_notification(body: bytes | str | dict[str, Any]) -> OrderChange:
    """Validate an ORDER_CHANGE envelope (SQS message body or webhook request body): at most :data:`MAX_BYTES`,
    JSON nested at most :data:`MAX_DEPTH` deep, the schema's fields, ids in Amazon's formats, no control characters
    in text. The :class:`InvalidData` names each bad field and never repeats a refused value."""
    try:
        text = body if isinstance(body, (bytes, str)) else json.dumps(body)
        check_shape(text)
        envelope = _Envelope.model_validate_json(text)
    except ValidationError as exc:
        raise InvalidData(_describe(body, exc), record=_notification_id(body)) from None
    except (TypeError, ValueError) as exc:
        raise InvalidData(f"ORDER_CHANGE notification is not JSON: {exc}") from None
    change = envelope.Payload.OrderChangeNotification
    summary = change.Summary
    if envelope.EventTime.utcoffset() is None:
        raise InvalidData(f"ORDER_CHANGE notification {envelope.NotificationMetadata.NotificationId}: "
                          f"EventTime has no timezone", record=envelope.NotificationMetadata.NotificationId)
    return OrderChange(
        notification_id=envelope.NotificationMetadata.NotificationId,
        amazon_order_id=change.AmazonOrderId,
        marketplace_id=summary.MarketplaceId,
        order_status=model.OrderStatus(summary.OrderStatus),
        event_time=envelope.EventTime,
        seller_id=change.SellerId,
        change_type=change.OrderChangeType,
        change_reason=change.OrderChangeTrigger.ChangeReason,
        fulfillment_channel=model.FulfillmentChannel(summary.FulfillmentType),
        notification_level=change.NotificationLevel,
        subscription_id=envelope.NotificationMetadata.SubscriptionId,
        items=tuple(OrderChangeItem(order_item_id=item.OrderItemId, sku=item.SellerSKU, quantity=item.Quantity,
                                    quantity_shipped=item.QuantityShipped,
                                    buyer_requested_cancel=bool(item.IsBuyerRequestedCancel))
                    for item in summary.OrderItems),
    )


def check_shape(text: bytes | str) -> None:
    """Size and nesting depth, before any parser sees the body (of every notification type)."""
    size = len(text.encode("utf-8") if isinstance(text, str) else text)
    if size > MAX_BYTES:
        raise InvalidData(f"ORDER_CHANGE notification is {size} bytes, more than the {MAX_BYTES} an envelope may "
                          f"have", code="too_large")
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", raw)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        raise InvalidData(f"ORDER_CHANGE notification nests its JSON {deepest} levels deep, more than the "
                          f"{MAX_DEPTH} an envelope may have", code="too_deep")


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def _notification_id(body: Any) -> str | None:
    """The envelope's NotificationId when it is one (a refused value is never repeated in messages or the audit)."""
    try:
        data = json.loads(body) if isinstance(body, (bytes, str)) else body
        value = data["NotificationMetadata"]["NotificationId"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return value if isinstance(value, str) and re.fullmatch(NOTIFICATION_ID, value) else None


def _describe(body: Any, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(body)"
        if error["type"] == "missing":
            problem = "is missing"
        elif error["type"] == "string_pattern_mismatch":
            problem = FORMATS.get((error.get("ctx") or {}).get("pattern"), "is not in Amazon's format")
        else:
            problem = error["msg"]
        problems.append(f"{where}: {problem}")
    name = _notification_id(body)
    return f"ORDER_CHANGE notification {name or '(no NotificationId)'} is invalid: " + "; ".join(problems)


# --- SQS -------------------------------------------------------------------------------------------------------


class SqsConsumer:
    """Long-polls an SQS queue of ORDER_CHANGE envelopes (boto3)."""

    def __init__(self, queue_url: str, *, endpoint_url: str | None = None, region: str = "us-east-1",
                 aws_access_key_id: str | None = None, aws_secret_access_key: str | None = None,
                 wait_seconds: int = 20, max_messages: int = 10):
        import boto3
        from botocore.config import Config

        if not 0 <= wait_seconds <= 20 or not 1 <= max_messages <= 10:
            raise ValueError("SQS allows wait_seconds 0..20 and max_messages 1..10")
        self.queue_url, self.wait_seconds, self.max_messages = queue_url, wait_seconds, max_messages
        self._sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region,
                                 aws_access_key_id=aws_access_key_id, aws_secret_access_key=aws_secret_access_key,
                                 config=Config(connect_timeout=10, read_timeout=wait_seconds + 10,
                                               retries={"max_attempts": 3, "mode": "standard"}))

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> SqsConsumer:
        notifications = settings.amazon.notifications
        if not notifications.sqs_queue_url:
            raise ValueError("amazon.notifications.sqs_queue_url is not set")
        secrets = settings.secrets
        return cls(notifications.sqs_queue_url, endpoint_url=notifications.sqs_endpoint_url,
                   region=notifications.sqs_region,
                   aws_access_key_id=secrets.aws_access_key_id.get_secret_value() if secrets.aws_access_key_id
                   else None,
                   aws_secret_access_key=secrets.aws_secret_access_key.get_secret_value()
                   if secrets.aws_secret_access_key else None, **options)

    def consume(self, handler: Callable[[OrderChange], None], *,
                on_invalid: Callable[[str, InvalidData], None] | None = None,
                stop: threading.Event | None = None, max_polls: int | None = None) -> int:
        """Receive until ``stop`` is set (or ``max_polls`` receives); return how many messages were deleted.

        ``handler(change)`` must make the work durable (enqueue the job) before returning. A message that is not
        a valid envelope goes to ``on_invalid(body, error)`` (park it as a dead letter), and is deleted once that
        returned; without ``on_invalid`` it stays in the queue for SQS's own redrive policy.
        """
        deleted = polls = 0
        while not (stop is not None and stop.is_set()) and (max_polls is None or polls < max_polls):
            polls += 1
            reply = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.max_messages,
                                              WaitTimeSeconds=self.wait_seconds)
            for message in reply.get("Messages", ()):
                if self._handle(message, handler, on_invalid):
                    self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                    deleted += 1
        return deleted

    def _handle(self, message: dict[str, Any], handler: Callable[[OrderChange], None],
                on_invalid: Callable[[str, InvalidData], None] | None) -> bool:
        body = message.get("Body", "")
        try:
            change = parse_notification(body)
        except InvalidData as exc:
            log.warning("amazon.sqs.invalid", message_id=message.get("MessageId"), error=str(exc))
            if on_invalid is None:
                return False
            try:
                on_invalid(body, exc)
            except Exception as failure:  # noqa: BLE001 - keep consuming; the message stays for a retry
                log.error("amazon.sqs.invalid_not_parked", message_id=message.get("MessageId"),
                          error=type(failure).__name__)
                return False
            return True
        try:
            handler(change)
        except Exception as failure:  # noqa: BLE001 - keep consuming; the message stays for a retry
            log.error("amazon.sqs.handler_failed", amazon_order_id=change.amazon_order_id,
                      notification_id=change.notification_id, error=type(failure).__name__)
            return False
        log.info("amazon.sqs.handled", amazon_order_id=change.amazon_order_id,
                 notification_id=change.notification_id)
        return True


# --- Notifications API (Amazon's model notifications.json): destination and subscription -----------------------


class Notifications:
    def __init__(self, client: AmazonClient):
        self._client = client

    def create_destination(self, name: str, sqs_arn: str) -> str:
        """Register an SQS queue as a destination (grantless); the destination id."""
        if not sqs_arn.startswith("arn:aws:sqs:") or sqs_arn.count(":") < 5:
            raise ValueError(f"{sqs_arn!r} is not an SQS ARN (arn:aws:sqs:<region>:<account>:<queue>)")
        body = {"name": name, "resourceSpecification": {"sqs": {"arn": sqs_arn}}}
        reply = self._client.call("createDestination", "POST", "/notifications/v1/destinations", body=body,
                                  grantless=NOTIFICATIONS_SCOPE)
        return str(reply.body["payload"]["destinationId"])

    def destinations(self) -> list[dict[str, Any]]:
        """The application's destinations (getDestinations, grantless): the model's ``Destination`` objects."""
        reply = self._client.call("getDestinations", "GET", "/notifications/v1/destinations",
                                  grantless=NOTIFICATIONS_SCOPE)
        return list(reply.body.get("payload") or [])

    def subscription(self, notification_type: str) -> dict[str, Any] | None:
        """The seller's subscription to ``notification_type`` (getSubscription), or None when there is none."""
        try:
            reply = self._client.call("getSubscription", "GET", f"/notifications/v1/subscriptions/{notification_type}")
        except AmazonRejected as exc:
            if exc.status == 404:
                return None
            raise
        return reply.body.get("payload")

    def create_subscription(self, destination_id: str, notification_type: str = "ORDER_CHANGE", *,
                            order_change_types: Iterable[str] = ("OrderStatusChange", "BuyerRequestedChange"),
                            marketplace_ids: Iterable[str] | None = None, payload_version: str | None = None) -> str:
        """Subscribe the seller to ``notification_type`` at ``destination_id``; the subscription id.

        The payload version is the one erpsync reads (:data:`PAYLOAD_VERSIONS`; ``payload_version`` for another
        type). ORDER_CHANGE is filtered to ``order_change_types`` in ``marketplace_ids`` (its eventFilter); Amazon
        offers no eventFilter for the inventory and listing types, so they come for every marketplace and intake
        refuses those of a marketplace erpsync does not serve."""
        version = payload_version or PAYLOAD_VERSIONS.get(notification_type)
        if version is None:
            raise ValueError(f"notification type {notification_type!r}: erpsync reads "
                             f"{', '.join(PAYLOAD_VERSIONS)}; give payload_version for another type")
        body: dict[str, Any] = {"payloadVersion": version, "destinationId": destination_id}
        if notification_type == "ORDER_CHANGE":
            body["processingDirective"] = {"eventFilter": {
                "eventFilterType": "ORDER_CHANGE", "orderChangeTypes": list(order_change_types),
                "marketplaceIds": list(marketplace_ids or self._client.marketplace_ids)}}
        reply = self._client.call("createSubscription", "POST", f"/notifications/v1/subscriptions/{notification_type}",
                                  body=body)
        return str(reply.body["payload"]["subscriptionId"])

    def subscribe(self, sqs_arn: str, *, name: str = "erpsync",
                  types: Iterable[str] = tuple(PAYLOAD_VERSIONS)) -> list[dict[str, Any]]:
        """Route ``types`` (default: every type erpsync consumes) to the SQS queue ``sqs_arn``: its destination
        (reused when the application has one for that queue, else created), then one subscription per type unless
        the seller has one already. Per type ``{"type", "outcome": created | kept | elsewhere, "subscription_id",
        "payload_version", "message"?}`` — *elsewhere*: a subscription to another destination or payload version,
        left alone (Amazon allows one per type: delete it first to move it)."""
        types = list(types)
        patient = _patiently
        unknown = [t for t in types if t not in PAYLOAD_VERSIONS]
        if unknown:
            raise ValueError(f"notification types {unknown}: erpsync consumes {', '.join(PAYLOAD_VERSIONS)}")
        destination = next((d["destinationId"] for d in patient(self.destinations)
                            if ((d.get("resource") or {}).get("sqs") or {}).get("arn") == sqs_arn), None)
        if destination is None:
            destination = patient(self.create_destination, name, sqs_arn)
        results = []
        for notification_type in types:
            version = PAYLOAD_VERSIONS[notification_type]
            current = patient(self.subscription, notification_type)
            if current is None:
                subscription_id = patient(self.create_subscription, destination, notification_type)
                results.append({"type": notification_type, "outcome": "created", "subscription_id": subscription_id,
                                "payload_version": version})
            elif current.get("destinationId") == destination and current.get("payloadVersion") == version:
                results.append({"type": notification_type, "outcome": "kept",
                                "subscription_id": current["subscriptionId"], "payload_version": version})
            else:
                results.append({
                    "type": notification_type, "outcome": "elsewhere", "subscription_id": current["subscriptionId"],
                    "payload_version": current.get("payloadVersion"),
                    "message": f"{notification_type} already goes to destination {current.get('destinationId')} "
                               f"(payload version {current.get('payloadVersion')}); delete subscription "
                               f"{current['subscriptionId']} (deleteSubscriptionById) and run this again to move it "
                               f"to {sqs_arn} with payload version {version}"})
            log.info("amazon.notifications.subscription", notification_type=notification_type,
                     outcome=results[-1]["outcome"], subscription_id=results[-1]["subscription_id"])
        return results


def _patiently(call: Callable[..., Any], *args: Any, attempts: int = 20) -> Any:
    """``call(*args)``, waiting out an empty token bucket or a 429 (for commands: a worker reschedules instead)."""
    for _ in range(attempts - 1):
        try:
            return call(*args)
        except (RateLimited, Throttled) as exc:
            time.sleep(min(exc.retry_after or 1.0, 60.0))
    return call(*args)
