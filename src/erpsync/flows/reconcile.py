"""Reconciliation: Sage's availability against Amazon's quantities — "inventory counts differ between Sage and
Amazon after a sync" made visible, explained and, on request, corrected.

A whole catalogue is read from one report, GET_MERCHANT_LISTINGS_ALL_DATA (getListingsItem per SKU would take
100,000 SKUs / 5 rps ≈ 5.5 hours); FBA quantities come from the state store, kept current by
FBA_INVENTORY_AVAILABILITY_CHANGES notifications and refreshed from getInventorySummaries (changes since the last
refresh). Each difference gets its likely cause (:func:`compare`) and age; ``fix`` queues Sage's values of the
unexplained ones ("drift") as a feed. The result is kept in the state store for the dashboard.

* ``reconcile_inventory`` (queue sage500, daily) — records what Sage says now for every SKU, then
  ``reconcile_listings`` (queue amazon) requests the report, polls it (a retry that spends no budget) and compares.
* :func:`run_inline` — the same for ``erpsync reconcile inventory``, waiting for the report in the command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from erpsync import errors, logs, model
from erpsync.amazon import listings_report, translate
from erpsync.amazon.listings_report import ListingRow
from erpsync.flows import connections, inventory
from erpsync.flows.jobs import JobContext, job

if TYPE_CHECKING:
    from erpsync.runtime.store import ListingState

log = logs.get(__name__)

FBA_CURSOR = "inventory.fba_refreshed"
CAUSES = ("order in flight", "feed pending", "unknown SKU", "FBA", "drift")


@dataclass(frozen=True)
class Difference:
    sku: str
    sage: int | None
    amazon: int | None
    channel: str  # MFN | FBA
    cause: str  # one of CAUSES
    since: datetime | None  # when Sage and Amazon last agreed (acknowledged), or when Sage last said so

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {"sku": self.sku, "sage": self.sage, "amazon": self.amazon, "channel": self.channel,
                "cause": self.cause, "since": self.since.isoformat() if self.since else None,
                "age": _age(now - self.since) if self.since else None}


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, hours = minutes // 1440, minutes % 1440 // 60
    return f"{days}d {hours}h" if days else f"{hours}h {minutes % 60}m"


def compare(rows: list[ListingRow], states: dict[str, ListingState], fba: dict[str, tuple[int, datetime, str]],
            sage_fba: dict[str, int], in_flight: set[str]) -> list[Difference]:
    """Every SKU where Amazon's quantity is not what Sage says, with its likely cause:

    * *order in flight* — an Amazon order for the SKU is not in Sage yet (the quantities meet once it is);
    * *feed pending* — a feed carrying the SKU is not processed yet;
    * *unknown SKU* — listed on Amazon but not published from Sage, or published from Sage with no listing;
    * *FBA* — Amazon counts the units (fulfillable quantity vs Sage's FBA warehouse): not corrected by feeds;
    * *drift* — none of these: changed on Amazon outside erpsync, or an update lost. ``--fix`` sends Sage's value.
    """
    found: list[Difference] = []
    listed = {row.sku for row in rows}
    for row in rows:
        state = states.get(row.sku)
        wanted = (state.desired or {}).get("quantity") if state else None
        if not row.seller_fulfilled:
            amazon = fba[row.sku][0] if row.sku in fba else row.quantity
            sage = sage_fba.get(state.item_id if state and state.item_id else row.sku)
            if amazon != sage:
                found.append(Difference(row.sku, sage, amazon, "FBA", "FBA",
                                        fba[row.sku][1] if row.sku in fba else None))
            continue
        if wanted is None:
            found.append(Difference(row.sku, None, row.quantity, "MFN", "unknown SKU", None))
            continue
        if row.quantity == wanted:
            continue
        cause = ("order in flight" if row.sku in in_flight else
                 "feed pending" if state.sent and "quantity" in state.sent else "drift")
        found.append(Difference(row.sku, wanted, row.quantity, "MFN", cause, state.acked_at or state.desired_at))
    for sku, state in states.items():
        if sku not in listed and state.desired is not None and "quantity" in state.desired:
            found.append(Difference(sku, state.desired["quantity"], None, "MFN", "unknown SKU", state.desired_at))
    return sorted(found, key=lambda d: (CAUSES.index(d.cause), d.sku))


# --- steps ------------------------------------------------------------------------------------------------------


def record_sage(ctx: JobContext) -> None:
    """What Sage says now for every published SKU (quantities), recorded without sending anything."""
    for one in inventory.scan_plans(ctx, fields=("quantity",)):
        ctx.store.listings.record_scan(one.marketplace_id, one.desired, {}, {}, ctx.settings.inventory.max_messages)


def sage_fba(ctx: JobContext) -> dict[str, int]:
    """Units in Sage's FBA warehouse (``[mapping] warehouses.AFN``) per item."""
    warehouse = ctx.settings.mapping.warehouses.get("AFN")
    if not warehouse:
        return {}
    levels = connections.sage(ctx).stock_levels([warehouse])
    return {item: int(max(quantity, 0)) for item, quantity in levels.items()}


def refresh_fba(ctx: JobContext, marketplace_id: str) -> int:
    """FBA quantities changed since the last refresh (getInventorySummaries), newest kept; the rows read."""
    amazon = connections.amazon(ctx)
    cursor = ctx.store.cursor(f"{FBA_CURSOR}:{marketplace_id}", initial=model.utcnow() - timedelta(days=540))
    started, read = model.utcnow(), 0
    for page in amazon.inventory.summaries(marketplace_id=marketplace_id, changed_since=cursor.start_value):
        for level in translate.inventory_levels(page.summaries, started):
            ctx.store.listings.fba_set(marketplace_id, level.sku, int(level.quantity), level.as_of,
                                       "getInventorySummaries")
            read += 1
    cursor.commit(started)
    return read


def request_report(ctx: JobContext, marketplace_id: str) -> str:
    return connections.amazon(ctx).reports.request_merchant_listings_report(marketplace_id)


def report_rows(ctx: JobContext, report_id: str) -> list[ListingRow] | None:
    """The report's rows once it is DONE (None while Amazon still prepares it); CANCELLED means no listing."""
    amazon = connections.amazon(ctx)
    report = amazon.reports.report_status(report_id)
    if report.status in ("IN_QUEUE", "IN_PROGRESS"):
        return None
    if report.status == "CANCELLED":
        return []
    if report.status != "DONE" or report.document_id is None:
        raise errors.AmazonRejected(f"listings report {report_id} ended {report.status}; reconcile again later",
                                    amazon_code=report.status)
    return listings_report.parse(amazon.reports.download_document(report.document_id), report_id=report_id)


def conclude(ctx: JobContext, marketplace_id: str, rows: list[ListingRow], *, fix: bool,
             report_id: str) -> dict[str, Any]:
    """Compare, keep the result, and with ``fix`` queue Sage's values of the drifted SKUs."""
    store = ctx.store.listings
    states = store.states(marketplace_id)
    in_flight = _skus_in_flight(ctx)
    differences = compare(rows, states, store.fba_levels(marketplace_id), sage_fba(ctx), in_flight)
    now = model.utcnow()
    result: dict[str, Any] = {
        "marketplace_id": marketplace_id, "report_id": report_id, "at": now.isoformat(), "compared": len(rows),
        "causes": {cause: sum(d.cause == cause for d in differences) for cause in CAUSES},
        "differences": [d.as_dict(now) for d in differences], "fixed": [], "feeds": []}
    if fix:
        sends = {d.sku: {"quantity": states[d.sku].desired["quantity"]} for d in differences if d.cause == "drift"}
        if sends:
            batches = store.record_scan(marketplace_id, {}, sends, {}, ctx.settings.inventory.max_messages)
            for batch in batches:
                ctx.enqueue("submit_listings_feed", key=f"submit_listings_feed:{batch}", batch_id=batch)
            result["fixed"], result["feeds"] = sorted(sends), batches
    store.reconciliation_add(marketplace_id, result)
    log.info("inventory.reconciled", marketplace_id=marketplace_id, compared=len(rows), **{
        cause.replace(" ", "_"): n for cause, n in result["causes"].items()}, fixed=len(result["fixed"]))
    return result


def _skus_in_flight(ctx: JobContext) -> set[str]:
    """SKUs of Amazon orders not in Sage yet."""
    return {sku for lines in ctx.store.listings.unwritten_order_lines().values() for sku, _quantity in lines}


# --- jobs and the command ---------------------------------------------------------------------------------------


@job("reconcile_inventory", queue="sage500")
def reconcile_inventory(ctx: JobContext, fix: bool = False) -> int:
    """Record what Sage says now, then let the amazon side compare it with Amazon's listings report."""
    record_sage(ctx)
    for marketplace_id in ctx.settings.amazon.marketplace_ids:
        ctx.enqueue("reconcile_listings", key=f"reconcile_listings:{marketplace_id}", marketplace_id=marketplace_id,
                    fix=fix)
    return len(ctx.settings.amazon.marketplace_ids)


@job("reconcile_listings", queue="amazon")
def reconcile_listings(ctx: JobContext, marketplace_id: str, fix: bool = False,
                       report_id: str | None = None) -> dict[str, Any] | str:
    """Request the listings report, wait for it (retries that spend no budget), refresh FBA, compare."""
    if report_id is None:
        report_id = request_report(ctx, marketplace_id)
        ctx.enqueue("reconcile_listings", key=f"reconcile_listings:{marketplace_id}:{report_id}",
                    delay=_report_poll(ctx), marketplace_id=marketplace_id, fix=fix, report_id=report_id)
        return report_id
    rows = report_rows(ctx, report_id)
    if rows is None:
        wait = errors.Retryable(f"listings report {report_id} is not ready yet", retry_after=_report_poll(ctx),
                                record=report_id)
        wait.spend_retry = False
        raise wait
    refresh_fba(ctx, marketplace_id)
    return conclude(ctx, marketplace_id, rows, fix=fix, report_id=report_id)


def _report_poll(ctx: JobContext) -> float:
    return 30.0 / connections.amazon(ctx).time_scale


def run_inline(ctx: JobContext, *, fix: bool = False, timeout: float = 3600.0) -> list[dict[str, Any]]:
    """``erpsync reconcile inventory``: every step in this process, waiting for the reports here."""
    record_sage(ctx)
    results = []
    for marketplace_id in ctx.settings.amazon.marketplace_ids:
        report_id = request_report(ctx, marketplace_id)
        deadline = time.monotonic() + timeout
        while (rows := _read_when_allowed(ctx, report_id)) is None:
            if time.monotonic() > deadline:
                raise errors.Retryable(f"listings report {report_id} was not ready after {timeout:g} s; run "
                                       f"`erpsync reconcile inventory` again later")
            time.sleep(min(_report_poll(ctx), 5.0))
        refresh_fba(ctx, marketplace_id)
        results.append(conclude(ctx, marketplace_id, rows, fix=fix, report_id=report_id))
    return results


def _read_when_allowed(ctx: JobContext, report_id: str) -> list[ListingRow] | None:
    try:
        return report_rows(ctx, report_id)
    except errors.RateLimited:
        return None  # the getReport bucket is empty: ask again at the next poll

