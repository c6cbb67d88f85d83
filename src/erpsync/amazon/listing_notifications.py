"""Inventory and listing notifications (spapi-notes §6.3): FBA_INVENTORY_AVAILABILITY_CHANGES,
LISTINGS_ITEM_STATUS_CHANGE and LISTINGS_ITEM_ISSUES_CHANGE envelopes validated into one canonical
:class:`ListingEvent`. They arrive through the same webhook and SQS queue as ORDER_CHANGE; :func:`handles` tells
them apart before the ORDER_CHANGE parser sees them.

LISTINGS_ITEM_ISSUES_CHANGE (payload version 2023-12-13) carries severities and enforcement actions, not the
issues' messages: those are read with getListingsItem (``includedData=issues``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from erpsync import model
from erpsync.amazon.notifications import check_shape
from erpsync.errors import InvalidData

FBA = "FBA_INVENTORY_AVAILABILITY_CHANGES"
STATUS = "LISTINGS_ITEM_STATUS_CHANGE"
ISSUES = "LISTINGS_ITEM_ISSUES_CHANGE"
TYPES = (FBA, STATUS, ISSUES)


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Metadata(_Loose):
    NotificationId: str = Field(min_length=1)
    SubscriptionId: str | None = None
    PublishTime: datetime | None = None


class _FbaInventory(_Loose):
    Fulfillable: int = Field(ge=0)


class _FbaMarketplace(_Loose):
    MarketplaceId: str = Field(min_length=1)
    FulfillmentInventory: _FbaInventory


class _FbaPayload(_Loose):
    SellerId: str
    SKU: str = Field(min_length=1)
    ASIN: str | None = None
    FNSKU: str | None = None
    FulfillmentInventoryByMarketplace: list[_FbaMarketplace]


class _StatusPayload(_Loose):
    SellerId: str
    MarketplaceId: str = Field(min_length=1)
    Sku: str = Field(min_length=1)
    Asin: str | None = None
    Status: list[Literal["BUYABLE", "DISCOVERABLE", "DELETED"]]


class _IssuesPayload(_Loose):
    SellerId: str
    MarketplaceId: str = Field(min_length=1)
    Sku: str = Field(min_length=1)
    Asin: str | None = None
    Severities: list[Literal["ERROR", "WARNING", "INFO"]] = Field(default_factory=list)
    EnforcementActions: list[str] = Field(default_factory=list)


_PAYLOADS: dict[str, type[BaseModel]] = {FBA: _FbaPayload, STATUS: _StatusPayload, ISSUES: _IssuesPayload}


class ListingEvent(model.Record):
    """One inventory or listing notification: ``fulfillable`` per marketplace (FBA), ``status`` (status change),
    ``severities`` / ``enforcements`` (issues change)."""

    notification_id: str
    notification_type: str
    seller_id: str
    sku: str
    event_time: model.UtcDatetime
    marketplace_ids: tuple[str, ...]
    fulfillable: dict[str, int] = Field(default_factory=dict)
    status: tuple[str, ...] | None = None
    severities: tuple[str, ...] = ()
    enforcements: tuple[str, ...] = ()


def _load(body: bytes | str | dict[str, Any]) -> Any:
    if isinstance(body, dict):
        return body
    try:
        check_shape(body)  # size and nesting depth first, as for ORDER_CHANGE: deep JSON never reaches the parser
        return json.loads(body)
    except (InvalidData, ValueError):
        return None


def handles(body: bytes | str | dict[str, Any]) -> bool:
    """Whether ``body`` is one of the notification types of this module (by its NotificationType)."""
    data = _load(body)
    return isinstance(data, dict) and data.get("NotificationType") in TYPES


def parse(body: bytes | str | dict[str, Any]) -> ListingEvent:
    data = _load(body)
    if not isinstance(data, dict) or data.get("NotificationType") not in TYPES:
        raise InvalidData(f"not an inventory or listing notification (NotificationType one of {', '.join(TYPES)})")
    kind = data["NotificationType"]
    name = (data.get("NotificationMetadata") or {}).get("NotificationId") if isinstance(
        data.get("NotificationMetadata"), dict) else None
    try:
        metadata = _Metadata.model_validate(data.get("NotificationMetadata"))
        payload = _PAYLOADS[kind].model_validate(data.get("Payload"))
        event_time = datetime.fromisoformat(str(data.get("EventTime")).replace("Z", "+00:00"))
    except (ValidationError, ValueError) as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()) \
            if isinstance(exc, ValidationError) else f"EventTime: {exc}"
        raise InvalidData(f"{kind} notification {name or '(no NotificationId)'} is invalid: {problems}",
                          record=name) from None
    if event_time.utcoffset() is None:
        raise InvalidData(f"{kind} notification {name}: EventTime has no time zone", record=name)
    common = {"notification_id": metadata.NotificationId, "notification_type": kind, "event_time": event_time,
              "seller_id": payload.SellerId}
    if isinstance(payload, _FbaPayload):
        fulfillable = {m.MarketplaceId: m.FulfillmentInventory.Fulfillable
                       for m in payload.FulfillmentInventoryByMarketplace}
        return ListingEvent(**common, sku=payload.SKU, marketplace_ids=tuple(fulfillable), fulfillable=fulfillable)
    if isinstance(payload, _StatusPayload):
        return ListingEvent(**common, sku=payload.Sku, marketplace_ids=(payload.MarketplaceId,),
                            status=tuple(payload.Status))
    return ListingEvent(**common, sku=payload.Sku, marketplace_ids=(payload.MarketplaceId,),
                        severities=tuple(payload.Severities), enforcements=tuple(payload.EnforcementActions))
