"""Order to Sage: the jobs that bring Amazon orders into Sage 500 exactly once.

* ``import_order`` (queue amazon) — queued by intake for one ORDER_CHANGE. Asks first whether there is still
  anything to do (the journal may already settle it); under backlog it reads nothing and leaves the order to a
  ``sync_window`` page; otherwise getOrder (v2026-01-01, buyer and recipient included) and :func:`route`.
* ``sync_window`` (queue amazon, periodic) — the Polling Consumer and safety net: searchOrders by
  lastUpdatedAfter from the cursor ``orders.last_updated`` minus the overlap, 100 orders a page, each routed as
  above. The cursor moves only up to the first order of the window not yet settled in Sage, else to the window's
  end, so an order is read again until its write or void is committed (or its failure is a dead letter).
* ``write_order`` (queue sage500, the on-premises side) — the canonical order travels as JSON; Content Enricher
  (Sage items) → Message Translator (staging rows) → the gateway's one transaction. A retry after a lost reply
  finds the extension row and does nothing.
* ``void_order`` (queue sage500) — a cancelled order is voided in Sage unless the warehouse has shipped any of it
  (then :class:`errors.ConflictAfterShipment`, a dead letter "cancelled after shipment").
* ``release_hold`` (queue sage500) — with ``orders.pending = "hold"``, lifts the hold of an order written while
  Pending once Amazon reports it Unshipped.

Sage being unreachable never spends a job's retry budget: the backlog waits on the backoff schedule and drains when
Sage is back. Permanent problems (unknown SKU, totals that differ, an address too long) end as dead letters whose
message names the order and the fix; replaying one runs the current mapping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from erpsync import errors, logs, mapping, model
from erpsync.config import MappingSettings
from erpsync.flows import connections
from erpsync.flows.binder import Binder, void_key, write_key
from erpsync.flows.intake import import_key
from erpsync.flows.jobs import JobContext, job
from erpsync.sage500.gateway import Sage500Gateway
from erpsync.sage500.translate import ItemInfo, resolve_skus, staged_order

if TYPE_CHECKING:
    from erpsync.runtime.store import JournalEntry

log = logs.get(__name__)

SYNC_KEY = "sync_window"
CURSOR = "orders.last_updated"
FIRST_WINDOW = timedelta(days=1)  # how far back the very first sync_window reads
SEARCH_LAG = timedelta(minutes=2, seconds=5)  # searchOrders sees nothing updated in the last two minutes
CRASH_AFTER_SAGE_COMMIT = "ERPSYNC_TEST_CRASH_AFTER_SAGE_COMMIT"  # kill test: die between commit and ack

A = mapping.ActionKind
WRITES = (A.WRITE, A.WRITE_ON_HOLD, A.WRITE_SHIPPED)
S = model.OrderStatus
IN_SAGE = ("written", "shipped", "confirmed")


# --- failure bookkeeping ---------------------------------------------------------------------------------------


@contextmanager
def journal_failures(ctx: JobContext, amazon_order_id: str) -> Iterator[None]:
    """A permanent failure marks the order 'failed' in the journal (its dead letter holds the why)."""
    try:
        yield
    except errors.Permanent as exc:
        ctx.store.journal_set(amazon_order_id, "failed", error=str(exc))
        raise


@contextmanager
def sage_outage(ctx: JobContext) -> Iterator[None]:
    """Sage unreachable: retry without spending the retry budget, backing off on the runs so far (an outage is
    nobody's message's fault; dead-lettering the backlog would turn a restart of SQL Server into manual work)."""
    try:
        yield
    except errors.SageUnavailable as exc:
        again = errors.SageUnavailable(f"{exc} (attempt {ctx.attempt}; kept until Sage is back)", record=exc.record)
        again.spend_retry = False
        raise again from exc


# --- relevance -------------------------------------------------------------------------------------------------


def settled(entry: JournalEntry | None, status: S, *, holds: bool = False) -> bool:
    """Importer checks relevance first: does the journal already answer for an order Amazon reports as
    ``status``? (Written and Unshipped, voided and Canceled, confirmed and Shipped ...: nothing to do.) With
    ``holds`` (``orders.pending = "hold"``) a written order may still be on hold: Unshipped is news then."""
    if entry is None:
        return False
    if entry.status in IN_SAGE and status in (S.PENDING, S.UNSHIPPED, S.PARTIALLY_SHIPPED):
        return not (holds and entry.status == "written" and status is not S.PENDING)
    if entry.status in ("shipped", "confirmed") and status in (S.SHIPPED, S.INVOICE_UNCONFIRMED):
        return True
    return status is S.CANCELED and entry.status in ("voided", "skipped")


# --- routing ---------------------------------------------------------------------------------------------------


def route(ctx: JobContext, binder: Binder, order: model.Order) -> mapping.ActionKind:
    """Decide what Sage needs for ``order`` (:func:`mapping.order_action` on what Sage holds) and queue it:
    ``write_order`` / ``void_order`` on the sage500 queue, or record a skip or a report."""
    oid = order.amazon_order_id
    with sage_outage(ctx):
        state = binder.sage_state(oid)
    action = mapping.order_action(order, ctx.settings.orders, state)
    store = ctx.store
    log.info("order.routed", amazon_order_id=oid, status=order.status.value, action=action.kind.value,
             reason=action.reason)
    if action.kind in WRITES:
        store.journal_set(oid, "writing", only_from={None, "received", "skipped", "failed", "writing"})
        ctx.enqueue("write_order", key=write_key(oid), order=order.model_dump(mode="json"))
    elif action.kind is A.VOID:
        ctx.enqueue("void_order", key=void_key(oid), amazon_order_id=oid)
    elif action.kind is A.RELEASE_HOLD:
        ctx.enqueue("release_hold", key=f"release_hold:{oid}", amazon_order_id=oid)
    elif action.kind is A.REPORT:
        store.audit("order.report", amazon_order_id=oid, action=action.kind.value, reason=action.reason)
        log.warning("order.report", amazon_order_id=oid, action=action.kind.value, reason=action.reason)
    elif state is None and store.journal_set(oid, "skipped", only_from={None, "received", "failed"}):
        store.audit("order.skipped", amazon_order_id=oid, status=order.status.value, reason=action.reason)
    return action.kind


def _queued_for_sage(kind: mapping.ActionKind) -> bool:
    return kind in WRITES or kind in (A.VOID, A.RELEASE_HOLD)


# --- import_order ----------------------------------------------------------------------------------------------


@job("import_order", queue="amazon")
def import_order(ctx: JobContext, amazon_order_id: str, status: str | None = None, read: bool = False) -> str:
    """Bring one notified order into line with Amazon. ``status``: what the notification said; ``read``: read
    the order even under backlog (the window hands over an order it cannot route itself)."""
    oid = amazon_order_id
    binder = Binder(ctx.store, connections.sage(ctx))
    if status is not None and settled(binder.journal(oid), S(status), holds=_holds(ctx)):
        log.info("order.settled", amazon_order_id=oid, status=status, journal=binder.journal(oid).status)
        return "settled"
    busy = binder.in_flight(oid)
    if busy:
        raise errors.RecordLocked(f"order {oid}: {busy} is in flight; importing after it", record=oid)
    if not read and _backlog(ctx):
        queued = ctx.enqueue("sync_window", key=SYNC_KEY, delay=_search_lag(ctx))
        log.info("order.left_to_window", amazon_order_id=oid, window_queued=queued)
        return "window"
    with journal_failures(ctx, oid):
        with connections.token_refusal_retried(ctx):
            order = connections.amazon(ctx).orders.get_order(oid)
        return route(ctx, binder, order).value


def _holds(ctx: JobContext) -> bool:
    return ctx.settings.orders.pending == "hold"


def _backlog(ctx: JobContext) -> bool:
    """More Amazon jobs pending (queued, waiting for a retry, or running) than ``orders.backlog_threshold``: one
    searchOrders page then reads up to 100 orders for the price of one call."""
    return ctx.store.job_keys_count("amazon") > ctx.settings.orders.backlog_threshold


def _search_lag(ctx: JobContext) -> float:
    """Real seconds until searchOrders shows an order updated now (Amazon's clock may run faster: sandbox)."""
    return SEARCH_LAG.total_seconds() / connections.amazon(ctx).time_scale


# --- sync_window -----------------------------------------------------------------------------------------------


@job("sync_window", queue="amazon")
def sync_window(ctx: JobContext) -> dict[str, int]:
    """Read every order updated since the cursor (minus the overlap) and route what is not settled."""
    store, settings = ctx.store, ctx.settings
    cursor = store.cursor(CURSOR, initial=model.utcnow() - FIRST_WINDOW,
                          overlap=timedelta(minutes=settings.orders.sync_overlap_minutes))
    binder = Binder(store, connections.sage(ctx))
    counts = {"read": 0, "queued": 0, "held": 0}
    end: datetime | None = None
    hold: datetime | None = None
    with connections.token_refusal_retried(ctx):
        pages = list(connections.amazon(ctx).orders.search_orders(last_updated_after=cursor.start_value))
    for page in pages:
        end = end or page.last_updated_before
        for problem in page.rejected:  # untranslatable: its own import job makes the dead letter
            if problem.record:
                _hand_over(ctx, problem.record, None)
            else:
                log.error("orders.window_unreadable", error=str(problem))
        for order in page.orders:
            counts["read"] += 1
            outcome = _sync_one(ctx, binder, order)
            if outcome != "settled":
                counts["queued" if outcome == "queued" else "held"] += 1
                hold = order.last_update_date if hold is None else min(hold, order.last_update_date)
    if end is not None:
        cursor.commit(hold if hold is not None else end)
    log.info("orders.window", start=cursor.start_value.isoformat(), end=end.isoformat() if end else None,
             hold=hold.isoformat() if hold else None, **counts)
    return counts


def _sync_one(ctx: JobContext, binder: Binder, order: model.Order) -> str:
    """'settled' (nothing left to do), 'queued' (a write or void was queued) or 'held' (one is in flight)."""
    oid = order.amazon_order_id
    entry = binder.journal(oid)
    if settled(entry, order.status, holds=_holds(ctx)):
        return "settled"
    if entry is not None and entry.status == "failed" and entry.updated_at >= order.last_update_date:
        return "settled"  # its dead letter is the repair path until Amazon changes the order
    if binder.in_flight(oid):
        return "held"
    try:
        kind = route(ctx, binder, order)
    except errors.Permanent:
        _hand_over(ctx, oid, order.status.value)
        return "settled"
    return "queued" if _queued_for_sage(kind) else "settled"


def _hand_over(ctx: JobContext, oid: str, status: str | None) -> None:
    ctx.enqueue("import_order", key=import_key(oid, status or "unreadable"), amazon_order_id=oid, status=status,
                read=True)


# --- write_order -----------------------------------------------------------------------------------------------


@job("write_order", queue="sage500")
def write_order(ctx: JobContext, order: dict) -> dict:
    """Write the canonical ``order`` to Sage once; journal 'written' with its SOKey and TranNo."""
    oid = str(order.get("amazon_order_id", "?"))
    gateway = connections.sage(ctx)
    with journal_failures(ctx, oid), sage_outage(ctx):
        try:
            canonical = model.parse(model.Order, order, record=oid)
        except model.InvalidRecord as exc:
            raise errors.InvalidData(f"{exc}; the queued order cannot be read: replay import_order for {oid}",
                                     record=oid) from None
        items, known = enrich(gateway, canonical, ctx.settings.mapping)
        staged = staged_order(canonical, ctx.settings, items, known_item_ids=known)
        written = gateway.create_sales_order(staged)
        if os.environ.get(CRASH_AFTER_SAGE_COMMIT) == "1":
            os._exit(137)  # test hook: the worker dies after Sage committed and before the job is acknowledged
        Binder(ctx.store, gateway).bind(written)
    ctx.store.audit("order.written", amazon_order_id=oid, so_key=written.SOKey, tran_no=written.TranNo,
                    created=written.created, notes=len(staged.notes))
    log.info("order.written", amazon_order_id=oid, so_key=written.SOKey, tran_no=written.TranNo,
             created=written.created, notes=len(staged.notes))
    return {"SOKey": written.SOKey, "TranNo": written.TranNo, "created": written.created}


def enrich(gateway: Sage500Gateway, order: model.Order,
           rules: MappingSettings) -> tuple[dict[str, ItemInfo], list[str]]:
    """Content Enricher: Sage's data for every item of ``order`` (description, unit of measure) and the ItemIDs
    the SKUs resolve against. Reads the SKUs (and their aliases) first; the whole item list only when one of them
    needs a case-insensitive match, a rewrite rule or the closest-item hint of :class:`errors.UnknownSku`."""
    wanted = {line.sku for line in order.lines}
    wanted |= {rules.sku_aliases[sku] for sku in wanted if sku in rules.sku_aliases}
    known = list(gateway.items(wanted))
    try:
        skus = resolve_skus(order, rules, known)
    except errors.UnknownSku:
        known = gateway.item_ids()
        skus = resolve_skus(order, rules, known)
    records = gateway.items({match.item_id for match in skus.values()})
    return {r.ItemID: ItemInfo(r.ItemID, r.ShortDesc, r.UnitMeasID or "") for r in records.values()}, known


# --- void_order ------------------------------------------------------------------------------------------------


@job("void_order", queue="sage500")
def void_order(ctx: JobContext, amazon_order_id: str) -> str:
    """Void the Sage order of an order Amazon cancelled, unless any of it has shipped."""
    oid = amazon_order_id
    binder = Binder(ctx.store, connections.sage(ctx))
    with journal_failures(ctx, oid), sage_outage(ctx):
        outcome = binder.gateway.void_sales_order(oid)
        if outcome == "shipped":
            raise errors.ConflictAfterShipment(
                f"order {oid} was cancelled on Amazon after the Sage warehouse shipped or picked some of it; Sage "
                f"cannot void it: stop the parcel or refund the buyer in Seller Central, record a return in Sage, "
                f"then discard this dead letter", record=oid)
    if outcome == "not_found":
        if ctx.store.job_key_get(write_key(oid)) is not None:
            raise errors.RecordLocked(f"order {oid} is being written; voiding it after the write", record=oid)
        ctx.store.journal_set(oid, "skipped", only_from={None, "received", "writing", "skipped", "failed"})
        ctx.store.audit("order.skipped", amazon_order_id=oid, reason="cancelled before it reached Sage")
        return outcome
    ctx.store.journal_set(oid, "voided")
    ctx.store.audit("order.voided", amazon_order_id=oid, outcome=outcome)
    log.info("order.voided", amazon_order_id=oid, outcome=outcome)
    return outcome


# --- release_hold ----------------------------------------------------------------------------------------------


@job("release_hold", queue="sage500")
def release_hold(ctx: JobContext, amazon_order_id: str) -> bool:
    """Lift the hold of an order written while Amazon said Pending, now that Amazon has taken payment."""
    with sage_outage(ctx):
        released = connections.sage(ctx).release_hold(amazon_order_id)
    ctx.store.audit("order.released", amazon_order_id=amazon_order_id, released=released)
    log.info("order.released", amazon_order_id=amazon_order_id, released=released)
    return released
