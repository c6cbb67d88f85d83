"""The sandbox's listing control calls: drift without a feed, and the inventory notifications they send, valid
against Amazon's schemas (FBA availability, listing status); the issues change carries what getListingsItem reads."""

from __future__ import annotations

import httpx

from tests.sandbox.spapi_schema import assert_valid, json_schema_validator

US = "ATVPDKIKX0DER"


class Recorder:
    name = "recorder"

    def __init__(self):
        self.bodies = []

    def send(self, body):
        self.bodies.append(body)


def control(sandbox, method, path, **kw):
    response = httpx.request(method, f"{sandbox.url}/_sandbox/{path}", timeout=10, **kw)
    return response


def test_drift_changes_quantities_silently(sandbox):
    control(sandbox, "PUT", "listings", json=[{"sku": "A-1", "price": "5.00", "quantity": 10}])
    drifted = control(sandbox, "POST", "listings/drift", json={"skus": ["A-1"], "delta": -4}).json()["drifted"]
    assert drifted == [{"sku": "A-1", "before": 10, "after": 6}]
    assert sandbox.world.listings["A-1"].quantity == 6 and not sandbox.world.published
    assert control(sandbox, "POST", "listings/drift", json={"skus": ["NOPE"]}).status_code == 400


def test_notifications_match_amazons_schemas(sandbox, spapi_ref, api):
    recorder = Recorder()
    sandbox.world.notification_sinks.append(recorder)
    control(sandbox, "PUT", "listings", json=[{"sku": "A-2", "price": "5.00", "quantity": 10}])
    folder = spapi_ref / "schemas" / "notifications"
    fba = control(sandbox, "POST", "listings/A-2/fba", json={"quantity": 12}).json()
    assert_valid(json_schema_validator(folder / "FBAInventoryAvailabilityChangeNotification.json"), fba)
    status = control(sandbox, "POST", "listings/A-2/status", json={"status": []}).json()
    status_schema = json_schema_validator(folder / "ListingsItemStatusChangeNotification.json")
    # the schema's enum says LISTINGS_ITEM_STATUS_CHANGED while its example and subscriptions say ..._CHANGE
    assert_valid(status_schema, {**status, "NotificationType": "LISTINGS_ITEM_STATUS_CHANGED"})
    issue = control(sandbox, "POST", "listings/A-2/issues", json={"message": "Bad brand.", "attribute": "brand"})
    assert issue.json()["Payload"]["Severities"] == ["ERROR"] and issue.json()["PayloadVersion"] == "2023-12-13"
    assert len(recorder.bodies) == 3
    item = api.get(f"/listings/2021-08-01/items/{sandbox.world.seller_id}/A-2",
                   params={"marketplaceIds": US, "includedData": "issues,summaries"}).json()
    assert item["issues"][0]["message"] == "Bad brand." and item["issues"][0]["attributeNames"] == ["brand"]
    assert sandbox.world.listings["A-2"].fulfillment_channel == "AMAZON_NA"
