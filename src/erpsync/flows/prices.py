"""Prices from a Sage price sheet to Amazon, in the same feeds as stock (:mod:`erpsync.flows.inventory`).

The sheet (``[prices] sheet``: ListPrice or Sheet2Price … Sheet4Price, of ``[prices] warehouse``) in the
marketplace's currency, with ``markup_percent`` and the rounding rules (:func:`erpsync.mapping.listing_price`),
optionally bounded by ``minimum_seller_allowed_price`` / ``maximum_seller_allowed_price``. The guard
(:func:`erpsync.mapping.price_guard`) holds a change of more than ``guard_percent`` from the price Amazon last
acknowledged: it is not sent, it becomes a dead letter (replay after fixing Sage), and ``erpsync prices approve SKU``
lets it through when it is meant.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from erpsync import mapping
from erpsync.flows.jobs import JobContext, job
from erpsync.sage500 import pricing

if TYPE_CHECKING:
    from erpsync.config import Settings
    from erpsync.sage500.gateway import Sage500Gateway

PRICE_FIELDS = ("price", "minimum_price", "maximum_price")


def sheet_prices(settings: Settings, gateway: Sage500Gateway, marketplace_id: str) -> dict[str, Decimal]:
    """The configured sheet price per Sage item, in the marketplace's currency (empty when prices are off)."""
    rules = settings.prices
    if not rules.enabled:
        return {}
    return pricing.prices(gateway.engine, gateway.company_id, mapping.currency_for(marketplace_id),
                          sheet=rules.sheet, whse_id=rules.warehouse, at=gateway.clock.to_sage())


def offer_values(sheet_price: Decimal, settings: Settings) -> dict[str, Any]:
    """The price values of one item (decimal strings): price and, when configured, its seller-allowed bounds."""
    price = mapping.listing_price(sheet_price, settings.prices)
    values: dict[str, Any] = {"price": str(price)}
    low, high = mapping.price_bounds(price, settings.prices)
    if low is not None:
        values["minimum_price"] = str(low)
    if high is not None:
        values["maximum_price"] = str(high)
    return values


def approve(ctx: JobContext, sku: str, marketplace_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Let the price held for ``sku`` through at the next scan; the approved holds per marketplace."""
    chosen = marketplace_ids or ctx.settings.amazon.marketplace_ids
    approved = {mp: ctx.store.listings.approve_price(mp, sku) for mp in chosen}
    return {mp: held for mp, held in approved.items() if held}


@job("prices_scan", queue="sage500")
def prices_scan(ctx: JobContext, full: bool = False) -> dict[str, Any]:
    """Send the prices that changed in Sage (the guard applies)."""
    from erpsync.flows.inventory import queue_plans, scan_plans

    return queue_plans(ctx, scan_plans(ctx, full=full, fields=("price",)))
