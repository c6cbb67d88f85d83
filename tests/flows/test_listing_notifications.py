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
