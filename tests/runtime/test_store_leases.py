"""The state store's leases and audited changes on a real engine: SQLite always, PostgreSQL through postgres_url."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from erpsync.runtime.store import Store, utcnow


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path}/state.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = Store.connect(url)
    yield s
    s.close()


def claim(store, key: str, token: str) -> None:
    assert store.job_key_claim(key, job="test.slow", queue="amazon", due_at=utcnow(), stale_after=timedelta(hours=1),
                               message={"key": key, "token": token})


def test_a_lease_is_taken_by_the_owning_message_only_and_renewed_by_its_worker_only(store):
    claim(store, "k", "t1")
    soon = utcnow() + timedelta(seconds=30)
    assert not store.job_lease_take("k", "stale", until=soon, by="host:1")
    assert store.job_lease_take("k", "t1", until=soon, by="host:1")
    later = soon + timedelta(seconds=30)
    assert store.job_leases_renew({"k": "t1"}, until=later, by="host:1") == []
    assert store.job_key_get("k").leased_until == later
    assert store.job_leases_renew({"k": "t1"}, until=later, by="host:2") == ["k"]  # not that worker's lease
    assert store.job_keys_lost(now=utcnow(), unleased_due_before=utcnow()) == []  # live lease: not lost
    # a live lease is never taken over, however old the key
    assert not store.job_key_claim("k", job="test.slow", queue="amazon", due_at=utcnow(),
                                   stale_after=timedelta(0), message={"key": "k", "token": "t2"})


def test_an_expired_lease_is_lost_and_requeued_once_under_a_new_token(store):
    claim(store, "k", "t1")
    assert store.job_lease_take("k", "t1", until=utcnow() - timedelta(seconds=1), by="host:1")  # expired
    [lost] = store.job_keys_lost(now=utcnow(), unleased_due_before=utcnow() - timedelta(hours=1))
    assert (lost.key, lost.token, lost.leased_by) == ("k", "t1", "host:1")
    assert store.job_key_requeue(lost, {"key": "k", "token": "t2"}, now=utcnow())
    assert not store.job_key_requeue(lost, {"key": "k", "token": "t3"}, now=utcnow())  # done already
    row = store.job_key_get("k")
    assert (row.token, row.leased_until, row.message["token"]) == ("t2", None, "t2")
    assert store.job_leases_renew({"k": "t1"}, until=utcnow(), by="host:1") == ["k"]  # the old worker lost it
    assert not store.job_key_release("k", "t1") and store.job_key_get("k") is not None
    assert store.job_key_release("k", "t2") and store.job_key_get("k") is None


FAULTS = {
    "sqlite": ["CREATE TRIGGER audit_fault BEFORE INSERT ON audit "
               "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"],
    "postgresql": ["CREATE FUNCTION audit_fault() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected fault'; "
                   "END $$ LANGUAGE plpgsql",
                   "CREATE TRIGGER audit_fault BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION audit_fault()"],
}


def test_a_change_whose_audit_row_fails_is_rolled_back_with_it(store):
    store.journal_set("113-1", "writing")
    with store.engine.begin() as conn:
        for statement in FAULTS[store.engine.dialect.name]:
            conn.exec_driver_sql(statement)
    with pytest.raises(sa.exc.DatabaseError, match="injected fault"):
        store.journal_set("113-1", "written", so_key=7, audit=("order.written", {"amazon_order_id": "113-1"}))
    assert store.journal_get("113-1").status == "writing" and store.journal_get("113-1").so_key is None
    with pytest.raises(sa.exc.DatabaseError, match="injected fault"):
        store.confirmation_add(9, 1, "113-1", audit=("shipment.confirmed", {"amazon_order_id": "113-1"}))
    assert store.confirmed_packages(9) == set()
    with pytest.raises(sa.exc.DatabaseError, match="injected fault"):
        store.dead_letters.add(job="apply_order", queue="sage500", key="apply_order:113-1", payload={},
                               error_class="UnknownSku", error_code="unknown_sku", message="m", record="113-1",
                               attempts=1, first_failed_at=utcnow(), audit=("dead_letter.captured", {}))
    assert store.dead_letters.list() == [] and store.audit_list() == []


def test_expired_leases_come_before_a_backlog_of_queued_keys(store):
    for n in range(5):
        claim(store, f"queued-{n}", f"q{n}")
    claim(store, "killed", "k1")
    assert store.job_lease_take("killed", "k1", until=utcnow() - timedelta(seconds=1), by="host:1")
    [first] = store.job_keys_lost(now=utcnow(), unleased_due_before=utcnow(), limit=1)
    assert first.key == "killed"
