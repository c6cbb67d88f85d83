"""Our own SP-API client against Amazon's models: every call an operation module makes (method, path, operationId)
is one the official models declare, and the product never imports python-amazon-sp-api (a test dependency only).

The operations run against a recorder standing in for :meth:`AmazonClient.call`, which answers each operationId with
the smallest body the module reads; the recorded calls are then looked up in the models' paths."""

from __future__ import annotations

import ast
import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

import erpsync
from erpsync import model
from erpsync.amazon.client import Reply
from erpsync.amazon.feeds import Feeds
from erpsync.amazon.inventory import Inventory
from erpsync.amazon.listings import Listings
from erpsync.amazon.notifications import Notifications
from erpsync.amazon.orders import Orders
from erpsync.amazon.reports import SETTLEMENT, Reports
from erpsync.errors import InvalidData

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
FEED = {"feedId": "F1", "feedType": "JSON_LISTINGS_FEED", "processingStatus": "DONE", "resultFeedDocumentId": "D2"}
REPORT = {"reportId": "R1", "reportType": SETTLEMENT, "processingStatus": "DONE", "reportDocumentId": "D3"}
ANSWERS = {
    "searchOrders": {"orders": []}, "getOrder": {"order": {"orderId": "113-1234567-7654321"}},
    "createFeedDocument": {"feedDocumentId": "D1", "url": "https://docs.example/D1?X-Amz-Signature=s"},
    "createFeed": {"feedId": "F1"}, "getFeed": FEED,
    "getFeedDocument": {"feedDocumentId": "D2", "url": "https://docs.example/D2?X-Amz-Signature=s"},
    "getReports": {"reports": [REPORT]}, "getReport": REPORT, "createReport": {"reportId": "R2"},
    "getReportDocument": {"reportDocumentId": "D3", "url": "https://docs.example/D3?X-Amz-Signature=s"},
    "getListingsItem": {"sku": "A"}, "patchListingsItem": {"sku": "A", "status": "ACCEPTED"},
    "getInventorySummaries": {"payload": {"inventorySummaries": []}},
    "createDestination": {"payload": {"destinationId": "X"}},
    "createSubscription": {"payload": {"subscriptionId": "Y"}},
    "getDestinations": {"payload": []}, "getSubscription": {"payload": {"subscriptionId": "Y"}},
}


class Recorder:
    """Stands in for AmazonClient: records (operationId, method, path) and answers from ANSWERS."""

    seller_id, marketplace_ids = "A1SELLER", ["ATVPDKIKX0DER"]

    def __init__(self):
        self.calls: list[tuple[str, str, str]] = []

    def call(self, operation, method, path, *, params=None, body=None, grantless=None):
        self.calls.append((operation, method, path))
        return Reply(200, json.loads(json.dumps(ANSWERS.get(operation))), "request-id")

    def upload(self, url, data, content_type):
        pass

    def download(self, url, *, compression=None):
        return b'{"summary": {}}' if "D2" in url else b"settlement"

    def download_to(self, url, sink):
        sink.write(b"settlement")


def _every_operation(client: Recorder) -> None:
    orders, feeds, reports = Orders(client), Feeds(client), Reports(client)
    list(orders.search_orders(last_updated_after=NOW))
    with pytest.raises(InvalidData):  # the canned order is not translatable: the call is what counts here
        orders.get_order("113-1234567-7654321")
    package = model.Package(package_reference_id="1", tracking_number="1Z", carrier_code="UPS",
                            items=(model.PackageItem(order_item_id="1", quantity=Decimal(1)),))
    orders.confirm_shipment("113-1234567-7654321", "ATVPDKIKX0DER", package, NOW)
    feeds.submit_listings_feed([{"messageId": 1, "sku": "A", "operationType": "PATCH", "productType": "PRODUCT",
                                 "patches": []}])
    feeds.feed_result("F1")
    reports.settlement_reports(NOW)
    reports.download_document("D3")
    with reports.open_document("D3") as lines:
        assert list(lines) == ["settlement"]
    reports.request_all_orders_report(NOW)
    reports.report_status("R1")
    Listings(client).get_listings_item("A")
    Listings(client).patch_listings_item("A", [])
    list(Inventory(client).summaries())
    Notifications(client).create_destination("d", "arn:aws:sqs:us-east-1:123456789012:q")
    Notifications(client).create_subscription("X")
    Notifications(client).create_subscription("X", "LISTINGS_ITEM_ISSUES_CHANGE")
    Notifications(client).destinations()
    Notifications(client).subscription("FBA_INVENTORY_AVAILABILITY_CHANGES")


def _declared(spapi_ref: Path) -> list[tuple[str, str, re.Pattern]]:
    """(operationId, METHOD, path regex) for every operation of every model."""
    found = []
    for file in sorted((spapi_ref / "models").glob("*.json")):
        for template, operations in json.loads(file.read_text())["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
            for method, spec in operations.items():
                if isinstance(spec, dict) and "operationId" in spec:
                    found.append((spec["operationId"], method.upper(), pattern))
    return found


def test_every_call_is_an_operation_of_amazons_models(spapi_ref):
    client = Recorder()
    _every_operation(client)
    declared = _declared(spapi_ref)
    assert {operation for operation, _, _ in client.calls} == set(ANSWERS) | {"confirmShipment"}
    unknown = [(operation, method, path) for operation, method, path in client.calls
               if not any(operation == op and method == verb and pattern.match(path)
                          for op, verb, pattern in declared)]
    assert unknown == []
    # and the check can fail: a path or a method the models do not have
    assert not any(op == "getOrder" and verb == "GET" and pattern.match("/orders/2026-01-01/order/1")
                   for op, verb, pattern in declared)
    assert not any(op == "patchListingsItem" and verb == "POST" and pattern.match("/listings/2021-08-01/items/A/B")
                   for op, verb, pattern in declared)


def test_the_product_never_imports_python_amazon_sp_api():
    src = Path(erpsync.__file__).parent
    found = []
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(src)}:{node.lineno} imports {name}" for name in names
                      if name.split(".")[0] == "sp_api"]
    assert found == []
    pyproject = (src.parent.parent / "pyproject.toml").read_text()
    runtime = pyproject.split("[project.optional-dependencies]")[0]
    assert "python-amazon-sp-api" not in runtime and "python-amazon-sp-api" in pyproject
