"""Data protection in the logs: with erpsync's logging at DEBUG, a feed's processing report downloaded from its
pre-signed URL and an order read with its buyer and recipient leave no signature, no request URL with its query,
no access token and no buyer data in any log line (ours, or httpx's and httpcore's)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest
import structlog

from erpsync import logs, model
from erpsync.amazon import translate
from erpsync.sandbox.scenario import GenerateOrders, generate_orders


@pytest.fixture
def debug_logs(caplog, capsys):
    """Everything logged at DEBUG or above while the test runs (stdlib records and structlog's lines)."""
    logs.configure("DEBUG")
    caplog.set_level(logging.DEBUG)
    try:
        yield lambda: caplog.text + "".join(capsys.readouterr())
    finally:
        structlog.reset_defaults()


def test_no_signed_url_request_url_token_or_buyer_data_reaches_the_logs(client, sandbox, debug_logs):
    seeds = [{"sku": "LOG-1", "price": "12.50", "quantity": 5}]
    httpx.put(f"{sandbox.url}/_sandbox/listings", json=seeds, timeout=10).raise_for_status()
    messages = translate.listings_messages(
        [model.StockLevel(sku="LOG-1", quantity=Decimal(3), as_of=datetime.now(timezone.utc))], [])
    feed_id = client.feeds.submit_listings_feed(messages)  # uploads to a pre-signed URL
    sandbox.world.advance(600)
    deadline = time.monotonic() + 10
    while sandbox.world.feeds[feed_id]["processingStatus"] in ("IN_QUEUE", "IN_PROGRESS"):
        assert time.monotonic() < deadline, f"feed {feed_id} not processed after 10 s"
        time.sleep(0.01)
    assert client.feeds.feed_result(feed_id)["summary"]["messagesAccepted"] == 1  # downloads from a signed URL

    order_id = generate_orders(sandbox.world, GenerateOrders(count=1, status="UNSHIPPED", seed=3))[0]
    order = client.orders.get_order(order_id)  # includedData BUYER, RECIPIENT …
    assert order.buyer.email and order.ship_to.line1
    logging.getLogger("erpsync.test").debug("a DEBUG record reaches the capture")  # the capture itself works

    text = debug_logs()
    assert "a DEBUG record reaches the capture" in text and "amazon.call" in text
    secrets = ["X-Amz-Signature", "X-Amz-Credential", "includedData", "?", "Atza|", order.buyer.email,
               order.ship_to.line1, order.ship_to.name]
    leaked = [secret for secret in secrets if secret and secret in text.replace("?[redacted]", "")]
    assert leaked == [], text


def test_the_structlog_redaction_masks_url_queries_whatever_the_key():
    event = logs.redact(None, "warning", {"error": "GET https://s3.example/doc?X-Amz-Signature=abc failed",
                                          "where": "https://sellingpartnerapi-na.amazon.com/orders/v0/orders"
                                                   "?BuyerEmail=a@b.c"})
    assert event == {"error": "GET https://s3.example/doc?[redacted] failed",
                     "where": "https://sellingpartnerapi-na.amazon.com/orders/v0/orders?[redacted]"}
