"""FBA Inventory getInventorySummaries over real HTTP: Amazon-fulfilled listings only, details, SKU and date
filters, 50-item pages with 30-second tokens, bad requests, conformance, and the unmodified sp_api client."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from erpsync.sandbox import inventory
from erpsync.sandbox.world import Listing
from tests.sandbox.helpers import sp_api_config
from tests.sandbox.spapi_schema import assert_valid, swagger_validator

US = "ATVPDKIKX0DER"
URL = "/fba/inventory/v1/summaries"
BASE = {"granularityType": "Marketplace", "granularityId": US, "marketplaceIds": US}


@pytest.fixture
def sandbox_options():
    return {"seed": 4}


@pytest.fixture
def sandbox(sandbox):
    world = sandbox.world
    for n in range(120):
        world.listings[f"FBA-{n:03d}"] = Listing(
            sku=f"FBA-{n:03d}", asin=f"B00000{n:04d}", title=f"Item {n}", price=Decimal("9.99"), quantity=n,
            fulfillment_channel="AMAZON_NA", fnsku=f"X0000{n:05d}", created=world.now(), updated=world.now())
    world.listings["MFN-ONLY"] = Listing(sku="MFN-ONLY", asin="B0MFN", title="Ships from seller",
                                         price=Decimal("5"), quantity=3)
    return sandbox


@pytest.fixture(scope="module")
def model(spapi_ref):
    return swagger_validator(spapi_ref / "models" / "fbaInventory.json", "GetInventorySummariesResponse")


def test_pages_through_every_amazon_fulfilled_listing(sandbox, api, model):
    skus, token, pages = [], None, 0
    while True:
        params = {**BASE, "details": "true"} | ({"nextToken": token} if token else {})
        response = api.get(URL, params=params)
        assert response.status_code == 200 and "x-amzn-RateLimit-Limit" in response.headers
        assert_valid(model, response.json())
        body = response.json()
        assert body["payload"]["granularity"] == {"granularityType": "Marketplace", "granularityId": US}
        skus += [s["sellerSku"] for s in body["payload"]["inventorySummaries"]]
        pages += 1
        token = body.get("pagination", {}).get("nextToken")
        if token is None:
            break
    assert pages == 3 and len(skus) == 120 == len(set(skus)) and "MFN-ONLY" not in skus
    first = api.get(URL, params={**BASE, "details": "true", "sellerSku": "FBA-007"}).json()
    summary = first["payload"]["inventorySummaries"][0]
    assert summary["totalQuantity"] == 7 and summary["inventoryDetails"]["fulfillableQuantity"] == 7
    assert summary["fnSku"] == "X000000007" and summary["condition"] == "NewItem"
    plain = api.get(URL, params={**BASE, "sellerSku": "FBA-007"}).json()["payload"]["inventorySummaries"][0]
    assert "inventoryDetails" not in plain


def test_sku_and_date_filters(sandbox, api):
    world = sandbox.world
    chosen = api.get(URL, params={**BASE, "sellerSkus": "FBA-001,FBA-002,MFN-ONLY"}).json()
    assert [s["sellerSku"] for s in chosen["payload"]["inventorySummaries"]] == ["FBA-001", "FBA-002"]
    world.advance(3600 - 60)
    world.listings["FBA-050"].quantity = 77
    world.listings["FBA-050"].updated = world.now()
    since = (world.now() - timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    changed = api.get(URL, params={**BASE, "startDateTime": since, "sellerSku": "FBA-001"}).json()
    assert [(s["sellerSku"], s["totalQuantity"]) for s in changed["payload"]["inventorySummaries"]] == \
        [("FBA-050", 77)]  # startDateTime wins over the SKU filters, as Amazon documents


def test_next_token_expires_after_thirty_seconds_and_belongs_to_its_query(sandbox, api):
    token = api.get(URL, params=BASE).json()["pagination"]["nextToken"]
    other = api.get(URL, params={**BASE, "details": "true", "nextToken": token})
    assert other.status_code == 400 and "other parameters" in other.json()["errors"][0]["message"]
    sandbox.world.advance(inventory.TOKEN_SECONDS + 1)
    expired = api.get(URL, params={**BASE, "nextToken": token})
    assert expired.status_code == 400 and "expired" in expired.json()["errors"][0]["message"]


@pytest.mark.parametrize("params, text", [
    ({}, "granularityType, granularityId, marketplaceIds are required"),
    ({**BASE, "granularityType": "Region"}, "Region"),
    ({**BASE, "granularityId": "XX"}, "XX"),
    ({**BASE, "marketplaceIds": f"{US},A2EUQ1WTGCTBG2"}, "exactly one"),
    ({**BASE, "sellerSkus": ",".join(f"S{n}" for n in range(51))}, "at most 50"),
    ({**BASE, "startDateTime": "2020-01-01T00:00:00Z"}, "18 months"),
    ({**BASE, "details": "maybe"}, "details"),
    ({**BASE, "nextToken": "garbage!"}, "nextToken"),
])
def test_bad_inventory_requests_get_400(api, model, params, text):
    response = api.get(URL, params=params)
    assert response.status_code == 400
    assert_valid(model, response.json())
    assert text in json.dumps(response.json())


def test_without_a_token_the_caller_is_refused(sandbox):
    response = httpx.get(f"{sandbox.url}{URL}", params=BASE)
    assert response.status_code == 403 and response.json()["errors"][0]["code"] == "Unauthorized"


def test_unmodified_sp_api_client_reads_inventory(sandbox):
    from sp_api.api import Inventories

    inventories = Inventories(**sp_api_config(sandbox))
    page = inventories.get_inventory_summary_marketplace(details=True, marketplaceIds=[US],
                                                         sellerSkus=["FBA-010", "FBA-011"]).payload
    assert [(s["sellerSku"], s["inventoryDetails"]["fulfillableQuantity"]) for s in page["inventorySummaries"]] \
        == [("FBA-010", 10), ("FBA-011", 11)]
