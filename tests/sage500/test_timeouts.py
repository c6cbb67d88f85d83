"""Timeouts, so no worker hangs on Sage: login and query timeouts on the engines, a lock timeout on every write
transaction (SET LOCK_TIMEOUT on SQL Server, lock_timeout on PostgreSQL, the busy timeout on SQLite). A statement
blocked by another session past it is SageUnavailable (retried); waiting for the order's own lock is RecordLocked.
Database errors carry no bound values, and a value the database refuses (DataError) is Permanent."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc

from erpsync import model
from erpsync.config import Settings
from erpsync.errors import Permanent, RecordLocked, SageUnavailable, classify
from erpsync.sage500 import database, replica, sql
from erpsync.sage500.engine import engine_from_settings, make_engine
from erpsync.sage500.gateway import Sage500Gateway

ORDER = "113-0000004-0000001"


class Refused(Exception):
    pass


def connect_params(engine) -> dict:
    """The keyword arguments the engine hands the DBAPI's connect() (captured; no connection is made)."""
    seen = {}

    @event.listens_for(engine, "do_connect")
    def capture(dialect, record, cargs, cparams):
        seen.update(cparams)
        raise Refused

    with pytest.raises(Refused):
        engine.connect()
    return seen


def test_sql_server_engine_has_login_and_query_timeouts_and_hides_parameters():
    settings = Settings(sage500={"mode": "procedure", "url": "mssql+pymssql://erpsync@sqlhost/MAS500_app",
                                 "login_timeout_seconds": 7, "query_timeout_seconds": 45})
    engine = engine_from_settings(settings, create=False)
    params = connect_params(engine)
    assert (params["login_timeout"], params["timeout"]) == (7, 45)
    assert (params["host"], params["database"], params["user"]) == ("sqlhost", "MAS500_app", "erpsync")
    assert engine.hide_parameters and engine.pool._pre_ping
    defaults = connect_params(make_engine("mssql+pymssql://erpsync@sqlhost/MAS500_app"))
    assert (defaults["login_timeout"], defaults["timeout"]) == (15, 120)


def test_postgresql_and_sqlite_engines_have_their_analogues(tmp_path):
    params = connect_params(make_engine("postgresql+psycopg://postgres@127.0.0.1/sage", login_timeout_seconds=4,
                                        query_timeout_seconds=30))
    assert params["connect_timeout"] == 4 and params["options"] == "-c statement_timeout=30000"
    assert connect_params(make_engine("postgresql+psycopg://u@h/d?connect_timeout=2"))["connect_timeout"] == "2"
    sqlite = connect_params(make_engine(f"sqlite:///{tmp_path / 'r.db'}", lock_timeout_ms=2500))
    assert sqlite["timeout"] == 2.5
    gateway = Sage500Gateway.from_settings(Settings(base_dir=tmp_path, sage500={"lock_timeout_ms": 250}))
    assert gateway.lock_timeout_ms == 250 and gateway.engine.hide_parameters
    gateway.close()


def test_the_sql_server_transaction_sets_its_lock_timeout_before_taking_the_order_lock():
    executed = []

    class Conn:
        def execute(self, statement, params):
            executed.append((statement.get_execution_options()["sage_sql"], params))
            return type("Result", (), {"scalar": staticmethod(lambda: 0)})()

    database._LOCKS["mssql"](Conn(), "erpsync:order:1", 1500)
    assert executed == [("lock_timeout_mssql", {"timeout_ms": 1500}),
                        ("applock_mssql", {"resource": "erpsync:order:1", "timeout_ms": 1500})]
    blocked = sa_exc.OperationalError("INSERT INTO StgSalesOrder ...", {}, Exception(
        "Lock request time out period exceeded.DB-Lib error message 20018, severity 16"))
    assert isinstance(database.translate(blocked), SageUnavailable)


def test_sqlite_a_writer_blocked_past_the_timeout_is_unavailable_not_hung(sqlite_engine, make_order):
    holder = sqlite_engine.connect()
    holder.exec_driver_sql("BEGIN IMMEDIATE")  # another session holds the replica's write lock
    try:
        with pytest.raises(SageUnavailable, match="waited longer than the lock timeout") as blocked:
            Sage500Gateway(sqlite_engine, lock_timeout_ms=200).create_sales_order(make_order(ORDER))
        assert classify(blocked.value) == "retryable"
    finally:
        holder.rollback()
        holder.close()
    assert Sage500Gateway(sqlite_engine, lock_timeout_ms=200).create_sales_order(make_order(ORDER)).created


def test_postgresql_a_statement_blocked_past_the_timeout_is_unavailable(postgres_url, make_order):
    engine = make_engine(postgres_url)
    replica.seed(engine, items=5)
    gateway = Sage500Gateway(engine, lock_timeout_ms=200)
    with engine.connect() as holder, holder.begin():  # a Sage session holding the key counters' rows
        holder.execute(text('LOCK TABLE "tciSurrogateKey_R" IN EXCLUSIVE MODE'))
        with pytest.raises(SageUnavailable, match="waited longer than the lock timeout") as blocked:
            gateway.create_sales_order(make_order(ORDER))
        assert not isinstance(blocked.value, RecordLocked)
        with engine.connect() as other, other.begin():  # the order's own lock: another job has it
            other.execute(sql.applock_postgresql(), {"resource": f"erpsync:order:{ORDER}"})
            with pytest.raises(RecordLocked):
                gateway.create_sales_order(make_order(ORDER))
    assert gateway.create_sales_order(make_order(ORDER)).created
    engine.dispose()


def test_a_value_the_database_refuses_is_permanent_and_names_the_table_not_the_value(postgres_url):
    engine = make_engine(postgres_url)
    replica.seed(engine, items=5)
    huge = Decimal("1000000000000.00")  # 13 digits: tglPosting.PostAmt is DECIMAL(15,3)
    entry = model.JournalEntry(reference="S-BIG", date=datetime(2026, 1, 20, tzinfo=timezone.utc), currency="USD",
                               lines=[model.JournalLine(account="1050", amount=huge),
                                      model.JournalLine(account="4010", amount=-huge)])
    with pytest.raises(Permanent) as refused:
        Sage500Gateway(engine).post_journal(entry)
    assert refused.value.code == "sage_data_error" and classify(refused.value) == "permanent"
    assert "Sage refused a value in table tglPosting" in str(refused.value)
    assert "1000000000000" not in str(refused.value) and "1000000000000" not in str(refused.value.__cause__)
    engine.dispose()
