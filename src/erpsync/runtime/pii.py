"""Buyer data retention (Amazon's Data Protection Policy: personal data goes 30 days after the order shipped).

:func:`purge` redacts buyer names, addresses, phone numbers and e-mails (the keys of :data:`erpsync.logs.PII_KEYS`,
at any depth: ``ship_to`` and ``buyer`` go whole) from what the state store keeps about an order once
``[pii] retention_days`` have passed since it shipped, was cancelled or was skipped — dead letter payloads, queued
job messages, inbox payloads, the journal's last error — and from anything else older than that: a dead letter nobody
replayed, a job stuck in retries. A purged payload carries ``"pii_purged_at"``; replaying its dead letter reads the
order from Amazon again (:func:`restore`). Sage is never touched: its data is the seller's books.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from erpsync import logs
from erpsync.runtime.store import DeadLetter, Store, dead_letters, inbox, job_keys, order_journal, redact, utcnow

if TYPE_CHECKING:
    from erpsync.runtime.jobs import Runtime

log = logs.get(__name__)

PURGED = "pii_purged_at"
DONE = ("shipped", "confirmed", "voided", "skipped")  # the order needs its buyer data no more
REDACTED = "[redacted]"


@dataclass
class PurgeReport:
    cutoff: datetime
    orders: int = 0  # orders past the retention
    counts: dict[str, int] = field(default_factory=lambda: {"dead_letters": 0, "job_messages": 0, "inbox": 0,
                                                            "journal": 0})

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def scrub(payload: Any, now: datetime) -> tuple[Any, bool]:
    """The payload without personal data, marked as purged; and whether anything was removed."""
    clean = redact(payload)
    if clean == payload:
        return payload, False
    if isinstance(clean, dict):
        clean[PURGED] = now.isoformat()
    return clean, True


def _mentions(column, order_ids: list[str]):
    return sa.or_(*[column.contains(oid) for oid in order_ids]) if order_ids else sa.false()


def _scrub_rows(conn: sa.Connection, key: sa.Column, column: sa.Column, where, now: datetime,
                inner: str | None = None) -> int:
    """Redact ``column`` (or its ``inner`` member) in the rows of ``where``; returns how many changed."""
    changed = 0
    for row_key, value in conn.execute(sa.select(key, column).where(column.is_not(None), where)).all():
        payload = value.get(inner) if inner else value
        clean, dirty = scrub(payload, now)
        if dirty:
            conn.execute(key.table.update().where(key == row_key)
                         .values({column.name: {**value, inner: clean} if inner else clean}))
            changed += 1
    return changed


def purge(store: Store, retention: timedelta, *, now: datetime | None = None, batch: int = 500) -> PurgeReport:
    """Redact the personal data older than ``retention`` (see the module's doc); returns what was redacted.
    Idempotent: what is redacted already is left as it is."""
    now = now or utcnow()
    report = PurgeReport(cutoff=now - retention)
    cutoff = report.cutoff
    with store.reader.connect() as conn:
        done = [row.amazon_order_id for row in conn.execute(
            sa.select(order_journal.c.amazon_order_id)
            .where(order_journal.c.status.in_(DONE), order_journal.c.updated_at < cutoff))]
    report.orders = len(done)
    counts = report.counts
    for start in range(0, max(len(done), 1), batch):
        ids = done[start:start + batch]
        with store.engine.begin() as conn:
            counts["dead_letters"] += _scrub_rows(conn, dead_letters.c.id, dead_letters.c.payload, sa.or_(
                dead_letters.c.record.in_(ids), _mentions(dead_letters.c.key, ids),
                dead_letters.c.last_failed_at < cutoff), now)
            counts["job_messages"] += _scrub_rows(conn, job_keys.c.key, job_keys.c.message, sa.or_(
                _mentions(job_keys.c.key, ids), job_keys.c.due_at < cutoff), now, inner="payload")
            counts["inbox"] += _scrub_rows(conn, inbox.c.notification_id, inbox.c.payload, sa.or_(
                inbox.c.amazon_order_id.in_(ids), inbox.c.received_at < cutoff), now)
            # a past error may quote an address line or a name; the order is done, its error text is not needed
            counts["journal"] += conn.execute(order_journal.update().where(
                order_journal.c.amazon_order_id.in_(ids), order_journal.c.last_error.is_not(None),
                order_journal.c.last_error != REDACTED).values(last_error=REDACTED)).rowcount
    store.audit("pii.purged", cutoff=cutoff.isoformat(), orders=report.orders, **counts)
    log.info("pii.purged", cutoff=cutoff.isoformat(), orders=report.orders, **counts)
    return report


def restore(runtime: Runtime, dead: DeadLetter) -> dict[str, Any]:
    """The payload to replay a purged dead letter with: ``apply_order`` gets the order read again from Amazon
    (with its buyer and address); other jobs carry no personal data they need, so their payload stays."""
    if dead.job != "apply_order":
        return {k: v for k, v in dead.payload.items() if k != PURGED}
    from erpsync.flows import connections
    from erpsync.runtime.jobs import Context

    order = dead.payload.get("order")
    oid = order.get("amazon_order_id") if isinstance(order, dict) else None
    oid = oid or dead.record
    if not oid or oid == REDACTED:
        raise ValueError(f"dead letter {dead.id}: its payload was purged and names no Amazon order to read again")
    ctx = Context(runtime, "replay", f"replay:{dead.id}", 1)
    fresh = connections.amazon(ctx).orders.get_order(oid)
    log.info("pii.reread", dead_letter=dead.id, amazon_order_id=oid)
    return {"order": fresh.model_dump(mode="json")}
