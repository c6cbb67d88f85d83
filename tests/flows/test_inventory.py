"""Stock to Amazon through JSON_LISTINGS_FEED against the sandbox over HTTP: quantities on the listings after a
sync, the per-message error path and its replay, FATAL and stuck feeds, change detection and ``--full``."""

from __future__ import annotations

import pytest

from erpsync.runtime import deadletter
from erpsync.sage500 import availability
from tests.flows.listing_helpers import SKUS, expected_quantities, feeds_done, listed, sandbox_listings, sync


@pytest.fixture
def shop(make_pipeline):
    pipeline = make_pipeline(inventory={"include": SKUS, "feed_poll_seconds": 20, "debounce_seconds": 0.1},
                             prices={"enabled": False})
    listed(pipeline)
    return pipeline


def test_quantities_reach_the_listings_and_only_changes_are_sent_again(shop):
    counts = sync(shop)
    assert counts["messages"] == len(SKUS) and len(counts["feeds"]) == 1
    with shop.workers():
        shop.wait(lambda: feeds_done(shop), what="the feed to finish")
    quantities = {sku: item["quantity"] for sku, item in sandbox_listings(shop).items() if sku in SKUS}
    assert quantities == expected_quantities(shop)
    states = shop.runtime.store.listings.states("ATVPDKIKX0DER")
    assert {sku: states[sku].acked["quantity"] for sku in SKUS} == expected_quantities(shop)
    assert all(states[sku].sent is None for sku in SKUS)

    assert sync(shop)["messages"] == 0  # nothing changed in Sage: nothing to send
    assert sync(shop, full=True)["messages"] == len(SKUS)  # --full resends everything


def test_safety_stock_and_unwritten_amazon_orders_lower_the_quantity(shop):
    shop.configure("inventory", safety_stock_by_sku={"WIDGET-BLU-L": 3})
    before = expected_quantities(shop)["WIDGET-BLU-L"]
    store = shop.runtime.store
    store.journal_set("113-0000000-0000001", "received")
    store.inbox_add("n-1", notification_type="ORDER_CHANGE", amazon_order_id="113-0000000-0000001",
                    payload={"items": [{"order_item_id": "1", "sku": "WIDGET-BLU-L", "quantity": 2}]})
    sync(shop)
    sent = store.listings.states("ATVPDKIKX0DER")["WIDGET-BLU-L"].sent
    assert sent["quantity"] == max(before - 3 - 2, 0)


def test_a_refused_message_is_one_dead_letter_per_sku_and_its_replay_sends_it_again(shop):
    unknown = "JACKET-BLU-L"
    with shop.sandbox.world.lock:  # the listing does not exist on Amazon: PATCH is refused for this SKU only
        del shop.sandbox.world.listings[unknown]
    sync(shop)
    with shop.workers():
        shop.wait(lambda: feeds_done(shop), what="the feed to finish")
    letters = [d for d in shop.runtime.store.dead_letters.list() if d.job == "listing_push"]
    assert [d.record for d in letters] == [unknown]
    assert "does not exist" in letters[0].message and unknown in letters[0].message
    states = shop.runtime.store.listings.states("ATVPDKIKX0DER")
    assert states[unknown].acked is None and states[unknown].refused is not None
    assert all(states[sku].acked for sku in SKUS if sku != unknown)
    assert sync(shop)["messages"] == 0  # the refused value is not sent again by itself

    listed(shop, [unknown])  # the listing is created on Amazon; replaying the dead letter sends the SKU
    replay = deadletter.replay(shop.runtime, letters[0].id, now=True)
    assert replay.outcome.status == "done"
    with shop.workers():
        shop.wait(lambda: feeds_done(shop), what="the replayed feed to finish")
    assert sandbox_listings(shop)[unknown]["quantity"] == expected_quantities(shop)[unknown]
    assert shop.runtime.store.listings.states("ATVPDKIKX0DER")[unknown].acked is not None


def test_a_fatal_feed_leaves_its_skus_unacknowledged_and_they_are_sent_again(shop, monkeypatch):
    from erpsync.amazon import translate
    real = translate.listings_feed
    monkeypatch.setattr(translate, "listings_feed",
                        lambda seller, messages, **kw: {**real(seller, messages, **kw), "header": {"version": "9"}})
    sync(shop)
    with shop.workers(queues=("amazon",)):  # the scan FATAL queues waits on the sage500 queue meanwhile
        shop.wait(lambda: shop.runtime.store.listings.feeds()[0].status == "FATAL", what="the feed to end")
    feed = shop.runtime.store.listings.feeds()[0]
    assert feed.status == "FATAL" and feed.flagged
    states = shop.runtime.store.listings.states("ATVPDKIKX0DER")
    assert all(states[s].acked is None and states[s].sent is None for s in SKUS)
    monkeypatch.setattr(translate, "listings_feed", real)
    with shop.workers():  # FATAL queued a scan: the SKUs go again and are acknowledged
        shop.wait(lambda: all(s.acked for sku, s in shop.runtime.store.listings.states("ATVPDKIKX0DER").items()
                              if sku in SKUS), what="the SKUs to be acknowledged after FATAL")


def test_a_stuck_feed_is_flagged_resubmitted_once_then_a_dead_letter(shop):
    shop.configure("inventory", feed_stuck_minutes=3)
    shop.control("PATCH", "faults", json={"stuck_feeds": True})
    sync(shop)
    with shop.workers():
        shop.wait(lambda: any(d.job == "track_listings_feed" for d in shop.runtime.store.dead_letters.list()),
                  timeout=60, what="the stuck feed to become a dead letter")
    feed = shop.runtime.store.listings.feeds()[0]
    assert feed.status == "STUCK" and feed.resubmits == 1 and "resubmission" in feed.flagged
    dead = next(d for d in shop.runtime.store.dead_letters.list() if d.job == "track_listings_feed")
    assert dead.error_code == "feed_stuck"
    assert len([f for f in shop.sandbox.world.feeds.values()]) == 2  # the original and one resubmission
    states = shop.runtime.store.listings.states("ATVPDKIKX0DER")
    assert all(states[s].sent is None and states[s].acked is None for s in SKUS)


def test_kits_and_inactive_items_are_not_published(make_pipeline):
    pipeline = make_pipeline(prices={"enabled": False})
    from sqlalchemy import update
    from erpsync.sage500 import schema
    with pipeline.engine.begin() as conn:
        conn.execute(update(schema.timItem).where(schema.timItem.c.ItemID == "WIDGET-BLU-L").values(ItemType=7))
        conn.execute(update(schema.timItem).where(schema.timItem.c.ItemID == "TSHIRT-BLU-L").values(Status=2))
    from erpsync.flows import inventory
    wanted = inventory.desired(pipeline.settings, pipeline.gateway, pipeline.runtime.store, "ATVPDKIKX0DER")
    assert "kit" in wanted.excluded["WIDGET-BLU-L"] and "inactive" in wanted.excluded["TSHIRT-BLU-L"]
    assert "WIDGET-BLU-L" not in wanted.values and len(wanted.values) == len(availability.items(
        pipeline.engine, "SOA")) - 2


def test_an_order_written_to_sage_triggers_a_debounced_scan_when_enabled(make_pipeline):
    shop = make_pipeline(inventory={"include": SKUS, "feed_poll_seconds": 20, "enabled": True,
                                    "debounce_seconds": 0.2}, prices={"enabled": False})
    listed(shop)
    [order_id] = shop.generate(1, skus=[SKUS[0]], multi_line_share=0, multi_quantity_share=0)
    shop.runtime.enqueue("import_order", amazon_order_id=order_id, read=True)
    with shop.workers():
        shop.wait_journal([order_id], "written")
        shop.wait(lambda: shop.runtime.store.listings.feeds(), what="the scan after the import")
        shop.wait(lambda: feeds_done(shop), what="its feed")
    acked = shop.runtime.store.listings.states("ATVPDKIKX0DER")[SKUS[0]].acked["quantity"]
    assert acked == expected_quantities(shop, [SKUS[0]])[SKUS[0]]  # Sage's open order is already subtracted
    assert sandbox_listings(shop)[SKUS[0]]["quantity"] == acked


def test_the_schedule_scans_and_reconciles_only_when_enabled(make_pipeline):
    from erpsync.runtime.schedule import Scheduler
    off = make_pipeline()
    assert not {"inventory_scan", "reconcile_inventory"} & {e.name for e in Scheduler(off.runtime).entries}
    on = make_pipeline(inventory={"enabled": True, "scan_interval_seconds": 5})
    entries = {e.name: e.every for e in Scheduler(on.runtime).entries}
    assert entries["inventory_scan"] == 5 and entries["reconcile_inventory"] == 86_400


def test_a_feed_waiting_behind_our_earlier_feeds_is_not_taken_for_stuck(shop):
    # Amazon processes a seller's feeds one at a time (the sandbox: 30 s queued, 60 s in progress each); the
    # fourth feed is open 270 s after its submission, far beyond the limit, but never unchanged for 150 s.
    shop.configure("inventory", max_messages=1, feed_stuck_minutes=2.5)
    assert len(sync(shop)["feeds"]) == len(SKUS)
    with shop.workers():
        shop.wait(lambda: feeds_done(shop), timeout=60, what="the four feeds")
    feeds = shop.runtime.store.listings.feeds()
    assert [(f.status, f.resubmits, f.flagged) for f in feeds] == [("DONE", 0, None)] * len(SKUS)
    assert len(shop.sandbox.world.feeds) == len(SKUS)


def test_the_sync_command_waits_for_the_feeds_and_reports_them(shop):
    import json

    from typer.testing import CliRunner

    from erpsync.cli import app
    result = CliRunner().invoke(app, ["inventory", "sync", "--wait", "--json", "--config", str(shop.config_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["messages"] == len(SKUS) and [f["status"] for f in report["feeds"]] == ["DONE"]
    assert report["feeds"][0]["summary"]["messagesAccepted"] == len(SKUS)
    assert {s: sandbox_listings(shop)[s]["quantity"] for s in SKUS} == expected_quantities(shop)
    again = CliRunner().invoke(app, ["inventory", "sync", "--json", "--config", str(shop.config_path)])
    assert json.loads(again.stdout)["messages"] == 0
