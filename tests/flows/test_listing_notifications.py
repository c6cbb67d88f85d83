"""Inventory and listing notifications through the same webhook intake as ORDER_CHANGE, sent by the sandbox over
HTTP: an FBA availability change updates what reconciliation sees, a listing issue becomes a per-SKU dead letter
with Amazon's message (replayed once fixed), duplicates are dropped, an invalid one is refused with a 400."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from erpsync.amazon import listing_notifications
from erpsync.cli import app
from erpsync.runtime import deadletter
from erpsync.web.app import start as start_web
from tests.flows.conftest import WEBHOOK_TOKEN
from tests.flows.listing_helpers import SKUS, listed

US = "ATVPDKIKX0DER"


@pytest.fixture
def shop(make_pipeline):
    pipeline = make_pipeline(inventory={"include": SKUS, "feed_poll_seconds": 20}, prices={"enabled": False})
    listed(pipeline)
    server = start_web(pipeline.runtime)
    pipeline.webhook_to(f"{server.url}/notifications")
    pipeline.web_url = server.url
    yield pipeline
    server.stop()


def test_an_fba_availability_notification_updates_what_reconciliation_sees(shop):
    sent = shop.control("POST", f"listings/{SKUS[2]}/fba", json={"quantity": 17})
    assert sent["NotificationType"] == "FBA_INVENTORY_AVAILABILITY_CHANGES"
    shop.wait(lambda: SKUS[2] in shop.runtime.store.listings.fba_levels(US), what="the FBA level to be recorded")
    quantity, _as_of, source = shop.runtime.store.listings.fba_levels(US)[SKUS[2]]
    assert (quantity, source) == (17, "notification")
    result = CliRunner().invoke(app, ["reconcile", "inventory", "--json", "--config", str(shop.config_path)])
    assert result.exit_code == 0, result.output
    [found] = json.loads(result.stdout)
    fba = next(d for d in found["differences"] if d["sku"] == SKUS[2])
    assert (fba["channel"], fba["amazon"], fba["cause"]) == ("FBA", 17, "FBA")


def test_a_listing_issue_becomes_a_dead_letter_with_amazons_message_and_its_replay_rereads(shop):
    message = "The value for 'brand' does not match the brand registered for this ASIN."
    shop.control("POST", f"listings/{SKUS[0]}/issues", json={"message": message, "attribute": "brand"})
    with shop.workers(queues=("amazon",)):
        shop.wait(lambda: any(d.job == "listing_issues" for d in shop.runtime.store.dead_letters.list()),
                  what="the listing issue to become a dead letter")
    [dead] = [d for d in shop.runtime.store.dead_letters.list() if d.job == "listing_issues"]
    assert dead.record == SKUS[0] and dead.error_code == "listing_issue"
    assert message in dead.message and "brand" in dead.message and "replay" in dead.message

    with shop.sandbox.world.lock:  # the seller fixes the listing on Amazon
        listing = shop.sandbox.world.listings[SKUS[0]]
        listing.issues, listing.status = [], ["BUYABLE", "DISCOVERABLE"]
    replay = deadletter.replay(shop.runtime, dead.id, now=True)
    assert replay.outcome.status == "done" and replay.outcome.value == "buyable"


def test_an_unbuyable_status_without_issue_is_a_dead_letter_and_a_buyable_one_is_not(shop):
    shop.control("POST", f"listings/{SKUS[1]}/status", json={"status": ["BUYABLE", "DISCOVERABLE"]})
    shop.control("POST", f"listings/{SKUS[1]}/status", json={"status": ["DISCOVERABLE"]})
    with shop.workers(queues=("amazon",)):
        shop.wait(lambda: any(d.job == "listing_issues" for d in shop.runtime.store.dead_letters.list()),
                  what="the status change to become a dead letter")
    [dead] = [d for d in shop.runtime.store.dead_letters.list() if d.job == "listing_issues"]
    assert dead.error_code == "listing_not_buyable" and "DISCOVERABLE" in dead.message


def test_duplicates_are_dropped_and_an_invalid_notification_is_refused(shop):
    body = shop.control("POST", f"listings/{SKUS[3]}/fba", json={"quantity": 3})
    headers = {"X-Erpsync-Token": WEBHOOK_TOKEN}
    again = httpx.post(f"{shop.web_url}/notifications", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    broken = {**body, "Payload": {**body["Payload"], "SKU": ""}}
    broken["NotificationMetadata"] = {**body["NotificationMetadata"], "NotificationId": "broken-1"}
    refused = httpx.post(f"{shop.web_url}/notifications", json=broken, headers=headers)
    assert refused.status_code == 400 and "broken-1" in refused.json()["error"]
    assert listing_notifications.handles(json.dumps(body))
    other = {**body, "Payload": {**body["Payload"], "SellerId": "A2OTHERSELLER"},
             "NotificationMetadata": {**body["NotificationMetadata"], "NotificationId": "other-seller-1"}}
    refused = httpx.post(f"{shop.web_url}/notifications", json=other, headers=headers)
    assert refused.status_code == 400 and "A2OTHERSELLER" in refused.json()["error"]


def test_erpsync_subscribes_its_queue_and_the_listing_events_come_through_sqs(make_pipeline, moto_endpoint,
                                                                              monkeypatch):
    """`erpsync notifications subscribe` creates the SQS destination and the four subscriptions with their payload
    versions over the sandbox's Notifications API (a second run keeps them); the sandbox then sends the inventory
    and listing events to that queue, and erpsync's SQS consumer takes them in."""
    import threading

    import boto3

    from erpsync.amazon.notifications import PAYLOAD_VERSIONS
    from erpsync.flows import intake

    monkeypatch.setenv("ERPSYNC_AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("ERPSYNC_AWS_SECRET_ACCESS_KEY", "test")
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test")
    url = sqs.create_queue(QueueName="erpsync-listing-events")["QueueUrl"]
    shop = make_pipeline(inventory={"include": SKUS}, prices={"enabled": False},
                         amazon={"notifications": {"sqs_queue_url": url, "sqs_endpoint_url": moto_endpoint}})
    listed(shop)
    shop.sandbox.world.sqs_endpoint_url = moto_endpoint  # where the sandbox finds the queues its destinations name

    def subscribe() -> dict:
        result = CliRunner().invoke(app, ["notifications", "subscribe", "--json", "--config", str(shop.config_path)])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    first = subscribe()
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert first["sqs_arn"] == arn  # derived from [amazon.notifications] sqs_queue_url
    assert {(s["type"], s["outcome"], s["payload_version"]) for s in first["subscriptions"]} == \
        {(t, "created", v) for t, v in PAYLOAD_VERSIONS.items()}
    world = shop.sandbox.world
    made = {s.notification_type: (s.payload_version, s.processing_directive) for s in world.subscriptions.values()}
    assert made["LISTINGS_ITEM_ISSUES_CHANGE"] == ("2023-12-13", None)
    assert made["ORDER_CHANGE"][1]["eventFilter"]["marketplaceIds"] == [US]
    again = subscribe()
    assert [s["outcome"] for s in again["subscriptions"]] == ["kept"] * len(PAYLOAD_VERSIONS)
    assert len(world.subscriptions) == len(PAYLOAD_VERSIONS) and len(world.destinations) == 1

    with world.lock:
        world.notification_sinks.clear()  # only the subscription delivers
    shop.control("POST", f"listings/{SKUS[2]}/fba", json={"quantity": 11})
    shop.control("POST", f"listings/{SKUS[0]}/issues", json={"message": "Image missing", "attribute": "main_image"})
    stop = threading.Event()
    thread = intake.consume_sqs(shop.runtime, stop, wait_seconds=0)
    try:
        store = shop.runtime.store
        shop.wait(lambda: SKUS[2] in store.listings.fba_levels(US), timeout=20, what="the FBA level from SQS")
        shop.wait(lambda: any(p.job == "listing_issues" for p in store.job_keys_pending()), timeout=20,
                  what="the listing issue queued from SQS")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert store.listings.fba_levels(US)[SKUS[2]][0] == 11
    subscription_ids = {s.id for s in world.subscriptions.values()}
    delivered = [b for b in world.published if b["NotificationMetadata"]["SubscriptionId"] in subscription_ids]
    assert sorted((b["NotificationType"], b["PayloadVersion"]) for b in delivered) == [
        ("FBA_INVENTORY_AVAILABILITY_CHANGES", "1.0"), ("LISTINGS_ITEM_ISSUES_CHANGE", "2023-12-13")]
    assert world.delivery_failures == []
