"""Listings Items 2021-08-01 over real HTTP: getListingsItem with every data set, patchListingsItem (accepted,
invalid, validation preview, merge, delete), bad requests, conformance, and the unmodified sp_api client."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from erpsync.sandbox import catalog
from erpsync.sandbox.server import start
from erpsync.sandbox.world import Listing
from tests.sandbox.helpers import client, sp_api_config
from tests.sandbox.spapi_schema import assert_valid, swagger_validator

US = "ATVPDKIKX0DER"
ITEMS = "/listings/2021-08-01/items"


@pytest.fixture
def sandbox_options():
    return {"seed": 8}


@pytest.fixture
def sandbox(sandbox):
    sandbox.world.listings["MFN-1"] = Listing(sku="MFN-1", asin="B000MFN001", title="Desk lamp",
                                              price=Decimal("19.99"), quantity=8)
    sandbox.world.listings["FBA-1"] = Listing(sku="FBA-1", asin="B000FBA001", title="Stapler",
                                              price=Decimal("7.50"), quantity=40, fulfillment_channel="AMAZON_NA",
                                              fnsku="X000FBA001")
    return sandbox


@pytest.fixture(scope="module")
def models(spapi_ref):
    model = spapi_ref / "models" / "listingsItems_2021-08-01.json"
    return {name: swagger_validator(model, name) for name in ("Item", "ListingsItemSubmissionResponse", "ErrorList")}


def _url(sandbox, sku):
    return f"{ITEMS}/{sandbox.world.seller_id}/{sku}"


def _patch(api, sandbox, sku, *patches, **params):
    return api.patch(_url(sandbox, sku), params={"marketplaceIds": US, **params},
                     json={"productType": "PRODUCT", "patches": list(patches)})


def _availability(quantity):
    return {"op": "replace", "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}]}


def _offer(price):
    return {"op": "replace", "path": "/attributes/purchasable_offer",
            "value": [{"marketplace_id": US, "currency": "USD",
                       "our_price": [{"schedule": [{"value_with_tax": price}]}]}]}


def test_get_listings_item_renders_each_requested_data_set(sandbox, api, models):
    everything = ",".join(catalog.INCLUDED_DATA)
    for sku in ("MFN-1", "FBA-1"):
        response = api.get(_url(sandbox, sku), params={"marketplaceIds": US, "includedData": everything})
        assert response.status_code == 200 and "x-amzn-RateLimit-Limit" in response.headers
        assert_valid(models["Item"], response.json())
    mfn = api.get(_url(sandbox, "MFN-1"), params={"marketplaceIds": US, "includedData": everything}).json()
    assert mfn["summaries"][0]["status"] == ["BUYABLE", "DISCOVERABLE"]
    assert mfn["offers"][0]["price"] == {"currencyCode": "USD", "amount": "19.99"}
    assert mfn["fulfillmentAvailability"] == [{"fulfillmentChannelCode": "DEFAULT", "quantity": 8}]
    assert mfn["attributes"]["purchasable_offer"][0]["our_price"][0]["schedule"][0]["value_with_tax"] == 19.99
    fba = api.get(_url(sandbox, "FBA-1"), params={"marketplaceIds": US, "includedData": everything}).json()
    assert fba["fulfillmentAvailability"] == [{"fulfillmentChannelCode": "AMAZON_NA"}]
    assert fba["summaries"][0]["fnSku"] == "X000FBA001"
    default = api.get(_url(sandbox, "MFN-1"), params={"marketplaceIds": US}).json()
    assert set(default) == {"sku", "summaries"}


def test_patch_replaces_quantity_and_price(sandbox, api, models):
    response = _patch(api, sandbox, "MFN-1", _availability(3), _offer(21.5))
    assert response.status_code == 200
    assert_valid(models["ListingsItemSubmissionResponse"], response.json())
    assert response.json()["status"] == "ACCEPTED" and response.json()["issues"] == []
    listing = sandbox.world.listings["MFN-1"]
    assert listing.quantity == 3 and listing.price == Decimal("21.5")
    shown = api.get(_url(sandbox, "MFN-1"), params={"marketplaceIds": US, "includedData": "offers"}).json()
    assert shown["offers"][0]["price"]["amount"] == "21.5"


@pytest.mark.parametrize("patch, attribute", [
    (_availability(-1), "fulfillment_availability"),
    (_availability(2.5), "fulfillment_availability"),
    (_offer("cheap"), "purchasable_offer"),
    (_offer(0), "purchasable_offer"),
    ({"op": "replace", "path": "/attributes/fulfillment_availability", "value": [{"quantity": 3}]},
     "fulfillment_availability"),
])
def test_invalid_values_make_the_whole_patch_invalid(sandbox, api, models, patch, attribute):
    response = _patch(api, sandbox, "MFN-1", _availability(5), patch)
    assert_valid(models["ListingsItemSubmissionResponse"], response.json())
    body = response.json()
    assert body["status"] == "INVALID"
    assert [issue["attributeNames"] for issue in body["issues"]] == [[attribute]]
    assert body["issues"][0]["severity"] == "ERROR"
    assert sandbox.world.listings["MFN-1"].quantity == 8  # nothing applied, not even the good patch


def test_nested_paths_unknown_skus_and_preview(sandbox, api, models):
    nested = _patch(api, sandbox, "MFN-1", {"op": "replace", "path": "/attributes/purchasable_offer/0/currency",
                                            "value": [{"value": "EUR"}]}).json()
    assert nested["status"] == "INVALID" and "top-level" in nested["issues"][0]["message"]
    ghost = _patch(api, sandbox, "GHOST", _availability(1)).json()
    assert_valid(models["ListingsItemSubmissionResponse"], ghost)
    assert ghost["status"] == "INVALID" and "GHOST" in ghost["issues"][0]["message"]
    preview = _patch(api, sandbox, "MFN-1", _availability(99), mode="VALIDATION_PREVIEW").json()
    assert preview["status"] == "VALID" and sandbox.world.listings["MFN-1"].quantity == 8
    bad_preview = _patch(api, sandbox, "MFN-1", _availability(-9), mode="VALIDATION_PREVIEW").json()
    assert bad_preview["status"] == "INVALID"


def test_merge_and_delete(sandbox, api):
    merged = _patch(api, sandbox, "MFN-1", {"op": "merge", "path": "/attributes/fulfillment_availability",
                                            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 12}]})
    assert merged.json()["status"] == "ACCEPTED" and sandbox.world.listings["MFN-1"].quantity == 12
    deleted = _patch(api, sandbox, "MFN-1", {"op": "delete", "path": "/attributes/purchasable_offer"})
    assert deleted.json()["status"] == "ACCEPTED"
    shown = api.get(_url(sandbox, "MFN-1"), params={"marketplaceIds": US, "includedData": "summaries,offers"}).json()
    assert shown["offers"] == [] and "BUYABLE" not in shown["summaries"][0]["status"]
    kept = _patch(api, sandbox, "MFN-1", {"op": "replace", "path": "/attributes/color",
                                          "value": [{"value": "red", "marketplace_id": US}]})
    assert kept.json()["status"] == "ACCEPTED"
    attributes = api.get(_url(sandbox, "MFN-1"), params={"marketplaceIds": US,
                                                         "includedData": "attributes"}).json()["attributes"]
    assert attributes["color"] == [{"value": "red", "marketplace_id": US}]


def test_bad_listings_requests_get_amazons_status_codes_and_error_shape(sandbox, api, models):
    def check(response, status, text):
        assert response.status_code == status, response.text
        assert_valid(models["ErrorList"], response.json())
        assert text in json.dumps(response.json())

    check(api.get(_url(sandbox, "MFN-1")), 400, "marketplaceIds is required")
    check(api.get(_url(sandbox, "MFN-1"), params={"marketplaceIds": "XX"}), 400, "XX")
    check(api.get(_url(sandbox, "MFN-1"), params={"marketplaceIds": US, "includedData": "everything"}), 400,
          "everything")
    check(api.get(_url(sandbox, "NOPE"), params={"marketplaceIds": US}), 404, "NOPE")
    check(api.get(f"{ITEMS}/ANOTHERSELLER/MFN-1", params={"marketplaceIds": US}), 403, "Unauthorized")
    check(api.patch(_url(sandbox, "MFN-1"), params={"marketplaceIds": US}, json={"productType": "PRODUCT"}), 400,
          "patches is required")
    check(api.patch(_url(sandbox, "MFN-1"), params={"marketplaceIds": US},
                    json={"productType": "PRODUCT", "patches": []}), 400, "patches")
    check(_patch(api, sandbox, "MFN-1", _availability(1), mode="FAST"), 400, "mode")
    check(httpx.get(f"{sandbox.url}{_url(sandbox, 'MFN-1')}", params={"marketplaceIds": US}), 403, "Unauthorized")


def test_patch_listings_item_is_throttled_at_burst_five():
    with start(seed=1) as sandbox, client(sandbox) as api:
        sandbox.world.listings["A"] = Listing(sku="A", asin="B0", title="a", price=Decimal("1"), quantity=1)
        codes = [_patch(api, sandbox, "A", _availability(n)).status_code for n in range(6)]
        assert codes == [200] * 5 + [429]


def test_unmodified_sp_api_client_reads_and_patches_a_listing(sandbox):
    from sp_api.api import ListingsItems

    listings = ListingsItems(**sp_api_config(sandbox))
    seller = sandbox.world.seller_id
    item = listings.get_listings_item(seller, "MFN-1", includedData="summaries,fulfillmentAvailability").payload
    assert item["fulfillmentAvailability"][0]["quantity"] == 8
    result = listings.patch_listings_item(seller, "MFN-1", body={"productType": "PRODUCT",
                                                                 "patches": [_availability(4)]}).payload
    assert result["status"] == "ACCEPTED" and sandbox.world.listings["MFN-1"].quantity == 4


def test_unmodified_sp_api_client_puts_a_listing_then_replaces_it(sandbox):
    """putListingsItem creates a listing and replaces it whole (the feed's UPDATE), checked like a patch."""
    from sp_api.api import ListingsItems

    listings = ListingsItems(**sp_api_config(sandbox))
    seller = sandbox.world.seller_id
    offer = {"marketplace_id": US, "currency": "USD", "our_price": [{"schedule": [{"value_with_tax": 12.5}]}]}
    body = {"productType": "PRODUCT", "requirements": "LISTING_OFFER_ONLY",
            "attributes": {"fulfillment_availability": _availability(6)["value"], "purchasable_offer": [offer]}}
    created = listings.put_listings_item(seller, "PUT-1", body=body, marketplaceIds=[US]).payload
    assert created["status"] == "ACCEPTED" and created["issues"] == []
    listing = sandbox.world.listings["PUT-1"]
    assert (listing.quantity, listing.price, "BUYABLE" in listing.status) == (6, Decimal("12.5"), True)
    read = listings.get_listings_item(seller, "PUT-1", includedData="fulfillmentAvailability").payload
    assert read["fulfillmentAvailability"][0]["quantity"] == 6

    preview = listings.put_listings_item(seller, "PUT-1", marketplaceIds=[US], mode="VALIDATION_PREVIEW", body={
        "productType": "PRODUCT", "attributes": {"fulfillment_availability": _availability(-1)["value"]}}).payload
    assert preview["status"] == "INVALID" and preview["issues"][0]["code"] == "90244"
    replaced = listings.put_listings_item(seller, "PUT-1", marketplaceIds=[US], body={
        "productType": "PRODUCT", "attributes": {"fulfillment_availability": _availability(2)["value"]}}).payload
    assert replaced["status"] == "ACCEPTED"
    listing = sandbox.world.listings["PUT-1"]
    assert listing.quantity == 2 and "BUYABLE" not in listing.status  # no offer given: the whole item replaced


def test_put_listings_item_over_http_matches_the_model_and_refuses_bad_requests(sandbox, api, models):
    url = _url(sandbox, "PUT-2")
    missing = api.put(url, params={"marketplaceIds": US}, json={"productType": "PRODUCT"})
    assert missing.status_code == 400 and "attributes" in missing.json()["errors"][0]["details"]
    assert_valid(models["ErrorList"], missing.json())
    ok = api.put(url, params={"marketplaceIds": US}, json={"productType": "PRODUCT", "attributes": {
        "item_name": [{"value": "Lamp", "marketplace_id": US}]}})
    assert ok.status_code == 200 and ok.json()["status"] == "ACCEPTED"
    assert_valid(models["ListingsItemSubmissionResponse"], ok.json())
    other = api.put(url.replace(sandbox.world.seller_id, "A2OTHERSELLER"), params={"marketplaceIds": US},
                    json={"productType": "PRODUCT", "attributes": {}})
    assert other.status_code == 403
    assert sandbox.world.listings["PUT-2"].title == "Lamp"
