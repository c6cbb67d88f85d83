"""Orders v2026-01-01 and v0 over real HTTP: conformance to Amazon's models, filters, paging, includedData,
confirmShipment rules, bad requests, and the token bucket measured on getOrder / searchOrders."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from erpsync.sandbox.core import USAGE_PLANS
from erpsync.sandbox.server import start
from tests.sandbox.helpers import client, generate, roomy
from tests.sandbox.spapi_schema import assert_valid, swagger_validator

EVERYTHING = "BUYER,RECIPIENT,PROCEEDS,EXPENSE,PROMOTION,CANCELLATION,FULFILLMENT,PACKAGES,TAX,PAYMENT," \
             "FULFILLMENT_ORDERS"
LONG_AGO = "2020-01-01T00:00:00Z"
US = "ATVPDKIKX0DER"


@pytest.fixture
def sandbox_options():
    return {"seed": 11}


@pytest.fixture(scope="module")
def shared():
    """One sandbox for the parametrized bad-request tests (they only read, or are refused)."""
    with start(seed=12) as running, client(roomy(running, 10_000)) as http:
        yield running, http


@pytest.fixture(scope="module")
def models(spapi_ref):
    v2026 = spapi_ref / "models" / "orders_2026-01-01.json"
    v0 = spapi_ref / "models" / "ordersV0.json"
    return {
        "search": swagger_validator(v2026, "SearchOrdersResponse"),
        "get": swagger_validator(v2026, "GetOrderResponse"),
        "errors": swagger_validator(v2026, "ErrorList"),
        "v0_orders": swagger_validator(v0, "GetOrdersResponse"),
        "v0_order": swagger_validator(v0, "GetOrderResponse"),
        "v0_items": swagger_validator(v0, "GetOrderItemsResponse"),
        "v0_errors": swagger_validator(v0, "ConfirmShipmentErrorResponse"),
    }


def _items(api, order_id):
    response = api.get(f"/orders/2026-01-01/orders/{order_id}", params={"includedData": "FULFILLMENT"})
    assert response.status_code == 200, response.text
    return response.json()["order"]


def _confirm(api, order_id, lines, ref="1", **package):
    body = {"marketplaceId": US, "packageDetail": {
        "packageReferenceId": ref, "carrierCode": "UPS", "trackingNumber": "1Z999AA10123456784",
        "shipDate": datetime.now(timezone.utc).isoformat(), "orderItems": lines, **package}}
    return api.post(f"/orders/v0/orders/{order_id}/shipmentConfirmation", json=body)


def _all_lines(order):
    return [{"orderItemId": i["orderItemId"], "quantity": i["fulfillment"]["quantityUnfulfilled"]}
            for i in order["orderItems"]]


def test_every_orders_response_matches_amazons_models(sandbox, api, models):
    mixed = dict(multi_line_share=0.6, multi_quantity_share=0.5, promotion_share=0.5, gift_share=0.4,
                 business_share=0.4, prime_share=0.5, afn_share=0.3, international_share=0.3)
    ids = generate(sandbox, count=30, status="UNSHIPPED", **mixed)
    pending = generate(sandbox, count=3, pending_seconds=None)
    sandbox.world.tick()  # AFN orders are shipped by Amazon
    # ship one MFN order partly and cancel another: packages, cancellation, PARTIALLY_SHIPPED appear
    mfn = [i for i in ids if sandbox.world.orders[i]["fulfillment"]["fulfilledBy"] == "MERCHANT"]
    partly = next(i for i in mfn if sum(x["quantityOrdered"] for x in sandbox.world.orders[i]["orderItems"]) > 1)
    assert _confirm(api, partly, _one(_items(api, partly))).status_code == 204
    cancel = next(i for i in mfn if i != partly)
    assert httpx.post(f"{sandbox.url}/_sandbox/orders/{cancel}/cancel", json={}).status_code == 200
    sandbox.world.advance(600)

    search = api.get("/orders/2026-01-01/orders", params={"createdAfter": LONG_AGO, "includedData": EVERYTHING})
    assert search.status_code == 200
    assert_valid(models["search"], search.json())
    assert len(search.json()["orders"]) == 33
    bare = api.get("/orders/2026-01-01/orders", params={"lastUpdatedAfter": LONG_AGO})
    assert_valid(models["search"], bare.json())
    for order_id in ids + pending:
        got = api.get(f"/orders/2026-01-01/orders/{order_id}", params={"includedData": EVERYTHING})
        assert_valid(models["get"], got.json())
        assert_valid(models["v0_order"], api.get(f"/orders/v0/orders/{order_id}").json())
        assert_valid(models["v0_items"], api.get(f"/orders/v0/orders/{order_id}/orderItems").json())
    v0 = api.get("/orders/v0/orders", params={"MarketplaceIds": US, "CreatedAfter": LONG_AGO})
    assert_valid(models["v0_orders"], v0.json())
    assert len(v0.json()["payload"]["Orders"]) == 33
    statuses = {o["fulfillment"]["fulfillmentStatus"] for o in search.json()["orders"]}
    assert {"SHIPPED", "PARTIALLY_SHIPPED", "CANCELLED", "UNSHIPPED", "PENDING"} <= statuses


def _one(order):
    """The first line with quantity 1 (a partial shipment when the order has more)."""
    first = order["orderItems"][0]
    return [{"orderItemId": first["orderItemId"], "quantity": 1}]


def test_included_data_adds_only_what_was_asked(sandbox, api):
    order_id = generate(sandbox, count=1, status="UNSHIPPED", promotion_share=1, gift_share=1)[0]
    bare = api.get(f"/orders/2026-01-01/orders/{order_id}").json()["order"]
    assert {"orderId", "createdTime", "lastUpdatedTime", "salesChannel", "orderItems"} <= set(bare)
    assert not {"buyer", "recipient", "proceeds", "fulfillment", "packages", "payment"} & set(bare)
    assert not {"proceeds", "fulfillment", "promotion"} & set(bare["orderItems"][0])
    buyer = api.get(f"/orders/2026-01-01/orders/{order_id}", params={"includedData": "BUYER"}).json()["order"]
    assert "buyer" in buyer and "recipient" not in buyer
    both = api.get(f"/orders/2026-01-01/orders/{order_id}",
                   params=[("includedData", "RECIPIENT"), ("includedData", "PROCEEDS,PROMOTION")]).json()["order"]
    assert both["recipient"]["deliveryAddress"]["addressLine1"]
    assert both["proceeds"]["grandTotal"]["amount"]
    assert both["orderItems"][0]["promotion"]["breakdowns"][0]["promotionId"].startswith("PLM-")
    assert "buyer" not in both


def test_search_filters_and_pages(sandbox, api):
    generate(sandbox, count=25, status="UNSHIPPED", afn_share=0)
    generate(sandbox, count=5, status="UNSHIPPED", afn_share=1)  # Amazon ships them
    sandbox.world.tick()
    sandbox.world.advance(300)
    seen, token, pages = [], None, 0
    while True:
        params = {"createdAfter": LONG_AGO, "maxResultsPerPage": 7}
        if token:
            params["paginationToken"] = token
        body = api.get("/orders/2026-01-01/orders", params=params).json()
        seen += [o["orderId"] for o in body["orders"]]
        pages += 1
        token = body.get("pagination", {}).get("nextToken")
        if not token:
            break
    assert pages == 5 and len(seen) == 30 and len(set(seen)) == 30
    assert "createdBefore" in body

    def count(**params):
        response = api.get("/orders/2026-01-01/orders", params={"createdAfter": LONG_AGO, **params})
        assert response.status_code == 200, response.text
        return len(response.json()["orders"])

    assert count(fulfilledBy="AMAZON") == 5
    assert count(fulfilledBy="MERCHANT,AMAZON") == 30
    assert count(fulfillmentStatuses="SHIPPED") == 5
    assert count(fulfillmentStatuses="UNSHIPPED", fulfilledBy="MERCHANT") == 25
    assert count(marketplaceIds=US) == 30
    assert count(marketplaceIds="A2EUQ1WTGCTBG2") == 0
    future = (sandbox.world.now() + timedelta(hours=1)).isoformat()
    assert api.get("/orders/2026-01-01/orders", params={"createdAfter": future}).json()["orders"] == []
    # lastUpdated window: only what changed after the cut
    cut = sandbox.world.now()
    sandbox.world.advance(60)
    moved = next(i for i in seen if sandbox.world.orders[i]["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED")
    assert httpx.post(f"{sandbox.url}/_sandbox/orders/{moved}/cancel", json={}).status_code == 200
    sandbox.world.advance(300)
    changed = api.get("/orders/2026-01-01/orders", params={"lastUpdatedAfter": cut.isoformat()}).json()
    assert [o["orderId"] for o in changed["orders"]] == [moved]
    # a token belongs to its query
    first = api.get("/orders/2026-01-01/orders", params={"createdAfter": LONG_AGO, "maxResultsPerPage": 7}).json()
    other = api.get("/orders/2026-01-01/orders", params={"createdAfter": LONG_AGO, "maxResultsPerPage": 7,
                                                         "fulfilledBy": "AMAZON",
                                                         "paginationToken": first["pagination"]["nextToken"]})
    assert other.status_code == 400 and other.json()["errors"][0]["code"] == "InvalidInput"


@pytest.mark.parametrize("params, mentions", [
    ({}, "Exactly one of createdAfter and lastUpdatedAfter"),
    ({"createdAfter": LONG_AGO, "lastUpdatedAfter": LONG_AGO}, "Exactly one"),
    ({"createdAfter": LONG_AGO, "lastUpdatedBefore": LONG_AGO}, "lastUpdatedBefore cannot be combined"),
    ({"lastUpdatedAfter": LONG_AGO, "createdBefore": "2021-01-01T00:00:00Z"}, "createdBefore cannot be combined"),
    ({"createdAfter": "2021-01-01T00:00:00Z", "createdBefore": "2020-06-01T00:00:00Z"}, "equal to or after"),
    ({"createdAfter": LONG_AGO, "createdBefore": "2999-01-01T00:00:00Z"}, "two minutes before"),
    ({"createdAfter": "yesterday"}, "ISO 8601"),
    ({"createdAfter": LONG_AGO, "maxResultsPerPage": 101}, "between 1 and 100"),
    ({"createdAfter": LONG_AGO, "maxResultsPerPage": 0}, "between 1 and 100"),
    ({"createdAfter": LONG_AGO, "maxResultsPerPage": "ten"}, "maxResultsPerPage"),
    ({"createdAfter": LONG_AGO, "fulfillmentStatuses": "SHIPPED,LOST"}, "fulfillmentStatuses"),
    ({"createdAfter": LONG_AGO, "includedData": "EVERYTHING"}, "includedData"),
    ({"createdAfter": LONG_AGO, "marketplaceIds": "XNOTAMARKET"}, "marketplaceIds"),
    ({"createdAfter": LONG_AGO, "paginationToken": "garbage!"}, "paginationToken"),
])
def test_search_rejects_bad_parameters_with_amazons_400(shared, models, params, mentions):
    api = shared[1]
    response = api.get("/orders/2026-01-01/orders", params=params)
    assert response.status_code == 400
    assert_valid(models["errors"], response.json())
    error = response.json()["errors"][0]
    assert error["code"] == "InvalidInput"
    assert mentions in error["message"] + " " + error["details"]
    assert response.headers["x-amzn-RateLimit-Limit"] == "0.0056"
    assert response.headers["x-amzn-RequestId"]


def test_unknown_order_is_404_with_rate_header(api, models):
    for path in ("/orders/2026-01-01/orders/111-0000000-0000000", "/orders/v0/orders/111-0000000-0000000",
                 "/orders/v0/orders/111-0000000-0000000/orderItems"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "NotFound"
        assert_valid(models["errors"], response.json())
        assert response.headers["x-amzn-RateLimit-Limit"] == "0.5"


def test_v0_get_orders_requires_marketplace_and_hides_prices_while_pending(sandbox, api):
    order_id = generate(sandbox, count=1, pending_seconds=None)[0]
    missing = api.get("/orders/v0/orders", params={"CreatedAfter": LONG_AGO})
    assert missing.status_code == 400 and "MarketplaceIds" in missing.json()["errors"][0]["message"]
    items = api.get(f"/orders/v0/orders/{order_id}/orderItems").json()["payload"]["OrderItems"]
    assert items and all("ItemPrice" not in item for item in items)
    order = api.get(f"/orders/v0/orders/{order_id}").json()["payload"]
    assert order["OrderStatus"] == "Pending" and "OrderTotal" not in order


def test_v0_money_matches_v2026_money(sandbox, api):
    order_id = generate(sandbox, count=1, status="UNSHIPPED", promotion_share=1, gift_share=1,
                        multi_line_share=1)[0]
    v2026 = api.get(f"/orders/2026-01-01/orders/{order_id}", params={"includedData": "PROCEEDS"}).json()["order"]
    v0_order = api.get(f"/orders/v0/orders/{order_id}").json()["payload"]
    assert v0_order["OrderTotal"]["Amount"] == v2026["proceeds"]["grandTotal"]["amount"]
    assert isinstance(v0_order["OrderTotal"]["Amount"], str)
    items = api.get(f"/orders/v0/orders/{order_id}/orderItems").json()["payload"]["OrderItems"]
    total = Decimal("0")
    for item in items:
        amounts = {k: Decimal(v["Amount"]) for k, v in item.items() if isinstance(v, dict) and "Amount" in v}
        total += (amounts["ItemPrice"] + amounts["ShippingPrice"] + amounts["ItemTax"] + amounts["ShippingTax"]
                  - amounts["PromotionDiscount"] - amounts["ShippingDiscount"]
                  - amounts["PromotionDiscountTax"] - amounts["ShippingDiscountTax"])
    gift_wrap = sum(Decimal(b["subtotal"]["amount"]) for i in v2026["orderItems"]
                    for b in i["proceeds"]["breakdowns"] if b["type"] == "GIFT_WRAP")
    gift_tax = sum(Decimal(d["value"]["amount"]) for i in v2026["orderItems"] for b in i["proceeds"]["breakdowns"]
                   if b["type"] == "TAX" for d in b["detailedBreakdowns"] if d["subtype"] == "GIFT_WRAP")
    # v0 carries gift wrap only in the restricted BuyerInfo: the rest must add up to the order total
    assert total + gift_wrap + gift_tax == Decimal(v0_order["OrderTotal"]["Amount"])
    assert all(i["IsGift"] == "true" for i in items)


def test_confirm_shipment_partial_then_complete(sandbox, api):
    order_id = generate(sandbox, count=1, status="UNSHIPPED", afn_share=0, multi_line_share=1,
                        multi_quantity_share=1)[0]
    order = _items(api, order_id)
    first, *rest = order["orderItems"]
    response = _confirm(api, order_id, [{"orderItemId": first["orderItemId"], "quantity": 1}])
    assert response.status_code == 204 and response.content == b""
    assert response.headers["x-amzn-RateLimit-Limit"] == "2"
    after = _items(api, order_id)
    assert after["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
    assert after["orderItems"][0]["fulfillment"]["quantityFulfilled"] == 1
    assert _confirm(api, order_id, _all_lines(after), ref="2", carrierCode="Other", carrierName="Acme Freight",
                    shippingMethod="Ground").status_code == 204
    done = api.get(f"/orders/2026-01-01/orders/{order_id}", params={"includedData": "FULFILLMENT,PACKAGES"})
    done = done.json()["order"]
    assert done["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert all(i["fulfillment"]["quantityUnfulfilled"] == 0 for i in done["orderItems"])
    assert [(p["packageReferenceId"], p["carrier"]) for p in done["packages"]] == [("1", "UPS"),
                                                                                   ("2", "Acme Freight")]
    received = httpx.get(f"{sandbox.url}/_sandbox/shipments", params={"orderId": order_id}).json()["shipments"]
    assert [(s["package_reference_id"], s["carrier_code"], s["tracking_number"]) for s in received] == [
        ("1", "UPS", "1Z999AA10123456784"), ("2", "Other", "1Z999AA10123456784")]
    ledger = [e for e in sandbox.world.ledger if e.order_id == order_id]
    principal = sum(e.amount for e in ledger if e.amount_description == "Principal" and e.amount_type == "ItemPrice")
    assert principal == sum(Decimal(i["product"]["price"]["unitPrice"]["amount"]) * i["quantityOrdered"]
                            for i in done["orderItems"])
    # shipped in full: nothing more to confirm
    again = _confirm(api, order_id, [{"orderItemId": first["orderItemId"], "quantity": 1}], ref="3")
    assert again.status_code == 400 and "exceeds the unshipped quantity" in again.json()["errors"][0]["message"]


def test_confirm_shipment_retry_with_same_package_is_idempotent(sandbox, api):
    order_id = generate(sandbox, count=1, status="UNSHIPPED", afn_share=0, multi_line_share=0,
                        multi_quantity_share=1)[0]
    order = _items(api, order_id)
    line = [{"orderItemId": order["orderItems"][0]["orderItemId"], "quantity": 1}]
    assert _confirm(api, order_id, line).status_code == 204
    assert _confirm(api, order_id, line, trackingNumber="CORRECTED").status_code == 204  # a retry / an edit
    after = api.get(f"/orders/2026-01-01/orders/{order_id}", params={"includedData": "FULFILLMENT,PACKAGES"})
    after = after.json()["order"]
    assert after["orderItems"][0]["fulfillment"]["quantityFulfilled"] == 1
    assert len(after["packages"]) == 1 and after["packages"][0]["trackingNumber"] == "CORRECTED"
    other = [{"orderItemId": order["orderItems"][0]["orderItemId"], "quantity": 2}]
    clash = _confirm(api, order_id, other)
    assert clash.status_code == 400 and "already used" in clash.json()["errors"][0]["message"]


@pytest.mark.parametrize("change, status, mentions", [
    ({"carrierCode": "Pony Express"}, 400, "Invalid carrierCode"),
    ({"carrierCode": "Other"}, 400, "carrierName is required"),
    ({"packageReferenceId": "0"}, 400, "positive numeric"),
    ({"packageReferenceId": "PKG-1"}, 400, "positive numeric"),
    ({"trackingNumber": ""}, 400, "trackingNumber"),
    ({"shipDate": "last tuesday"}, 400, "shipDate"),
    ({"shipDate": "2999-01-01T00:00:00Z"}, 400, "in the future"),
    ({"orderItems": []}, 400, "orderItems"),
    ({"orderItems": [{"orderItemId": "00000000000000", "quantity": 1}]}, 400, "is not in order"),
    ({"orderItems": "QTY99"}, 400, "orderItems"),
    ({"drop": "carrierCode"}, 400, "carrierCode: is required"),
    ({"drop": "trackingNumber"}, 400, "trackingNumber: is required"),
    ({"marketplaceId": "A2EUQ1WTGCTBG2"}, 400, "was not placed in marketplace"),
    ({"marketplaceId": "XNOTAMARKET"}, 400, "Invalid marketplaceId"),
])
def test_confirm_shipment_rejects_bad_packages(shared, models, change, status, mentions):
    sandbox, api = shared
    order_id = generate(sandbox, count=1, status="UNSHIPPED", afn_share=0)[0]
    order = _items(api, order_id)
    package = {"packageReferenceId": "1", "carrierCode": "UPS", "trackingNumber": "1Z",
               "shipDate": "2026-01-01T00:00:00Z", "orderItems": _all_lines(order)}
    body = {"marketplaceId": change.pop("marketplaceId", US), "packageDetail": package}
    if "drop" in change:
        del package[change.pop("drop")]
    package.update(change)
    response = api.post(f"/orders/v0/orders/{order_id}/shipmentConfirmation", json=body)
    assert response.status_code == status, response.text
    assert_valid(models["v0_errors"], response.json())
    error = response.json()["errors"][0]
    assert error["code"] == "InvalidInput"
    assert mentions in f"{error['message']} {error['details']}"
    assert _items(api, order_id)["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    assert sandbox.world.shipments == []


def test_confirm_shipment_bad_requests(sandbox, api):
    pending = generate(sandbox, count=1, pending_seconds=None, afn_share=0)[0]
    afn = generate(sandbox, count=1, status="UNSHIPPED", afn_share=1)[0]
    cancelled = generate(sandbox, count=1, status="UNSHIPPED", afn_share=0)[0]
    httpx.post(f"{sandbox.url}/_sandbox/orders/{cancelled}/cancel", json={"reason": "out of stock"})
    url = f"/orders/v0/orders/{pending}/shipmentConfirmation"
    malformed = api.post(url, content=b'{"marketplaceId": ', headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["errors"][0]["code"] == "InvalidInput"
    wrong_type = api.post(url, content=b"marketplaceId=x", headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 415 and wrong_type.json()["errors"][0]["message"]
    for order_id, mentions in ((pending, "is Pending"), (afn, "fulfilled by Amazon"), (cancelled, "is Canceled")):
        lines = [{"orderItemId": i["orderItemId"], "quantity": i["quantityOrdered"]}
                 for i in sandbox.world.orders[order_id]["orderItems"]]
        response = _confirm(api, order_id, lines)
        assert response.status_code == 400 and mentions in response.json()["errors"][0]["message"], response.text
    unknown = _confirm(api, "111-0000000-0000000", [{"orderItemId": "1", "quantity": 1}])
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "NotFound"


def test_no_token_no_orders(sandbox):
    response = httpx.get(f"{sandbox.url}/orders/2026-01-01/orders", params={"createdAfter": LONG_AGO})
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "Unauthorized"
    assert "x-amzn-RateLimit-Limit" not in response.headers


@pytest.mark.parametrize("operation, path, real_rate", [
    ("getOrder", "/orders/2026-01-01/orders/{order_id}", 10.0),
    ("searchOrders", "/orders/2026-01-01/orders?createdAfter=2020-01-01T00:00:00Z", 10.0),
])
def test_token_bucket_burst_then_steady_rate(operation, path, real_rate):
    rate, burst = USAGE_PLANS[operation]
    with start(time_scale=real_rate / rate) as sandbox:  # the plan's rate becomes `real_rate` per real second
        order_id = generate(sandbox, count=1)[0]
        with client(sandbox) as api:
            url = path.format(order_id=order_id)
            assert api.get(url).headers["x-amzn-RateLimit-Limit"] == f"{real_rate:g}"
            # burst: the rest of the bucket answers at once (a refill during the loop may add one or two)
            t0 = time.monotonic()
            statuses = [api.get(url).status_code for _ in range(burst + 5)]
            burst_seconds = time.monotonic() - t0
            granted = statuses.count(200) + 1
            refill = burst_seconds * real_rate
            assert burst <= granted <= burst + refill + 1, (statuses, burst_seconds)
            # once empty it refuses, unless the loop was slow enough (a loaded machine) for the refill to cover
            # the 5 calls past the burst: the line above bounds what it granted then
            assert 429 in statuses or refill >= 4, (statuses, burst_seconds)
            # steady state: over a 1.5 s window the bucket grants rate × window (±2 at the edges)
            window, ok, t0 = 1.5, 0, time.monotonic()
            while time.monotonic() - t0 < window:
                response = api.get(url)
                ok += response.status_code == 200
                if response.status_code == 429:
                    assert "x-amzn-RateLimit-Limit" not in response.headers
                time.sleep(0.01)
            assert abs(ok - real_rate * window) <= 2, ok
