"""The operations against the sandbox over real HTTP: orders (search pages, getOrder, confirmShipment), feeds,
reports, listings, FBA inventory, and the Notifications API calls."""

from __future__ import annotations

import copy
import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from erpsync import model
from erpsync.amazon import translate
from erpsync.errors import AmazonRejected, InvalidData, RateLimited, Retryable
from erpsync.sandbox.scenario import GenerateOrders, generate_orders

UTC = timezone.utc
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _generate(sandbox, count: int, **options) -> list[str]:
    options = {"status": "UNSHIPPED", "seed": 5, **options}
    return generate_orders(sandbox.world, GenerateOrders(count=count, **options))


def _admitted(call):
    """Run ``call`` as a job would: a RateLimited (our bucket's reserve at 60× speed can be a single token) is
    retried after the wait it names."""
    for _ in range(10):
        try:
            return call()
        except RateLimited as exc:
            time.sleep(exc.retry_after)
    return call()


def _control(sandbox, method: str, path: str, **kwargs) -> dict:
    response = httpx.request(method, f"{sandbox.url}/_sandbox{path}", timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()


# --- orders -------------------------------------------------------------------------------------------------------


def test_get_order_is_canonical_and_keeps_amazons_totals(client, sandbox):
    order_id = _generate(sandbox, 1, multi_line_share=1.0, promotion_share=1.0, gift_share=1.0)[0]
    order = client.orders.get_order(order_id)
    raw = sandbox.world.order(order_id)
    assert order.amazon_order_id == order_id and order.status is model.OrderStatus.UNSHIPPED
    assert order.order_total.amount == Decimal(raw["proceeds"]["grandTotal"]["amount"])
    assert order.lines_total == order.order_total
    for line, item in zip(order.lines, raw["orderItems"]):
        assert line.total.amount == Decimal(item["proceeds"]["proceedsTotal"]["amount"])
        assert line.promotion_discount.amount > 0 and line.is_gift
    assert order.ship_to is not None and order.buyer is not None  # BUYER and RECIPIENT asked for by default


def test_search_orders_pages_through_everything_and_isolates_bad_orders(client, sandbox):
    ids = set(_generate(sandbox, 23))
    sandbox.world.advance(300)
    broken_id = sorted(ids)[0]
    with sandbox.world.lock:  # Amazon sends one order erpsync cannot translate without losing money
        broken = sandbox.world.orders[broken_id]
        broken["orderItems"][0]["proceeds"]["breakdowns"].append(
            {"type": "SURPRISE_FEE", "subtotal": {"amount": "1.00", "currencyCode": "USD"}})
    pages = list(client.orders.search_orders(created_after=LONG_AGO, page_size=10))
    assert [len(page.orders) + len(page.rejected) for page in pages] == [10, 10, 3]
    assert [page.next_token is None for page in pages] == [False, False, True]
    seen = [order.amazon_order_id for page in pages for order in page.orders]
    rejected = [error for page in pages for error in page.rejected]
    assert len(seen) == len(set(seen)) == 22 and set(seen) | {broken_id} == ids
    assert [error.record for error in rejected] == [broken_id]
    assert "unknown proceeds category 'SURPRISE_FEE'" in str(rejected[0])

    resumed = list(client.orders.search_orders(created_after=LONG_AGO, page_size=10,
                                               pagination_token=pages[0].next_token))
    assert [o.amazon_order_id for p in resumed for o in p.orders] == [o.amazon_order_id for p in pages[1:]
                                                                     for o in p.orders]


def test_search_orders_filters_by_status_and_update_time(client, sandbox):
    _generate(sandbox, 4, status="PENDING", pending_seconds=None)
    unshipped = set(_generate(sandbox, 3, seed=9, afn_share=0.0))  # AFN orders would be shipped by Amazon
    sandbox.world.advance(300)  # past the 2 minutes Amazon keeps between an update and searchOrders seeing it
    found = {o.amazon_order_id for p in client.orders.search_orders(last_updated_after=LONG_AGO,
                                                                    statuses=["UNSHIPPED"]) for o in p.orders}
    assert found == unshipped
    with pytest.raises(ValueError, match="exactly one of"):
        next(client.orders.search_orders(created_after=LONG_AGO, last_updated_after=LONG_AGO))
    with pytest.raises(ValueError, match="unknown fulfillment statuses"):
        next(client.orders.search_orders(created_after=LONG_AGO, statuses=["Unshipped"]))


def test_confirm_shipment_reaches_amazon_and_bad_carriers_are_rejected(client, sandbox):
    order_id = _generate(sandbox, 1, afn_share=0.0, multi_line_share=0.0)[0]
    order = client.orders.get_order(order_id)
    line = order.lines[0]
    package = model.Package(package_reference_id="1", tracking_number="1Z999AA10123456784", carrier_code="UPS",
                            shipping_method="UPS Ground",
                            items=[model.PackageItem(order_item_id=line.order_item_id, quantity=line.quantity)])
    shipped_at = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
    request_id = client.orders.confirm_shipment(order_id, order.marketplace_id, package, shipped_at)
    assert request_id
    recorded = sandbox.world.shipments[-1]
    assert (recorded.order_id, recorded.carrier_code, recorded.tracking_number) == (order_id, "UPS",
                                                                                    "1Z999AA10123456784")
    assert recorded.items == ((line.order_item_id, int(line.quantity)),) and recorded.ship_date == shipped_at

    other = _generate(sandbox, 1, afn_share=0.0, seed=8)[0]
    item = client.orders.get_order(other).lines[0]
    bad = package.model_copy(update={"carrier_code": "Pony Express", "items": (
        model.PackageItem(order_item_id=item.order_item_id, quantity=1),)})
    with pytest.raises(AmazonRejected) as caught:
        client.orders.confirm_shipment(other, order.marketplace_id, bad, shipped_at)
    assert caught.value.status == 400 and "Pony Express" in str(caught.value)


# --- feeds --------------------------------------------------------------------------------------------------------


def _processed(sandbox, feed_id: str) -> None:
    """Let Amazon's processing time pass, then wait (real time) for the sandbox to end the feed: it checks the
    document in the background and a feed does not end before its check."""
    sandbox.world.advance(600)
    deadline = time.monotonic() + 10
    while sandbox.world.feeds[feed_id]["processingStatus"] in ("IN_QUEUE", "IN_PROGRESS"):
        assert time.monotonic() < deadline, f"feed {feed_id} not processed after 10 s"
        time.sleep(0.01)


def _listings(sandbox, count: int, channel: str = "DEFAULT") -> list[str]:
    seeds = [{"sku": f"BENCH-{channel}-{i:03d}", "price": "12.50", "quantity": 5, "fulfillment_channel": channel}
             for i in range(count)]
    _control(sandbox, "PUT", "/listings", json=seeds)
    return [seed["sku"] for seed in seeds]


def test_listings_feed_round_trip_with_processing_report(client, sandbox, spapi_ref):
    skus = _listings(sandbox, 3)
    now = datetime.now(UTC)
    messages = translate.listings_messages(
        [model.StockLevel(sku=skus[0], quantity=Decimal("42.9"), as_of=now)],
        [model.PriceUpdate(sku=skus[1], marketplace_id="ATVPDKIKX0DER",
                           price=model.Money(amount=Decimal("19.99"), currency="USD"))])
    feed_id = client.feeds.submit_listings_feed(messages)
    assert client.feeds.feed_status(feed_id).status in ("IN_QUEUE", "IN_PROGRESS")
    with pytest.raises(Retryable, match=f"feed {feed_id} is still"):
        client.feeds.feed_result(feed_id)
    _processed(sandbox, feed_id)
    status = client.feeds.feed_status(feed_id)
    assert status.status == "DONE" and status.finished and status.result_document_id
    report = client.feeds.feed_result(feed_id)
    schema = json.loads((spapi_ref / "schemas/feeds/listings-feed-processing-report-schema-v2.json").read_text())
    import jsonschema

    jsonschema.validate(report, schema)
    assert report["summary"]["messagesProcessed"] == 2 and report["summary"]["messagesAccepted"] == 2
    assert sandbox.world.listings[skus[0]].quantity == 42  # floored, never more than is there
    assert sandbox.world.listings[skus[1]].price == Decimal("19.99")


def test_a_large_processing_report_arrives_gzipped_and_is_unpacked(client, sandbox):
    skus = _listings(sandbox, 400)
    now = datetime.now(UTC)
    unknown = [model.StockLevel(sku=f"NOT-LISTED-{i:04d}", quantity=1, as_of=now) for i in range(300)]
    messages = translate.listings_messages([model.StockLevel(sku=s, quantity=1, as_of=now) for s in skus] + unknown,
                                           [])
    feed_id = client.feeds.submit_listings_feed(messages)
    _processed(sandbox, feed_id)
    status = client.feeds.feed_status(feed_id)
    document = sandbox.world.feed_documents[status.result_document_id]
    assert document["compression"] == "GZIP"  # the sandbox stores large documents compressed, as Amazon does
    report = client.feeds.feed_result(feed_id)
    assert report["summary"]["messagesProcessed"] == 700


# --- reports ------------------------------------------------------------------------------------------------------


def test_settlement_reports_are_listed_and_downloaded(client, sandbox):
    order_id = _generate(sandbox, 1, afn_share=1.0)[0]  # Amazon ships AFN orders: money reaches the ledger
    sandbox.world.advance(3 * 86400)
    closed = _control(sandbox, "POST", "/settlements", json={})
    reports = client.reports.settlement_reports(datetime.now(UTC) - timedelta(days=365),
                                                until=None)
    assert [r.report_id for r in reports] == [closed["reportId"]]
    assert reports[0].status == "DONE" and reports[0].document_id == closed["reportDocumentId"]
    text = client.reports.download_document(reports[0].document_id)
    header, summary, *rows = text.splitlines()
    assert header.split("\t")[:5] == ["settlement-id", "settlement-start-date", "settlement-end-date",
                                      "deposit-date", "total-amount"]
    assert summary.split("\t")[0] == closed["settlementId"] and order_id in text
    with client.reports.open_document(reports[0].document_id) as lines:  # the same, as a stream of lines
        assert "".join(lines) == text


def test_a_report_document_streams_its_lines_gzip_or_not_and_a_broken_one_is_named(client, sandbox):
    """open_document (what import_settlement reads) gives the document's lines whether it is stored GZIP or not;
    a GZIP stream that breaks is retryable (download it again), bytes that are not UTF-8 are invalid data."""
    from erpsync.errors import AmazonUnavailable
    from erpsync.sandbox import documents

    text = "".join(f"line {i}\t{'x' * 40}\n" for i in range(2000))  # > GZIP_MIN_BYTES: stored compressed
    packed = documents.create(sandbox.world, "report", "text/tab-separated-values", text.encode())
    plain = documents.create(sandbox.world, "report", "text/tab-separated-values", b"a\tb\nc\td\n")
    assert packed["compression"] == "GZIP" and plain["compression"] is None
    with client.reports.open_document(packed["id"]) as lines:
        assert next(lines) == "line 0\t" + "x" * 40 + "\n" and "".join(lines) == text.split("\n", 1)[1]
    with client.reports.open_document(plain["id"]) as lines:
        assert list(lines) == ["a\tb\n", "c\td\n"]
    packed["content"] = packed["content"][:len(packed["content"]) // 2]  # cut in the middle
    with client.reports.open_document(packed["id"]) as lines, pytest.raises(AmazonUnavailable, match="not valid GZIP"):
        list(lines)
    plain["content"] = b"a\tb\n\xff\xfe\n"
    with client.reports.open_document(plain["id"]) as lines, pytest.raises(InvalidData, match="is not utf-8"):
        list(lines)


def test_all_orders_report_is_requested_polled_and_read(client, sandbox):
    ids = _generate(sandbox, 120, seed=13)
    report_id = client.reports.request_all_orders_report(datetime.now(UTC) - timedelta(days=2))
    sandbox.world.advance(600)
    info = client.reports.report_status(report_id)
    assert info.status == "DONE" and info.report_type == "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
    assert sandbox.world.report_documents[info.document_id]["compression"] == "GZIP"
    text = client.reports.download_document(info.document_id)
    assert text.startswith("amazon-order-id\t") and all(order_id in text for order_id in ids)


# --- listings and inventory ---------------------------------------------------------------------------------------


def test_listing_is_read_and_patched(client, sandbox):
    sku = _listings(sandbox, 1)[0]
    item = client.listings.get_listings_item(sku)
    assert translate.listing_prices(item)[0].price == model.Money(amount=Decimal("12.50"), currency="USD")
    assert translate.listing_quantity(item, datetime.now(UTC)).quantity == 5
    patch = [{"op": "replace", "path": "/attributes/fulfillment_availability",
              "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 9}]}]
    preview = client.listings.patch_listings_item(sku, patch, validation_preview=True)
    assert preview["status"] == "VALID" and sandbox.world.listings[sku].quantity == 5
    answer = _admitted(lambda: client.listings.patch_listings_item(sku, patch))
    assert answer["status"] == "ACCEPTED" and answer["sku"] == sku
    assert sandbox.world.listings[sku].quantity == 9
    with pytest.raises(AmazonRejected) as caught:
        _admitted(lambda: client.listings.get_listings_item("NO-SUCH-SKU"))
    assert caught.value.status == 404


def _drain(client, operation: str) -> None:
    """Empty the shared bucket of ``operation`` as other workers would (at most a burst's worth of calls)."""
    for _ in range(1000):
        try:
            client.limiter.acquire(client.seller_id, operation)
        except RateLimited:
            return
    raise AssertionError(f"the {operation} bucket never ran dry")


def test_fba_inventory_follows_every_page_resuming_after_the_bucket_empties(client, sandbox):
    skus = _listings(sandbox, 120, channel="AMAZON_NA")
    pages, token, waits = [], None, 0
    while True:  # what a job does: on RateLimited it is rescheduled with the last token
        try:
            for page in client.inventory.summaries(next_token=token):
                pages.append(page)
                token = page.next_token
                if len(pages) == 1:
                    _drain(client, "getInventorySummaries")  # other workers take the bucket mid-listing
            break
        except RateLimited as exc:
            waits += 1
            time.sleep(exc.retry_after)
    assert len(pages) >= 2 and pages[-1].next_token is None
    summaries = [summary for page in pages for summary in page.summaries]
    assert sorted(s["sellerSku"] for s in summaries) == sorted(skus)
    time.sleep(0.1)  # let the bucket refill: the job queue's reschedule, in short
    levels = translate.inventory_levels(next(client.inventory.summaries(skus=skus[:3])).summaries,
                                        datetime.now(UTC))
    assert sorted(level.sku for level in levels) == sorted(skus[:3]) and {level.quantity for level in levels} == {5}
    with pytest.raises(ValueError, match="at most 50 SKUs"):
        next(client.inventory.summaries(skus=skus[:51]))
    assert waits >= 1  # the plan (2/s, burst 2) did stop the listing in the middle, and it resumed


# --- notifications API --------------------------------------------------------------------------------------------


def test_destination_is_grantless_and_subscription_is_filtered(client, sandbox):
    destination = client.notifications.create_destination(
        "erpsync-orders", "arn:aws:sqs:us-east-1:123456789012:erpsync-orders")
    subscription = client.notifications.create_subscription(destination)
    world = sandbox.world
    assert world.destinations[destination].arn.endswith(":erpsync-orders")
    assert world.destinations[destination].client_id == client.lwa.client_id
    record = world.subscriptions[subscription]
    assert (record.notification_type, record.seller_id, record.destination_id) == (
        "ORDER_CHANGE", "A1SANDBOXSELLER", destination)
    assert record.processing_directive["eventFilter"] == {
        "eventFilterType": "ORDER_CHANGE", "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"],
        "marketplaceIds": ["ATVPDKIKX0DER"]}
    with pytest.raises(AmazonRejected) as again:  # one subscription per notification type
        client.notifications.create_subscription(destination)
    assert again.value.status == 409
    with pytest.raises(ValueError, match="is not an SQS ARN"):
        client.notifications.create_destination("x", "https://sqs.us-east-1.amazonaws.com/1/q")


def test_get_order_without_an_order_in_the_answer_is_invalid(client, sandbox):
    order_id = _generate(sandbox, 1)[0]
    with sandbox.world.lock:
        broken = copy.deepcopy(sandbox.world.orders[order_id])
        broken["fulfillment"]["fulfillmentStatus"] = "LOST_IN_SPACE"
        sandbox.world.orders[order_id] = broken
    with pytest.raises(InvalidData, match=rf"order {order_id}: fulfillment.fulfillmentStatus: unknown status"):
        client.orders.get_order(order_id)
