"""Intake of ORDER_CHANGE notifications (Idempotent Receiver): from the webhook or the SQS consumer to an
``import_order`` job, once per NotificationId.

An ORDER_CHANGE is only a trigger — it carries no prices and no PII — so intake records it in the inbox, notes the
order as received and queues ``import_order``, which reads the order itself. The job key holds the status the
notification announced: a newer status of the same order is queued even while an older import is in flight, so a
Pending → Unshipped → Canceled sequence is never collapsed into the first import's view. Under backlog (notified
orders wait for the newest-first reader already) the order joins them at once: a job per notification would only
note it, and the reader's runs would wait behind thousands of such jobs in the amazon queue.
"""

from __future__ import annotations

import threading

from erpsync import logs
from erpsync.amazon.notifications import OrderChange, SqsConsumer
from erpsync.errors import InvalidData
from erpsync.flows import listing_intake
from erpsync.flows.jobs import Host

log = logs.get(__name__)


READER_KEY = "read_notified"  # the one newest-first reader of notified orders (flows.orders.read_notified)


def import_key(amazon_order_id: str, status: str) -> str:
    return f"import_order:{amazon_order_id}:{status}"


def receive(runtime: Host, change: OrderChange, *, source: str) -> bool:
    """Take one validated notification; False when its NotificationId was seen before (nothing is queued)."""
    store, oid = runtime.store, change.amazon_order_id
    if not store.inbox_add(change.notification_id, notification_type="ORDER_CHANGE", amazon_order_id=oid,
                           payload=change.model_dump(mode="json"), received_at=None):
        log.info("notification.duplicate", notification_id=change.notification_id, amazon_order_id=oid,
                 source=source)
        return False
    status = change.order_status.value
    try:
        store.journal_set(oid, "received", only_from={None})
        if store.notified_any():  # a backlog: the reader has notified orders waiting; this one joins them
            store.notified_add(oid, status)
            queued, noted = runtime.enqueue("read_notified", key=READER_KEY), True
        else:
            queued, noted = runtime.enqueue("import_order", key=import_key(oid, status), amazon_order_id=oid,
                                            status=status), False
    except BaseException:
        store.inbox_forget(change.notification_id)  # not queued: the redelivery (SQS, Amazon's webhook retry) counts
        raise
    log.info("notification.received", notification_id=change.notification_id, amazon_order_id=oid,
             status=status, source=source, queued=queued, noted=noted)
    return True


def admit(runtime: Host, change: OrderChange, *, source: str) -> str | None:
    """None when the notification is for this installation's seller and one of its marketplaces; otherwise the
    reason it is refused, recorded in the audit table (nothing is queued: the order is not ours to import)."""
    amazon = runtime.settings.amazon
    about = f"ORDER_CHANGE notification {change.notification_id} (order {change.amazon_order_id})"
    if change.seller_id != amazon.seller_id:
        reason = (f"{about} is for seller {change.seller_id}, not {amazon.seller_id} ([amazon] seller_id): a "
                  f"notification of another seller is never imported")
    elif change.marketplace_id not in amazon.marketplace_ids:
        reason = (f"{about} is for marketplace {change.marketplace_id}, which is not in [amazon] marketplace_ids "
                  f"{amazon.marketplace_ids}; add it there to import that marketplace's orders")
    else:
        return None
    runtime.store.audit("notification.refused", source=source, notification_id=change.notification_id,
                        amazon_order_id=change.amazon_order_id, seller_id=change.seller_id,
                        marketplace_id=change.marketplace_id, error=reason)
    log.warning("notification.refused", source=source, notification_id=change.notification_id,
                amazon_order_id=change.amazon_order_id, seller_id=change.seller_id,
                marketplace_id=change.marketplace_id)
    return reason


def reject(runtime: Host, error: InvalidData, *, source: str) -> None:
    """Record an envelope that is not a valid ORDER_CHANGE (the safety-net sync still finds its order)."""
    runtime.store.audit("notification.invalid", source=source, error=str(error), notification_id=error.record)
    log.warning("notification.invalid", source=source, notification_id=error.record, error=str(error))


def consume_sqs(runtime: Host, stop: threading.Event, *, wait_seconds: int = 20) -> threading.Thread:
    """Long-poll ``amazon.notifications.sqs_queue_url`` in a daemon thread until ``stop`` is set. A message is
    deleted only after its job is queued; an invalid or refused one (:func:`admit`) after it is recorded."""
    consumer = SqsConsumer.from_settings(runtime.settings, wait_seconds=wait_seconds)

    def run() -> None:
        while not stop.is_set():
            try:
                consumer.consume(lambda change: admit(runtime, change, source="sqs") is None
                                 and receive(runtime, change, source="sqs"),
                                 on_invalid=lambda body, error: listing_intake.receive_or_reject(
                                     runtime, body, error, reject, source="sqs"),
                                 stop=stop)
            except Exception as exc:  # noqa: BLE001 - SQS unreachable: log, wait, poll again
                log.error("sqs.poll_failed", error=f"{type(exc).__name__}: {exc}")
                stop.wait(5)

    thread = threading.Thread(target=run, name="erpsync-sqs", daemon=True)
    thread.start()
    return thread
