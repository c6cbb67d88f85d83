"""The unmodified python-amazon-sp-api client (``sp_api``) against the sandbox: searchOrders, getOrder (v2026-01-01)
and confirmShipment (v0). The library is pointed at the sandbox only through its constructor arguments."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from erpsync.sandbox.server import start
from tests.sandbox.helpers import generate, sp_api_config

sp_api = pytest.importorskip("sp_api")
from sp_api.api import Orders, OrdersV0  # noqa: E402
from sp_api.base import SellingApiBadRequestException, SellingApiForbiddenException  # noqa: E402


@pytest.fixture
def sandbox():
    with start(seed=5) as running:
        yield running


def test_sp_api_searches_reads_and_confirms(sandbox):
    ids = generate(sandbox, count=12, status="UNSHIPPED", afn_share=0, multi_line_share=0.5)
    sandbox.world.advance(300)
    config = sp_api_config(sandbox)
    orders = Orders(version="2026-01-01", **config)  # the library's own v2026 class (OrdersV20260101)
    assert type(orders).__name__ == "OrdersV20260101"

    first = orders.search_orders(createdAfter="2020-01-01T00:00:00Z", maxResultsPerPage=5,
                                 includedData=["FULFILLMENT", "RECIPIENT"])
    assert first.rate_limit == "0.0056"
    seen = [o["orderId"] for o in first.payload["orders"]]
    token = first.next_token  # sp_api lifts the body's "pagination" into ApiResponse.pagination / next_token
    while token:
        page = orders.search_orders(createdAfter="2020-01-01T00:00:00Z", maxResultsPerPage=5,
                                    includedData=["FULFILLMENT", "RECIPIENT"], paginationToken=token)
        seen += [o["orderId"] for o in page.payload["orders"]]
        token = page.next_token
    assert sorted(seen) == sorted(ids)

    order = orders.get_order(ids[0], includedData=["FULFILLMENT", "BUYER"]).payload["order"]
    assert order["orderId"] == ids[0] and order["buyer"]["buyerEmail"].endswith("@marketplace.amazon.com")

    v0 = OrdersV0(**config)
    confirmed = v0.confirm_shipment(
        ids[0], marketplaceId="ATVPDKIKX0DER",
        packageDetail={"packageReferenceId": "1", "carrierCode": "FedEx", "trackingNumber": "794612345678",
                       "shipDate": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "orderItems": [{"orderItemId": i["orderItemId"], "quantity": i["quantityOrdered"]}
                                      for i in order["orderItems"]]})
    assert confirmed.payload == {"status_code": 204}
    assert v0.get_order(ids[0]).payload["OrderStatus"] == "Shipped"
    assert [(s.order_id, s.carrier_code) for s in sandbox.world.shipments] == [(ids[0], "FedEx")]

    with pytest.raises(SellingApiBadRequestException) as bad:
        v0.confirm_shipment(ids[1], marketplaceId="ATVPDKIKX0DER",
                            packageDetail={"packageReferenceId": "1", "carrierCode": "Carrier Pigeon",
                                           "trackingNumber": "1", "shipDate": "2026-01-01T00:00:00Z",
                                           "orderItems": [{"orderItemId": "1", "quantity": 1}]})
    assert bad.value.error[0]["code"] == "InvalidInput"


def test_sp_api_gets_403_once_its_cached_token_expires_in_sandbox_time(sandbox):
    order_id = generate(sandbox, count=1)[0]
    orders = Orders(version="2026-01-01", **sp_api_config(sandbox))
    assert orders.get_order(order_id).payload["order"]["orderId"] == order_id
    sandbox.world.advance(3600)  # sp_api still holds the token in its cache (3200 s of real time)
    with pytest.raises(SellingApiForbiddenException) as denied:
        orders.get_order(order_id)
    assert denied.value.error[0]["code"] == "Unauthorized"


def test_sp_api_pages_v0_get_orders_with_next_token(sandbox):
    """getOrders (v0) page by page with NextToken and the same filters, as sp_api's load_all_pages does: every
    order once. (The sandbox once put the sort field into the token's query key: page 2 was always a 400.)"""
    from sp_api.util import load_all_pages

    ids = generate(sandbox, count=7, status="UNSHIPPED", afn_share=0)
    sandbox.world.advance(300)
    v0 = OrdersV0(**sp_api_config(sandbox))
    pages = list(load_all_pages(throttle_by_seconds=0)(v0.get_orders)(
        CreatedAfter="2020-01-01T00:00:00Z", MarketplaceIds=["ATVPDKIKX0DER"], MaxResultsPerPage=3))
    assert [len(page.payload["Orders"]) for page in pages] == [3, 3, 1]
    assert sorted(o["AmazonOrderId"] for page in pages for o in page.payload["Orders"]) == sorted(ids)
    with pytest.raises(SellingApiBadRequestException) as other_query:  # a token belongs to its query
        v0.get_orders(CreatedAfter="2021-01-01T00:00:00Z", MarketplaceIds=["ATVPDKIKX0DER"], MaxResultsPerPage=3,
                      NextToken=pages[0].next_token)
    assert "does not belong to this query" in other_query.value.error[0]["message"]
