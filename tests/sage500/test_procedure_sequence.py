"""The procedure path, run against the replica: the gateway's one sequence (staging rows under a SessionKey,
``spSOapiSalesOrdIns`` until ``@oContinue = 0``, ``tdmMigrationLogWrk``, the checks after the import) talks to
stand-ins that answer through the same calls a real Sage answers — including stand-ins that behave as an awkward
site's procedure would. Only the dispatch differs from SQL Server (test_dialect renders each call as the
procedure backend EXECs it)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import event, insert, select, update
from sqlalchemy.sql.dml import Insert

from erpsync.errors import ConfigError, SageRejected
from erpsync.sage500 import backend as backends
from erpsync.sage500 import orders
from erpsync.sage500 import schema as s
from erpsync.sage500.gateway import Sage500Gateway
from erpsync.sage500.replica_import import PROCESSED

ORDER = "113-0000002-0000001"

# reference/sage500.md §6: the staging columns Sage's spSOapiSalesOrdIns reads (T1, T4)
READ_BY_PROCEDURE = {
    "StgSalesOrder": set("""RowKey ProcessStatus SessionKey Action TranNo TranDate CustID CustClassID CustPONo Status
        CurrID CurrExchRate CurrExchSchdID ContactName ConfirmNo AckDate CloseDate Expiration Hold HoldReason OpenAmt
        FreightAmt STaxAmt TradeDiscAmt TranCmnt PmtTermsID PrimarySperID SalesSourceID SOAckFormID RequireSOAck
        RecurSOTranNo DfltAcctRefCode DfltCommPlanID DfltFOBID DfltPurchVAddrID DfltPromDate DfltRequestDate
        DfltShipDate DfltShipMethID DfltShipPriority DfltWarehouseID BillToCustAddrID BillToAddrName BillToAddrLine1
        BillToAddrLine2 BillToAddrLine3 BillToAddrLine4 BillToAddrLine5 BillToCity BillToStateID BillToCountryID
        BillToPostalCode DfltShipToCustAddrID DfltShipToAddrName DfltShipToAddrLine1 DfltShipToAddrLine2
        DfltShipToAddrLine3 DfltShipToAddrLine4 DfltShipToAddrLine5 DfltShipToCity DfltShipToStateID
        DfltShipToCountryID DfltShipToPostalCode UserFld1 UserFld2 UserFld3 UserFld4""".split()),
    "StgSOLine": set("""RowKey ProcessStatus SessionKey Action TranNo SOLineNo ItemID ItemAliasID Description ExtCmnt
        CmntOnly QtyOrd OrigOrdered QtyShip QtyInvcd QtyOnBO QtyRtrnCredit QtyRtrnReplacement UnitMeasID UnitPrice
        ExtAmt AmtInvcd FreightAmt TradeDiscAmt TradeDiscPct WarehouseID ShipMethID ShipDate RequestDate PromiseDate
        OrigPromiseDate ShipPriority DeliveryMeth Status STaxClassID GLAcctNo AcctRefCode Hold HoldReason FOBID
        CommClassID CommPlanID KitComponent ReqCert VendorID PONumber ShipToAddrName ShipToAddrLine1 ShipToAddrLine2
        ShipToAddrLine3 ShipToAddrLine4 ShipToAddrLine5 ShipToCity ShipToStateID ShipToCountryID ShipToPostalCode
        UserFld1 UserFld2""".split()),
}


class Recorder:
    """Wraps a backend's stand-ins to record each call (procedure, parameters, answer)."""

    def __init__(self, gateway: Sage500Gateway):
        self.calls: list[tuple[str, dict, dict]] = []
        stand_ins = gateway.backend.stand_ins
        for name, stand_in in list(stand_ins.items()):
            stand_ins[name] = self._recording(name, stand_in)

    def _recording(self, name, stand_in):
        def call(conn, params):
            answer = dict(stand_in(conn, params))
            self.calls.append((name, dict(params), answer))
            return answer
        return call

    def of(self, procedure: str) -> list[tuple[dict, dict]]:
        return [(params, answer) for name, params, answer in self.calls if name == procedure]


def test_the_whole_sequence_through_the_procedure_calls(gateway, sage_engine, make_order, rows):
    recorder = Recorder(gateway)
    written = gateway.create_sales_order(make_order(ORDER))
    assert [name for name, _, _ in recorder.calls] == [backends.NEXT_KEY, backends.SALES_ORDER_IMPORT]
    [(key_params, key_answer)] = recorder.of(backends.NEXT_KEY)
    assert key_params == {"series": "StgSession"}
    [(params, answer)] = recorder.of(backends.SALES_ORDER_IMPORT)
    session = key_answer["next_key"]
    assert params == {"session_key": session, "company_id": "SOA", "recs_processed": 0, "failed_recs": 0,
                      "total_recs": 0}
    assert answer == {"ret_val": 1, "recs_processed": 1, "failed_recs": 0, "total_recs": 1, "continue_": 0}
    with sage_engine.connect() as conn:
        staged = conn.execute(select(s.StgSalesOrder.c.SessionKey, s.StgSalesOrder.c.TranNo,
                                     s.StgSalesOrder.c.ProcessStatus)).one()
        logged = conn.execute(select(s.tdmMigrationLogWrk.c.SessionKey, s.tdmMigrationLogWrk.c.Status)).all()
    assert staged == (session, written.TranNo, PROCESSED) and logged == [(session, 3)]


def test_the_import_is_called_until_it_reports_no_rows_left(gateway, make_order):
    """Sage's procedure stops after about two seconds of work with @oContinue = 1: the gateway calls it again,
    passing back the counters it returned."""
    stand_in = gateway.backend.stand_ins[backends.SALES_ORDER_IMPORT]
    out_of_time = iter([True, True])

    def busy(conn, params):
        if next(out_of_time, False):
            return {"ret_val": 1, "recs_processed": params["recs_processed"], "failed_recs": params["failed_recs"],
                    "total_recs": 1, "continue_": 1}
        return stand_in(conn, params)

    gateway.backend.stand_ins[backends.SALES_ORDER_IMPORT] = busy
    recorder = Recorder(gateway)
    assert gateway.create_sales_order(make_order(ORDER)).created
    calls = recorder.of(backends.SALES_ORDER_IMPORT)
    assert [answer["continue_"] for _, answer in calls] == [1, 1, 0]
    assert [params["total_recs"] for params, _ in calls] == [0, 1, 1]  # the counters travel back in


def test_a_procedure_that_never_finishes_writes_nothing(gateway, sage_engine, make_order, rows):
    gateway.backend.stand_ins[backends.SALES_ORDER_IMPORT] = lambda conn, params: {
        "ret_val": 1, "recs_processed": 0, "failed_recs": 0, "total_recs": 1, "continue_": 1}
    with pytest.raises(SageRejected, match=f"still reported rows left after {orders.MAX_IMPORT_CALLS} calls"):
        gateway.create_sales_order(make_order(ORDER))
    assert rows(sage_engine, s.StgSalesOrder) == 0


def test_success_reported_without_an_order_is_refused_and_rolled_back(gateway, sage_engine, make_order, rows):
    """A site procedure that marks the staging rows processed and answers success, yet creates no order."""
    def hollow(conn, params):
        conn.execute(update(s.StgSalesOrder).where(s.StgSalesOrder.c.SessionKey == params["session_key"])
                     .values(ProcessStatus=PROCESSED))
        return {"ret_val": 1, "recs_processed": 1, "failed_recs": 0, "total_recs": 1, "continue_": 0}

    gateway.backend.stand_ins[backends.SALES_ORDER_IMPORT] = hollow
    with pytest.raises(SageRejected, match=rf"Sage reported order {ORDER} imported but TranNo 0000000001 is not in "
                                           r"tsoSalesOrder; check the import session \d+") as refused:
        gateway.create_sales_order(make_order(ORDER))
    assert refused.value.record == ORDER
    for table in (s.StgSalesOrder, s.StgSOLine, s.tsoSalesOrderExt_AMZ):
        assert rows(sage_engine, table) == 0


def test_a_failure_without_a_message_still_says_what_the_procedure_returned(gateway, make_order):
    gateway.backend.stand_ins[backends.SALES_ORDER_IMPORT] = lambda conn, params: {
        "ret_val": 0, "recs_processed": 1, "failed_recs": 1, "total_recs": 1, "continue_": 0}
    with pytest.raises(SageRejected, match="spSOapiSalesOrdIns returned 0 without a message"):
        gateway.create_sales_order(make_order(ORDER))


def test_a_parameter_error_is_a_configuration_error(sage_engine, make_order):
    with pytest.raises(ConfigError, match="spSOapiSalesOrdIns refused its parameters \\(company XYZ"):
        Sage500Gateway(sage_engine, "XYZ").create_sales_order(make_order(ORDER))


def test_a_site_procedure_that_reprices_the_lines_is_refused(gateway, sage_engine, make_order, rows):
    """Sage reads UnitPrice and ExtAmt from staging; a site whose procedure prices from its price sheet instead
    would charge another price than Amazon's: the order is refused whole and says where to look."""
    stand_in = gateway.backend.stand_ins[backends.SALES_ORDER_IMPORT]

    def reprice(conn, params):
        answer = stand_in(conn, params)
        conn.execute(update(s.tsoSOLine).values(UnitPrice=Decimal("14.99")))
        return answer

    gateway.backend.stand_ins[backends.SALES_ORDER_IMPORT] = reprice
    with pytest.raises(SageRejected, match=r"Sage re-priced order .* line 1 \(WIDGET-BLU-L\): staged UnitPrice "
                                           r"12.99 / ExtAmt 25.98, Sage wrote 14.99000 / 25.980.*docs/sage500.md"):
        gateway.create_sales_order(make_order(ORDER))
    assert rows(sage_engine, s.tsoSalesOrder) == 0


def test_staging_holds_only_columns_the_procedure_reads(gateway, sage_engine, make_order):
    for table in (s.StgSalesOrder, s.StgSOLine):
        assert {c.name for c in table.columns} <= READ_BY_PROCEDURE[table.name], table.name
    written: dict[str, set[str]] = {}

    @event.listens_for(sage_engine, "before_execute")
    def capture(conn, clause, multiparams, params, execution_options):
        if isinstance(clause, Insert) and clause.table.name in READ_BY_PROCEDURE:
            batch = multiparams[0] if multiparams else params
            for row in (batch if isinstance(batch, list) else [batch]):
                written.setdefault(clause.table.name, set()).update(row)

    gateway.create_sales_order(make_order(ORDER, lines=[("WIDGET-BLU-L", 2, "12.99"), ("TSHIRT-BLU-L", 1, "9")]))
    assert set(written) == {"StgSalesOrder", "StgSOLine"}
    for table, columns in written.items():
        assert columns <= READ_BY_PROCEDURE[table], f"{table} columns Sage does not read: " \
                                                    f"{columns - READ_BY_PROCEDURE[table]}"
    assert {"UnitPrice", "ExtAmt"} <= written["StgSOLine"]
    with sage_engine.connect() as conn:  # imposed: the replica keeps the staged price as Sage keeps an override
        assert conn.execute(select(s.tsoSOLine.c.UnitPrice, s.tsoSOLine.c.UnitPriceOvrd)
                            .order_by(s.tsoSOLine.c.SOLineNo)).all() == [(Decimal("12.99"), 1), (Decimal("9"), 1)]


def test_a_quantity_too_large_for_sage_is_refused_naming_the_column(gateway, sage_engine, make_order, rows):
    with pytest.raises(Exception, match=r"line 1: StgSOLine.QtyOrd has 10 digits before the decimal point, "
                                        r"Sage's DECIMAL\(16,8\) allows 8") as refused:
        gateway.create_sales_order(make_order(ORDER, lines=[("WIDGET-BLU-L", 1_000_000_000, "0.01")]))
    assert refused.value.code == "invalid_data" and "1000000000" not in str(refused.value)
    assert rows(sage_engine, s.StgSalesOrder) == 0


def test_sage_refusals_come_from_tdmMigrationLogWrk(gateway, sage_engine, make_order):
    """The messages of a refusal are read from the log table by SessionKey, whatever the procedure wrote there."""
    stand_in = gateway.backend.stand_ins[backends.SALES_ORDER_IMPORT]

    def site_message(conn, params):
        answer = dict(stand_in(conn, params))
        conn.execute(insert(s.tdmMigrationLogWrk).values(
            ColumnID="CustPONo", ColumnValue="x", Comment="Customer PO number already used (site rule)",
            EntityID="0000000001", Status=1, SessionKey=params["session_key"]))
        return {**answer, "ret_val": 2, "failed_recs": 1}

    gateway.backend.stand_ins[backends.SALES_ORDER_IMPORT] = site_message
    with pytest.raises(SageRejected, match=r"Sage refused order .* \(TranNo 0000000001\): Customer PO number "
                                           r"already used \(site rule\)"):
        gateway.create_sales_order(make_order(ORDER))
