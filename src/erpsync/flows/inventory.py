"""Stock (and, with :mod:`erpsync.flows.prices`, prices and attributes) from Sage 500 to Amazon through
JSON_LISTINGS_FEED — the Aggregator.

* ``inventory_scan`` (queue sage500; periodic, and debounced after order imports) — per marketplace: what Sage says
  for every item (:func:`desired`), compared with what Amazon acknowledged (state store, per SKU and marketplace);
  only the changes (``full``: everything) are queued as feeds of up to 25,000 PATCH messages, each messageId mapped
  back to its SKU, and noted as in flight. No trigger in Sage: change detection is this comparison.
* ``submit_listings_feed`` (queue amazon) — createFeedDocument, upload, createFeed (0.0083 rps, burst 15: a
  throttled call waits in the schedule), then ``track_listings_feed``.
* ``track_listings_feed`` (queue amazon) — getFeed until DONE; the processing report read per message: accepted
  values become acknowledged, each refused SKU one dead letter carrying Amazon's message (replay:
  ``listing_push``). A feed IN_QUEUE/IN_PROGRESS longer than ``[inventory] feed_stuck_minutes`` is flagged and
  resubmitted once; stuck again, it becomes a dead letter and its SKUs stay unacknowledged. FATAL or CANCELLED:
  its SKUs stay unacknowledged and the next scan sends them again.
* ``listing_push`` (queue sage500) — the replay of a SKU's dead letter: forget what Amazon refused and send the
  SKU's current Sage values (current code and mapping) in a feed of its own.

Kits (Sage ItemType 7 and 8) are excluded: their availability is that of their components, which Sage computes
when it builds them; docs/inventory.md says how to list a kit anyway (as a stocked item).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from erpsync import errors, logs, mapping, model
from erpsync.amazon import feeds as amazon_feeds
from erpsync.amazon import listings_feed
from erpsync.flows import connections, prices
from erpsync.flows.jobs import JobContext, job
from erpsync.sage500 import availability

if TYPE_CHECKING:
    from erpsync.config import Settings
    from erpsync.runtime.store import Store
    from erpsync.sage500.gateway import Sage500Gateway

log = logs.get(__name__)

SCAN_KEY = "inventory_scan"
PRICE_FIELDS = prices.PRICE_FIELDS
PUSH_JOB = "listing_push"


# --- what Sage says ---------------------------------------------------------------------------------------------


@dataclass
class Desired:
    """Per marketplace: SKU → (ItemID, values); items not published and why."""

    values: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)


def unwritten_by_item(store: Store, item_ids: list[str], settings: Settings) -> dict[str, Decimal]:
    """Units of Amazon orders not yet written to Sage, per Sage item (SKUs mapped as the order import maps them)."""
    mapper = mapping.SkuMapper(settings.mapping, item_ids)
    units: dict[str, Decimal] = {}
    for order_id, lines in store.listings.unwritten_order_lines().items():
        for sku, quantity in lines:
            try:
                item = mapper.resolve(sku, order_id=order_id).item_id
            except errors.Permanent:
                continue  # an unknown SKU: its order is a dead letter, it reserves nothing
            units[item] = units.get(item, Decimal(0)) + max(quantity, Decimal(0))
    return units


def desired(settings: Settings, gateway: Sage500Gateway, store: Store, marketplace_id: str, *,
            with_prices: bool = True, with_attributes: bool = True) -> Desired:
    """Every Sage item's values for ``marketplace_id``: quantity, price (``[prices]``) and attributes
    (``[mapping] attributes``)."""
    inventory = settings.inventory
    attributes = settings.mapping.attributes if with_attributes else {}
    columns = availability.item_columns(gateway.engine, sorted(attributes)) if attributes else {}
    items = availability.items(gateway.engine, gateway.company_id, columns)
    stock = gateway.stock_levels(inventory.warehouses)
    unwritten = unwritten_by_item(store, [item.item_id for item in items], settings)
    sheet = prices.sheet_prices(settings, gateway, marketplace_id) if with_prices else {}
    offers: dict[Decimal, dict[str, Any]] = {}  # per sheet price: a catalogue has far fewer prices than items
    skus = mapping.skus_by_item(settings.mapping)
    zero = Decimal(0)
    found = Desired()
    for item in items:
        reason = mapping.unpublished(item.item_id, item.item_type, item.active, inventory)
        if reason:
            found.excluded[item.item_id] = reason
            continue
        values: dict[str, Any] = {"quantity": mapping.available_units(
            stock.get(item.item_id, zero), unwritten.get(item.item_id, zero),
            mapping.safety_stock_for(item.item_id, inventory))}
        price = sheet.get(item.item_id)
        if price is not None:
            offer = offers.get(price)
            if offer is None:
                offer = offers[price] = prices.offer_values(price, settings)
            values.update(offer)
        if attributes:
            sent_attributes = {name: item.fields[field_name] for field_name, name in sorted(attributes.items())
                               if item.fields.get(field_name)}
            if sent_attributes:
                values["attributes"] = sent_attributes
        for sku in skus.get(item.item_id.casefold()) or (item.item_id,):
            found.values[sku] = (item.item_id, values)
    return found


# --- what to send -----------------------------------------------------------------------------------------------


@dataclass
class Plan:
    marketplace_id: str
    desired: dict[str, tuple[str, dict[str, Any]]]
    sends: dict[str, dict[str, Any]] = field(default_factory=dict)  # SKU → the values to send
    held: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # SKU → held price (None: released)
    new_holds: list[tuple[str, str]] = field(default_factory=list)  # (SKU, why) held by this scan
    excluded: dict[str, str] = field(default_factory=dict)


def plan(store: Store, settings: Settings, marketplace_id: str, wanted: Desired, *, full: bool = False,
         fields: tuple[str, ...] = mapping.LISTING_FIELDS) -> Plan:
    """Compare ``wanted`` with the state store: the changes to send (``fields`` only), prices the guard holds."""
    states = store.listings.comparison(marketplace_id)
    result = Plan(marketplace_id, wanted.values, excluded=wanted.excluded)
    keep = set(fields) | (set(PRICE_FIELDS) if "price" in fields else set())
    for sku, (_item, values) in wanted.values.items():
        state = states.get(sku)
        acked = (state.acked if state else None) or {}
        values = {name: value for name, value in values.items() if name in keep}
        held_before = state.held if state else None
        if "price" in values and (values["price"] != acked.get("price") or held_before):
            why = mapping.price_guard(sku, Decimal(values["price"]), Decimal(acked["price"])
                                      if acked.get("price") else None, settings.prices)
            approved = bool(held_before and held_before.get("approved") and held_before["price"] == values["price"])
            if why and not approved:
                values = {name: value for name, value in values.items() if name not in PRICE_FIELDS}
                result.held[sku] = {"price": wanted.values[sku][1]["price"], "reason": why}
                if not held_before or held_before.get("price") != result.held[sku]["price"]:
                    result.new_holds.append((sku, why))
            elif held_before:
                result.held[sku] = None
        changes = mapping.listing_changes(values, acked, state.sent if state else None,
                                          state.refused if state else None, full=full)
        if any(name in changes for name in PRICE_FIELDS):  # the offer goes as a whole
            changes.update({name: values[name] for name in PRICE_FIELDS if name in values})
        if changes:
            result.sends[sku] = changes
    return result


def scan_plans(ctx: JobContext, *, full: bool = False, skus: list[str] | None = None,
               fields: tuple[str, ...] = mapping.LISTING_FIELDS) -> list[Plan]:
    """One plan per marketplace (``skus``: only those)."""
    settings, gateway = ctx.settings, connections.sage(ctx)
    plans = []
    for marketplace_id in settings.amazon.marketplace_ids:
        wanted = desired(settings, gateway, ctx.store, marketplace_id, with_prices="price" in fields,
                         with_attributes="attributes" in fields)
        if skus is not None:
            only = set(skus)
            wanted.values = {sku: v for sku, v in wanted.values.items() if sku in only}
        plans.append(plan(ctx.store, settings, marketplace_id, wanted, full=full, fields=fields))
    return plans


def proposed_messages(settings: Settings, one: Plan) -> list[dict[str, Any]]:
    """What ``--dry-run`` prints: per SKU the values and the PATCH message that would carry them."""
    currency = mapping.currency_for(one.marketplace_id)
    return [{"sku": sku, "item_id": one.desired[sku][0], "values": values,
             "message": listings_feed.message(number, sku, values, product_type=settings.inventory.product_type,
                                              marketplace_id=one.marketplace_id, currency=currency)}
            for number, (sku, values) in enumerate(sorted(one.sends.items()), 1)]


def queue_plans(ctx: JobContext, plans: list[Plan]) -> dict[str, Any]:
    """Record the plans (desired values, holds, in-flight values) and queue their feeds."""
    counts: dict[str, Any] = {"skus": 0, "messages": 0, "held": 0, "feeds": []}
    for one in plans:
        batches = ctx.store.listings.record_scan(one.marketplace_id, one.desired, one.sends, one.held,
                                                 ctx.settings.inventory.max_messages)
        known = open_dead_letters(ctx.store) if one.new_holds else set()
        for sku, why in one.new_holds:
            dead_letter(ctx.store, one.marketplace_id, sku, "price_guard", why, known)
        for batch in batches:
            ctx.enqueue("submit_listings_feed", key=f"submit_listings_feed:{batch}", batch_id=batch)
        counts["skus"] += len(one.desired)
        counts["messages"] += len(one.sends)
        counts["held"] += sum(1 for value in one.held.values() if value)
        counts["feeds"] += batches
    log.info("listings.scanned", **{k: v for k, v in counts.items() if k != "feeds"}, feeds=len(counts["feeds"]))
    return counts


def open_dead_letters(store: Store) -> set[tuple[str, str]]:
    """(key, message) of the open ``listing_push`` dead letters, read once per feed or scan."""
    return {(d.key, d.message) for d in store.dead_letters.list("open", job=PUSH_JOB, limit=10_000_000)}


def dead_letter(store: Store, marketplace_id: str, sku: str, code: str, message: str,
                known: set[tuple[str, str]]) -> int | None:
    """One open dead letter per SKU and marketplace whose replay sends the SKU again (``listing_push``); one with
    the same message as an open one (``known``, see :func:`open_dead_letters`) is not added again."""
    key = f"{PUSH_JOB}:{marketplace_id}:{sku}"
    if (key, message) in known:
        return None
    known.add((key, message))
    now = model.utcnow()
    dead_id = store.dead_letters.add(
        job=PUSH_JOB, queue="sage500", key=key, payload={"sku": sku, "marketplace_id": marketplace_id},
        error_class="AmazonRejected" if code != "price_guard" else "PriceHeld", error_code=code, message=message,
        record=sku, attempts=1, first_failed_at=now)
    store.audit("dead_letter.captured", dead_letter=dead_id, job=PUSH_JOB, key=key, error_code=code)
    log.warning("dead_letter.captured", dead_letter=dead_id, job=PUSH_JOB, key=key, error_code=code)
    return dead_id


# --- jobs -------------------------------------------------------------------------------------------------------


@job("inventory_scan", queue="sage500")
def inventory_scan(ctx: JobContext, full: bool = False, skus: list[str] | None = None,
                   fields: list[str] | None = None) -> dict[str, Any]:
    """Send what changed in Sage (``fields``: default stock, prices and attributes) since Amazon last acknowledged
    it; ``full``: send everything."""
    chosen = tuple(fields) if fields else mapping.LISTING_FIELDS
    unknown = set(chosen) - set(mapping.LISTING_FIELDS)
    if unknown:
        raise errors.InvalidData(f"inventory_scan fields {sorted(unknown)}; expected {mapping.LISTING_FIELDS}")
    return queue_plans(ctx, scan_plans(ctx, full=full, skus=skus, fields=chosen))


@job("listing_push", queue="sage500")
def listing_push(ctx: JobContext, sku: str, marketplace_id: str) -> dict[str, Any]:
    """Replay of a SKU's dead letter: forget what Amazon refused and send the SKU's current values."""
    ctx.store.listings.forget(marketplace_id, sku)
    plans = [p for p in scan_plans(ctx, skus=[sku]) if p.marketplace_id == marketplace_id]
    if not plans or sku not in plans[0].desired:
        raise errors.InvalidData(f"SKU {sku!r} ({marketplace_id}) is no longer published from Sage (no item, "
                                 f"inactive, a kit or excluded); discard this dead letter", record=sku)
    return queue_plans(ctx, plans)


@job("submit_listings_feed", queue="amazon")
def submit_listings_feed(ctx: JobContext, batch_id: int) -> str:
    """Upload one queued feed and create it on Amazon; then track it."""
    store = ctx.store.listings
    feed = store.feed(batch_id)
    if feed is None:
        raise errors.InvalidData(f"listings feed {batch_id} does not exist in the state store", record=str(batch_id))
    if feed.status != "queued":
        return feed.status  # submitted already (a repeat of this job)
    amazon, settings = connections.amazon(ctx), ctx.settings
    currency = mapping.currency_for(feed.marketplace_id)
    messages = [listings_feed.message(m["messageId"], m["sku"], m["values"],
                                      product_type=settings.inventory.product_type,
                                      marketplace_id=feed.marketplace_id, currency=currency) for m in feed.messages]
    feed_id = amazon.feeds.submit_listings_feed(messages, marketplace_ids=[feed.marketplace_id])
    now = model.utcnow()
    store.feed_update(batch_id, feed_id=feed_id, status="IN_QUEUE", submitted_at=now, status_since=now)
    ctx.enqueue("track_listings_feed", key=f"track_listings_feed:{batch_id}", delay=_poll(ctx), batch_id=batch_id)
    log.info("listings.feed_submitted", batch=batch_id, feed_id=feed_id, messages=len(messages),
             marketplace_id=feed.marketplace_id)
    return feed_id


@job("track_listings_feed", queue="amazon")
def track_listings_feed(ctx: JobContext, batch_id: int) -> str:
    """Follow one feed to its end and record its per-message results."""
    store = ctx.store.listings
    feed = store.feed(batch_id)
    if feed is None or feed.status not in ("IN_QUEUE", "IN_PROGRESS") or feed.feed_id is None:
        return feed.status if feed else "missing"
    amazon = connections.amazon(ctx)
    status = amazon.feeds.feed_status(feed.feed_id)
    if not status.finished:
        if status.status != feed.status or _behind_our_own(store, feed):
            store.feed_update(batch_id, status=status.status, status_since=model.utcnow())
            feed = store.feed(batch_id)
        return _waiting(ctx, feed, status.status)
    if status.status != "DONE":
        return _failed(ctx, feed, status.status)
    report = amazon.feeds.feed_result(feed.feed_id)
    _record_results(ctx, feed, report)
    return "DONE"


def _poll(ctx: JobContext) -> float:
    return ctx.settings.inventory.feed_poll_seconds / connections.amazon(ctx).time_scale


def _behind_our_own(store, feed) -> bool:
    """Amazon processes a seller's feeds one after another: a feed IN_QUEUE behind an earlier one of ours that is
    still open is waiting its turn, not stuck."""
    return feed.status == "IN_QUEUE" and any(
        other.id != feed.id and other.feed_id and other.submitted_at and feed.submitted_at
        and other.submitted_at <= feed.submitted_at for other in store.feeds(("IN_QUEUE", "IN_PROGRESS")))


def _waiting(ctx: JobContext, feed, status: str) -> str:
    """Not finished: poll again later, unless stuck — unchanged for ``feed_stuck_minutes`` (not counting the time
    it waited behind our earlier feeds): flagged and resubmitted once; stuck again, a dead letter."""
    since = feed.status_since or feed.submitted_at or feed.created_at
    age = (model.utcnow() - since).total_seconds()
    limit = ctx.settings.inventory.feed_stuck_minutes * 60 / connections.amazon(ctx).time_scale
    if age <= limit:
        again = errors.Retryable(f"listings feed {feed.feed_id} (batch {feed.id}) is {status}; polling again",
                                 retry_after=_poll(ctx), record=feed.feed_id)
        again.spend_retry = False
        raise again
    store = ctx.store.listings
    flag = (f"feed {feed.feed_id} was {status} for {age * connections.amazon(ctx).time_scale / 60:.0f} minutes "
            f"(limit [inventory] feed_stuck_minutes = {ctx.settings.inventory.feed_stuck_minutes:g})")
    ctx.store.audit("listings.feed_stuck", batch=feed.id, feed_id=feed.feed_id, status=status,
                    resubmits=feed.resubmits)
    log.warning("listings.feed_stuck", batch=feed.id, feed_id=feed.feed_id, status=status, resubmits=feed.resubmits)
    if status == "IN_QUEUE":
        try:
            amazon_feeds.cancel_feed(connections.amazon(ctx), feed.feed_id)
        except errors.ErpsyncError as exc:  # it started meanwhile: its result, if any, is ignored
            log.info("listings.feed_cancel_refused", feed_id=feed.feed_id, error=str(exc))
    if feed.resubmits == 0:
        store.feed_update(feed.id, status="queued", feed_id=None, resubmits=1, flagged=f"{flag}; resubmitted")
        ctx.enqueue("submit_listings_feed", key=f"submit_listings_feed:{feed.id}", batch_id=feed.id)
        return "resubmitted"
    store.feed_update(feed.id, status="STUCK", flagged=f"{flag}; stuck again after one resubmission",
                      finished_at=model.utcnow())
    released = store.release(feed.id)
    raise errors.Permanent(f"listings feed batch {feed.id}: {flag}, again after one resubmission; its {released} "
                           f"SKUs stay unacknowledged and the next inventory_scan sends them again. Check the feed "
                           f"in Seller Central, then discard this dead letter", code="feed_stuck",
                           record=feed.feed_id)


def _failed(ctx: JobContext, feed, status: str) -> str:
    """FATAL or CANCELLED: nothing was applied; the SKUs stay unacknowledged and are sent by the next scan."""
    store = ctx.store.listings
    issues = ""
    if status == "FATAL":
        try:
            report = connections.amazon(ctx).feeds.feed_result(feed.feed_id)
            issues = listings_feed.describe(report.get("issues") or ())
        except errors.Permanent:
            issues = "(no processing report)"
    store.feed_update(feed.id, status=status, finished_at=model.utcnow(), flagged=issues or None)
    released = store.release(feed.id)
    ctx.store.audit("listings.feed_failed", batch=feed.id, feed_id=feed.feed_id, status=status, issues=issues,
                    skus=released)
    log.error("listings.feed_failed", batch=feed.id, feed_id=feed.feed_id, status=status, skus=released,
              issues=issues[:500])
    ctx.enqueue(SCAN_KEY, key=SCAN_KEY, delay=ctx.settings.inventory.debounce_seconds)
    return status


def _record_results(ctx: JobContext, feed, report: dict[str, Any]) -> None:
    by_id = {m["messageId"]: m for m in feed.messages}
    found = listings_feed.results(report, by_id)
    accepted = {by_id[n]["sku"]: by_id[n]["values"] for n in found.accepted}
    refused = {by_id[n]["sku"]: by_id[n]["values"] for n in found.errors if n in by_id}
    ctx.store.listings.acknowledge(feed.id, accepted, refused)
    known = open_dead_letters(ctx.store) if found.errors else set()
    for number, issues in found.errors.items():
        if number not in by_id:
            continue
        sku = by_id[number]["sku"]
        dead_letter(ctx.store, feed.marketplace_id, sku, "amazon_rejected",
                    f"SKU {sku!r} ({feed.marketplace_id}): Amazon refused message {number} of listings feed "
                    f"{feed.feed_id}: {listings_feed.describe(issues)}. Fix the item in Sage (or the listing on "
                    f"Amazon, or [mapping] attributes) and replay this dead letter", known)
    if not found.accepted and not found.errors:  # nothing processed: the whole feed was refused
        ctx.store.listings.release(feed.id)
    ctx.store.listings.feed_update(feed.id, status="DONE", finished_at=model.utcnow(),
                                   summary=report.get("summary"),
                                   flagged=listings_feed.describe(found.feed_issues) or None)
    log.info("listings.feed_done", batch=feed.id, feed_id=feed.feed_id, accepted=len(accepted),
             refused=len(refused), warnings=len(found.warnings))



@job("listing_issues", queue="amazon")
def listing_issues(ctx: JobContext, sku: str, marketplace_id: str, status: list[str] | None = None) -> str:
    """A listing became unbuyable or gained an issue (a notification): read its issues from Amazon; an ERROR issue,
    or no BUYABLE status, is a dead letter carrying Amazon's message. Replaying it reads the listing again."""
    item = connections.amazon(ctx).listings.get_listings_item(sku, marketplace_ids=[marketplace_id],
                                                             included_data=("summaries", "issues"))
    summaries = [s for s in item.get("summaries") or () if s.get("marketplaceId") == marketplace_id]
    current = list(summaries[0].get("status") or ()) if summaries else status or []
    errors_found = [issue for issue in item.get("issues") or () if issue.get("severity") == "ERROR"]
    if errors_found:
        raise errors.AmazonRejected(
            f"SKU {sku!r} ({marketplace_id}): Amazon reports {len(errors_found)} issue(s) on the listing: "
            f"{listings_feed.describe(errors_found)} (status {current or 'not buyable'}). Fix the listing (or the "
            f"Sage values erpsync sends) and replay this dead letter: it reads the listing again",
            code="listing_issue", record=sku)
    if "BUYABLE" not in current:
        raise errors.AmazonRejected(
            f"SKU {sku!r} ({marketplace_id}) is not buyable on Amazon (status {current or 'none'}) and Amazon gives "
            f"no error issue; check the listing in Seller Central, then replay this dead letter",
            code="listing_not_buyable", record=sku)
    log.info("listing.healthy", sku=sku, marketplace_id=marketplace_id, status=current)
    return "buyable"
