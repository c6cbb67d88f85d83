"""The state store's settlements (once per settlement-id) and their row detail, on SQLite and PostgreSQL."""

from datetime import date, datetime, timezone

import pytest

from erpsync.runtime.store import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path}/state.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = Store.connect(url)
    yield s
    s.close()


def _claim(store, total="10.00", report_id="R1"):
    return store.settlement_claim("S1", report_id=report_id, currency="USD", total_amount=total, start_date=T0,
                                  end_date=T0, deposit_date=None)


def _rows(n, order_id="112-1"):
    return ({"line_no": i + 3, "posted_date": date(2026, 3, 1 + i % 28), "transaction_type": "Order",
             "amount_type": "ItemPrice", "amount_description": "Principal", "amount": f"{i}.01",
             "order_id": order_id if i % 2 else None, "fulfillment_id": "MFN", "sku": None, "account": "1210",
             "rule": "clearing"} for i in range(n))


def test_settlement_claimed_once_and_posted(store):
    created, record = _claim(store)
    assert created and record.status == "imported" and record.total_amount == "10.00"
    created, record = _claim(store, total="11.00", report_id="R2")
    assert not created and (record.total_amount, record.report_id) == ("11.00", "R2")  # not posted: re-imported
    store.settlement_posted("S1", {"2026-03": 7})
    created, record = _claim(store, total="12.00", report_id="R3")
    assert not created and record.status == "posted" and record.total_amount == "11.00"
    assert record.batches == {"2026-03": 7} and store.settlement_report_ids({"R2", "R3"}) == {"R2"}
    assert [r.settlement_id for r in store.settlement_list()] == ["S1"]


def test_row_detail_replaced_in_one_transaction(store):
    _claim(store)
    assert store.settlement_rows_replace("S1", _rows(25_000)) == 25_000
    assert store.settlement_rows_replace("S1", _rows(3)) == 3  # a second run replaces the first
    rows = store.settlement_rows_of("S1")
    assert [(r["line_no"], r["posted_date"], r["amount"], r["order_id"]) for r in rows] == [
        (3, date(2026, 3, 1), "0.01", None), (4, date(2026, 3, 2), "1.01", "112-1"),
        (5, date(2026, 3, 3), "2.01", None)]
    assert [r["line_no"] for r in store.settlement_rows_of(order_id="112-1")] == [4]

    def failing():
        yield from _rows(2)
        raise RuntimeError("the file ended badly")

    with pytest.raises(RuntimeError):
        store.settlement_rows_replace("S1", failing())
    assert len(store.settlement_rows_of("S1")) == 3  # the earlier detail stays
