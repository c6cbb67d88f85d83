"""The dashboard's read model and the access tables on both state store engines (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from erpsync.runtime import deadletter, pii, views
from erpsync.runtime.access import Access
from erpsync.runtime.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite" else request.getfixturevalue(
        "postgres_url")
    opened = Store.connect(url)
    yield opened
    opened.close()


def _capture(store, record: str, code: str) -> int:
    class Refused(Exception):
        pass

    exc = Refused(f"order {record} refused")
    exc.code, exc.record = code, record
    return deadletter.capture(store, job="apply_order", queue="sage500", key=f"apply_order:{record}",
                              payload={"order": {"amazon_order_id": record, "ship_to": {"name": "Jane Buyer"}}},
                              exc=exc, attempts=2, first_failed_at=datetime.now(timezone.utc))


def test_orders_history_and_dead_letters_by_reason(store):
    for n in range(7):
        store.journal_set(f"113-0000000-000000{n}", "written" if n % 2 else "shipped", so_key=n, tran_no=f"{n:010d}")
    store.audit("order.written", amazon_order_id="113-0000000-0000003", so_key=3, tran_no="0000000003")
    store.audit("order.written", amazon_order_id="113-0000000-0000004", so_key=4, tran_no="0000000004")
    store.confirmation_add(11, 1, "113-0000000-0000003")
    _capture(store, "113-0000000-0000003", "unknown_sku")
    _capture(store, "113-0000000-0000005", "unknown_sku")
    _capture(store, "113-0000000-0000006", "total_mismatch")

    page = views.orders(store, status="written", per_page=2, page=2)
    assert (page.total, page.pages, len(page.items)) == (3, 2, 1)
    assert views.orders(store, search="0000000004").items[0].amazon_order_id == "113-0000000-0000004"
    assert views.journal_counts(store) == {"written": 3, "shipped": 4}

    history = views.order_history(store, "113-0000000-0000003")
    assert history.entry.tran_no == "0000000003"
    assert [e["event"] for e in history.events] == ["order.written"]  # the other order's event is not here
    assert [c["package_no"] for c in history.confirmations] == [1]
    assert [d.error_code for d in history.dead_letters] == ["unknown_sku"]

    assert views.dead_letter_reasons(store) == [("apply_order", "unknown_sku", 2),
                                                ("apply_order", "total_mismatch", 1)]
    assert views.dead_letter_list(store, reason="unknown_sku").total == 2
    assert views.dead_letter_list(store, search="113-0000000-0000006").items[0].error_code == "total_mismatch"
    flows = {f.flow: f for f in views.flow_status(store)}
    assert flows["orders"].dead_letters == 3 and flows["shipments"].lag_seconds is not None


def test_users_sessions_and_failed_logins(store):
    access = Access(store)
    access.add_user("alice", "correct horse battery")
    assert access.verify("alice", "correct horse battery") and not access.verify("alice", "wrong password")
    assert not access.verify("nobody", "correct horse battery")
    token, session = access.open_session("alice", timedelta(hours=1))
    assert access.session(token).csrf_token == session.csrf_token
    assert access.session(token + "x") is None
    access.add_user("alice", "another long password", replace=True)  # a new password ends the sessions
    assert access.session(token) is None
    window = timedelta(minutes=15)
    for _ in range(3):
        access.record_failure("alice", "10.0.0.1", window)
    assert access.failures("alice", "10.0.0.2", window) == 3 and access.failures("bob", "10.0.0.1", window) == 3
    access.forget_failures("alice")
    assert access.failures("alice", "10.0.0.2", window) == 0


def test_purge_on_both_engines(store):
    dead = _capture(store, "113-0000000-0000009", "unknown_sku")
    report = pii.purge(store, timedelta(days=30), now=datetime.now(timezone.utc) + timedelta(days=31))
    assert report.counts["dead_letters"] == 1
    assert store.dead_letters.get(dead).payload["order"]["ship_to"] == "[redacted]"


def test_listing_feeds_their_message_results_and_the_last_reconciliations(store):
    """The Feeds and Reconciliation pages' reads: messages counted by the database (json_array_length on both
    engines), each message's result from the feed's state and the dead letters naming it, the oldest open feed."""
    listings = store.listings
    assert views.oldest_unfinished_feed(store) is None
    sends = {sku: {"quantity": n} for n, sku in enumerate(("A", "B", "C"))}
    [done, waiting] = listings.record_scan("ATVPDKIKX0DER", {}, sends, {}, 2)
    listings.feed_update(done, feed_id="777", status="DONE", finished_at=datetime.now(timezone.utc),
                         summary={"messagesProcessed": 2, "messagesAccepted": 1, "messagesInvalid": 1})
    refused = store.dead_letters.add(
        job="listing_push", queue="sage500", key="listing_push:ATVPDKIKX0DER:B", payload={"sku": "B"},
        error_class="AmazonRejected", error_code="amazon_rejected", record="B", attempts=1,
        message="SKU 'B' (ATVPDKIKX0DER): Amazon refused message 2 of listings feed 777: 4000004 no such SKU",
        first_failed_at=datetime.now(timezone.utc))
    page = views.feeds(store, per_page=1)
    assert (page.total, page.pages) == (2, 2) and [r.feed.id for r in page.items] == [waiting]
    assert [(r.feed.id, r.message_count) for r in views.feeds(store, status="DONE").items] == [(done, 2)]
    assert views.feeds(store, status="DONE").items[0].as_dict()["refused"] == 1
    results = views.feed_messages(store, listings.feed(done))
    assert [(m.sku, m.result, m.dead_letter) for m in results] == [("A", "accepted", None), ("B", "refused", refused)]
    assert [m.result for m in views.feed_messages(store, listings.feed(waiting))] == ["in flight"]
    assert views.feed_statuses(store) == {"DONE": 1, "queued": 1}
    assert 0 <= views.oldest_unfinished_feed(store) < 60

    assert views.last_reconciliations(store, ["ATVPDKIKX0DER"]) == {"ATVPDKIKX0DER": None}
    listings.reconciliation_add("ATVPDKIKX0DER", {"compared": 3, "differences": []})
    listings.reconciliation_add("ATVPDKIKX0DER", {"compared": 3, "differences": [
        {"sku": "C", "sage": 2, "amazon": 5, "channel": "MFN", "cause": "drift", "since": "2026-11-01T00:00:00+00:00",
         "age": "26d 0h"}]})
    last = views.last_reconciliations(store, ["ATVPDKIKX0DER"])["ATVPDKIKX0DER"]
    assert [d["sku"] for d in last.differences] == ["C"]
    assert last.since(last.differences[0]) == datetime(2026, 11, 1, tzinfo=timezone.utc)


def test_settlement_views_sum_the_row_detail_exactly_on_both_engines(store, tmp_path):
    """The row detail the flow keeps, summed per account and rule as Decimal (grouped by amount in SQL first), the
    list with its dead letters, and the rejected count: a post_settlement dead letter's record is a fiscal period,
    its key names the settlement."""
    from erpsync import config
    from erpsync.flows import settlements as flow
    from tests.flows.test_settlements import MFN, SID, mfn_and_afn_rows, row, settlement_file

    rows = mfn_and_afn_rows() + [row("Order", "ItemFees", "Commission", "-0.10", order_id=f"112-000000{n}-0000000",
                                     fid="AFN") for n in range(7)]  # 7 x 0.10: 0.70, not 0.7000000000000001
    settings = config.Settings(base_dir=tmp_path)
    categorised, _ = flow.read(settlement_file(rows).splitlines(), settings, source="test", store=store)
    store.settlement_posted(SID, {"2026-03": 17})

    detail = views.settlement_detail(store, SID)
    assert detail.rows == 18 and detail.orders == 9 and detail.complete
    assert detail.rows_total == categorised.summary.total_amount == Decimal("127.08")
    lines = {(line.account, line.rule): line for line in detail.lines}
    assert lines[("6110", "mapped")].debit == Decimal("24.70") and lines[("6110", "mapped")].rows == 9
    assert lines[("1210", "clearing")].credit == Decimal("103.40")
    assert lines[("1210", "clearing")].memo == "AR clearing, order in Sage: MFN Principal, MFN Shipping, MFN Tax"
    journal = flow.journal(categorised, flow.calendar_month, settings)  # what the flow posts, per account
    posted = {(line.account, line.memo): line.amount for line in journal.lines if not line.deposit}
    assert {(line.account, line.memo): line.amount for line in detail.lines} == posted
    assert detail.deposit.debit == Decimal("127.08")

    class ClosedPeriod(Exception):
        code, record = "closed_period", "2026-03"

    dead = deadletter.capture(store, job="post_settlement", queue="sage500", key=f"post_settlement:{SID}", payload={},
                              exc=ClosedPeriod("fiscal period 2026-03 is closed"), attempts=1,
                              first_failed_at=datetime.now(timezone.utc))
    _capture(store, "113-0000000-0000001", "unknown_sku")  # an order's: not a settlement
    assert views.settlements_rejected(store) == 1
    [(record, open_letters)] = views.settlement_list(store, status="posted").items
    assert record.settlement_id == SID and open_letters == 1
    assert views.settlement_list(store, status="imported").total == 0
    assert [d.id for d in views.settlement_detail(store, SID).dead_letters] == [dead]
    assert views.settlement_of(store.dead_letters.get(dead)) == SID
    assert views.settlement_row_page(store, SID, account="6110", per_page=5, page=2).total == 9
    assert [r["line_no"] for r in views.settlement_row_page(store, SID, search=MFN["order_id"]).items] == list(range(3, 9))
