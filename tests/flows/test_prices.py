"""Prices and attributes from Sage to Amazon against the sandbox over HTTP: prices on the listings after a sync,
the guard holding a typo, its approval, an attribute mapped from a Sage item field, and Amazon's per-attribute
validation error as a per-SKU dead letter naming the attribute."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from erpsync import mapping
from erpsync.cli import app
from erpsync.errors import ConfigError
from erpsync.flows import inventory, prices
from erpsync.sage500 import availability, pricing, schema
from tests.flows.listing_helpers import SKUS, feeds_done, listed, sandbox_listings, sync

US = "ATVPDKIKX0DER"


def sheet(pipeline) -> dict[str, Decimal]:
    return pricing.prices(pipeline.engine, "SOA", "USD", whse_id="MAIN")


def run_feeds(pipeline) -> None:
    with pipeline.workers():
        pipeline.wait(lambda: feeds_done(pipeline), what="the feeds to finish")


def set_list_price(pipeline, item_id: str, price: Decimal) -> None:
    ps, item = schema.timPriceSheet, schema.timItem
    with pipeline.engine.begin() as conn:
        key = conn.execute(select(item.c.ItemKey).where(item.c.ItemID == item_id)).scalar_one()
        conn.execute(update(ps).where(ps.c.ItemKey == key, ps.c.CurrID == "USD").values(ListPrice=price))


def test_prices_reach_the_listings_with_markup_and_rounding(make_pipeline):
    shop = make_pipeline(inventory={"include": SKUS, "feed_poll_seconds": 20},
                         prices={"markup_percent": "10", "ending": "0.99"})
    listed(shop, price="1.00")
    sync(shop, fields=["price"])
    run_feeds(shop)
    on_amazon = sandbox_listings(shop)
    for sku in SKUS:
        expected = prices.offer_values(sheet(shop)[sku], shop.settings)["price"]
        assert Decimal(str(on_amazon[sku]["price"])) == Decimal(expected)
        assert expected.endswith(".99") and Decimal(expected) >= sheet(shop)[sku] * Decimal("1.1")


def test_the_guard_holds_a_typo_and_approval_lets_a_meant_change_through(make_pipeline):
    shop = make_pipeline(inventory={"include": SKUS, "feed_poll_seconds": 20})
    listed(shop)
    sync(shop, fields=["price"])
    run_feeds(shop)
    sku = SKUS[0]
    before = Decimal(str(sandbox_listings(shop)[sku]["price"]))
    set_list_price(shop, sku, (sheet(shop)[sku] / 100).quantize(Decimal("0.01")))  # a typo in Sage
    counts = sync(shop, fields=["price"])
    assert counts["messages"] == 0 and counts["held"] == 1
    held = shop.runtime.store.listings.states(US)[sku].held
    assert held["price"] == str(mapping.listing_price(sheet(shop)[sku], shop.settings.prices))
    [letter] = [d for d in shop.runtime.store.dead_letters.list() if d.record == sku]
    assert letter.error_code == "price_guard" and "guard_percent" in letter.message
    assert Decimal(str(sandbox_listings(shop)[sku]["price"])) == before  # nothing was sent
    assert sync(shop, fields=["price"])["messages"] == 0  # held again, no second dead letter
    assert len([d for d in shop.runtime.store.dead_letters.list() if d.record == sku]) == 1

    result = CliRunner().invoke(app, ["prices", "approve", sku, "--config", str(shop.config_path)])
    assert result.exit_code == 0, result.output
    assert sync(shop, fields=["price"])["messages"] == 1
    run_feeds(shop)
    assert Decimal(str(sandbox_listings(shop)[sku]["price"])) == Decimal(held["price"])


def test_an_attribute_mapped_from_a_sage_item_field_reaches_the_listing(make_pipeline):
    shop = make_pipeline(inventory={"include": SKUS, "feed_poll_seconds": 20}, prices={"enabled": False},
                         mapping={"attributes": {"ShortDesc": "item_name"}})
    listed(shop)
    sync(shop)
    run_feeds(shop)
    descriptions = {i.item_id: i.fields["ShortDesc"]
                    for i in availability.items(shop.engine, "SOA", {"ShortDesc": "ShortDesc"})}
    assert {sku: sandbox_listings(shop)[sku]["title"] for sku in SKUS} == {sku: descriptions[sku] for sku in SKUS}
    assert sync(shop)["messages"] == 0


def test_an_attribute_mapped_from_a_sage_user_field_reaches_the_listing(make_pipeline):
    """A custom item field: the site keeps the brand in timItem.UserFld1 (which user fields a site has and what it
    stores there are its own), mapped as `userfld1` (any case) to Amazon's `brand`; an item with the field empty
    sends no brand; a field timItem does not have is refused naming it."""
    shop = make_pipeline(inventory={"include": SKUS, "feed_poll_seconds": 20}, prices={"enabled": False},
                         mapping={"attributes": {"userfld1": "brand"}})
    listed(shop)
    brands = {SKUS[0]: "Acme Outdoor", SKUS[1]: "Northpeak  "}  # CHAR-style padding is trimmed
    with shop.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE timItem ADD UserFld1 VARCHAR(15)")
        for sku, brand in brands.items():
            conn.exec_driver_sql("UPDATE timItem SET UserFld1 = ? WHERE ItemID = ?", (brand, sku))
    sync(shop)
    run_feeds(shop)
    with shop.sandbox.world.lock:  # what the sandbox's listings hold after the feed (getListingsItem serves it)
        on_amazon = {sku: shop.sandbox.world.listings[sku].attributes for sku in SKUS}
    assert {sku: on_amazon[sku].get("brand") for sku in SKUS} == {
        SKUS[0]: [{"value": "Acme Outdoor", "language_tag": "en_US", "marketplace_id": US}],
        SKUS[1]: [{"value": "Northpeak", "language_tag": "en_US", "marketplace_id": US}], SKUS[2]: None,
        SKUS[3]: None}
    assert sync(shop)["messages"] == 0

    unknown = shop.settings.model_copy(update={"mapping": shop.settings.mapping.model_copy(
        update={"attributes": {"UserFld9": "color"}})})
    with pytest.raises(ConfigError, match=r"UserFld9.*not columns of timItem.*user fields here: UserFld1"):
        inventory.desired(unknown, shop.gateway, shop.runtime.store, US)


def test_an_attribute_amazon_refuses_is_a_dead_letter_naming_it(make_pipeline):
    shop = make_pipeline(inventory={"include": SKUS, "feed_poll_seconds": 20}, prices={"enabled": False},
                         mapping={"attributes": {"LongDesc": "condition_type"}})  # not a condition: refused
    listed(shop)
    sync(shop)
    run_feeds(shop)
    letters = [d for d in shop.runtime.store.dead_letters.list() if d.job == "listing_push"]
    assert sorted(d.record for d in letters) == sorted(SKUS)
    assert all("condition_type" in d.message and "replay" in d.message for d in letters)
