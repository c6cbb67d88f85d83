"""Order to Sage: the jobs that bring Amazon orders into Sage 500 exactly once.

The amazon queue's jobs read Amazon and the state store only; one sage500 job reads Sage, decides and acts, so an
on-premises agent (``erpsync worker --queue sage500``) is the only thing that ever talks to SQL Server.

* ``import_order`` (queue amazon) — queued by intake for one ORDER_CHANGE. Asks first whether there is still
  anything to do (the journal may already settle it); under backlog it reads nothing and leaves the order to
  ``read_notified`` and the window's pages; otherwise getOrder (v2026-01-01, buyer and recipient included) and
  :func:`hand_over`.
* ``read_notified`` (queue amazon) — under backlog, getOrder for the notified orders no page has delivered, back
  from the newest, while the window pages from the oldest; where the two meet the window jumps over what the
  reader read, and sweeps those ranges once caught up.
* ``sync_window`` (queue amazon, periodic) — the Polling Consumer and safety net: searchOrders by
  lastUpdatedAfter, 100 orders a page, each page handed over and its position (pagination token, last
  lastUpdatedTime reached) recorded before the next is read, so a throttled run goes on where it stopped. A window
  that was behind is followed at once by the next from where it ended; the overlap is read once caught up.
* ``apply_order`` (queue sage500, the on-premises side) — the canonical order travels as JSON; it reads the Sage
  order (the binder), decides with :func:`mapping.order_action` and writes it (Content Enricher → Message
  Translator → the gateway's one transaction; a retry after a lost reply finds the extension row and does
  nothing), releases its hold, voids it (unless the warehouse has shipped any of it: a dead letter "cancelled
  after shipment"), or records a report or a skip. One identity key per order: two jobs never change the same
  order in Sage at once.

Sage being unreachable never spends a job's retry budget: the backlog waits on the backoff schedule and drains when
Sage is back. Permanent problems (unknown SKU, totals that differ, an address too long) end as dead letters whose
message names the order and the fix; replaying one decides again with the current mapping.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from erpsync import errors, logs, mapping, model
from erpsync.amazon.orders import OrdersPage, UnreadableOrder
from erpsync.config import MappingSettings, OrderSettings
from erpsync.flows import connections, quality
from erpsync.flows.binder import Binder, apply_key, state_of
from erpsync.flows.intake import READER_KEY, import_key
from erpsync.flows.jobs import JobContext, job
from erpsync.sage500.draft import WrittenOrder
from erpsync.sage500.gateway import Sage500Gateway
from erpsync.sage500.translate import ItemInfo, resolve_skus, staged_order

if TYPE_CHECKING:
    from erpsync.amazon.client import AmazonClient
    from erpsync.runtime.store import JournalEntry, Store

log = logs.get(__name__)

SYNC_KEY = "sync_window"
CURSOR = "orders.last_updated"  # where the last completed window ended
PAGE = 100  # orders per searchOrders page (Amazon's maximum)
POSITION = "orders.window"  # the window in progress: its start, pagination token, last lastUpdatedTime reached
READ = "orders.read"  # the reader's runs back from the newest notified order, as LastUpdateDate ranges
SKIPPED = "orders.skipped"  # ranges the window jumped over (the reader had read them): swept once caught up
NEVER = datetime.min.replace(tzinfo=timezone.utc)  # before any cursor value
SEARCH_LAG = timedelta(minutes=2, seconds=5)  # searchOrders sees nothing updated in the last two minutes
CRASH_AFTER_SAGE_COMMIT = "ERPSYNC_TEST_CRASH_AFTER_SAGE_COMMIT"  # kill test: die between commit and ack

A = mapping.ActionKind
WRITES = (A.WRITE, A.WRITE_ON_HOLD, A.WRITE_SHIPPED)
S = model.OrderStatus
IN_SAGE = ("written", "shipped", "confirmed")
STOCK_ACTIONS = frozenset({*(kind.value for kind in WRITES), A.VOID.value})  # orders that move Sage's availability


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


# --- handing over (amazon side: Amazon and the state store only) ----------------------------------------------


def hand_over(ctx: JobContext, binder: Binder, order: model.Order) -> str | None:
    """Queue ``apply_order`` with the canonical ``order``: the sage500 side reads Sage and decides. Returns what
    is expected of Sage — for an order the journal does not place in Sage, the action :func:`mapping.order_action`
    takes on a new order (a write is noted 'writing' in the journal); 'apply' when Sage holds the order and its
    state decides — or None when an ``apply_order`` of the order is pending already."""
    oid = order.amazon_order_id
    if _in_sage(binder.journal(oid)):
        expected = "apply"
    else:
        kind = mapping.order_action(order, ctx.settings.orders).kind
        if kind in WRITES:
            ctx.store.journal_set(oid, "writing", only_from={None, "received", "skipped", "failed", "writing"})
        expected = kind.value
    if not ctx.enqueue("apply_order", key=apply_key(oid), order=order.model_dump(mode="json")):
        return None
    log.info("order.handed_over", amazon_order_id=oid, status=order.status.value, expected=expected)
    return expected


# --- import_order ----------------------------------------------------------------------------------------------


@job("import_order", queue="amazon")
def import_order(ctx: JobContext, amazon_order_id: str, status: str | None = None, read: bool = False) -> str:
    """Bring one notified order into line with Amazon: read it and hand it over to Sage. ``status``: what the
    notification said; ``read``: read the order even under backlog (the window hands over an order it cannot
    read itself). Returns 'settled', 'deferred' (left to the newest-first reader and the window under backlog), or
    what :func:`hand_over` expects of Sage."""
    oid = amazon_order_id
    binder = Binder(ctx.store)
    _window_due(ctx)
    if status is not None and settled(binder.journal(oid), S(status), holds=_holds(ctx)):
        log.info("order.settled", amazon_order_id=oid, status=status, journal=binder.journal(oid).status)
        return "settled"
    busy = binder.in_flight(oid)
    if busy:
        raise errors.RecordLocked(f"order {oid}: {busy} is in flight; importing after it", record=oid)
    if not read and _backlog(ctx):
        return _defer(ctx, oid, status)
    try:
        order = _read_one(ctx, binder, oid)
    except (errors.RateLimited, errors.Throttled):
        if read:
            raise
        return _defer(ctx, oid, status)  # the getOrder budget is spent: a backlog begins
    if order is None:
        return "settled"
    expected = hand_over(ctx, binder, order)
    if expected is None:
        raise errors.RecordLocked(f"order {oid}: {apply_key(oid)} was queued meanwhile; importing after it",
                                  record=oid)
    return expected


def _window_due(ctx: JobContext) -> None:
    """Orders are coming in: make sure a window passes at least every sync interval of Amazon's time (the
    schedule's interval is the process's time, which a time-scaled sandbox outruns), counted from the end of the
    last one; a window in progress is pending already."""
    finished = (ctx.store.position(POSITION) or {}).get("finished")
    interval = ctx.settings.orders.sync_interval_seconds / connections.amazon(ctx).time_scale
    if finished is not None and time.time() - finished > interval:
        ctx.enqueue("sync_window", key=SYNC_KEY, delay=_search_lag(ctx))


def _defer(ctx: JobContext, oid: str, status: str | None) -> str:
    """Leave the order to the newest-first reader and the window's pages (both queued unless pending)."""
    ctx.store.notified_add(oid, status)
    reader = ctx.enqueue("read_notified", key=READER_KEY)
    window = ctx.enqueue("sync_window", key=SYNC_KEY, delay=_search_lag(ctx))
    log.info("order.deferred", amazon_order_id=oid, reader_queued=reader, window_queued=window)
    return "deferred"


def _read_one(ctx: JobContext, binder: Binder, oid: str, *, fail: bool = True) -> model.Order | None:
    """getOrder; None when Sage has applied (or refused) this state of the order already. An order that cannot be
    translated is a dead letter once per state of it (its LastUpdateDate): read again unchanged (a repeated
    notification, the window's next pass) it is settled; a newer state is news and makes a dead letter of its own.
    ``fail``: record the failure (journal 'failed', the state refused) for the dead letter the raise makes."""
    try:
        order = connections.amazon(ctx).orders.get_order(oid)
    except UnreadableOrder as exc:
        if exc.last_update_date is not None and binder.applied(oid) >= exc.last_update_date:
            log.info("order.settled", amazon_order_id=oid, unreadable=True, applied=True)
            return None
        if not fail:
            raise
        ctx.store.journal_set(oid, "failed", error=str(exc))
        if exc.last_update_date is not None:
            binder.mark_applied(oid, exc.last_update_date)  # its dead letter answers for this state
        raise
    except errors.Permanent as exc:
        if fail:
            ctx.store.journal_set(oid, "failed", error=str(exc))
        raise
    if binder.applied(oid) >= order.last_update_date:
        log.info("order.settled", amazon_order_id=oid, status=order.status.value, applied=True)
        return None
    return order


def _holds(ctx: JobContext) -> bool:
    return ctx.settings.orders.pending == "hold"


def _backlog(ctx: JobContext) -> bool:
    """More Amazon jobs pending (queued, waiting for a retry, or running) than ``orders.backlog_threshold``, or
    notified orders already waiting for the reader: then every getOrder goes to the newest notified order, and one
    searchOrders page reads up to 100 of the others for the price of one call."""
    if ctx.store.job_keys_count("amazon") > ctx.settings.orders.backlog_threshold:
        return True
    return ctx.store.notified_summary()[0] > 0


def _search_lag(ctx: JobContext) -> float:
    """Real seconds until searchOrders shows an order updated now (Amazon's clock may run faster: sandbox)."""
    return SEARCH_LAG.total_seconds() / connections.amazon(ctx).time_scale


# --- read_notified: getOrder, newest first ----------------------------------------------------------------------


@job("read_notified", queue="amazon")
def read_notified(ctx: JobContext) -> dict[str, int]:
    """Under backlog, spend the getOrder budget on the notified orders no page has delivered yet, back from the
    newest (:func:`_read_newest`): the window pages from the oldest and jumps over what the reader read where they
    meet. Reads until none is left or erpsync's getOrder bucket is empty (then the job waits in the schedule);
    every order read is forgotten at once, so nothing is read twice. An order whose ``apply_order`` is in flight is
    passed over, and the run retried (without spending its budget) until that has ended and the order is read or
    settled: nothing else would come back for it."""
    binder = Binder(ctx.store)
    counts = {"read": 0, "queued": 0, "settled": 0, "deferred": 0}
    busy: set[str] = set()
    _window_due(ctx)
    ctx.enqueue("sync_window", key=SYNC_KEY, delay=_search_lag(ctx))  # the other half of the backlog (if not pending)
    try:
        _read_newest(ctx, binder, counts, busy)
    except errors.AmazonUnavailable as exc:
        if not (counts["read"] or counts["settled"]):
            raise  # nothing read: Amazon may be down, and the budget says so in the end
        # one order's 5xx after others were read: the reader's work goes on, its budget is not the order's
        again = errors.AmazonUnavailable(f"{exc} (after {counts['read']} read; the reader goes on)",
                                         record=exc.record)
        again.spend_retry = False
        raise again from exc
    finally:  # also when the getOrder bucket is empty: what this run did
        log.info("orders.notified_read", **counts)
    if busy:  # nothing else comes back for them once their apply_order ends: run again after it
        raise errors.RecordLocked(f"{len(busy)} notified order(s) wait for their apply_order (e.g. "
                                  f"{min(busy)}); reading them after it", record=min(busy),
                                  retry_after=ctx.settings.queue.backoff_base_seconds)
    return counts


def _read_newest(ctx: JobContext, binder: Binder, counts: dict[str, int], busy: set[str]) -> None:
    """Read back from the newest notified order, one after the other, until none older is left (the window has
    delivered the rest), then begin again at the newest. Each run back is a contiguous run of Amazon's
    LastUpdateDates, recorded (:data:`READ`) as it grows: the window jumps over it instead of paging orders read
    already (reading newest first each time would leave read orders spread through every page)."""
    store = ctx.store
    runs = _Runs.load(store)
    while True:
        batch = store.notified_newest(limit=50, exclude=busy, before=runs.below)
        if not batch and runs.below is not None:  # the run met the window: begin again at the newest
            runs.close()
            continue
        if not batch:
            return
        for notified in batch:
            oid = notified.amazon_order_id
            status = S(notified.status) if notified.status else None
            if status is not None and settled(binder.journal(oid), status, holds=_holds(ctx)):
                store.notified_remove(notified)
                counts["settled"] += 1
                continue
            if binder.in_flight(oid):  # its apply_order decides first; a later run reads the newer state
                busy.add(oid)
                counts["deferred"] += 1
                continue
            try:
                order = _read_one(ctx, binder, oid, fail=False)
            except errors.Permanent:  # its own import_order makes the one dead letter of this state
                store.notified_remove(notified)
                _import_alone(ctx, oid)
                continue
            counts["read"] += 1
            if order is not None and hand_over(ctx, binder, order) is not None:
                counts["queued"] += 1
            store.notified_remove(notified)
            runs.reached(notified.notified_at, order.last_update_date if order is not None else None)


class _Runs:
    """The reader's runs back from the newest: ``below`` (the notification time the current run has reached; None
    between runs) and the LastUpdateDate range of each run (``done``, and ``current``). Only the reader writes them;
    the window reads them (:func:`_read_ahead`). Runs the window's cursor has passed are dropped."""

    def __init__(self, store: Store, state: dict):
        self.store = store
        self.below = datetime.fromisoformat(state["below"]) if state.get("below") else None
        self.done = [_range(r) for r in state.get("done", [])]
        self.current = _range(state["current"]) if state.get("current") else None

    @classmethod
    def load(cls, store: Store) -> _Runs:
        return cls(store, store.position(READ) or {})

    def reached(self, notified_at: datetime, last_update: datetime | None) -> None:
        """The run has read the order notified at ``notified_at`` (Amazon's ``last_update``, None: not known)."""
        if last_update is not None and last_update >= self._window_reached():  # (one the window passed: no use)
            lo, hi = self.current or (last_update, last_update)
            self.current = (min(lo, last_update), max(hi, last_update))
        self.below = notified_at
        self._save()

    def close(self) -> None:
        if self.current is not None:
            self.done.append(self.current)
        self.below = self.current = None
        self._save()

    def _window_reached(self) -> datetime:
        """How far the window has read: the last LastUpdateDate a page of the window in progress reached, or where
        the last completed window ended."""
        position = self.store.position(POSITION) or {}
        reached = position.get("reached") or position.get("after")
        if reached:
            return datetime.fromisoformat(reached)
        return self.store.cursor(CURSOR, initial=NEVER).last_value or NEVER

    def _save(self) -> None:
        passed = self.store.cursor(CURSOR, initial=NEVER).last_value
        self.done = [r for r in self.done if passed is None or r[1] > passed]
        self.store.position_set(READ, {
            "below": _iso(self.below), "done": [[_iso(lo), _iso(hi)] for lo, hi in self.done],
            "current": [_iso(x) for x in self.current] if self.current else None})


def _range(pair: list[str]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(pair[0]), datetime.fromisoformat(pair[1])


def _read_ahead(store: Store, at: datetime) -> datetime | None:
    """Where a run the reader has read ends, when ``at`` (the last LastUpdateDate the window reached) has entered
    it: every order after ``at`` up to there was notified and read (or is still notified: the reader's next run
    reads it). None when ``at`` is in no run."""
    runs = _Runs.load(store)
    ranges = [*runs.done, *([runs.current] if runs.current else [])]
    return max((hi for lo, hi in ranges if lo <= at < hi), default=None)


# --- sync_window -----------------------------------------------------------------------------------------------


@job("sync_window", queue="amazon")
def sync_window(ctx: JobContext) -> dict[str, int]:
    """Read every order updated since the cursor and hand over what is not settled, page by page: each page is
    handed over, then its position recorded (the window, its pagination token, the last lastUpdatedTime reached),
    so a run that meets an empty searchOrders bucket waits in the schedule and goes on at the next page. A window
    that was behind (more than one page, or a full one) is followed at once by the next, from where it ended."""
    amazon, binder = connections.amazon(ctx), Binder(ctx.store)
    counts = {"pages": 0, "read": 0, "queued": 0, "deferred": 0}
    while _window(ctx, amazon, binder, counts):
        pass
    if not _backlog(ctx):
        _sweep(ctx, amazon, binder, counts)
    if ctx.store.notified_summary()[0]:
        ctx.enqueue("read_notified", key=READER_KEY)
    return counts


def _window(ctx: JobContext, amazon: AmazonClient, binder: Binder, counts: dict[str, int]) -> bool:
    """Read one window to its end, or from the position a throttled run recorded; True when it was behind."""
    store, settings = ctx.store, ctx.settings
    cursor = store.cursor(CURSOR, initial=first_start(settings.orders, model.utcnow()))
    position = store.position(POSITION) or {}
    if position.get("after"):
        after, token = datetime.fromisoformat(position["after"]), position.get("token")
    else:  # a new window: from where the last one ended, less the part of the overlap it read too early
        overlap = timedelta(minutes=settings.orders.sync_overlap_minutes)
        late = timedelta(seconds=position.get("late_seconds", 0.0))
        if position.get("behind"):  # a backlog is read back to back; the overlap again once caught up
            overlap = timedelta(0)
        after = cursor.last_value - max(overlap - late, timedelta(0)) if cursor.last_value else cursor.initial
        token = None
        position = {"after": after.isoformat(), "started": time.time(), "pages": 0}
        ahead = _read_ahead(store, after)
        if ahead is not None:
            return _jump(ctx, cursor, after, ahead, counts)
    for page in amazon.orders.search_orders(last_updated_after=after, pagination_token=token, page_size=PAGE):
        _page(ctx, binder, page, counts)
        reached = max((o.last_update_date for o in page.orders), default=None)
        if reached is not None and (not position.get("reached") or reached.isoformat() > position["reached"]):
            position["reached"] = reached.isoformat()
        position["pages"] = position.get("pages", 0) + 1
        if page.next_token:
            ahead = _read_ahead(store, reached) if reached is not None else None
            if ahead is not None:
                return _jump(ctx, cursor, reached, ahead, counts)
            store.position_set(POSITION, {**position, "token": page.next_token,
                                          "before": _iso(page.last_updated_before)})
            continue
        end = page.last_updated_before or (datetime.fromisoformat(position["before"]) if position.get("before")
                                           else None)
        # how long after its end the window was read: orders Amazon shows late had that long to show up
        late = (time.time() - position["started"]) * amazon.time_scale
        behind = end is not None and (position["pages"] > 1 or len(page.orders) + len(page.rejected) >= PAGE)
        if end is not None:
            cursor.commit(end)
        store.position_set(POSITION, {"late_seconds": late, "finished": time.time(), "behind": behind,
                                      "end": _iso(end)})
        log.info("orders.window", start=after.isoformat(), end=_iso(end), window_pages=position["pages"],
                 behind=behind, **counts)
        return behind
    return False


def _jump(ctx: JobContext, cursor, at: datetime, to: datetime, counts: dict[str, int]) -> bool:
    """End the window at ``at``, where it entered a run the reader has read, and go on at once from the run's end
    ``to``; the range is kept to sweep once caught up (an order in it no notification announced)."""
    store = ctx.store
    cursor.commit(to)
    skipped = store.position(SKIPPED) or {"ranges": []}
    store.position_set(SKIPPED, {**skipped, "ranges": [*skipped["ranges"], [at.isoformat(), to.isoformat()]]})
    store.position_set(POSITION, {"late_seconds": 0.0, "finished": time.time(), "behind": True})
    log.info("orders.window", start=None, end=to.isoformat(), jumped_from=at.isoformat(), behind=True, **counts)
    return True


def _sweep(ctx: JobContext, amazon: AmazonClient, binder: Binder, counts: dict[str, int]) -> None:
    """Caught up: read the ranges the window jumped over, page by page (position recorded like a window's), and
    hand over what is not settled — orders in them that no notification announced. Stops when a backlog begins."""
    store = ctx.store
    skipped = store.position(SKIPPED) or {"ranges": []}
    shown = (store.position(POSITION) or {}).get("end")  # Amazon's end of the last window: searchOrders shows it
    while skipped["ranges"] and not _backlog(ctx):
        start, end = (datetime.fromisoformat(x) for x in skipped["ranges"][0])
        if shown is None or end > datetime.fromisoformat(shown):
            return  # not yet shown in full: a later window's turn
        for page in amazon.orders.search_orders(last_updated_after=start, last_updated_before=end,
                                                pagination_token=skipped.get("token"), page_size=PAGE):
            _page(ctx, binder, page, counts, sweep=True)
            if page.next_token:
                skipped = {**skipped, "token": page.next_token}
                store.position_set(SKIPPED, skipped)
                if _backlog(ctx):
                    return
                continue
            skipped = {"ranges": skipped["ranges"][1:]}
            store.position_set(SKIPPED, skipped)
            break


def _page(ctx: JobContext, binder: Binder, page: OrdersPage, counts: dict[str, int], **event) -> None:
    """Count, hand over and log one searchOrders page (of a window, or of a sweep: ``sweep=True``)."""
    counts["pages"] += 1
    before = dict(counts)
    _hand_over_page(ctx, binder, page, counts)
    log.info("orders.page", orders=len(page.orders), unreadable=len(page.rejected), **event,
             queued=counts["queued"] - before["queued"], deferred=counts["deferred"] - before["deferred"])


def _hand_over_page(ctx: JobContext, binder: Binder, page: OrdersPage, counts: dict[str, int]) -> None:
    """Hand over every order of ``page`` that is not settled, and forget the notifications it answers (the reader
    never reads one by one an order a page delivered)."""
    for problem in page.rejected:  # untranslatable: its own import job makes the one dead letter of this state
        if not problem.record:
            log.error("orders.window_unreadable", error=str(problem))
        elif problem.last_update_date is None or binder.applied(problem.record) < problem.last_update_date:
            _import_alone(ctx, problem.record)
    notified = ctx.store.notified_get([order.amazon_order_id for order in page.orders])
    for order in page.orders:
        counts["read"] += 1
        outcome = _sync_one(ctx, binder, order)
        if outcome != "settled":
            counts[outcome] += 1
        waiting = notified.get(order.amazon_order_id)
        if waiting is not None and (waiting.status is None or S(waiting.status) is order.status
                                    or outcome == "settled"):
            ctx.store.notified_remove(waiting)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def intake_lag(store: Store, now: datetime) -> timedelta:
    """How far intake is behind: from the oldest order known to Amazon and not yet decided in Sage to ``now`` —
    the oldest notified order still to read, the window's position while a window is in progress (the last
    lastUpdatedTime a page reached: later orders are not read yet), the oldest ``apply_order`` still pending.
    Zero when nothing waits. (Amazon's times: against a time-scaled sandbox the window's part reads low.)"""
    oldest: list[datetime] = []
    _count, notified = store.notified_summary()
    if notified is not None:
        oldest.append(notified)
    position = store.position(POSITION) or {}
    if position.get("after"):
        oldest.append(datetime.fromisoformat(position.get("reached") or position["after"]))
    applying = next((p.due_at for p in store.job_keys_pending(limit=10_000) if p.job == "apply_order"), None)
    if applying is not None:
        oldest.append(applying)
    return max(now - min(oldest), timedelta(0)) if oldest else timedelta(0)


def first_start(settings: OrderSettings, now: datetime) -> datetime:
    """Where the very first window reads from: ``orders.sync_start``, a timestamp or hours back from ``now``."""
    start = settings.sync_start
    return start.astimezone(timezone.utc) if isinstance(start, datetime) else now - timedelta(hours=start)


def _sync_one(ctx: JobContext, binder: Binder, order: model.Order) -> str:
    """'settled' (the journal answers for it, Sage has applied this state of it, or an ``apply_order`` pending
    carries it), 'queued' (handed over now) or 'deferred' (a pending ``apply_order`` carries an older state: an
    import of its own reads the order once that one is done)."""
    oid = order.amazon_order_id
    if settled(binder.journal(oid), order.status, holds=_holds(ctx)):
        return "settled"
    if binder.applied(oid) >= order.last_update_date:
        return "settled"  # applied, or refused: then its dead letter is the repair path until Amazon changes it
    if not binder.in_flight(oid) and hand_over(ctx, binder, order) is not None:
        return "queued"
    pending = binder.pending_state(oid)
    if pending is not None and pending >= order.last_update_date:
        return "settled"
    ctx.enqueue("import_order", key=import_key(oid, "newer"), amazon_order_id=oid, read=True)
    return "deferred"


def _import_alone(ctx: JobContext, oid: str) -> None:
    ctx.enqueue("import_order", key=import_key(oid, "unreadable"), amazon_order_id=oid, read=True)


# --- apply_order (sage500 side) --------------------------------------------------------------------------------


@job("apply_order", queue="sage500")
def apply_order(ctx: JobContext, order: dict) -> dict:
    """Bring Sage in line with the canonical ``order`` as Amazon reported it: read what Sage holds, decide with
    :func:`mapping.order_action`, then write the order (open, on hold, or shipped from the FBA warehouse), release
    its hold, void it, or record a report or a skip. Returns the action and the Sage order (SOKey, TranNo,
    created: whether this run created it)."""
    oid = str(order.get("amazon_order_id", "?"))
    with journal_failures(ctx, oid):
        try:
            canonical = model.parse(model.Order, order, record=oid)
        except model.InvalidRecord as exc:
            raise errors.InvalidData(f"{exc}; the queued order cannot be read: replay import_order for {oid}",
                                     record=oid) from None
    applied = Binder(ctx.store).applied(oid)
    if applied > canonical.last_update_date:  # read before a newer state that Sage has applied since: superseded
        log.info("order.stale", amazon_order_id=oid, state=canonical.last_update_date.isoformat(),
                 applied=applied.isoformat())
        return {"action": "stale", "SOKey": None, "TranNo": None, "created": False}
    try:
        with journal_failures(ctx, oid), sage_outage(ctx):
            binder = Binder(ctx.store, connections.sage(ctx))
            result = _apply(ctx, binder, canonical)
    except errors.Permanent:
        Binder(ctx.store).mark_applied(oid, canonical.last_update_date)  # its dead letter answers for this state
        raise
    binder.mark_applied(oid, canonical.last_update_date)
    if ctx.settings.inventory.enabled and result["action"] in STOCK_ACTIONS:  # debounced: one scan per delay
        ctx.enqueue("inventory_scan", key="inventory_scan", delay=ctx.settings.inventory.debounce_seconds)
    return result


def _apply(ctx: JobContext, binder: Binder, order: model.Order) -> dict:
    oid, store = order.amazon_order_id, ctx.store
    existing = binder.to_internal(oid)
    state = None if existing is None else state_of(existing)
    action = mapping.order_action(order, ctx.settings.orders, state)
    log.info("order.decided", amazon_order_id=oid, status=order.status.value, action=action.kind.value,
             reason=action.reason)
    result = {"action": action.kind.value, "SOKey": existing.SOKey if existing else None,
              "TranNo": existing.TranNo if existing else None, "created": False}
    if action.kind in WRITES:
        written = write(ctx, binder, order)
        result.update(SOKey=written.SOKey, TranNo=written.TranNo, created=written.created)
    elif action.kind is A.VOID:
        void(ctx, binder, oid)
    elif action.kind is A.RELEASE_HOLD:
        release_hold(ctx, binder, oid)
    elif action.kind is A.REPORT:
        store.audit("order.report", amazon_order_id=oid, action=action.kind.value, reason=action.reason)
        log.warning("order.report", amazon_order_id=oid, action=action.kind.value, reason=action.reason)
    elif state is None:
        store.journal_set(oid, "skipped", only_from={None, "received", "writing", "failed"},
                          audit=("order.skipped", {"amazon_order_id": oid, "status": order.status.value,
                                                   "reason": action.reason}))
    elif state.status != "canceled" and not _in_sage(binder.journal(oid)):  # written by a run whose reply was lost
        _written(ctx, binder, WrittenOrder(oid, existing.SOKey, existing.TranNo, existing.TranID, created=False),
                 notes=0)
    elif order.status is S.CANCELED:  # voided by a run that died before the journal: record it now
        store.journal_set(oid, "voided", only_from={None, "received", "writing", "written", "failed"},
                          audit=("order.voided", {"amazon_order_id": oid, "outcome": "already_void"}))
    return result


def _in_sage(entry: JournalEntry | None) -> bool:
    """Does the journal place the order in Sage (written, shipped, confirmed, or voided there)?"""
    return entry is not None and entry.status in (*IN_SAGE, "voided")


# --- the changes in Sage ---------------------------------------------------------------------------------------


def write(ctx: JobContext, binder: Binder, order: model.Order) -> WrittenOrder:
    """Content Enricher (Sage items) → Message Translator (staging rows) → the gateway's one transaction, which
    returns the existing order when a run whose reply was lost had written it; journal 'written'."""
    gateway = binder.gateway
    items, known = enrich(gateway, order, ctx.settings.mapping)
    review = quality.check(gateway.engine, gateway.company_id, order, known, ctx.settings,
                           sage_now=gateway.clock.to_sage())
    staged = staged_order(order, ctx.settings, items, known_item_ids=known, review=review)
    written = gateway.create_sales_order(staged)
    if os.environ.get(CRASH_AFTER_SAGE_COMMIT) == "1":
        os._exit(137)  # test hook: the worker dies after Sage committed and before the job is acknowledged
    held = quality.held(written, staged) if staged.review and written.created else None
    bound = _written(ctx, binder, written, notes=len(staged.notes), held=held)
    if held is not None and bound:
        quality.log_held(written, staged)
    elif held is not None:  # the journal had moved on ('written' not recorded): keep the hold's reasons anyway
        quality.record(ctx.store, written, staged)
    return written


def _written(ctx: JobContext, binder: Binder, written: WrittenOrder, *, notes: int,
             held: tuple[str, dict] | None = None) -> bool:
    """Journal 'written' with its audit row, and ``held`` (the ``order.held`` event) in the same transaction;
    False when the journal had moved on (nothing recorded)."""
    oid = written.AmazonOrderId
    events = [("order.written", {"amazon_order_id": oid, "so_key": written.SOKey, "tran_no": written.TranNo,
                                 "created": written.created, "notes": notes})]
    bound = binder.bind(written, audit=[*events, held] if held is not None else events[0])
    log.info("order.written", amazon_order_id=oid, so_key=written.SOKey, tran_no=written.TranNo,
             created=written.created, notes=notes)
    return bound


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


def void(ctx: JobContext, binder: Binder, amazon_order_id: str) -> str:
    """Void the Sage order of an order Amazon cancelled, unless any of it has shipped meanwhile."""
    oid, store = amazon_order_id, ctx.store
    outcome = binder.gateway.void_sales_order(oid)
    if outcome == "shipped":
        raise errors.ConflictAfterShipment(
            f"order {oid} was cancelled on Amazon after the Sage warehouse shipped or picked some of it; Sage "
            f"cannot void it: stop the parcel or refund the buyer in Seller Central, record a return in Sage, "
            f"then discard this dead letter", record=oid)
    if outcome == "not_found":
        store.journal_set(oid, "skipped", only_from={None, "received", "writing", "skipped", "failed"},
                          audit=("order.skipped", {"amazon_order_id": oid,
                                                   "reason": "cancelled before it reached Sage"}))
        return outcome
    store.journal_set(oid, "voided", audit=("order.voided", {"amazon_order_id": oid, "outcome": outcome}))
    log.info("order.voided", amazon_order_id=oid, outcome=outcome)
    return outcome


def release_hold(ctx: JobContext, binder: Binder, amazon_order_id: str) -> bool:
    """Lift the hold of an order written while Amazon said Pending, now that Amazon has taken payment. A hold for
    review (data quality, the label) stays until a person releases it in Sage."""
    if quality.held_for_review(binder.gateway.engine, amazon_order_id):
        ctx.store.audit("order.released", amazon_order_id=amazon_order_id, released=False, reason="held for review")
        log.info("order.review_hold_kept", amazon_order_id=amazon_order_id)
        return False
    released = binder.gateway.release_hold(amazon_order_id)
    ctx.store.audit("order.released", amazon_order_id=amazon_order_id, released=released)
    log.info("order.released", amazon_order_id=amazon_order_id, released=released)
    return released
