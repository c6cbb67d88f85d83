"""Reconciliation against the sandbox over HTTP: the All Listings Report (GET_MERCHANT_LISTINGS_ALL_DATA) finds a
drift the sandbox made behind erpsync's back, names its cause and age, and ``--fix`` corrects it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from erpsync.amazon import listings_report
from erpsync.cli import app
from erpsync.sandbox.reports import MERCHANT_LISTINGS_COLUMNS
from tests.flows.listing_helpers import SKUS, expected_quantities, feeds_done, listed, sandbox_listings, sync

US = "ATVPDKIKX0DER"


@pytest.fixture
def synced(make_pipeline):
    shop = make_pipeline(inventory={"include": SKUS, "feed_poll_seconds": 20}, prices={"enabled": False})
    listed(shop)
    sync(shop)
    with shop.workers():
        shop.wait(lambda: feeds_done(shop), what="the first sync")
    assert {s: sandbox_listings(shop)[s]["quantity"] for s in SKUS} == expected_quantities(shop)
    return shop


def reconcile(shop, *args: str) -> list[dict]:
    result = CliRunner().invoke(app, ["reconcile", "inventory", "--json", *args, "--config", str(shop.config_path)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_report_finds_a_drift_and_fix_corrects_it(synced):
    shop = synced
    [clean] = reconcile(shop)
    assert clean["differences"] == [] and clean["compared"] >= len(SKUS)

    drifted = shop.control("POST", "listings/drift", json={"skus": [SKUS[1]], "delta": 3})["drifted"]
    assert drifted[0]["after"] != drifted[0]["before"]
    [found] = reconcile(shop)
    [difference] = found["differences"]
    assert difference["sku"] == SKUS[1] and difference["cause"] == "drift"
    assert (difference["sage"], difference["amazon"]) == (drifted[0]["before"], drifted[0]["after"])
    assert difference["age"] is not None
    assert shop.runtime.store.listings.reconciliation_last(US)[1]["differences"] == found["differences"]

    [fixing] = reconcile(shop, "--fix")
    assert fixing["fixed"] == [SKUS[1]] and fixing["feeds"]
    with shop.workers():
        shop.wait(lambda: feeds_done(shop), what="the correcting feed")
    assert sandbox_listings(shop)[SKUS[1]]["quantity"] == drifted[0]["before"]
    [after] = reconcile(shop)
    assert after["differences"] == []


def test_causes_order_in_flight_unknown_sku_and_fba(synced):
    shop = synced
    store = shop.runtime.store
    shop.control("POST", "listings/drift", json={"skus": [SKUS[0]], "delta": -3})
    store.journal_set("113-0000000-0000009", "received")  # an order Sage has not written yet
    store.inbox_add("n-9", notification_type="ORDER_CHANGE", amazon_order_id="113-0000000-0000009",
                    payload={"items": [{"order_item_id": "1", "sku": SKUS[0], "quantity": 1}]})
    listed(shop, ["NOT-IN-SAGE"])
    shop.control("POST", "listings/HOODIE-BLU-L/fba", json={"quantity": 7})
    [found] = reconcile(shop)
    causes = {d["sku"]: d["cause"] for d in found["differences"]}
    assert causes[SKUS[0]] == "order in flight"
    assert causes["NOT-IN-SAGE"] == "unknown SKU"
    assert causes["HOODIE-BLU-L"] == "FBA"
    fba = next(d for d in found["differences"] if d["sku"] == "HOODIE-BLU-L")
    assert fba["amazon"] == 7 and fba["channel"] == "FBA"


def test_the_sandbox_report_has_amazons_columns_and_parses(synced):
    shop = synced
    from erpsync.flows import connections, reconcile as flow
    from erpsync.runtime.jobs import Context
    ctx = Context(shop.runtime, "test", "test", 1)
    report_id = flow.request_report(ctx, US)
    shop.wait(lambda: connections.amazon(ctx).reports.report_status(report_id).status == "DONE",
              what="the listings report")
    document = connections.amazon(ctx).reports.report_status(report_id).document_id
    text = connections.amazon(ctx).reports.download_document(document)
    assert text.splitlines()[0].split("\t") == list(MERCHANT_LISTINGS_COLUMNS)
    rows = {row.sku: row for row in listings_report.parse(text)}
    assert {s: rows[s].quantity for s in SKUS} == expected_quantities(shop)
    assert all(rows[s].seller_fulfilled and rows[s].status == "Active" for s in SKUS)
