"""The state store on a real engine: SQLite always, PostgreSQL through the postgres_url fixture."""

import sqlite3
import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from alembic.script import ScriptDirectory

from erpsync.runtime.store import MIGRATIONS, VERSION_TABLE, Store, metadata

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()  # the newest migration in the repo


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url):
    s = Store.connect(store_url)
    yield s
    s.close()


def test_a_new_sqlite_store_opened_while_another_holds_the_file_waits_for_it(tmp_path):
    """Switching a file to WAL needs it to itself, and SQLite refuses at once ("database is locked", no busy
    timeout) while another connection is in a transaction: a worker and the web app opening a new store together
    failed (seen in CI as a flake of the test below). Opening now waits for the file."""
    path = tmp_path / "state.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE someone_elses (x)")
    opened, errors = [], []

    def open_store():
        try:
            opened.append(Store.connect(f"sqlite:///{path}"))
        except Exception as exc:  # reported below
            errors.append(exc)

    opening = threading.Thread(target=open_store)
    opening.start()
    opening.join(1.0)
    assert opening.is_alive() and errors == [], f"opening did not wait for the file: {errors}"
    holder.execute("COMMIT")
    holder.close()
    opening.join(30)
    assert errors == [] and [s.revision for s in opened] == [HEAD]
    opened[0].close()


def test_migrations_build_exactly_the_declared_schema(store):
    assert store.revision == HEAD
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), metadata)
        tables = set(sa.inspect(conn).get_table_names())
    assert diff == []
    assert {"inbox", "order_journal", "cursors", "dead_letters", "job_keys", "shipment_confirmations",
            "audit", VERSION_TABLE} <= tables


def test_opening_again_and_concurrently_is_safe(store_url):
    errors, stores = [], []

    def open_store():
        try:
            stores.append(Store.connect(store_url))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and {s.revision for s in stores} == {HEAD}
    for s in stores:
        s.close()


def test_inbox_dedupes_notification_ids_and_redacts_personal_data(store):
    payload = {"Payload": {"OrderChangeNotification": {"AmazonOrderId": "113-1", "BuyerInfo": {
        "Buyer": {"name": "Jane Roe", "email": "jane@example.com"}}}}, "token": "Atza|secret"}
    assert store.inbox_add("n-1", notification_type="ORDER_CHANGE", amazon_order_id="113-1", payload=payload)
    assert not store.inbox_add("n-1", amazon_order_id="113-1")
    with store.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT payload, received_at FROM inbox")).one()
    text = str(row.payload)
    assert "Jane" not in text and "jane@" not in text and "Atza|secret" not in text and "113-1" in text


def test_order_journal_compare_and_set(store):
    assert store.journal_get("113-1") is None
    assert store.journal_set("113-1", "received", only_from={None})
    assert not store.journal_set("113-1", "received", only_from={None})
    assert store.journal_set("113-1", "writing", only_from={"received", "failed"})
    assert not store.journal_set("113-1", "writing", only_from={"received", "failed"})  # another worker has it
    assert store.journal_set("113-1", "written", so_key=501, tran_no="0000000042")
    assert store.journal_set("113-1", "shipped")
    entry = store.journal_get("113-1")
    assert (entry.status, entry.so_key, entry.tran_no, entry.last_error) == ("shipped", 501, "0000000042", None)
    assert entry.updated_at.tzinfo is timezone.utc and entry.updated_at >= entry.created_at
    store.journal_set("113-2", "failed", error="SKU 'X' has no Sage item")
    assert [e.amazon_order_id for e in store.journal_list("failed")] == ["113-2"]
    assert store.journal_get("113-2").last_error == "SKU 'X' has no Sage item"
    with pytest.raises(ValueError, match="journal status 'sent'"):
        store.journal_set("113-1", "sent")


def test_cursor_overlaps_never_moves_back_and_survives_reopen(store, store_url):
    cursor = store.cursor("orders.last_updated", T0, timedelta(minutes=10))
    assert cursor.last_value is None and cursor.start_value == T0
    assert cursor.commit(T0 + timedelta(hours=1))
    assert not cursor.commit(T0 + timedelta(minutes=30))  # a window that saw older data only
    again = Store.connect(store_url).cursor("orders.last_updated", T0, timedelta(minutes=10))
    assert again.last_value == T0 + timedelta(hours=1)
    assert again.start_value == T0 + timedelta(minutes=50)
    ships = store.cursor("shipments.ship_key", 0, overlap=5)
    assert ships.commit(120) and store.cursor("shipments.ship_key", 0, overlap=5).start_value == 115
    with pytest.raises(TypeError):
        ships.commit("121")
    with pytest.raises(ValueError, match="naive"):
        cursor.commit(datetime(2027, 1, 1))


def test_shipment_confirmations_are_recorded_once_per_package(store):
    assert store.confirmation_add(7, 1, "113-1")
    assert store.confirmation_add(7, 2, "113-1")
    assert not store.confirmation_add(7, 1, "113-1")
    assert store.confirmed_packages(7) == {1, 2} and store.confirmed_packages(8) == set()


def test_dead_letters_and_audit(store):
    dead_id = store.dead_letters.add(job="import_order", queue="amazon", key="k", payload={"amazon_order_id": "1"},
                                     error_class="UnknownSku", error_code="unknown_sku", message="m", record="X",
                                     attempts=1, first_failed_at=T0)
    assert store.dead_letters.get(dead_id).status == "open"
    assert not store.dead_letters.mark(dead_id, "discarded", only_from={"replayed"})
    assert store.dead_letters.mark(dead_id, "replayed", result="succeeded")
    assert store.dead_letters.list() == [] and len(store.dead_letters.list(None)) == 1
    store.audit("dead_letter.replayed", dead_letter=dead_id, password="hunter2")
    [event] = store.audit_list()
    assert event.detail == {"dead_letter": dead_id, "password": "[redacted]"} and event.at.tzinfo is timezone.utc


def test_a_failing_statement_s_error_text_carries_no_bound_value(store):
    """hide_parameters: the text of a database error (logged, kept in a dead letter) never holds the values."""
    with pytest.raises(sa.exc.IntegrityError) as failed:  # replay_of names no dead letter: a foreign key violation
        store.dead_letters.add(job="apply_order", queue="sage500", key="apply_order:113-0000000-0000001",
                               payload={"buyer": {"email": "jane.roe@marketplace.amazon.com"}},
                               error_class="X", error_code="x", message="Jane Roe, 1 Main St", record=None,
                               attempts=1, first_failed_at=T0, replay_of=987654)
    text = str(failed.value)
    assert "INSERT INTO dead_letters" in text and "hidden" in text
    # (PostgreSQL's own DETAIL names the missing key, 987654: the server's text, not a bound parameter)
    assert "jane.roe" not in text and "Jane Roe" not in text and "1 Main St" not in text
