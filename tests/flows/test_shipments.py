"""Shipments back to Amazon: the replica's warehouse ships and commits, ``scan_shipments`` finds it, and
``confirm_shipment`` calls the sandbox's confirmShipment per package — partial shipments, several packages, the
carrier mapping (and its ``Other`` fallback), each package recorded once, Amazon's refusals as dead letters."""

from __future__ import annotations

from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select, update
from typer.testing import CliRunner

from erpsync.cli import app
from erpsync.flows.binder import apply_key
from erpsync.flows.shipments import confirm_key, package_reference
from erpsync.sage500 import schema, warehouse

runner = CliRunner()


def ship(pipeline, oid: str, packages: list[tuple[dict, str, str | None]]) -> int:
    """Ship and commit ``packages``: [({SOLineKey: qty}, tracking number, ShipMethID or None), ...]."""
    order = pipeline.sage_order(oid)
    ship_key = warehouse.ship_order(pipeline.engine, order.SOKey, [
        {"lines": lines, "tracking_no": tracking, **({"ship_meth_id": method} if method else {})}
        for lines, tracking, method in packages])
    warehouse.commit_shipment(pipeline.engine, ship_key)
    return ship_key


def written_order(pipeline, **options):
    [oid] = pipeline.generate(1, **options)
    pipeline.runtime.run("import_order", {"amazon_order_id": oid, "read": True})
    pipeline.runtime.run("apply_order", pipeline.runtime.store.job_key_get(apply_key(oid)).message["payload"])
    pipeline.runtime.store.job_key_release(apply_key(oid))  # ran here, not by a worker
    assert pipeline.journal(oid) == "written"
    return oid, pipeline.sage_order(oid)


def test_partial_then_multi_package_shipments_are_confirmed_once_per_package(pipeline):
    oid, order = written_order(pipeline, seed=31, multi_line_share=1.0, multi_quantity_share=1.0)
    lines = order.lines
    assert len(lines) >= 2 and lines[0].QtyOrd >= 2
    runtime = pipeline.runtime
    # 1) a partial shipment: one unit of the first line, one package, the order's own ship method
    first = ship(pipeline, oid, [({lines[0].SOLineKey: 1}, "1Z999AA10000000001", None)])
    assert runtime.run("scan_shipments").value == {"shipments": 1, "packages": 1}
    assert pipeline.journal(oid) == "shipped"
    payload = runtime.store.job_key_get(confirm_key(first, 1)).message["payload"]
    with pipeline.workers():
        pipeline.wait(lambda: len(pipeline.confirmed(oid)) == 1, what="the first confirmation")
        assert pipeline.amazon_order(oid)["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
        # 2) the rest in two packages, the second by a ship method Amazon has no code for (Other + its name)
        rest = {line.SOLineKey: line.QtyOrd for line in lines[1:]}
        second = ship(pipeline, oid, [({lines[0].SOLineKey: lines[0].QtyOrd - 1}, "1Z999AA10000000002", None),
                                      (rest, "DHL-000000003", "AMZ FBA")])
        assert runtime.run("scan_shipments").value == {"shipments": 1, "packages": 2}
        pipeline.wait_journal([oid], "confirmed")
        assert runtime.drain(10)
    confirmed = pipeline.confirmed(oid)
    assert sorted(c["package_reference_id"] for c in confirmed) == sorted(
        [package_reference(first, 1), package_reference(second, 1), package_reference(second, 2)])
    by_ref = {c["package_reference_id"]: c for c in confirmed}
    assert by_ref[package_reference(first, 1)]["tracking_number"] == "1Z999AA10000000001"
    assert by_ref[package_reference(first, 1)]["carrier_code"] == "UPS"  # the order's UPS ship method
    assert by_ref[package_reference(first, 1)]["shipping_method"].startswith("UPS")
    other = by_ref[package_reference(second, 2)]
    assert (other["carrier_code"], other["carrier_name"]) == ("Other", "AMZ FBA")
    # every unit confirmed exactly once, summed per OrderItemId
    shipped: Counter = Counter()
    for confirmation in confirmed:
        for item_id, qty in confirmation["items"]:
            shipped[item_id] += qty
    assert shipped == Counter({line.OrderItemId: int(line.QtyOrd) for line in lines})
    amazon = pipeline.amazon_order(oid)
    assert amazon["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert runtime.store.confirmed_packages(first) == {1} and runtime.store.confirmed_packages(second) == {1, 2}
    # recorded once: the same confirmation again (a redelivered message) does not call Amazon
    assert runtime.run("confirm_shipment", payload).value == "already confirmed"
    assert runtime.run("scan_shipments").value == {"shipments": 0, "packages": 0}
    assert len(pipeline.confirmed(oid)) == 3 and runtime.store.dead_letters.list() == []


def test_amazon_refusing_the_carrier_code_is_a_dead_letter_with_amazons_message(pipeline):
    pipeline.configure("mapping", carriers={"FEDEX GROUND": {"carrier_code": "Pony Express"}})
    oid, order = written_order(pipeline, seed=32, multi_line_share=0)
    line = order.lines[0]
    ship_key = ship(pipeline, oid, [({line.SOLineKey: line.QtyOrd}, "612999AA10000000", "FEDEX GROUND")])
    with pipeline.workers():
        pipeline.runtime.run("scan_shipments")
        pipeline.wait(lambda: pipeline.runtime.store.dead_letters.list(), what="a dead letter")
        [dead] = pipeline.runtime.store.dead_letters.list()
        assert (dead.job, dead.error_code, dead.record) == ("confirm_shipment", "amazon_rejected", oid)
        assert "Invalid carrierCode 'Pony Express'" in dead.message  # Amazon's own words
        assert f"Sage shipment {ship_key} package 1" in dead.message and "[mapping] carriers" in dead.message
        assert pipeline.confirmed(oid) == [] and pipeline.runtime.store.confirmed_packages(ship_key) == set()
        # the carrier fixed in erpsync.toml, the dead letter replayed: confirmed with the right code
        pipeline.configure("mapping", carriers={"FEDEX GROUND": {"carrier_code": "FedEx",
                                                                 "shipping_method": "FedEx Ground"}})
        result = runner.invoke(app, ["dlq", "replay", str(dead.id), "--config", str(pipeline.config_path)])
        assert result.exit_code == 0, result.output
        pipeline.wait_journal([oid], "confirmed")
    [confirmation] = pipeline.confirmed(oid)
    assert (confirmation["carrier_code"], confirmation["shipping_method"]) == ("FedEx", "FedEx Ground")
    assert confirmation["items"] == [[line.OrderItemId, int(line.QtyOrd)]]
    assert Decimal(confirmation["items"][0][1]) == line.QtyOrd


def test_a_package_without_tracking_number_is_a_dead_letter_naming_it(pipeline):
    oid, order = written_order(pipeline, seed=33, multi_line_share=0)
    line = order.lines[0]
    ship_key = ship(pipeline, oid, [({line.SOLineKey: line.QtyOrd}, "", None)])
    pipeline.runtime.run("scan_shipments")
    outcome = pipeline.runtime.run("confirm_shipment",
                                   pipeline.runtime.store.job_key_get(confirm_key(ship_key, 1)).message["payload"])
    assert outcome.status == "dead"
    dead = pipeline.runtime.store.dead_letters.get(outcome.dead_letter_id)
    assert f"order {oid}, Sage shipment {ship_key} package 1" in dead.message and "tracking number" in dead.message
    assert pipeline.confirmed(oid) == []


def test_a_bulk_business_line_split_in_two_sage_prices_is_confirmed_as_one_amazon_item(pipeline):
    """333 units at an Amazon Business tier price rounded on the line: Sage cannot rebuild the amount from one
    5-decimal unit price, so the item becomes two Sage lines; Amazon still sees one item of 333, shipped once."""
    prices = pipeline.gateway.prices("USD", "MAIN")  # listed a few cents off the Sage price, so that it splits

    def splits(price: Decimal) -> bool:  # the sandbox's 12% tier on 333 units, rounded on the line
        amount = (price * 333 * Decimal("0.88")).quantize(Decimal("0.01"), ROUND_HALF_UP)
        unit = (amount / 333).quantize(Decimal("0.00001"), ROUND_HALF_UP)
        return (unit * 333).quantize(Decimal("0.001"), ROUND_HALF_UP) != amount

    sku = next(sku for sku in pipeline.stocked_skus() if sku in prices)
    price = next(p for p in (prices[sku] + Decimal(cents) / 100 for cents in range(100)) if splits(p))
    pipeline.control("PUT", "listings", json=[{"sku": sku, "price": str(price), "quantity": 500}])
    oid, order = written_order(pipeline, seed=5, skus=[sku], quantity=333, business_share=1.0,
                               multi_line_share=0.0, promotion_share=0.0, gift_share=0.0, afn_share=0.0)
    lines = order.lines
    assert len(lines) == 2 and lines[0].OrderItemId == lines[1].OrderItemId
    assert sum(line.QtyOrd for line in lines) == 333 and lines[0].UnitPrice != lines[1].UnitPrice
    [item] = pipeline.amazon_order(oid)["orderItems"]
    stock, items = schema.timWhseBinInvt, schema.timItem
    with pipeline.engine.begin() as conn:  # a pallet received: the seeded bins hold less than 333
        item_key = select(items.c.ItemKey).where(items.c.ItemID == sku).scalar_subquery()
        conn.execute(update(stock).where(stock.c.ItemKey == item_key).values(QtyOnHand=stock.c.QtyOnHand + 1000))
    principal = Decimal(item["proceeds"]["breakdowns"][0]["subtotal"]["amount"])
    assert sum(line.QtyOrd * line.UnitPrice for line in lines) == principal  # to the cent, no rounding left
    ship(pipeline, oid, [({line.SOLineKey: line.QtyOrd for line in lines}, "1Z999AA10000000333", None)])
    with pipeline.workers():
        assert pipeline.runtime.run("scan_shipments").value == {"shipments": 1, "packages": 1}
        pipeline.wait_journal([oid], "confirmed")
        assert pipeline.runtime.drain(10)
    [confirmation] = pipeline.confirmed(oid)
    assert [tuple(pair) for pair in confirmation["items"]] == [(item["orderItemId"], 333)]
    assert pipeline.amazon_order(oid)["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert pipeline.runtime.store.dead_letters.list() == []
