"""Helpers of the stock, price and reconciliation tests (the sandbox's listings, the feeds, one scan)."""

from __future__ import annotations

from decimal import Decimal

from erpsync import mapping

SKUS = ["WIDGET-BLU-L", "TSHIRT-BLU-L", "HOODIE-BLU-L", "JACKET-BLU-L"]


def listed(pipeline, skus=SKUS, quantity=999, price="1.00") -> None:
    pipeline.control("PUT", "listings", json=[{"sku": s, "price": price, "quantity": quantity} for s in skus])


def sandbox_listings(pipeline) -> dict[str, dict]:
    return {item["sku"]: item for item in pipeline.control("GET", "listings")["listings"]}


def expected_quantities(pipeline, skus=SKUS) -> dict[str, int]:
    levels = pipeline.gateway.stock_levels(["MAIN"])
    return {sku: mapping.available_units(levels.get(sku, Decimal(0)), Decimal(0), Decimal(0)) for sku in skus}


def feeds_done(pipeline) -> bool:
    feeds = pipeline.runtime.store.listings.feeds()
    return bool(feeds) and all(f.status not in ("queued", "IN_QUEUE", "IN_PROGRESS") for f in feeds) \
        and not pipeline.runtime.store.job_keys_pending(limit=1)


def sync(pipeline, **payload):
    outcome = pipeline.runtime.run("inventory_scan", payload)
    assert outcome.status == "done", outcome.error
    return outcome.value
