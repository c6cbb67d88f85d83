"""Scenario control: the order generator's mix and money, SKUs from a list or a Sage database, pending orders,
cancellations, refunds, time, faults, read-back, and the `erpsync sandbox` CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal

import httpx
import pytest
import sqlglot
from sqlalchemy import create_engine, text
from sqlalchemy.dialects import mssql
from typer.testing import CliRunner

from erpsync.sandbox.scenario import sage_items_query
from erpsync.sandbox.server import start
from tests.sandbox.helpers import client, generate


@pytest.fixture
def sandbox():
    with start(seed=21) as running:
        yield running


def _d(money):
    return Decimal(money["amount"])


def test_generated_money_adds_up_and_the_mix_is_realistic(sandbox):
    ids = generate(sandbox, count=300, status="UNSHIPPED", skus=[f"ITEM-{n:03d}" for n in range(40)],
                   unknown_sku_share=0.2, promotion_share=0.3, gift_share=0.2, business_share=0.2,
                   prime_share=0.5, afn_share=0.2, international_share=0.2, multi_line_share=0.4,
                   multi_quantity_share=0.3)
    orders = [sandbox.world.orders[i] for i in ids]
    lines = [item for order in orders for item in order["orderItems"]]
    for order in orders:
        totals = Counter()
        for item in order["orderItems"]:
            parts = item["proceeds"]["breakdowns"]
            assert _d(item["proceeds"]["proceedsTotal"]) == sum(_d(p["subtotal"]) for p in parts)
            for part in parts:
                totals[part["type"]] += _d(part["subtotal"])
                if "detailedBreakdowns" in part:
                    assert _d(part["subtotal"]) == sum(_d(d["value"]) for d in part["detailedBreakdowns"])
                if part["type"] == "DISCOUNT":
                    assert _d(part["subtotal"]) < 0
            unit = _d(item["product"]["price"]["unitPrice"])
            item_part = next(p for p in parts if p["type"] == "ITEM")
            assert _d(item_part["subtotal"]) == unit * item["quantityOrdered"]  # v2026 price is per unit
        grand = _d(order["proceeds"]["grandTotal"])
        assert grand == sum(_d(i["proceeds"]["proceedsTotal"]) for i in order["orderItems"])
        assert {b["type"]: _d(b["subtotal"]) for b in order["proceeds"]["breakdowns"]} == dict(totals)
        assert _d(order["payment"]["paymentExecutions"][0]["paymentAmount"]) == grand
        assert re.fullmatch(r"\d{3}-\d{7}-\d{7}", order["orderId"])
    assert len(set(ids)) == 300
    assert sum(len(o["orderItems"]) > 1 for o in orders) > 60
    assert sum(i["quantityOrdered"] > 1 for i in lines) > 60
    assert sum("promotion" in i for i in lines) > 40
    assert sum("packing" in i["fulfillment"] for i in lines) > 40
    business = [o for o in orders if "AMAZON_BUSINESS" in o["programs"]]
    assert len(business) > 30 and all(o["buyer"]["buyerPurchaseOrderNumber"] for o in business)
    assert sum("PRIME" in o["programs"] for o in orders) > 100
    assert sum(o["fulfillment"]["fulfilledBy"] == "AMAZON" for o in orders) > 30
    abroad = [o for o in orders if o["recipient"]["deliveryAddress"]["countryCode"] != "US"]
    assert len(abroad) > 30
    assert all(o["recipient"]["deliveryAddress"].get("addressLine3") for o in abroad)
    unknown = sum(not i["product"]["sellerSku"].startswith("ITEM-") for i in lines) / len(lines)
    assert 0.12 < unknown < 0.28


def test_generation_is_reproducible_with_a_seed():
    def run():
        with start(seed=1) as sandbox:
            ids = generate(sandbox, count=5, seed=99, skus=["A", "B"])
            return ids, [sandbox.world.orders[i]["proceeds"]["grandTotal"] for i in ids]

    assert run() == run()


def test_skus_from_a_sage_replica(tmp_path, sandbox):
    url = f"sqlite:///{tmp_path / 'sage.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE timItem (ItemKey int PRIMARY KEY, CompanyID varchar(3), "
                          "ItemID varchar(30), ItemType smallint)"))
        conn.execute(text("INSERT INTO timItem VALUES (1,'SOA','WIDGET-RED',5), (2,'SOA','WIDGET-BLU',5), "
                          "(3,'XYZ','OTHER-CO',5)"))
    engine.dispose()
    ids = generate(sandbox, count=20, sage_url=url, sage_company_id="SOA", multi_line_share=1)
    skus = {i["product"]["sellerSku"] for o in ids for i in sandbox.world.orders[o]["orderItems"]}
    assert skus == {"WIDGET-RED", "WIDGET-BLU"}
    bad = httpx.post(f"{sandbox.url}/_sandbox/orders", json={"count": 1, "sage_url": "nosuchdriver://x"})
    assert bad.status_code == 400 and "sage_url" in bad.json()["errors"][0]["message"]


def test_sage_query_is_tsql():
    sql = str(sage_items_query("SOA").compile(dialect=mssql.dialect()))
    assert "FROM [timItem]" in sql
    assert sqlglot.parse_one(sql.replace("%(CompanyID_1)s", "@co"), read="tsql") is not None


def test_pending_orders_become_unshipped_and_afn_orders_ship(sandbox):
    mfn = generate(sandbox, count=2, pending_seconds=120, afn_share=0)
    afn = generate(sandbox, count=2, pending_seconds=120, afn_share=1)
    status = lambda i: sandbox.world.orders[i]["fulfillment"]["fulfillmentStatus"]  # noqa: E731
    assert {status(i) for i in mfn + afn} == {"PENDING"}
    advanced = httpx.post(f"{sandbox.url}/_sandbox/time/advance", json={"seconds": 120}).json()
    assert advanced["now"] >= sandbox.world.orders[mfn[0]]["createdTime"]
    assert {status(i) for i in mfn} == {"UNSHIPPED"}
    assert {status(i) for i in afn} == {"SHIPPED"}
    fba_fees = [e for e in sandbox.world.ledger if e.amount_description == "FBAPerUnitFulfillmentFee"]
    assert fba_fees and {e.order_id for e in fba_fees} == set(afn) and all(e.amount < 0 for e in fba_fees)


def test_cancel_restores_stock_and_refuses_shipped_orders(sandbox):
    order_id = generate(sandbox, count=1, status="UNSHIPPED", afn_share=0, skus=["CANCEL-ME"],
                        multi_quantity_share=1)[0]
    listing = sandbox.world.listings["CANCEL-ME"]
    before = listing.quantity
    ordered = sum(i["quantityOrdered"] for i in sandbox.world.orders[order_id]["orderItems"])
    response = httpx.post(f"{sandbox.url}/_sandbox/orders/{order_id}/cancel", json={"reason": "No stock"})
    assert response.json() == {"orderId": order_id, "fulfillmentStatus": "CANCELLED"}
    assert listing.quantity == before + ordered
    shipped = generate(sandbox, count=1, status="UNSHIPPED", afn_share=1)[0]
    sandbox.world.tick()
    refused = httpx.post(f"{sandbox.url}/_sandbox/orders/{shipped}/cancel", json={})
    assert refused.status_code == 400 and "shipped" in refused.json()["errors"][0]["message"]
    missing = httpx.post(f"{sandbox.url}/_sandbox/orders/111-0000000-0000000/cancel", json={})
    assert missing.status_code == 404


def test_ledger_of_a_shipped_and_refunded_order_nets_out(sandbox):
    order_id = generate(sandbox, count=1, status="UNSHIPPED", afn_share=1, promotion_share=1)[0]
    sandbox.world.tick()
    order = sandbox.world.orders[order_id]
    rows = [e for e in sandbox.world.ledger if e.order_id == order_id]
    charges = sum(e.amount for e in rows if e.amount_type in ("ItemPrice", "Promotion"))
    withheld = sum(e.amount for e in rows if e.amount_type == "ItemWithheldTax")
    tax = sum(e.amount for e in rows if e.amount_description.endswith("Tax") and e.amount_type == "ItemPrice")
    assert charges == _d(order["proceeds"]["grandTotal"])  # what the buyer paid
    assert withheld == -tax  # US marketplace facilitator: Amazon keeps the tax
    refund = httpx.post(f"{sandbox.url}/_sandbox/orders/{order_id}/refund", json={}).json()["events"]
    assert {e["transaction_type"] for e in refund} == {"Refund"}
    principal = sum(Decimal(e["amount"]) for e in refund if e["amount_description"] == "Principal")
    assert principal < 0
    ledger = httpx.get(f"{sandbox.url}/_sandbox/ledger").json()["events"]
    assert len(ledger) == len(rows) + len(refund)


def test_faults_listings_and_state_through_the_control_api(sandbox):
    url = f"{sandbox.url}/_sandbox"
    patched = httpx.patch(f"{url}/faults", json={"error_rate": 0.5, "operations": ["getOrder"],
                                                 "stuck_feeds": True, "settlement_locale": "EU"}).json()
    assert patched["error_rate"] == 0.5 and patched["operations"] == ["getOrder"] and patched["stuck_feeds"]
    assert sandbox.world.faults.settlement_locale == "EU"
    bad = httpx.patch(f"{url}/faults", json={"error_rate": 2})
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "InvalidInput"
    unknown = httpx.patch(f"{url}/faults", json={"meltdown": True})
    assert unknown.status_code == 400
    assert httpx.delete(f"{url}/faults").json()["error_rate"] == 0
    seeded = httpx.put(f"{url}/listings", json=[{"sku": "SEED-1", "price": "12.50", "quantity": 7}]).json()
    assert seeded["listings"][0]["price"] == "12.50" and seeded["listings"][0]["quantity"] == 7
    listed = {row["sku"]: row for row in httpx.get(f"{url}/listings").json()["listings"]}
    assert listed["SEED-1"]["quantity"] == 7
    generate(sandbox, count=2, status="UNSHIPPED", afn_share=0)
    state = httpx.get(f"{url}/state").json()
    assert state["orders"] == {"UNSHIPPED": 2} and state["time_scale"] == 1.0
    generated = httpx.post(f"{url}/orders", json={"count": 0})
    assert generated.status_code == 400


def test_cli_serves_and_controls_a_sandbox():
    from erpsync.cli import app

    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "erpsync.cli", "sandbox", "--port", "0", "--time-scale", "10",
                             "--seed", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        assert match, line + proc.stderr.read() if proc.poll() is not None else line
        url = match.group(1)
        runner = CliRunner()
        made = runner.invoke(app, ["sandbox", "orders", "--url", url, "-n", "3", "--unshipped", "--afn-share", "0"])
        assert made.exit_code == 0, made.output
        ids = re.findall(r"\d{3}-\d{7}-\d{7}", made.output)
        assert len(ids) == 3
        assert runner.invoke(app, ["sandbox", "faults", "--url", url, "latency_seconds=0.01"]).exit_code == 0
        shown = runner.invoke(app, ["sandbox", "state", "--url", url])
        assert '"UNSHIPPED": 3' in shown.output and '"latency_seconds": 0.01' in shown.output
        cancelled = runner.invoke(app, ["sandbox", "cancel", ids[0], "--url", url])
        assert "CANCELLED" in cancelled.output
        assert runner.invoke(app, ["sandbox", "advance", "60", "--url", url]).exit_code == 0
        with httpx.Client(base_url=url) as http:
            assert http.get("/_sandbox/time").json()["time_scale"] == 10
        nothing = runner.invoke(app, ["sandbox", "state", "--url", "http://127.0.0.1:9"])
        assert nothing.exit_code == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sandbox_answers_within_latency_fault(sandbox):
    with client(sandbox) as api:
        order_id = generate(sandbox, count=1)[0]
        sandbox.world.faults.latency_seconds = 0.3
        t0 = time.monotonic()
        assert api.get(f"/orders/2026-01-01/orders/{order_id}").status_code == 200
        assert time.monotonic() - t0 >= 0.3
