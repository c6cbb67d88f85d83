"""The state store's stock and price records on SQLite and PostgreSQL: a scan's desired and in-flight values and
its feeds, per-message acknowledgement and refusal, release, approval of a held price, Amazon orders not yet in
Sage, FBA levels (newest wins) and reconciliation results."""

from __future__ import annotations

from datetime import timedelta

import pytest

from erpsync.runtime.store import Store, utcnow

US = "ATVPDKIKX0DER"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite" \
        else request.getfixturevalue("postgres_url")
    opened = Store.connect(url)
    yield opened
    opened.close()


def test_a_scan_its_feeds_and_their_results(store):
    listings = store.listings
    desired = {f"S{n}": (f"I{n}", {"quantity": n, "price": "9.99"}) for n in range(5)}
    sends = {sku: values for sku, (_item, values) in desired.items()}
    batches = listings.record_scan(US, desired, sends, {"S4": {"price": "0.99", "reason": "guard"}}, max_messages=2)
    assert len(batches) == 3
    feeds = {f.id: f for f in listings.feeds(messages=True)}
    assert all(f.messages is None for f in listings.feeds())
    assert [len(feeds[b].messages) for b in batches] == [2, 2, 1]
    assert feeds[batches[0]].messages[0] == {"messageId": 1, "sku": "S0", "values": {"quantity": 0, "price": "9.99"}}
    states = listings.states(US)
    assert states["S0"].sent == {"quantity": 0, "price": "9.99"} and states["S0"].feed_batch == batches[0]
    assert states["S4"].held == {"price": "0.99", "reason": "guard"}

    listings.acknowledge(batches[0], {"S0": {"quantity": 0, "price": "9.99"}}, {"S1": {"quantity": 1}})
    states = listings.states(US)
    assert states["S0"].acked == {"quantity": 0, "price": "9.99"} and states["S0"].sent is None
    assert states["S1"].refused == {"quantity": 1} and states["S1"].acked is None and states["S1"].sent is None
    assert listings.comparison(US)["S1"].refused == {"quantity": 1}
    assert listings.release(batches[1]) == 2
    assert listings.states(US)["S2"].sent is None
    listings.forget(US, "S1")
    assert listings.states(US)["S1"].refused is None
    assert listings.approve_price(US, "S4")["approved"] is True
    assert listings.approve_price(US, "S0") is None
    listings.feed_update(batches[0], status="DONE", summary={"messagesAccepted": 1})
    assert listings.feed(batches[0]).status == "DONE"
    with pytest.raises(ValueError):
        listings.feed_update(batches[0], messages=[])


def test_unwritten_orders_fba_levels_and_reconciliations(store):
    store.journal_set("113-1", "received")
    store.journal_set("113-2", "written")
    store.inbox_add("n1", notification_type="ORDER_CHANGE", amazon_order_id="113-1",
                    payload={"items": [{"sku": "A", "quantity": 3, "quantity_shipped": 1}]})
    store.inbox_add("n2", notification_type="ORDER_CHANGE", amazon_order_id="113-2",
                    payload={"items": [{"sku": "B", "quantity": 5}]})
    lines = store.listings.unwritten_order_lines()
    assert list(lines) == ["113-1"] and [(sku, int(q)) for sku, q in lines["113-1"]] == [("A", 2)]

    now = utcnow()
    assert store.listings.fba_set(US, "F", 7, now, "notification")
    assert not store.listings.fba_set(US, "F", 3, now - timedelta(minutes=5), "getInventorySummaries")
    assert store.listings.fba_levels(US)["F"][0] == 7 and store.listings.fba_levels(US)["F"][2] == "notification"
    store.listings.reconciliation_add(US, {"differences": [1]})
    store.listings.reconciliation_add(US, {"differences": []})
    assert store.listings.reconciliation_last(US)[1] == {"differences": []}
