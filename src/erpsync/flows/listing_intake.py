"""Intake of the inventory and listing notifications (Idempotent Receiver, same inbox as ORDER_CHANGE):

* FBA_INVENTORY_AVAILABILITY_CHANGES — Amazon's fulfillable quantity per marketplace recorded at once (the newest
  wins), so reconciliation sees FBA stock without polling getInventorySummaries;
* LISTINGS_ITEM_STATUS_CHANGE without BUYABLE, and LISTINGS_ITEM_ISSUES_CHANGE — ``listing_issues`` is queued: it
  reads the listing's issues (getListingsItem) and makes a visible per-SKU dead letter with Amazon's message.
"""

from __future__ import annotations

from typing import Any

from erpsync import logs
from erpsync.amazon import listing_notifications as ln
from erpsync.errors import InvalidData
from erpsync.flows.jobs import Host

log = logs.get(__name__)


def receive(runtime: Host, body: bytes | str | dict[str, Any], *, source: str) -> bool:
    """Take one notification; False when its NotificationId was seen before. Invalid: :class:`InvalidData`."""
    event = ln.parse(body)
    amazon = runtime.settings.amazon
    about = f"{event.notification_type} notification {event.notification_id} (SKU {event.sku!r})"
    if event.seller_id != amazon.seller_id:
        raise InvalidData(f"{about} is for seller {event.seller_id}, not {amazon.seller_id} ([amazon] seller_id)",
                          record=event.notification_id)
    if not set(event.marketplace_ids) & set(amazon.marketplace_ids):
        raise InvalidData(f"{about} is for marketplaces {list(event.marketplace_ids)}, none of them in [amazon] "
                          f"marketplace_ids {amazon.marketplace_ids}", record=event.notification_id)
    store = runtime.store
    if not store.inbox_add(event.notification_id, notification_type=event.notification_type,
                           payload=event.model_dump(mode="json")):
        log.info("notification.duplicate", notification_id=event.notification_id, sku=event.sku, source=source)
        return False
    try:
        queued = _act(runtime, event)
    except BaseException:
        store.inbox_forget(event.notification_id)  # not recorded: the redelivery counts
        raise
    log.info("notification.received", notification_id=event.notification_id, type=event.notification_type,
             sku=event.sku, source=source, queued=queued)
    return True


def _act(runtime: Host, event: ln.ListingEvent) -> bool:
    ours = set(runtime.settings.amazon.marketplace_ids)
    if event.notification_type == ln.FBA:
        for marketplace_id, quantity in event.fulfillable.items():
            if marketplace_id in ours:
                runtime.store.listings.fba_set(marketplace_id, event.sku, quantity, event.event_time,
                                               "notification")
        return False
    if event.notification_type == ln.STATUS and event.status is not None and "BUYABLE" in event.status:
        return False  # buyable again: nothing to look at
    queued = False
    for marketplace_id in sorted(set(event.marketplace_ids) & ours):
        queued |= runtime.enqueue("listing_issues", key=f"listing_issues:{marketplace_id}:{event.sku}",
                                  sku=event.sku, marketplace_id=marketplace_id,
                                  status=list(event.status) if event.status is not None else None)
    return queued


def receive_or_reject(runtime: Host, body: bytes | str, error: InvalidData, reject, *, source: str) -> None:
    """The SQS consumer's hook: a body the ORDER_CHANGE parser refused may be one of these notifications."""
    if not ln.handles(body):
        reject(runtime, error, source=source)
        return
    try:
        receive(runtime, body, source=source)
    except InvalidData as exc:
        reject(runtime, exc, source=source)
