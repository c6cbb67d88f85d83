"""Feeds API over real HTTP: documents and presigned uploads, processing in sandbox time, processing reports in
the official format, per-message issues, FATAL feeds, cancel, the stuck-feeds fault, GZIP, paging, bad requests,
and the unmodified python-amazon-sp-api client doing the whole cycle."""

from __future__ import annotations

import gzip
import io
import json
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest

from erpsync.sandbox import feeds, listings_feed
from erpsync.sandbox.server import start
from erpsync.sandbox.world import Listing
from tests.sandbox.helpers import client, sp_api_config
from tests.sandbox.spapi_schema import assert_valid, json_schema_validator, swagger_validator

US = "ATVPDKIKX0DER"
JSON_TYPE = "application/json; charset=UTF-8"
DONE_AFTER = feeds.QUEUE_SECONDS + feeds.PROCESSING_SECONDS + 1


def _listings(world, *skus, quantity=5, channel="DEFAULT"):
    for sku in skus:
        world.listings[sku] = Listing(sku=sku, asin=f"B0{sku[-8:]:0>8}", title=f"Title {sku}",
                                      price=Decimal("19.99"), quantity=quantity, fulfillment_channel=channel)


def _feed(seller, *messages, report=None):
    header = {"sellerId": seller, "version": "2.0"}
    if report:
        header["report"] = {"includedData": report, "apiVersion": "2021-08-01"}
    return {"header": header, "messages": list(messages)}


def _quantity(message_id, sku, quantity):
    return {"messageId": message_id, "sku": sku, "operationType": "PATCH", "productType": "PRODUCT",
            "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
                         "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}]}]}


def _price(message_id, sku, price):
    return {"messageId": message_id, "sku": sku, "operationType": "PATCH", "productType": "PRODUCT",
            "patches": [{"op": "replace", "path": "/attributes/purchasable_offer",
                         "value": [{"marketplace_id": US, "currency": "USD",
                                    "our_price": [{"schedule": [{"value_with_tax": price}]}]}]}]}


@pytest.fixture
def sandbox_options():
    return {"seed": 5}  # roomy buckets (conftest): test_feeds_throttle measures the plan


@pytest.fixture(scope="module")
def models(spapi_ref):
    model = spapi_ref / "models" / "feeds_2021-06-30.json"
    return {name: swagger_validator(model, name) for name in (
        "CreateFeedDocumentResponse", "CreateFeedResponse", "Feed", "GetFeedsResponse", "FeedDocument",
        "ErrorList")} | {"report": json_schema_validator(
            spapi_ref / "schemas" / "feeds" / "listings-feed-processing-report-schema-v2.json")}


def _upload(api, body: bytes, content_type: str = JSON_TYPE) -> str:
    created = api.post("/feeds/2021-06-30/documents", json={"contentType": content_type})
    assert created.status_code == 201, created.text
    put = httpx.put(created.json()["url"], content=body, headers={"Content-Type": content_type})
    assert put.status_code == 200, put.text
    return created.json()["feedDocumentId"]


def _submit(api, feed: dict | bytes, feed_type: str = "JSON_LISTINGS_FEED") -> str:
    body = feed if isinstance(feed, bytes) else json.dumps(feed).encode()
    response = api.post("/feeds/2021-06-30/feeds", json={
        "feedType": feed_type, "marketplaceIds": [US], "inputFeedDocumentId": _upload(api, body)})
    assert response.status_code == 202, response.text
    return response.json()["feedId"]


def _processed(world, feed_id: str, seconds: float = DONE_AFTER) -> str:
    """Advance sandbox time by ``seconds``, then wait (real time, the server's ticker) until the feed has ended:
    its document is checked in the background, and a feed does not end before its check."""
    world.advance(seconds)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with world.lock:
            status = world.feeds[feed_id]["processingStatus"]
        if status not in ("IN_QUEUE", "IN_PROGRESS"):
            return status
        time.sleep(0.01)
    raise AssertionError(f"feed {feed_id} still {status} after 10 s")


def _result(api, feed: dict) -> dict:
    document = api.get(f"/feeds/2021-06-30/documents/{feed['resultFeedDocumentId']}").json()
    raw = httpx.get(document["url"]).content
    return json.loads(gzip.decompress(raw) if document.get("compressionAlgorithm") == "GZIP" else raw)


def test_full_cycle_over_http_with_time_scaling(models):
    """IN_QUEUE → IN_PROGRESS → DONE driven by the scaled clock alone (90 sandbox seconds ≈ 0.15 s here)."""
    with start(time_scale=600, seed=3) as sandbox, client(sandbox) as api:
        _listings(sandbox.world, "SKU-1", "SKU-2")
        created = api.post("/feeds/2021-06-30/documents", json={"contentType": JSON_TYPE})
        assert created.status_code == 201
        assert created.headers["x-amzn-RateLimit-Limit"] == "300"  # 0.5 rps × 600
        assert_valid(models["CreateFeedDocumentResponse"], created.json())
        feed = _feed(sandbox.world.seller_id, _quantity(1, "SKU-1", 42), _price(2, "SKU-2", 24.5),
                     report=["summaries", "offers", "fulfillmentAvailability"])
        upload = httpx.put(created.json()["url"], content=json.dumps(feed), headers={"Content-Type": JSON_TYPE})
        assert upload.status_code == 200
        response = api.post("/feeds/2021-06-30/feeds", json={
            "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [US],
            "inputFeedDocumentId": created.json()["feedDocumentId"]})
        assert response.status_code == 202
        assert_valid(models["CreateFeedResponse"], response.json())
        feed_id = response.json()["feedId"]
        seen = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = api.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()
            assert_valid(models["Feed"], state)
            if not seen or seen[-1] != state["processingStatus"]:
                seen.append(state["processingStatus"])
            if state["processingStatus"] == "DONE":
                break
            time.sleep(0.01)
        assert seen[0] == "IN_QUEUE" and seen[-1] == "DONE"
        assert set(seen) <= {"IN_QUEUE", "IN_PROGRESS", "DONE"}
        assert state["processingStartTime"] < state["processingEndTime"]
        document = api.get(f"/feeds/2021-06-30/documents/{state['resultFeedDocumentId']}")
        assert_valid(models["FeedDocument"], document.json())
        report = json.loads(httpx.get(document.json()["url"]).content)
        assert_valid(models["report"], report)
        assert report["header"]["feedId"] == feed_id
        assert report["summary"] == {"errors": 0, "warnings": 0, "messagesProcessed": 2, "messagesAccepted": 2,
                                     "messagesInvalid": 0, "itemSummary": {"items": 2, "errors": 0, "warnings": 0}}
        items = {item["sku"]: item for item in report["items"]}
        assert items["SKU-1"]["fulfillmentAvailability"] == [{"fulfillmentChannelCode": "DEFAULT", "quantity": 42}]
        assert items["SKU-2"]["offers"][0]["price"] == {"currencyCode": "USD", "amount": "24.5"}
        assert sandbox.world.listings["SKU-1"].quantity == 42
        assert sandbox.world.listings["SKU-2"].price == Decimal("24.5")
        listed = api.get("/feeds/2021-06-30/feeds", params={"feedTypes": "JSON_LISTINGS_FEED"})
        assert_valid(models["GetFeedsResponse"], listed.json())
        assert [f["feedId"] for f in listed.json()["feeds"]] == [feed_id]


def test_processing_report_lists_each_bad_message_and_applies_only_the_good_ones(sandbox, api, models):
    world = sandbox.world
    _listings(world, "GOOD", "NEG", "PRICE", "WRONG", "NESTED", "DUP")
    feed = _feed(world.seller_id,
                 _quantity(1, "GOOD", 7),
                 _quantity(2, "NEG", -3),  # invalid value
                 _price(3, "PRICE", "abc"),  # non-numeric price
                 _quantity(4, "GHOST", 1),  # PATCH of a SKU the seller does not have
                 {"messageId": 5, "sku": "GHOST", "operationType": "DELETE"},  # DELETE of one
                 {"messageId": 6, "sku": "WRONG", "operationType": "PATCH", "productType": "PRODUCT",
                  "attributes": {"item_name": [{"value": "x"}]}},  # schema: PATCH takes patches, not attributes
                 {"messageId": 7, "sku": "NESTED", "operationType": "PATCH", "productType": "PRODUCT",
                  "patches": [{"op": "replace", "path": "/attributes/purchasable_offer/0/currency",
                               "value": [{"value": "EUR"}]}]},  # only top-level attributes can be patched
                 _quantity(1, "DUP", 99),  # messageId 1 again
                 {"messageId": 9, "sku": "NEW-SKU", "operationType": "UPDATE", "productType": "PRODUCT",
                  "attributes": {"item_name": [{"value": "Brand new"}],
                                 "fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT",
                                                               "quantity": 3}]}})
    feed_id = _submit(api, feed)
    assert _processed(world, feed_id) == "DONE"
    state = api.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()
    assert state["processingStatus"] == "DONE"
    report = _result(api, state)
    assert_valid(models["report"], report)
    by_message: dict[int, list[dict]] = {}
    for issue in report["issues"]:
        by_message.setdefault(issue["messageId"], []).append(issue)
    assert sorted(by_message) == [1, 2, 3, 4, 5, 6, 7]  # messageId 1 is the duplicate (sku DUP)
    assert by_message[1][0]["sku"] == "DUP" and "unique" in by_message[1][0]["message"]
    assert by_message[2][0]["attributeName"] == "fulfillment_availability.quantity"
    assert "-3" in by_message[2][0]["message"]
    assert by_message[3][0]["attributeName"] == "purchasable_offer.our_price"
    assert '"abc"' in by_message[3][0]["message"]
    assert "does not exist" in by_message[4][0]["message"] and by_message[4][0]["sku"] == "GHOST"
    assert "does not exist" in by_message[5][0]["message"]
    assert "PATCH needs productType and patches" in by_message[6][0]["message"]
    assert "top-level" in by_message[7][0]["message"]
    assert all(issue["severity"] == "ERROR" for issue in report["issues"])
    assert report["summary"] == {"errors": 7, "warnings": 0, "messagesProcessed": 9, "messagesAccepted": 2,
                                 "messagesInvalid": 7}
    assert world.listings["GOOD"].quantity == 7
    assert world.listings["NEW-SKU"].quantity == 3 and world.listings["NEW-SKU"].title == "Brand new"
    assert world.listings["NEG"].quantity == 5 and world.listings["PRICE"].price == Decimal("19.99")
    assert world.listings["DUP"].quantity == 5


@pytest.mark.parametrize("body, expected", [
    (b"<?xml version='1.0'?><AmazonEnvelope/>", "not valid UTF-8 JSON"),
    (b"\xff\xfe garbage", "not valid UTF-8 JSON"),
    (json.dumps({"messages": [{"messageId": 1, "sku": "A", "operationType": "DELETE"}]}).encode(), "header"),
    (json.dumps({"header": {"sellerId": "SOMEONE-ELSE", "version": "2.0"},
                 "messages": [{"messageId": 1, "sku": "A", "operationType": "DELETE"}]}).encode(), "SOMEONE-ELSE"),
    (json.dumps({"header": {"sellerId": "A1SANDBOXSELLER", "version": "2.0"}, "messages": []}).encode(),
     "messages"),
])
def test_a_document_that_is_not_a_listings_feed_makes_the_feed_fatal(sandbox, api, models, body, expected):
    _listings(sandbox.world, "A")
    feed_id = _submit(api, body)
    assert _processed(sandbox.world, feed_id) == "FATAL"
    state = api.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()
    assert state["processingStatus"] == "FATAL"
    report = _result(api, state)
    assert_valid(models["report"], report)
    assert len(report["issues"]) == 1 and "messageId" not in report["issues"][0]
    assert expected in report["issues"][0]["message"]
    assert report["summary"]["messagesAccepted"] == 0
    assert "A" in sandbox.world.listings  # nothing applied


def test_official_example_feed_is_processed_message_by_message(sandbox, api, models, spapi_ref):
    """Amazon's own example feed (read from the reference folder): DELETE, PARTIAL_UPDATE, UPDATE, PATCH, merge."""
    world = sandbox.world
    example = json.loads((spapi_ref / "schemas" / "feeds" / "listings-feed-schema-v2.example.json").read_text())
    example["header"]["sellerId"] = world.seller_id
    _listings(world, "My-SKU-A", "My-SKU-B", "My-SKU-D")
    _listings(world, "My-SKU-E", quantity=1)
    feed_id = _submit(api, example)
    assert _processed(world, feed_id) == "DONE"
    report = _result(api, api.get(f"/feeds/2021-06-30/feeds/{feed_id}").json())
    assert_valid(models["report"], report)
    assert report["summary"]["messagesAccepted"] == 5, report["issues"]
    assert "My-SKU-A" not in world.listings
    assert world.listings["My-SKU-B"].quantity == 10 and world.listings["My-SKU-D"].quantity == 10
    assert world.listings["My-SKU-E"].quantity == 10
    created = world.listings["My-SKU-C"]
    assert created.title == "My Title" and created.fulfillment_channel == "AMAZON_NA"
    warnings = [i for i in report["issues"] if i["severity"] == "WARNING"]
    assert [w["messageId"] for w in warnings] == [3]  # FBA quantity is Amazon's to count
    assert {item["sku"] for item in report["items"]} == {"My-SKU-B", "My-SKU-C", "My-SKU-D", "My-SKU-E"}


SCHEMA_CASES = [
    _quantity(1, "A", 4),
    {"messageId": 2, "sku": "A", "operationType": "PATCH", "productType": "P", "attributes": {"x": [{}]}},
    {"messageId": 3, "sku": "A", "operationType": "DELETE", "productType": "P"},
    {"messageId": 4, "sku": "A", "operationType": "UPDATE", "productType": "P"},
    {"messageId": "5", "sku": "A", "operationType": "DELETE"},
    {"messageId": 6, "sku": "A", "operationType": "UPSERT"},
    {"messageId": 7, "sku": "", "operationType": "DELETE"},
    {"messageId": 8, "sku": "A", "operationType": "PATCH", "productType": "P",
     "patches": [{"op": "move", "path": "/attributes/x"}]},
    {"messageId": 9, "sku": "A", "operationType": "PATCH", "productType": "P",
     "patches": [{"op": "replace", "path": "/attributes/x", "value": {"not": "an array"}}]},
    {"messageId": 10, "sku": "A", "operationType": "PARTIAL_UPDATE", "productType": "P",
     "requirements": "LISTING", "attributes": {"x": [{}]}},
    {"messageId": 11, "sku": "A", "operationType": "UPDATE", "productType": "P", "attributes": {}},
    {"messageId": 2**31, "sku": "A", "operationType": "DELETE"},  # the feed schema's maximum
]


def _outcome(message, feed_schemas):
    listings = {}
    _listings(type("W", (), {"listings": listings})(), "A")
    document = json.dumps(_feed("S", message)).encode()
    outcome = listings_feed.process(document, feed_id="1", seller_id="S", listings=listings, marketplace_ids=[US],
                                    currency="USD", now=datetime.now(timezone.utc), feed_schemas=feed_schemas)
    return outcome.report["summary"]["messagesAccepted"], sorted({i["code"] for i in outcome.report["issues"]})


@pytest.mark.parametrize("message", SCHEMA_CASES, ids=[str(m["messageId"]) for m in SCHEMA_CASES])
def test_builtin_checks_judge_messages_as_amazons_schema_does(message, spapi_ref):
    official = listings_feed.schemas(spapi_ref)
    assert official.message is not None
    assert _outcome(message, listings_feed.Schemas(None, None)) == _outcome(message, official)


def test_without_the_reference_folder_the_builtin_checks_apply(monkeypatch, tmp_path):
    monkeypatch.setenv(listings_feed.REFERENCE_ENV, str(tmp_path))
    assert listings_feed.reference_dir() is None
    assert listings_feed.schemas() == listings_feed.Schemas(None, None)
    accepted, codes = _outcome(SCHEMA_CASES[1], None)
    assert accepted == 0 and codes == [listings_feed.BAD_MESSAGE]
    fatal = listings_feed.process(b'{"messages": []}', feed_id="1", seller_id="S", listings={}, marketplace_ids=[US],
                                  currency="USD", now=datetime.now(timezone.utc))
    assert fatal.status == "FATAL" and "header" in fatal.report["issues"][0]["message"]


def test_upload_url_refuses_wrong_content_type_expiry_tampering_and_other_methods(sandbox, api):
    created = api.post("/feeds/2021-06-30/documents", json={"contentType": JSON_TYPE}).json()
    url = created["url"]
    wrong = httpx.put(url, content=b"{}", headers={"Content-Type": "text/tab-separated-values"})
    assert wrong.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in wrong.text
    assert "text/tab-separated-values" in wrong.text and JSON_TYPE in wrong.text
    # the same content type, spelled with other case and spacing, is the same content type
    assert httpx.put(url, content=b"{}", headers={"Content-Type": "application/json;charset=utf-8"}).status_code == 200
    assert httpx.get(url).status_code == 403  # a PUT URL is not a GET URL
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert "SignatureDoesNotMatch" in httpx.put(tampered, content=b"{}", headers={"Content-Type": JSON_TYPE}).text
    unknown = url.replace(created["feedDocumentId"], "amzn1.tortuga.4.na.nothing")
    missing = httpx.put(unknown, content=b"{}", headers={"Content-Type": JSON_TYPE})
    assert missing.status_code == 404 and "NoSuchKey" in missing.text
    sandbox.world.advance(301)
    expired = httpx.put(url, content=b"{}", headers={"Content-Type": JSON_TYPE})
    assert expired.status_code == 403 and "<Code>AccessDenied</Code>" in expired.text
    assert "expired" in expired.text


def test_bad_feed_requests_get_amazons_status_codes_and_error_shape(sandbox, api, models):
    def check(response, status, text):
        assert response.status_code == status, response.text
        assert_valid(models["ErrorList"], response.json())
        assert text in json.dumps(response.json())
        if status in (400, 404):
            assert "x-amzn-RateLimit-Limit" in response.headers
        assert "x-amzn-RequestId" in response.headers

    feeds_url = "/feeds/2021-06-30/feeds"
    check(api.post("/feeds/2021-06-30/documents", json={}), 400, "contentType is required")
    check(api.post("/feeds/2021-06-30/documents", content=b"{not json", headers={"content-type": "application/json"}),
          400, "not valid JSON")
    check(api.post(feeds_url, json={"feedType": "JSON_LISTINGS_FEED"}), 400, "inputFeedDocumentId is required")
    check(api.post(feeds_url, json={"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [US],
                                    "inputFeedDocumentId": "nope"}), 400, "does not exist")
    empty = api.post("/feeds/2021-06-30/documents", json={"contentType": JSON_TYPE}).json()["feedDocumentId"]
    check(api.post(feeds_url, json={"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [US],
                                    "inputFeedDocumentId": empty}), 400, "upload the feed")
    uploaded = _upload(api, b"{}")
    check(api.post(feeds_url, json={"feedType": "POST_ORDER_FULFILLMENT_DATA", "marketplaceIds": [US],
                                    "inputFeedDocumentId": uploaded}), 400, "not supported")
    check(api.post(feeds_url, json={"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": ["XX"],
                                    "inputFeedDocumentId": uploaded}), 400, "XX")
    check(api.get(f"{feeds_url}/123"), 404, "NotFound")
    check(api.get("/feeds/2021-06-30/documents/nope"), 404, "NotFound")
    check(api.get(feeds_url), 400, "feedTypes or nextToken")
    check(api.get(feeds_url, params={"feedTypes": "JSON_LISTINGS_FEED", "processingStatuses": "SLEEPING"}), 400,
          "SLEEPING")
    check(api.get(feeds_url, params={"feedTypes": "JSON_LISTINGS_FEED", "pageSize": "500"}), 400, "pageSize")
    check(api.get(feeds_url, params={"nextToken": "x", "pageSize": "5"}), 400, "only parameter")
    check(api.get(feeds_url, params={"nextToken": "!!!"}), 400, "nextToken")
    check(api.delete(f"{feeds_url}/123"), 404, "NotFound")
    unauthorized = httpx.get(f"{sandbox.url}{feeds_url}/123", headers={"x-amz-access-token": "Atza|forged"})
    check(unauthorized, 403, "Unauthorized")


def test_cancel_only_while_in_queue(sandbox, api):
    world = sandbox.world
    _listings(world, "A")
    first = _submit(api, _feed(world.seller_id, _quantity(1, "A", 1)))
    second = _submit(api, _feed(world.seller_id, _quantity(1, "A", 2)))
    assert api.delete(f"/feeds/2021-06-30/feeds/{second}").status_code == 200
    assert _processed(world, first) == "DONE"
    assert api.get(f"/feeds/2021-06-30/feeds/{first}").json()["processingStatus"] == "DONE"
    cancelled = api.get(f"/feeds/2021-06-30/feeds/{second}").json()
    assert cancelled["processingStatus"] == "CANCELLED" and "resultFeedDocumentId" not in cancelled
    assert world.listings["A"].quantity == 1  # the cancelled feed never ran
    refused = api.delete(f"/feeds/2021-06-30/feeds/{first}")
    assert refused.status_code == 400 and "only feeds IN_QUEUE" in refused.json()["errors"][0]["message"]


def test_stuck_feeds_fault_holds_the_feed_in_progress_and_the_queue_behind_it(sandbox, api):
    world = sandbox.world
    _listings(world, "A")
    world.faults.stuck_feeds = True
    stuck = _submit(api, _feed(world.seller_id, _quantity(1, "A", 11)))
    waiting = _submit(api, _feed(world.seller_id, _quantity(1, "A", 12)))
    world.advance(3000)  # fifty minutes (the access token lives an hour)
    assert api.get(f"/feeds/2021-06-30/feeds/{stuck}").json()["processingStatus"] == "IN_PROGRESS"
    assert api.get(f"/feeds/2021-06-30/feeds/{waiting}").json()["processingStatus"] == "IN_QUEUE"
    assert world.listings["A"].quantity == 5
    world.faults.stuck_feeds = False
    released_at = world.now()
    assert _processed(world, stuck) == "DONE"
    done = api.get(f"/feeds/2021-06-30/feeds/{stuck}").json()
    assert done["processingStatus"] == "DONE"
    assert done["processingEndTime"] >= released_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _processed(world, waiting, feeds.PROCESSING_SECONDS + 1) == "DONE"  # starts when the stuck one ends
    assert api.get(f"/feeds/2021-06-30/feeds/{waiting}").json()["processingStatus"] == "DONE"
    assert world.listings["A"].quantity == 12  # applied in submission order


def test_large_processing_report_is_gzip_and_can_be_served_with_content_encoding(sandbox, api):
    world = sandbox.world
    messages = [_quantity(i, f"MISSING-{i:04d}", 1) for i in range(1, 301)]  # 300 unknown-SKU issues
    feed_id = _submit(api, _feed(world.seller_id, *messages))
    assert _processed(world, feed_id) == "DONE"
    state = api.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()
    document = api.get(f"/feeds/2021-06-30/documents/{state['resultFeedDocumentId']}").json()
    assert document["compressionAlgorithm"] == "GZIP"
    raw = httpx.get(document["url"])
    assert "content-encoding" not in raw.headers and raw.content[:2] == b"\x1f\x8b"
    report = json.loads(gzip.decompress(raw.content))
    assert report["summary"]["messagesInvalid"] == 300 and len(report["issues"]) == 300
    decoded = api.get(f"/feeds/2021-06-30/documents/{state['resultFeedDocumentId']}",
                      params={"enableContentEncodingUrlHeader": "true"}).json()
    served = httpx.get(decoded["url"])
    assert served.headers["content-encoding"] == "gzip"
    assert json.loads(served.content) == report  # httpx undid the encoding


def test_a_feed_is_checked_outside_the_world_lock_and_applied_under_it(sandbox, api, monkeypatch):
    """A 25,000-message feed takes seconds to check: other requests must not wait for that on the lock."""
    world, lock_free_during = sandbox.world, {}

    def lock_free() -> bool:  # could another thread take the world's lock now?
        taken = []

        def probe():
            taken.append(world.lock.acquire(timeout=0.5))
            if taken[0]:
                world.lock.release()

        other = threading.Thread(target=probe)
        other.start()
        other.join()
        return taken[0]

    def spy(step):
        def run(*args, **kwargs):
            lock_free_during[step.__name__] = lock_free()
            return step(*args, **kwargs)
        return run

    monkeypatch.setattr(listings_feed, "check", spy(listings_feed.check))
    monkeypatch.setattr(listings_feed, "apply", spy(listings_feed.apply))
    _listings(world, "SKU-1")
    feed_id = _submit(api, _feed(world.seller_id, _quantity(1, "SKU-1", 3)))
    assert _processed(world, feed_id) == "DONE"
    assert api.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()["processingStatus"] == "DONE"
    assert lock_free_during == {"check": True, "apply": False}
    assert world.listings["SKU-1"].quantity == 3


def test_create_feed_answers_before_the_check_and_the_feed_cannot_end_before_it(sandbox, api, monkeypatch):
    """createFeed answers 202 at once, as Amazon does; the feed stays IN_PROGRESS past its due time until the
    background check is done, then ends at the next tick. Other requests are answered meanwhile."""
    world, release, started = sandbox.world, threading.Event(), threading.Event()
    check = listings_feed.check

    def slow_check(*args, **kwargs):
        started.set()
        assert release.wait(10), "the test never released the check"
        return check(*args, **kwargs)

    monkeypatch.setattr(listings_feed, "check", slow_check)
    _listings(world, "SKU-1")
    try:
        feed_id = _submit(api, _feed(world.seller_id, _quantity(1, "SKU-1", 9)))  # 202 with the check blocked
        assert started.wait(5)
        world.advance(DONE_AFTER)
        time.sleep(0.2)  # four ticks of the server's ticker
        held = api.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()
        assert held["processingStatus"] == "IN_PROGRESS" and "processingEndTime" not in held
        assert world.listings["SKU-1"].quantity == 5
        released_at = world.now()
    finally:
        release.set()
    assert _processed(world, feed_id, 0) == "DONE"
    done = api.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()
    assert done["processingEndTime"] >= released_at.strftime("%Y-%m-%dT%H:%M:%SZ")  # not the due time passed
    assert world.listings["SKU-1"].quantity == 9


def test_a_check_that_crashes_ends_its_feed_fatal_and_the_next_feed_still_runs(sandbox, api, monkeypatch):
    world, check = sandbox.world, listings_feed.check
    _listings(world, "SKU-1")

    def crash_once(document, **kwargs):
        monkeypatch.setattr(listings_feed, "check", check)
        raise RuntimeError("boom")

    monkeypatch.setattr(listings_feed, "check", crash_once)
    broken = _submit(api, _feed(world.seller_id, _quantity(1, "SKU-1", 8)))
    fine = _submit(api, _feed(world.seller_id, _quantity(1, "SKU-1", 6)))
    assert _processed(world, broken) == "FATAL"
    report = _result(api, api.get(f"/feeds/2021-06-30/feeds/{broken}").json())
    assert "could not check the feed (RuntimeError: boom)" in report["issues"][0]["message"]
    assert _processed(world, fine, feeds.PROCESSING_SECONDS + 1) == "DONE"
    assert world.listings["SKU-1"].quantity == 6


def test_get_feeds_filters_and_pages(sandbox, api, models):
    world = sandbox.world
    _listings(world, "A")
    ids = [_submit(api, _feed(world.seller_id, _quantity(1, "A", n))) for n in range(3)]
    assert _processed(world, ids[0]) == "DONE"  # only the first: one feed of a seller is processed at a time
    first = api.get("/feeds/2021-06-30/feeds", params={"feedTypes": "JSON_LISTINGS_FEED", "pageSize": 2})
    assert_valid(models["GetFeedsResponse"], first.json())
    second = api.get("/feeds/2021-06-30/feeds", params={"nextToken": first.json()["nextToken"]})
    assert_valid(models["GetFeedsResponse"], second.json())
    assert "nextToken" not in second.json()
    paged = [f["feedId"] for f in first.json()["feeds"] + second.json()["feeds"]]
    assert sorted(paged) == sorted(ids) and len(set(paged)) == 3
    done = api.get("/feeds/2021-06-30/feeds", params={"feedTypes": "JSON_LISTINGS_FEED",
                                                      "processingStatuses": "DONE"}).json()["feeds"]
    assert [f["feedId"] for f in done] == [ids[0]]
    other = api.get("/feeds/2021-06-30/feeds", params={"feedTypes": "POST_PRODUCT_DATA"}).json()
    assert other == {"feeds": []}


def test_removed_xml_listings_feed_types_end_fatal(sandbox, api):
    feed_id = _submit(api, b"<AmazonEnvelope/>", feed_type="POST_INVENTORY_AVAILABILITY_DATA")
    assert _processed(sandbox.world, feed_id) == "FATAL"
    assert api.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()["processingStatus"] == "FATAL"


def test_create_feed_document_is_throttled_by_its_usage_plan():
    with start(seed=2) as sandbox, client(sandbox) as api:
        answers = [api.post("/feeds/2021-06-30/documents", json={"contentType": JSON_TYPE}).status_code
                   for _ in range(16)]
        assert answers == [201] * 15 + [429]  # burst 15


def test_unmodified_sp_api_client_submits_a_feed_and_reads_the_report(sandbox):
    from sp_api.api import Feeds

    world = sandbox.world
    _listings(world, "SPAPI-1")
    feeds_api = Feeds(**sp_api_config(sandbox))
    document = json.dumps(_feed(world.seller_id, _quantity(1, "SPAPI-1", 31), _quantity(2, "SPAPI-404", 1)))
    created, submitted = feeds_api.submit_feed("JSON_LISTINGS_FEED", io.StringIO(document),
                                               content_type=JSON_TYPE, marketplaceIds=[US])
    feed_id = submitted.payload["feedId"]
    assert feeds_api.get_feed(feed_id).payload["processingStatus"] == "IN_QUEUE"
    assert _processed(world, feed_id) == "DONE"
    state = feeds_api.get_feed(feed_id).payload
    assert state["processingStatus"] == "DONE"
    report = json.loads(feeds_api.get_feed_result_document(state["resultFeedDocumentId"]))
    assert report["summary"]["messagesAccepted"] == 1 and report["summary"]["messagesInvalid"] == 1
    assert report["issues"][0]["sku"] == "SPAPI-404"
    assert world.listings["SPAPI-1"].quantity == 31
    listed = feeds_api.get_feeds(feedTypes=["JSON_LISTINGS_FEED"]).payload
    assert [f["feedId"] for f in listed["feeds"]] == [feed_id]
