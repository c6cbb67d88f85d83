"""Notifications API v1: destinations and subscriptions that route ORDER_CHANGE, FBA_INVENTORY_AVAILABILITY_CHANGES,
LISTINGS_ITEM_STATUS_CHANGE and LISTINGS_ITEM_ISSUES_CHANGE to an SQS queue.

createDestination registers an SQS queue by ARN (``arn:aws:sqs:<region>:<account>:<queue>``). The sandbox reaches
it at the URL moto gives that queue, ``{world.sqs_endpoint_url}/<account>/<queue>`` (without an endpoint: AWS's
``https://sqs.<region>.amazonaws.com/<account>/<queue>``), through a :class:`~erpsync.sandbox.notifications.SqsSink`.
After createSubscription(ORDER_CHANGE) every order change is delivered to that queue (``notifications.deliver``),
filtered by the subscription's ``processingDirective.eventFilter`` (``marketplaceIds``, ``orderChangeTypes``).
After createSubscription of an inventory or listing type (payload versions: :data:`NOTIFICATION_TYPES`) every such
event of the control calls (``listing_events.py``) is delivered there; Amazon's eventFilter does not cover these
types (its ``eventFilterType`` names ORDER_CHANGE, ANY_OFFER_CHANGED and SHIPMENT_TRACKING_MILESTONE_CHANGED only),
so a directive with an eventFilter for them is refused.

As the model says: the destination operations and getSubscriptionById / deleteSubscriptionById are grantless (an
application token of scope ``sellingpartnerapi::notifications``); createSubscription and getSubscription take the
seller's token. Destinations belong to the application; a subscription to the application and the seller, one per
notification type. The sandbox publishes the four types above, to SQS only: other notification types, EventBridge
destinations and ``filterExpression`` are refused with a 400 that says so. Conflicts (the same queue twice, a second
subscription, deleting a destination still subscribed to) are 409 ``Conflict``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from erpsync.sandbox import query
from erpsync.sandbox.core import AmazonError, Caller, invalid_input, not_found, operation, world_of
from erpsync.sandbox.notifications import Destination, SqsSink, Subscription
from erpsync.sandbox.world import World

router = APIRouter(tags=["notifications"])
API = "/notifications/v1"
# what the sandbox publishes, and the payload version of each (LISTINGS_ITEM_ISSUES_CHANGE 1.0 was retired by Amazon
# on 2024-09-25); the inventory and listing types come from the control calls of listing_events.py
NOTIFICATION_TYPES = {"ORDER_CHANGE": "1.0", "FBA_INVENTORY_AVAILABILITY_CHANGES": "1.0",
                      "LISTINGS_ITEM_STATUS_CHANGE": "1.0", "LISTINGS_ITEM_ISSUES_CHANGE": "2023-12-13"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SqsResource(_Strict):
    arn: str = Field(max_length=1000, pattern=r"^arn:aws:sqs:\S+:\S+:\S+")


class EventBridgeResourceSpecification(_Strict):
    region: str
    accountId: str


class DestinationResourceSpecification(_Strict):
    sqs: SqsResource | None = None
    eventBridge: EventBridgeResourceSpecification | None = None


class CreateDestinationRequest(_Strict):
    name: str = Field(min_length=1, max_length=256)
    resourceSpecification: DestinationResourceSpecification


class EventFilter(_Strict):
    """The ORDER_CHANGE part of the model's EventFilter (the aggregation and tracking filters are other types')."""

    eventFilterType: Literal["ANY_OFFER_CHANGED", "ORDER_CHANGE", "SHIPMENT_TRACKING_MILESTONE_CHANGED"]
    marketplaceIds: list[str] | None = None
    orderChangeTypes: list[Literal["BuyerRequestedChange", "DeliveryTipChange", "OrderStatusChange"]] | None = None


class ProcessingDirective(_Strict):
    eventFilter: EventFilter | None = None
    filterExpression: str | None = Field(None, min_length=1, max_length=256)


class CreateSubscriptionRequest(_Strict):
    payloadVersion: str
    destinationId: str
    processingDirective: ProcessingDirective | None = None


def queue_url(arn: str, endpoint_url: str | None) -> tuple[str, str]:
    """(queue URL, region) of an SQS queue ARN: ``{endpoint_url}/{account}/{queue}``, as moto names queues."""
    _, _, _, region, account, name = arn.split(":", 5)
    base = endpoint_url.rstrip("/") if endpoint_url else f"https://sqs.{region}.amazonaws.com"
    return f"{base}/{account}/{name}", region


def destination_view(destination: Destination) -> dict[str, Any]:
    """The model's ``Destination``."""
    return {"destinationId": destination.id, "name": destination.name, "resource": {"sqs": {"arn": destination.arn}}}


def subscription_view(subscription: Subscription) -> dict[str, Any]:
    """The model's ``Subscription``."""
    view: dict[str, Any] = {"subscriptionId": subscription.id, "payloadVersion": subscription.payload_version,
                            "destinationId": subscription.destination_id}
    if subscription.processing_directive:
        view["processingDirective"] = subscription.processing_directive
    return view


def _destination(world: World, caller: Caller, destination_id: str) -> Destination:
    destination = world.destinations.get(destination_id)
    if destination is None or destination.client_id != caller.client_id:
        raise not_found(f"Destination {destination_id} does not exist for this application.")
    return destination


def _conflict(message: str) -> AmazonError:
    return AmazonError(409, "Conflict", message)


# --- destinations (grantless) ----------------------------------------------------------------------------------


@router.post(f"{API}/destinations")
def create_destination(body: CreateDestinationRequest, request: Request,
                       caller: Caller = Depends(operation("createDestination", grantless=True))) -> dict[str, Any]:
    spec = body.resourceSpecification
    if spec.sqs is None or spec.eventBridge is not None:
        raise invalid_input("The sandbox delivers to SQS queues only: give resourceSpecification.sqs.arn (and one "
                            "resource type per destination).")
    world = world_of(request)
    with world.lock:
        same = next((d for d in world.destinations.values()
                     if d.client_id == caller.client_id and d.arn == spec.sqs.arn), None)
        if same is not None:
            raise _conflict(f"Destination {same.id} already delivers to {spec.sqs.arn}.")
        url, region = queue_url(spec.sqs.arn, world.sqs_endpoint_url)
        destination_id = world.next_uuid()
        destination = Destination(destination_id, body.name, spec.sqs.arn, caller.client_id,
                                  SqsSink(url, world.sqs_endpoint_url, region, name=f"destination {destination_id}"))
        world.destinations[destination.id] = destination
    return {"payload": destination_view(destination)}


@router.get(f"{API}/destinations")
def get_destinations(request: Request,
                     caller: Caller = Depends(operation("getDestinations", grantless=True))) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        return {"payload": [destination_view(d) for d in world.destinations.values()
                            if d.client_id == caller.client_id]}


@router.get(f"{API}/destinations/{{destinationId}}")
def get_destination(destinationId: str, request: Request,
                    caller: Caller = Depends(operation("getDestination", grantless=True))) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        return {"payload": destination_view(_destination(world, caller, destinationId))}


@router.delete(f"{API}/destinations/{{destinationId}}")
def delete_destination(destinationId: str, request: Request,
                       caller: Caller = Depends(operation("deleteDestination", grantless=True))) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        _destination(world, caller, destinationId)
        used = [s.id for s in world.subscriptions.values() if s.destination_id == destinationId]
        if used:
            raise _conflict(f"Destination {destinationId} is used by subscriptions {used}; delete them first "
                            "(deleteSubscriptionById).")
        del world.destinations[destinationId]
    return {}


# --- subscriptions -------------------------------------------------------------------------------------------------


def _subscription(world: World, caller: Caller, notification_type: str, subscription_id: str) -> Subscription:
    subscription = world.subscriptions.get(subscription_id)
    if subscription is None or subscription.client_id != caller.client_id \
            or subscription.notification_type != notification_type:
        raise not_found(f"Subscription {subscription_id} to {notification_type} does not exist for this application.")
    return subscription


def _filters(world: World, notification_type: str, directive: ProcessingDirective | None
             ) -> tuple[frozenset[str], frozenset[str]]:
    """The (marketplaceIds, orderChangeTypes) a subscription's directive filters on (empty: all)."""
    if directive is None:
        return frozenset(), frozenset()
    if directive.filterExpression is not None:
        raise invalid_input("processingDirective.filterExpression is not supported by the sandbox; use eventFilter.")
    event_filter = directive.eventFilter
    if event_filter is None:
        return frozenset(), frozenset()
    if event_filter.eventFilterType != notification_type:
        raise invalid_input(f"eventFilter.eventFilterType {event_filter.eventFilterType} does not filter "
                            f"{notification_type}; use {notification_type}.")
    marketplace_ids = query.known_marketplaces(world, "eventFilter.marketplaceIds", event_filter.marketplaceIds or [])
    return frozenset(marketplace_ids), frozenset(event_filter.orderChangeTypes or ())


@router.post(f"{API}/subscriptions/{{notificationType}}")
def create_subscription(notificationType: str, body: CreateSubscriptionRequest, request: Request,
                        caller: Caller = Depends(operation("createSubscription"))) -> dict[str, Any]:
    if notificationType not in NOTIFICATION_TYPES:
        raise invalid_input(f"notificationType {notificationType!r} is not published by the sandbox; it publishes "
                            f"{', '.join(NOTIFICATION_TYPES)}.")
    if body.payloadVersion != NOTIFICATION_TYPES[notificationType]:
        raise invalid_input(f"payloadVersion {body.payloadVersion!r} is not a version of {notificationType}; use "
                            f"{NOTIFICATION_TYPES[notificationType]}.")
    world = world_of(request)
    marketplace_ids, change_types = _filters(world, notificationType, body.processingDirective)
    with world.lock:
        destination = world.destinations.get(body.destinationId)
        if destination is None or destination.client_id != caller.client_id:
            raise invalid_input(f"destinationId {body.destinationId!r} is not a destination of this application; "
                                "create it with createDestination.")
        taken = next((s for s in world.subscriptions.values() if (s.client_id, s.seller_id, s.notification_type)
                      == (caller.client_id, caller.seller_id, notificationType)), None)
        if taken is not None:
            raise _conflict(f"Selling partner {caller.seller_id} is already subscribed to {notificationType} "
                            f"(subscription {taken.id}); delete it first to subscribe again.")
        directive = body.processingDirective.model_dump(exclude_none=True) if body.processingDirective else None
        subscription = Subscription(world.next_uuid(), notificationType, body.payloadVersion, destination.id,
                                    caller.client_id, caller.seller_id, directive, marketplace_ids, change_types)
        world.subscriptions[subscription.id] = subscription
    return {"payload": subscription_view(subscription)}


@router.get(f"{API}/subscriptions/{{notificationType}}")
def get_subscription(notificationType: str, request: Request, payloadVersion: str | None = None,
                     caller: Caller = Depends(operation("getSubscription"))) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        found = next((s for s in world.subscriptions.values()
                      if (s.client_id, s.seller_id, s.notification_type) == (caller.client_id, caller.seller_id,
                                                                            notificationType)
                      and payloadVersion in (None, s.payload_version)), None)
        if found is None:
            raise not_found(f"Selling partner {caller.seller_id} has no subscription to {notificationType}.")
        return {"payload": subscription_view(found)}


@router.get(f"{API}/subscriptions/{{notificationType}}/{{subscriptionId}}")
def get_subscription_by_id(notificationType: str, subscriptionId: str, request: Request,
                           caller: Caller = Depends(operation("getSubscriptionById", grantless=True))
                           ) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        return {"payload": subscription_view(_subscription(world, caller, notificationType, subscriptionId))}


@router.delete(f"{API}/subscriptions/{{notificationType}}/{{subscriptionId}}")
def delete_subscription_by_id(notificationType: str, subscriptionId: str, request: Request,
                              caller: Caller = Depends(operation("deleteSubscriptionById", grantless=True))
                              ) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        _subscription(world, caller, notificationType, subscriptionId)
        del world.subscriptions[subscriptionId]
    return {}
