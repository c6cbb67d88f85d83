"""Data-quality checks: each reason writes the order to the Sage replica on hold ([quality] hold_reason) with the
reason in the audit event ``order.held``, never refused; a hold for review survives Amazon taking payment. The
rules themselves (price tolerance, median + k × MAD over the item's Sage orders) are tested pure first."""

from __future__ import annotations

from decimal import Decimal

import pytest

from erpsync import model
from erpsync.amazon import translate
from erpsync.config import QualitySettings
from erpsync.flows import quality
from erpsync.flows.binder import apply_key
from erpsync.sage500 import history
from erpsync.web.app import start as start_web

D = Decimal


def order(quantity="2", price="20.00", sku="W-1", ship_to=None, lines=None) -> model.Order:
    def line(sku, quantity, price, number):
        money = lambda amount: {"amount": str(amount), "currency": "USD"}  # noqa: E731
        return {"order_item_id": f"1000000000000{number}", "sku": sku, "quantity": quantity,
                "unit_price": money(D(price) / D(quantity)), "item_price": money(price),
                **{k: money(0) for k in ("shipping_price", "shipping_discount", "promotion_discount",
                                         "gift_wrap_price", "item_tax", "shipping_tax", "gift_wrap_tax",
                                         "promotion_discount_tax", "shipping_discount_tax")}}

    return model.parse(model.Order, {
        "amazon_order_id": "113-0000000-0000001", "marketplace_id": "ATVPDKIKX0DER", "status": "Unshipped",
        "fulfillment_channel": "MFN", "purchase_date": "2026-03-01T10:00:00Z",
        "last_update_date": "2026-03-01T10:00:00Z",
        "ship_to": ship_to or {"name": "Ann Lee", "line1": "123 Main St", "city": "Austin",
                               "state_or_region": "TX", "postal_code": "78701", "country_code": "US"},
        "lines": [line(*spec, number) for number, spec in enumerate(lines or [(sku, quantity, price)])]},
        record="test")


def reasons(o: model.Order, prices=None, history=None, **settings) -> list[str]:
    item_ids = {line.sku: line.sku for line in o.lines}
    return quality.review(o, item_ids, QualitySettings(**settings), quality.Evidence(prices, history))


# --- the rules --------------------------------------------------------------------------------------------------


def test_price_within_the_tolerance_passes_and_beyond_it_is_a_reason_with_the_figures():
    assert reasons(order(quantity="2", price="24.00"), prices={"W-1": D("10.00")}) == []  # 12.00: 20% above
    assert reasons(order(quantity="2", price="25.00"), prices={"W-1": D("10.00")}) == []  # 12.50: 25% exactly
    (reason,) = reasons(order(quantity="2", price="10.00"), prices={"W-1": D("10.00")})
    assert reason == ("price: SKU W-1 (item W-1) sells at 5.00 USD a unit, 50.0% below the Sage price sheet's 10.00 "
                      "(more than [quality] price_tolerance_percent 25); check the listing price on Amazon")
    assert reasons(order(price="10.00"), prices={"W-1": D("10.00")}, price_tolerance_percent=D(60)) == []
    assert reasons(order(price="99.00"), prices={}) == []  # no price in force: no verdict
    assert reasons(order(price="99.00"), prices=None) == []  # not read (no Sage database)
    assert reasons(order(price="99.00"), prices={"W-1": D(1)}, checks=["quantity"]) == []


def test_robust_limit_is_median_plus_k_mad_floored_at_one_unit():
    assert quality.robust_limit([D(2)] * 12, D(8)) == (D(2), D(1), D(10))  # MAD 0: the one-unit floor
    assert quality.robust_limit([D(q) for q in (1, 2, 2, 3, 4, 10, 2, 3)], D(8)) == (D("2.5"), D(1), D("10.5"))
    # 8 10 11 12 13 14 20: median 12, deviations 0 1 1 2 2 4 8: MAD 2, scale 2.9652
    assert quality.robust_limit([D(q) for q in (10, 12, 14, 20, 8, 11, 13)], D(8)) == (
        D(12), D("2.9652"), D("35.7216"))


def test_quantity_far_above_the_history_is_a_reason_and_short_histories_give_no_verdict():
    history = {"W-1": [D(1), D(2), D(1), D(3), D(2), D(1), D(2), D(2), D(1), D(2)]}
    # median 2, MAD 0.5 (× 1.4826 = 0.74, floored at 1 unit): limit 2 + 8 × 1 = 10
    assert reasons(order(quantity="10"), history=history) == []
    (reason,) = reasons(order(quantity="11", price="220.00"), history=history)
    assert reason == ("quantity: 11 units of item W-1 (SKU W-1) against a median of 2 over its last 10 Sage orders "
                      "(limit 10 = median + [quality] quantity_mad_factor 8 × 1); check the order is not a typing "
                      "error or a reseller")
    assert reasons(order(quantity="11"), history=history, quantity_mad_factor=D(10)) == []
    assert reasons(order(quantity="500", price="10000"), history={"W-1": history["W-1"][:9]}) == []
    # two lines of the same item count together
    both = order(lines=[("W-1", "8", "80.00"), ("W-1", "7", "70.00")])
    assert [r[:12] for r in reasons(both, history=history)] == ["quantity: 15"]


def test_an_ambiguous_us_ship_to_is_a_reason():
    two_streets = {"name": "Ann Lee", "line1": "123 Main St", "line2": "456 Oak Ave", "city": "Austin",
                   "state_or_region": "TX", "postal_code": "78701", "country_code": "US"}
    (reason,) = reasons(order(ship_to=two_streets))
    assert reason.startswith("ship-to ambiguous: usaddress reads more than one AddressNumber")
    assert "Main" not in reason and "Ann" not in reason  # reasons are stored: no address text in them
    assert reasons(order(ship_to=two_streets), checks=["price"]) == []


# --- end to end against the replica ---------------------------------------------------------------------------


def sage_hold(pipeline, oid: str) -> tuple[int, str | None]:
    found = pipeline.sage_order(oid)
    hold = history.hold(pipeline.engine, oid)
    assert found is not None and hold is not None
    return int(hold[0]), hold[1]


def held_reasons(pipeline, oid: str) -> list[str]:
    events = [e.detail for e in pipeline.runtime.store.audit_list(event="order.held")
              if e.detail["amazon_order_id"] == oid]
    assert len(events) <= 1
    return events[0]["reasons"] if events else []


def list_at(pipeline, sku: str, factor: Decimal) -> Decimal:
    """List ``sku`` on Amazon at ``factor`` × its Sage price; returns the Sage price."""
    sheet = pipeline.gateway.prices("USD", "MAIN")[sku]
    pipeline.control("PUT", "listings", json=[{"sku": sku, "price": str((sheet * factor).quantize(D("0.01"))),
                                              "quantity": 500}])
    return sheet


def test_a_price_far_from_the_sage_price_sheet_writes_the_order_on_hold_with_the_reason(pipeline, webhook):
    sku = pipeline.stocked_skus()[0]
    fair, = pipeline.generate(1, seed=81, skus=[sku], multi_line_share=0, promotion_share=0, business_share=0)
    with pipeline.workers():
        pipeline.wait_journal([fair], "written")
        list_at(pipeline, sku, D("1.6"))  # the listing repriced by mistake
        [dear] = pipeline.generate(1, seed=82, skus=[sku], multi_line_share=0, promotion_share=0, business_share=0)
        pipeline.wait_journal([dear], "written")
    assert sage_hold(pipeline, fair) == (0, None) and held_reasons(pipeline, fair) == []
    assert sage_hold(pipeline, dear) == (1, "Amazon: review")
    (reason,) = held_reasons(pipeline, dear)
    assert reason.startswith(f"price: SKU {sku} (item {sku}) sells at ") and "60.0% above" in reason
    assert pipeline.runtime.store.dead_letters.list() == [] and pipeline.journal(dear) == "written"


def test_a_review_hold_survives_amazon_taking_payment(make_pipeline):
    pipeline = make_pipeline(orders={"pending": "hold"})
    server = start_web(pipeline.runtime)
    pipeline.webhook_to(f"{server.url}/notifications")
    try:
        sku = pipeline.stocked_skus()[0]
        list_at(pipeline, sku, D("0.5"))
        [oid] = pipeline.generate(1, seed=83, status="PENDING", pending_seconds=3600, skus=[sku], multi_line_share=0,
                                  business_share=0)
        with pipeline.workers():
            pipeline.wait_journal([oid], "written")
            assert sage_hold(pipeline, oid) == (1, "Amazon: review")  # Pending and a price: a person releases it
            pipeline.sandbox.world.advance(3600)  # payment taken: Unshipped, notified
            store = pipeline.runtime.store
            pipeline.wait(lambda: store.audit_list(event="order.released"), what="the release decided")
            assert pipeline.runtime.drain(10)
    finally:
        server.stop()
    assert [(e.detail["released"], e.detail.get("reason")) for e in
            pipeline.runtime.store.audit_list(event="order.released")] == [(False, "held for review")]
    assert sage_hold(pipeline, oid) == (1, "Amazon: review")
    assert held_reasons(pipeline, oid)[0].startswith("price:")


def test_a_quantity_far_above_the_items_sage_history_writes_the_order_on_hold(make_pipeline):
    pipeline = make_pipeline(quality={"quantity_min_history": 5})
    server = start_web(pipeline.runtime)
    pipeline.webhook_to(f"{server.url}/notifications")
    sku = pipeline.stocked_skus()[0]
    options = dict(skus=[sku], multi_line_share=0, business_share=0, promotion_share=0)
    try:
        with pipeline.workers():
            usual = pipeline.generate(5, seed=84, quantity=2, **options)
            pipeline.wait_journal(usual, "written")
            [more] = pipeline.generate(1, seed=85, quantity=9, **options)  # limit: median 2 + 8 × 1 = 10
            pipeline.wait_journal([more], "written")
            [bulk] = pipeline.generate(1, seed=86, quantity=40, **options)
            pipeline.wait_journal([bulk], "written")
    finally:
        server.stop()
    assert all(sage_hold(pipeline, oid) == (0, None) for oid in [*usual, more])
    assert sage_hold(pipeline, bulk) == (1, "Amazon: review")
    (reason,) = held_reasons(pipeline, bulk)
    assert reason.startswith(f"quantity: 40 units of item {sku} (SKU {sku}) against a median of 2 over its last 6 "
                             f"Sage orders (limit 10 = median + [quality] quantity_mad_factor 8 × 1)")


@pytest.mark.parametrize("ship_to, starts", [
    ({"name": "Ann Lee", "line1": "123 Main St", "line2": "456 Oak Ave", "city": "Austin", "state_or_region": "TX",
      "postal_code": "78701", "country_code": "US"}, "ship-to ambiguous: usaddress reads more than one"),
    ({"name": "N", "company": "F" * 10, "line1": "A " * 20, "line2": "B " * 20, "line3": "C " * 20, "city": "D",
      "district": "E " * 20, "state_or_region": "Bavaria", "postal_code": "80331", "country_code": "DE"},
     "label: the ship-to needs more than 5 address lines"),
])
def test_an_ambiguous_or_overflowing_ship_to_writes_the_order_on_hold(pipeline, ship_to, starts):
    [oid] = pipeline.generate(1, seed=87, multi_line_share=0)  # nobody listens: applied by hand below
    canonical = translate.order_from_api(pipeline.amazon_order(oid))
    changed = canonical.model_copy(update={"ship_to": model.Address(**ship_to)})
    outcome = pipeline.runtime.run("apply_order", {"order": changed.model_dump(mode="json")}, key=apply_key(oid))
    assert (outcome.status, outcome.value["action"], outcome.value["created"]) == ("done", "write", True)
    assert sage_hold(pipeline, oid) == (1, "Amazon: review")
    (reason,) = held_reasons(pipeline, oid)
    assert reason.startswith(starts)
    assert pipeline.journal(oid) == "written"


# --- configuration ------------------------------------------------------------------------------------------------


def test_the_init_template_writes_the_quality_defaults_and_bad_values_are_refused_with_the_key(tmp_path):
    import tomllib

    from erpsync import config

    written = tomllib.loads(config.TEMPLATE)["quality"]
    assert config.QualitySettings.model_validate(written) == config.QualitySettings()
    file = tmp_path / "erpsync.toml"
    for text, message in (('hold_reason = "Amazon: check the label please"', "hold_reason"),
                          ('checks = ["price", "colour"]', "checks"),
                          ('quantity_min_history = 1', "quantity_min_history")):
        file.write_text(f"[quality]\n{text}\n")
        with pytest.raises(config.ConfigError, match=message):
            config.load(file)
