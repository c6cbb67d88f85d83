"""Dialect faith: every statement sent to Sage compiles for SQL Server and parses as T-SQL.

Statements are captured as they run through a full gateway scenario on the replica, rendered for mssql with
their real parameter values, and parsed by sqlglot (read="tsql"). Every registered builder of
``erpsync.sage500.sql`` must show up (the procedure-mode ones, which cannot run on the replica, are rendered
with sample values). The replica's own emulation statements are checked the same way.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
import sqlglot
from sqlalchemy import delete, event
from sqlalchemy.dialects import mssql
from sqlalchemy.sql import ClauseElement, TextClause
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import cloned_traverse, iterate
from sqlglot import exp

from erpsync import model
from erpsync.sage500 import (availability, backend, catalog, database, history, ledger, orders, posting, pricing,
                             schema_check, shipments, sql, warehouse)
from erpsync.sage500 import gateway as gateway_module
from erpsync.sage500.gateway import Sage500Gateway
from erpsync.sage500.schema import tciSurrogateKey_R

MSSQL = mssql.dialect()
SAMPLES = {  # parameters for the builders that only run against a real SQL Server
    "applock_mssql": {"resource": "erpsync:order:113-1234567-1234567", "timeout_ms": 10000},
    "next_key_mssql": {"series": "tsoSalesOrdLog"},
    "next_key_block_mssql": {"series": "tsoSOLine", "count": 3},
    "max_tran_no_mssql": {"company_id": "SOA"},
    "exec_sales_ord_ins": {"session_key": 42, "company_id": "SOA", "recs_processed": 0, "failed_recs": 0,
                           "total_recs": 0},
    "lock_timeout_mssql": {"timeout_ms": 10000},
    "procedures_present": {"names": ["spSOapiSalesOrdIns", "spGetNextSurrogateKey"]},
}


def render(statement: ClauseElement, params: dict) -> str:
    """T-SQL text of ``statement`` with ``params`` inlined as literals (a parameter left without a value fails)."""
    if isinstance(statement, Insert) and params:
        statement = statement.values(**params)
        return str(statement.compile(dialect=MSSQL, compile_kwargs={"literal_binds": True}))
    unbound = {e.key for e in iterate(statement) if isinstance(e, BindParameter) and e.required} - set(params)
    assert not unbound, f"no value for {unbound}"
    if isinstance(statement, TextClause):
        statement = statement.bindparams(**params)
    else:
        def bind(parameter):
            if parameter.key in params:
                parameter.value, parameter.callable, parameter.required = params[parameter.key], None, False

        statement = cloned_traverse(statement, {}, {"bindparam": bind})
    return str(statement.compile(dialect=MSSQL, compile_kwargs={"literal_binds": True}))


def parse_tsql(text: str) -> list[exp.Expression]:
    parsed = sqlglot.parse(text, read="tsql")
    assert parsed and all(e is not None and not isinstance(e, exp.Command) for e in parsed), text
    return parsed


@pytest.fixture
def captured(sqlite_engine):
    seen: list[tuple[ClauseElement, dict]] = []

    @event.listens_for(sqlite_engine, "before_execute")
    def capture(conn, clause, multiparams, params, execution_options):
        if isinstance(clause, ClauseElement):
            seen.append((clause, (multiparams[0] if multiparams else params) or {}))

    return seen


def scenario(engine, make_order, stock) -> None:
    """Everything the gateway does, successes and refusals."""
    gw = Sage500Gateway(engine)
    stock(engine, "WIDGET-BLU-L", {"A-01-01": 50})
    with engine.begin() as conn:  # a key series used for the first time starts at 1
        conn.execute(delete(tciSurrogateKey_R).where(tciSurrogateKey_R.c.TableName == "StgSession"))
    written = gw.create_sales_order(make_order("113-1000000-0000001"))
    gw.create_sales_order(make_order("113-1000000-0000001"))
    gw.release_hold("113-1000000-0000001")
    with pytest.raises(Exception, match="Sage refused"):
        gw.create_sales_order(make_order("113-1000000-0000002", lines=[("NOPE", 1, "1.00")]))
    gw.create_sales_order(make_order("113-1000000-0000003"))
    assert gw.void_sales_order("113-1000000-0000003") == "voided"
    order = gw.order_by_amazon_id(written.AmazonOrderId)
    ship = warehouse.ship_order(engine, written.SOKey, [{"lines": {order.lines[0].SOLineKey: 1}, "tracking_no": "1Z"}])
    warehouse.commit_shipment(engine, ship)
    page = gw.shipments_since(0)
    gw.shipments([page.cursor])
    gw.items(["WIDGET-BLU-L"])
    gw.item_ids()
    gw.customer("AMAZON-US")
    gw.ship_method_ids()
    gw.warehouse_ids()
    gw.stock_levels(["MAIN", "EAST"])
    gw.prices("USD")
    gw.prices("USD", "MAIN")
    with engine.connect() as conn:  # `erpsync check` reads the server's clock on a real site only
        conn.execute(sql.server_clock()).scalar_one()
    history.quantities(engine, "SOA", ["WIDGET-BLU-L"], days=30)  # the data-quality checks' reads
    history.list_prices(engine, "SOA", "USD", ["WIDGET-BLU-L"], warehouse_id="MAIN")
    history.hold(engine, "113-1000000-0000001")
    availability.items(engine, "SOA")
    with engine.begin() as conn:  # a site's custom item field ([mapping] attributes), read with the descriptions
        conn.exec_driver_sql("ALTER TABLE timItem ADD UserFld1 VARCHAR(15)")
    availability.items(engine, "SOA", availability.item_columns(engine, ["ShortDesc", "userfld1"]))
    pricing.prices(engine, "SOA", "USD", sheet="Sheet2Price", whse_id="MAIN")
    pricing.prices(engine, "SOA", "USD")
    entry = model.JournalEntry(reference="S-1", date=datetime(2026, 1, 20, tzinfo=timezone.utc), currency="USD",
                               lines=[model.JournalLine(account="1050", amount=Decimal("10.5")),
                                      model.JournalLine(account="4010", amount=Decimal("-10.5"))])
    gw.post_journal(entry)
    gw.post_journal(entry)
    calendar = posting.FiscalCalendar.read(gw, datetime(2026, 1, 20).date(), datetime(2026, 2, 3).date())
    posting.post_batches(gw, [posting.PeriodBatch(calendar.period_of(entry.date.date()), entry)], what="S-1")


def test_every_statement_compiles_for_mssql_and_parses_as_tsql(sqlite_engine, captured, make_order, stock):
    scenario(sqlite_engine, make_order, stock)
    names = set()
    for statement, params in captured:
        name = statement.get_execution_options().get("sage_sql")
        names.add(name)
        builder = sql.REGISTRY.get(name)
        if builder and builder.only == "sqlite":
            continue  # the replica's own write lock, never sent to Sage
        text = render(statement, params)
        parse_tsql(text)
    expected = {name for name, b in sql.REGISTRY.items() if b.only in (None, "sqlite")}
    assert expected - names == set(), "registered statements the scenario did not exercise"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_procedure_mode_statements_parse_as_tsql(name):
    builder = sql.REGISTRY[name]
    assert builder.only == "mssql"
    text = render(builder.build(), SAMPLES[name])
    parsed = parse_tsql(text)
    if name == "applock_mssql":
        assert "@LockOwner = 'Transaction'" in text and "sp_getapplock" in text
        assert [type(e) for e in parsed] == [exp.Declare, exp.Execute, exp.Select]
    if name == "exec_sales_ord_ins":
        assert "@iSessionKey = 42" in text and "@oContinue = @oContinue OUTPUT" in text
    if name == "max_tran_no_mssql":
        assert "WITH (UPDLOCK, HOLDLOCK)" in text
    if name == "lock_timeout_mssql":
        assert text == "SET LOCK_TIMEOUT 10000"
    if name == "procedures_present":
        assert "FROM [INFORMATION_SCHEMA].ROUTINES" in text


def test_every_mssql_only_builder_has_a_sample():
    assert {n for n, b in sql.REGISTRY.items() if b.only == "mssql"} == set(SAMPLES)


def test_postgresql_lock_is_the_only_postgresql_statement():
    assert {n for n, b in sql.REGISTRY.items() if b.only == "postgresql"} == {"applock_postgresql",
                                                                               "lock_timeout_postgresql"}


@pytest.mark.parametrize("module", [gateway_module, database, backend, orders, shipments, catalog, ledger,
                                    schema_check], ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_gateway_builds_no_sql_of_its_own(module):
    """All the gateway's SQL comes from the registry: none of its modules imports statement constructors."""
    constructors = {"select", "insert", "update", "delete", "text", "func", "bindparam", "literal_column"}
    assert constructors.isdisjoint(vars(module))


def test_procedure_calls_made_on_the_replica_render_as_the_procedure_backend_sends_them(sqlite_engine, make_order,
                                                                                        stock, monkeypatch):
    """The replica answers every Sage procedure call through its stand-in; each call, with the very parameters the
    gateway passed, is what the procedure backend EXECs on SQL Server: it renders and parses as T-SQL."""
    calls = []
    original = backend.ReplicaBackend.call

    def spy(self, conn, procedure, params):
        calls.append((procedure, dict(params)))
        return original(self, conn, procedure, params)

    monkeypatch.setattr(backend.ReplicaBackend, "call", spy)
    scenario(sqlite_engine, make_order, stock)
    assert {procedure for procedure, _ in calls} == set(backend.PROCEDURES)
    for procedure, params in calls:
        statement = backend.ProcedureBackend.statements[procedure]()
        text = render(statement, params)
        parse_tsql(text)
        if procedure == backend.SALES_ORDER_IMPORT:
            assert f"@iSessionKey = {params['session_key']}" in text and "@iCompanyID = 'SOA'" in text
