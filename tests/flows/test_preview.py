"""`erpsync orders preview FILE [--json]`: a saved getOrder response -> canonical order -> Sage staging rows, with
nothing written. Fixtures are built here from Amazon's official getOrder example (read through ``spapi_ref``)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from erpsync.cli import app

pytest.importorskip("erpsync.amazon.translate", reason="the Amazon connector (order_from_api) is not there yet")
replica = pytest.importorskip("erpsync.sage500.replica", reason="the Sage replica is not there yet")
from erpsync.sage500 import schema  # noqa: E402
from erpsync.sage500.engine import make_engine  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def official(spapi_ref):
    """The getOrder 200 example of Amazon's Orders v2026-01-01 model ({"order": {...}})."""
    model = json.loads((spapi_ref / "models" / "orders_2026-01-01.json").read_text())
    return model["paths"]["/orders/2026-01-01/orders/{orderId}"]["get"]["responses"]["200"]["examples"][
        "application/json"]


def us_unshipped(official, sku: str) -> dict:
    """The official example moved to the US marketplace, in USD, not yet shipped, selling ``sku``."""
    response = copy.deepcopy(official)
    order = response["order"]
    order["salesChannel"]["marketplaceId"] = "ATVPDKIKX0DER"
    order["fulfillment"]["fulfillmentStatus"] = "UNSHIPPED"
    order["fulfillment"]["fulfillmentServiceLevel"] = "SECOND_DAY"
    order["recipient"]["deliveryAddress"].update(
        countryCode="US", stateOrRegion="Washington", city="Seattle", postalCode="98109-5210",
        districtOrCounty="", addressLine1="410 Terry Avenue North Suite 1200 Building Doppler")
    order["orderItems"][0]["product"]["sellerSku"] = sku
    text = json.dumps(response).replace('"GBP"', '"USD"')
    return json.loads(text)


def run(tmp_path, payload, *args):
    file = tmp_path / "order.json"
    file.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return runner.invoke(app, ["orders", "preview", str(file), *args])


@pytest.fixture
def sage(workdir):
    """A seeded Sage replica named by ./erpsync.toml in the working directory."""
    (workdir / "erpsync.toml").write_text('[sage500]\nurl = "sqlite:///sage.db"\n')
    engine = make_engine(f"sqlite:///{workdir / 'sage.db'}")
    replica.seed(engine, items=30)
    yield engine
    engine.dispose()


def test_official_example_without_a_database_shows_rows_unchecked(workdir, official):
    result = run(workdir, official, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["action"]["kind"] == "report"  # Shipped on Amazon, never written: reported, not written
    assert shown["order"]["amazon_order_id"] == "202-1234567-8901234"
    header = shown["header"]
    assert (header["CustID"], header["CurrID"], header["CustPONo"]) == ("AMAZON-UK", "GBP", "1234567-8901234")
    assert (header["DfltShipToCountryID"], header["DfltShipToStateID"]) == ("GBR", "")
    assert header["DfltShipToAddrLine5"] == "England"
    assert shown["totals"] == {"sage": "103.97", "amazon": "103.97", "currency": "GBP"}
    (line,) = shown["lines"]
    assert (line["ItemID"], line["QtyOrd"], line["UnitPrice"], line["ExtAmt"]) == (
        "ECHO-DOT-4-UK-CHARCOAL-3PACK", "3", "29.99000", "89.97")
    assert shown["skus"]["ECHO-DOT-4-UK-CHARCOAL-3PACK"]["how"] == "unchecked (identity)"
    assert shown["items_from"].startswith("none: no Sage database")
    assert not (workdir / ".erpsync" / "sage500.db").exists()  # a preview creates nothing


def test_tables_are_printed_by_default(workdir, official):
    result = run(workdir, official)
    assert result.exit_code == 0, result.output
    for title in ("Amazon order items (canonical)", "StgSalesOrder (would be written)", "StgSOLine (would be written)",
                  "total: Sage 103.97 / Amazon 103.97 GBP", "action: report"):
        assert title in result.stdout


def test_with_the_replica_item_data_comes_from_sage_and_nothing_is_written(sage, workdir, official):
    item_id, short_desc, unit = replica.catalog()[0][:3]
    payload = us_unshipped(official, item_id.lower())  # Sage compares ItemIDs ignoring case
    result = run(workdir, payload, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["action"]["kind"] == "write" and shown["items_from"].startswith("Sage database")
    header, (line,) = shown["header"], shown["lines"]
    assert (header["CustID"], header["DfltShipMethID"], header["DfltShipToStateID"]) == (
        "AMAZON-US", "UPS 2DAY", "WA")
    assert (header["DfltShipToAddrLine2"], header["DfltShipToAddrLine3"]) == (
        "410 Terry Ave N Ste 1200 Bldg Doppler", "Unit 4B")  # USPS Pub 28; house number and street on one line
    assert (line["ItemID"], line["Description"], line["UnitMeasID"]) == (item_id, short_desc, unit)
    assert shown["skus"][item_id.lower()]["how"] == "identity (case)"
    with sage.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.StgSalesOrder)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(schema.tsoSalesOrder)).scalar_one() == 0


def test_unknown_sku_against_the_replica_exits_1_with_closest_items(sage, workdir, official):
    item_id = replica.catalog()[0][0]
    result = run(workdir, us_unshipped(official, item_id + "X"))
    assert result.exit_code == 1
    assert f"SKU '{item_id}X' (order 202-1234567-8901234) has no Sage item; closest items: {item_id} (" in (
        result.stderr)
    assert result.stdout == ""


def test_total_mismatch_exits_1_and_explains(workdir, official):
    payload = copy.deepcopy(official)
    payload["order"]["proceeds"]["grandTotal"]["amount"] = "105.97"
    result = run(workdir, payload)
    assert result.exit_code == 1
    stderr = result.stderr
    assert "does not equal Amazon's order total 105.97 GBP" in stderr and "outside the items" in stderr


@pytest.mark.parametrize("mutate, message", [
    (lambda order: order.pop("orderId"), "orderId"),
    (lambda order: order["salesChannel"].update(marketplaceId="A1VC38T7YXB528"), "[mapping] customers"),
])
def test_invalid_or_unmappable_order_exits_1_with_the_reason(workdir, official, mutate, message):
    payload = copy.deepcopy(official)
    mutate(payload["order"])
    result = run(workdir, payload["order"])  # the bare Order works as well as {"order": ...}
    assert result.exit_code == 1
    assert message in result.stderr


def test_unreadable_file_exits_1(workdir):
    result = run(workdir, "{not json")
    assert result.exit_code == 1 and "cannot read a JSON getOrder response" in result.stderr


LONG_US_BUSINESS = {
    "name": "Christopher Alexander Jonathan Montgomery-Smith", "companyName": "Northwestern Regional Distribution LLC",
    "addressLine1": "1234 North Martin Luther King Junior Boulevard", "addressLine2": "Suite 1500 Building C",
    "addressLine3": "Attention Receiving Department", "city": "Rancho Santa Margarita", "districtOrCounty": "",
    "stateOrRegion": "California", "postalCode": "92688-1234", "countryCode": "US", "addressType": "COMMERCIAL"}
PUB28 = {"NORTH": "N", "BOULEVARD": "BLVD", "SUITE": "STE", "BUILDING": "BLDG", "ATTENTION": "ATTN",
         "DEPARTMENT": "DEPT"}


def test_long_us_business_address_preview_shows_a_label_that_prints_whole(workdir, official):
    """Issue 9's acceptance: a person's name over 40 characters stays whole in AddrName (middle names as
    initials), City holds whole words, house number and street are on one line, and every word of the ship-to is
    in the Sage fields (or its Pub 28 abbreviation); nothing overflows into comments, so the order is not held."""
    assert len(LONG_US_BUSINESS["name"]) > 40 and len(LONG_US_BUSINESS["city"]) > 20
    payload = us_unshipped(official, "ECHO-DOT-4-UK-CHARCOAL-3PACK")
    payload["order"]["recipient"]["deliveryAddress"] = dict(LONG_US_BUSINESS)
    result = run(workdir, payload, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    header = shown["header"]
    assert header["DfltShipToAddrName"] == "Christopher A. J. Montgomery-Smith"  # first and last name whole
    lines = [header[f"DfltShipToAddrLine{n}"] for n in range(1, 6)]
    assert lines == ["Northwestern Regional Distribution LLC", "1234 N Martin Luther King Junior Blvd",
                     "Ste 1500 Bldg C", "Attn Receiving Dept", "Rancho Santa Margarita"]  # the whole city kept
    city = header["DfltShipToCity"]
    assert city == "Rancho Santa" and all(word in LONG_US_BUSINESS["city"].split() for word in city.split())
    fields = " ".join([header["DfltShipToAddrName"], *lines, city]).upper().replace(",", " ").split()
    middle = LONG_US_BUSINESS["name"].upper().split()[1:-1]
    for key in ("name", "companyName", "addressLine1", "addressLine2", "addressLine3", "city"):
        for word in LONG_US_BUSINESS[key].upper().split():
            initial = f"{word[0]}." if word in middle else None
            assert word in fields or PUB28.get(word) in fields or initial in fields, (word, fields)
    assert (header["DfltShipToStateID"], header["DfltShipToPostalCode"]) == ("CA", "92688-1234")
    assert header["TranCmnt"] == "Amazon 202-1234567-8901234" and "ship-to" not in shown["lines"][0]["ExtCmnt"]
    assert shown["review"] == {"hold": False, "hold_reason": None, "reasons": [],
                               "not_checked": ["price", "quantity"]}
    assert "ship-to: name over 40 characters: middle names as initials" in shown["notes"]
    text = run(workdir, payload).stdout  # the tables a person reads show the same
    for row in ("DfltShipToAddrName   │ Christopher A. J. Montgomery-Smith", "DfltShipToCity       │ Rancho Santa ",
                "DfltShipToAddrLine2  │ 1234 N Martin Luther King Junior Blvd"):
        assert row in text, text
    assert "data quality: no reason to hold" in text
    assert "not checked without a Sage database: price, quantity" in text


def test_an_ambiguous_ship_to_is_shown_as_a_reason_to_hold(workdir, official):
    payload = us_unshipped(official, "ECHO-DOT-4-UK-CHARCOAL-3PACK")
    payload["order"]["recipient"]["deliveryAddress"].update(addressLine1="123 Main Street",
                                                            addressLine2="456 Oak Avenue")
    shown = json.loads(run(workdir, payload, "--json").stdout)
    (reason,) = shown["review"]["reasons"]
    assert reason.startswith("ship-to ambiguous: usaddress reads more than one AddressNumber")
    assert (shown["review"]["hold"], shown["header"]["Hold"], shown["header"]["HoldReason"]) == (
        True, 1, "Amazon: review")
    text = run(workdir, payload).stdout
    assert "on hold for review (HoldReason 'Amazon: review'):" in text
    assert "hold: ship-to ambiguous: usaddress reads more than one AddressNumber" in text


def test_a_quantity_far_above_the_items_sage_history_is_shown_as_a_reason_to_hold(sage, workdir, official):
    """Three earlier Sage orders of the item, one unit each, written through the gateway: Amazon's example asks for
    3 units, above median 1 + [quality] quantity_mad_factor 1 x 1 unit."""
    from dataclasses import replace
    from datetime import datetime, timezone

    from erpsync import config
    from erpsync.commands.orders import build_preview
    from erpsync.sage500.gateway import Sage500Gateway

    (workdir / "erpsync.toml").write_text('[sage500]\nurl = "sqlite:///sage.db"\n\n[quality]\n'
                                          'checks = ["label", "quantity", "ship_to"]\nquantity_min_history = 3\n'
                                          'quantity_mad_factor = "1"\n')
    item_id = replica.catalog()[0][0]
    payload = us_unshipped(official, item_id)
    staged = build_preview(payload, config.load()).staged
    with Sage500Gateway(sage) as gateway:
        for number in range(3):
            (line,) = staged.lines
            gateway.create_sales_order(replace(
                staged, AmazonOrderId=f"113-0000000-000000{number}", TranDate=datetime.now(timezone.utc),
                lines=(replace(line, QtyOrd=Decimal(1), ExtAmt=line.UnitPrice),)))
    shown = json.loads(run(workdir, payload, "--json").stdout)
    (reason,) = shown["review"]["reasons"]
    assert reason.startswith(f"quantity: 3 units of item {item_id} (SKU {item_id}) against a median of 1 over its "
                             f"last 3 Sage orders (limit 2 = median + [quality] quantity_mad_factor 1 × 1)")
    assert shown["review"]["hold"] is True and shown["review"]["not_checked"] == []
    text = run(workdir, payload).stdout
    assert f"hold: quantity: 3 units of item {item_id}" in text
    (workdir / "erpsync.toml").write_text('[sage500]\nurl = "sqlite:///sage.db"\n\n[quality]\n'
                                          'checks = ["quantity"]\nquantity_min_history = 3\n')
    assert json.loads(run(workdir, payload, "--json").stdout)["review"]["hold"] is False  # default factor 8


def test_a_price_far_from_the_sage_price_sheet_is_shown_as_a_reason_to_hold(sage, workdir, official):
    from erpsync.sage500 import history

    item_id = replica.catalog()[0][0]
    sheet = history.list_prices(sage, "SOA", "USD", [item_id], warehouse_id="MAIN")[item_id]
    payload = us_unshipped(official, item_id)  # Amazon's example sells at 29.99 a unit
    off = (Decimal("29.99") - sheet) / sheet * 100
    assert abs(off) > 25, "the replica's price moved: pick an item whose sheet price is far from 29.99"
    shown = json.loads(run(workdir, payload, "--json").stdout)
    (reason,) = shown["review"]["reasons"]
    assert reason.startswith(f"price: SKU {item_id} (item {item_id}) sells at 29.99 USD a unit, ")
    assert f"the Sage price sheet's {sheet.quantize(Decimal('0.01'))}" in reason
    assert shown["review"]["hold"] is True and shown["review"]["not_checked"] == []
    assert (shown["header"]["Hold"], shown["header"]["HoldReason"]) == (1, "Amazon: review")
    text = run(workdir, payload).stdout
    assert "on hold for review (HoldReason 'Amazon: review'):" in text and f"hold: price: SKU {item_id}" in text
    (workdir / "erpsync.toml").write_text('[sage500]\nurl = "sqlite:///sage.db"\n\n[quality]\n'
                                          'price_tolerance_percent = "200"\n')
    assert json.loads(run(workdir, payload, "--json").stdout)["review"]["hold"] is False
