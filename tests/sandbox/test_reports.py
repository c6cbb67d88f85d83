"""Reports API over real HTTP: settlement reports made from what the sandbox saw (orders shipped by Amazon and
by the seller, refunds, period charges), consecutive and automatic settlement periods, EU and changed formats,
the all-orders report, bad requests, conformance to Amazon's model, and python-amazon-sp-api downloading a
settlement."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from erpsync.sandbox import reports, settlement
from erpsync.sandbox.orders import ship_items
from erpsync.sandbox.reports import ALL_ORDERS, SETTLEMENT, close_settlement
from erpsync.sandbox.world import Listing
from tests.sandbox.helpers import client, generate, sp_api_config
from tests.sandbox.spapi_schema import assert_valid, swagger_validator

US = "ATVPDKIKX0DER"
DONE_AFTER = reports.QUEUE_SECONDS + reports.PROCESSING_SECONDS + 1


@pytest.fixture
def sandbox_options():
    """Mid-month start: the monthly charges fall in the first settlement only."""
    return {"seed": 21, "start": datetime(2026, 3, 10, 9, 30, tzinfo=timezone.utc)}


@pytest.fixture(scope="module")
def models(spapi_ref):
    model = spapi_ref / "models" / "reports_2021-06-30.json"
    return {name: swagger_validator(model, name)
            for name in ("Report", "GetReportsResponse", "ReportDocument", "CreateReportResponse", "ErrorList")}


def _trade(sandbox, count=40):
    """Orders of every kind; AFN shipped by Amazon, the MFN ones shipped by the seller, one item refunded."""
    world = sandbox.world
    world.listings["FBA-STOCK"] = Listing(sku="FBA-STOCK", asin="B0FBASTOCK", title="Stocked at Amazon",
                                          price=Decimal("25.00"), quantity=120, fulfillment_channel="AMAZON_NA")
    generate(sandbox, count=count, status="UNSHIPPED", afn_share=0.5, promotion_share=0.5, gift_share=0.3,
             multi_line_share=0.5, multi_quantity_share=0.5)
    world.tick()
    with world.lock:
        for order in world.orders.values():
            if order["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED":
                ship_items(world, order, {i["orderItemId"]: i["fulfillment"]["quantityUnfulfilled"]
                                          for i in order["orderItems"]}, shipment_id=f"S{world.next_id(8)}")
    shipped = next(iter(world.orders))
    refunded = httpx.post(f"{sandbox.url}/_sandbox/orders/{shipped}/refund", json={})
    assert refunded.status_code == 200, refunded.text


def _download(api, document_id) -> str:
    document = api.get(f"/reports/2021-06-30/documents/{document_id}").json()
    raw = httpx.get(document["url"]).content
    return (gzip.decompress(raw) if document.get("compressionAlgorithm") == "GZIP" else raw).decode("utf-8")


def _rows(text):
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def _amount(text, comma=False):
    return Decimal(text.replace(",", ".") if comma else text)


def test_settlement_report_holds_everything_the_sandbox_saw_and_adds_up(sandbox, api, models):
    world = sandbox.world
    _trade(sandbox)
    world.advance(60)
    response = httpx.post(f"{sandbox.url}/_sandbox/settlements", json={})
    assert response.status_code == 201, response.text
    closed = response.json()
    listed = api.get("/reports/2021-06-30/reports", params={"reportTypes": SETTLEMENT})
    assert listed.status_code == 200 and "x-amzn-RateLimit-Limit" in listed.headers
    assert_valid(models["GetReportsResponse"], listed.json())
    assert [r["reportId"] for r in listed.json()["reports"]] == [closed["reportId"]]
    report = api.get(f"/reports/2021-06-30/reports/{closed['reportId']}").json()
    assert_valid(models["Report"], report)
    assert report["processingStatus"] == "DONE" and report["marketplaceIds"] == [US]
    document = api.get(f"/reports/2021-06-30/documents/{report['reportDocumentId']}")
    assert_valid(models["ReportDocument"], document.json())
    assert document.json()["compressionAlgorithm"] == "GZIP"  # 40 orders make a file of more than 16 KiB
    rows = _rows(_download(api, report["reportDocumentId"]))
    summary, lines = rows[0], rows[1:]
    assert summary["settlement-id"] == closed["settlementId"] and summary["currency"] == "USD"
    total = _amount(summary["total-amount"])
    assert sum(_amount(line["amount"]) for line in lines) == total == Decimal(closed["totalAmount"])
    assert len(lines) == len([e for e in world.ledger if e.marketplace_id == US])  # every event exactly once
    kinds = {(line["transaction-type"], line["amount-type"], line["amount-description"]) for line in lines}
    for expected in [("Order", "ItemPrice", "Principal"), ("Order", "ItemFees", "Commission"),
                     ("Order", "ItemFees", "FBAPerUnitFulfillmentFee"), ("Order", "Promotion", "Principal"),
                     ("Order", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal"),
                     ("Refund", "ItemPrice", "Principal"), ("Refund", "ItemFees", "RefundCommission"),
                     ("ServiceFee", "Cost of Advertising", "TransactionTotalAmount"),
                     ("ServiceFee", "Subscription", "Subscription Fee"),
                     ("other-transaction", "other-transaction", "Storage Fee"),
                     ("other-transaction", "other-transaction", "FBAInboundTransportationFee"),
                     ("other-transaction", "other-transaction", "Current Reserve Amount")]:
        assert expected in kinds, expected
    fba = [line for line in lines if line["amount-description"] == "FBAPerUnitFulfillmentFee"]
    assert all(line["shipment-id"] and line["fulfillment-id"] == "AFN" and _amount(line["amount"]) < 0
               for line in fba)
    inbound = next(line for line in lines if line["amount-description"] == "FBAInboundTransportationFee")
    assert inbound["order-id"].startswith("FBA15") and inbound["order-id"] == inbound["shipment-id"]
    reserve = next(line for line in lines if line["amount-description"] == "Current Reserve Amount")
    assert _amount(reserve["amount"]) < 0


def test_consecutive_settlements_cover_each_event_once_and_release_the_reserve(sandbox, api):
    world = sandbox.world
    _trade(sandbox, count=10)
    first = world.reports[close_settlement(world)]
    generate(sandbox, count=5, status="UNSHIPPED", afn_share=1.0)
    world.advance(60)
    second = world.reports[close_settlement(world)]
    assert second["dataStartTime"] == first["dataEndTime"]
    old, new = (_rows(_download(api, r["reportDocumentId"]))[1:] for r in (first, second))
    assert not ({(r["order-id"], r["order-item-code"], r["amount-description"]) for r in old if r["order-id"]}
                & {(r["order-id"], r["order-item-code"], r["amount-description"]) for r in new if r["order-id"]})
    held = next(r for r in old if r["amount-description"] == "Current Reserve Amount")
    released = next(r for r in new if r["amount-description"] == "Previous Reserve Amount Balance")
    assert _amount(released["amount"]) == -_amount(held["amount"])
    assert not any(r["amount-description"] == "Subscription Fee" for r in new)  # monthly, charged once


def test_a_settlement_is_published_for_every_fourteen_days_of_sandbox_time(sandbox):
    world = sandbox.world
    generate(sandbox, count=3, status="UNSHIPPED", afn_share=1.0)
    world.advance(29 * 24 * 3600)
    with client(sandbox) as api:  # a fresh token: a month of sandbox time has passed
        found = api.get("/reports/2021-06-30/reports", params={"reportTypes": SETTLEMENT}).json()["reports"]
    assert len(found) == 2
    ends = sorted(datetime.fromisoformat(r["dataEndTime"].replace("Z", "+00:00")) for r in found)
    start = world.clock.start.replace(microsecond=0)
    assert [end - start for end in ends] == [timedelta(days=14), timedelta(days=28)]


def test_eu_locale_and_format_change_faults_change_the_file(sandbox, api):
    world = sandbox.world
    _trade(sandbox, count=8)
    world.faults.settlement_locale = "EU"
    eu = world.reports[close_settlement(world)]
    text = _download(api, eu["reportDocumentId"])
    header = text.splitlines()[0].split("\t")
    assert header == list(settlement.COLUMNS) + ["promotion-id"]
    rows = _rows(text)
    assert rows[0]["settlement-end-date"][2] == "." and "," in rows[0]["total-amount"]
    assert sum(_amount(r["amount"], True) for r in rows[1:]) == _amount(rows[0]["total-amount"], True)
    world.faults.settlement_format_change = True
    generate(sandbox, count=3, status="UNSHIPPED", afn_share=1.0)
    world.advance(60)
    changed = world.reports[close_settlement(world)]
    text = _download(api, changed["reportDocumentId"])
    header = text.splitlines()[0].split("\t")
    assert settlement.EXTRA_COLUMN in header and header.index("amount") != settlement.COLUMNS.index("amount")
    rows = _rows(text)
    assert sum(_amount(r["amount"], True) for r in rows[1:]) == _amount(rows[0]["total-amount"], True)


def test_all_orders_report_lists_each_item_updated_in_the_range(sandbox, api, models):
    world = sandbox.world
    ids = generate(sandbox, count=6, status="UNSHIPPED", multi_line_share=1.0, business_share=0.5)
    world.advance(5)
    created = api.post("/reports/2021-06-30/reports", json={"reportType": ALL_ORDERS, "marketplaceIds": [US]})
    assert created.status_code == 202
    assert_valid(models["CreateReportResponse"], created.json())
    report_id = created.json()["reportId"]
    assert api.get(f"/reports/2021-06-30/reports/{report_id}").json()["processingStatus"] == "IN_QUEUE"
    world.advance(DONE_AFTER)
    report = api.get(f"/reports/2021-06-30/reports/{report_id}").json()
    assert_valid(models["Report"], report)
    assert report["processingStatus"] == "DONE"
    text = _download(api, report["reportDocumentId"])
    assert text.splitlines()[0].split("\t") == list(reports.ALL_ORDERS_COLUMNS)
    rows = _rows(text)
    expected = [(o, i["orderItemId"]) for o in ids for i in world.orders[o]["orderItems"]]
    assert len(rows) == len(expected)
    assert {r["amazon-order-id"] for r in rows} == set(ids)
    for row in rows:
        order = world.orders[row["amazon-order-id"]]
        item = next(i for i in order["orderItems"] if i["product"]["sellerSku"] == row["sku"])
        assert int(row["quantity"]) == item["quantityOrdered"]
        assert row["order-status"] in ("Shipped", "Unshipped")
        assert row["is-business-order"] == ("true" if "AMAZON_BUSINESS" in order["programs"] else "false")
        assert order["buyer"]["buyerName"] not in text  # no buyer PII in this report
    later = api.post("/reports/2021-06-30/reports", json={
        "reportType": ALL_ORDERS, "marketplaceIds": ["A2EUQ1WTGCTBG2"]}).json()["reportId"]
    world.advance(DONE_AFTER)
    nothing = api.get(f"/reports/2021-06-30/reports/{later}").json()
    assert nothing["processingStatus"] == "CANCELLED" and "reportDocumentId" not in nothing


def test_cancel_report_only_in_queue(sandbox, api):
    generate(sandbox, count=2, status="UNSHIPPED")
    report_id = api.post("/reports/2021-06-30/reports", json={"reportType": ALL_ORDERS,
                                                              "marketplaceIds": [US]}).json()["reportId"]
    assert api.delete(f"/reports/2021-06-30/reports/{report_id}").status_code == 200
    sandbox.world.advance(DONE_AFTER)
    assert api.get(f"/reports/2021-06-30/reports/{report_id}").json()["processingStatus"] == "CANCELLED"
    settled = close_settlement(sandbox.world)
    refused = api.delete(f"/reports/2021-06-30/reports/{settled}")
    assert refused.status_code == 400 and "only reports IN_QUEUE" in refused.json()["errors"][0]["message"]


def test_get_reports_filters_and_pages(sandbox, api, models):
    world = sandbox.world
    ids = []
    for _ in range(3):
        generate(sandbox, count=1, status="UNSHIPPED", afn_share=1.0)
        world.advance(60)
        ids.append(close_settlement(world))
    first = api.get("/reports/2021-06-30/reports", params={"reportTypes": SETTLEMENT, "pageSize": 2}).json()
    assert_valid(models["GetReportsResponse"], first)
    assert [r["reportId"] for r in first["reports"]] == ids[:0:-1]  # newest first
    second = api.get("/reports/2021-06-30/reports", params={"nextToken": first["nextToken"]}).json()
    assert [r["reportId"] for r in second["reports"]] == ids[:1] and "nextToken" not in second
    since = world.reports[ids[1]]["createdTime"].strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = api.get("/reports/2021-06-30/reports", params={"reportTypes": SETTLEMENT, "createdSince": since})
    assert {r["reportId"] for r in recent.json()["reports"]} == set(ids[1:])
    none = api.get("/reports/2021-06-30/reports", params={"reportTypes": SETTLEMENT,
                                                          "processingStatuses": "IN_PROGRESS"}).json()
    assert none == {"reports": []}


def test_bad_report_requests_get_amazons_status_codes_and_error_shape(sandbox, api, models):
    def check(response, status, text):
        assert response.status_code == status, response.text
        assert_valid(models["ErrorList"], response.json())
        assert text in json.dumps(response.json())

    url = "/reports/2021-06-30/reports"
    check(api.post(url, json={"reportType": SETTLEMENT, "marketplaceIds": [US]}), 400, "cannot be requested")
    check(api.post(url, json={"reportType": "GET_FLAT_FILE_OPEN_LISTINGS_DATA", "marketplaceIds": [US]}), 400,
          "not supported")
    check(api.post(url, json={"reportType": ALL_ORDERS}), 400, "marketplaceIds is required")
    check(api.post(url, json={"reportType": ALL_ORDERS, "marketplaceIds": [US],
                              "dataEndTime": "2999-01-01T00:00:00Z"}), 400, "future")
    check(api.post(url, json={"reportType": ALL_ORDERS, "marketplaceIds": [US],
                              "dataStartTime": "2026-01-02T00:00:00Z", "dataEndTime": "2026-01-01T00:00:00Z"}),
          400, "before")
    check(api.get(f"{url}/999"), 404, "NotFound")
    check(api.get("/reports/2021-06-30/documents/nope"), 404, "NotFound")
    check(api.get(url), 400, "reportTypes or nextToken")
    check(api.get(url, params={"reportTypes": SETTLEMENT, "createdSince": "yesterday"}), 400, "createdSince")
    check(api.delete(f"{url}/999"), 404, "NotFound")
    check(httpx.get(f"{sandbox.url}{url}/999"), 403, "Unauthorized")
    control = httpx.post(f"{sandbox.url}/_sandbox/settlements", json={"marketplaceId": "XX"})
    assert control.status_code == 400 and "XX" in control.text


def test_unmodified_sp_api_client_downloads_a_settlement(sandbox):
    from sp_api.api import Reports

    _trade(sandbox, count=12)
    report_id = close_settlement(sandbox.world)
    reports_api = Reports(**sp_api_config(sandbox))
    found = reports_api.get_reports(reportTypes=[SETTLEMENT]).payload["reports"]
    assert [r["reportId"] for r in found] == [report_id]
    document_id = reports_api.get_report(report_id).payload["reportDocumentId"]
    downloaded = reports_api.get_report_document(document_id, download=True)
    rows = _rows(downloaded.payload["document"])
    assert sum(_amount(r["amount"]) for r in rows[1:]) == _amount(rows[0]["total-amount"])
    assert rows[0]["settlement-id"] == sandbox.world.reports[report_id]["_settlementId"]
    requested = reports_api.create_report(reportType=ALL_ORDERS, marketplaceIds=[US]).payload["reportId"]
    sandbox.world.advance(DONE_AFTER)
    assert reports_api.get_report(requested).payload["processingStatus"] == "DONE"
