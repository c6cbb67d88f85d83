"""The replica's spSOapiSalesOrdIns: staging rows in, sales orders (or refusals with log rows) out."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select

from erpsync.sage500 import schema as s
from erpsync.sage500.replica_import import ImportResult, sales_order_import

SESSION = 500


def stage(engine, tran_no="42", session=SESSION, header=None, lines=None):
    """Insert one staged order (header overrides in ``header``, line overrides per line in ``lines``)."""
    row = dict(SessionKey=session, ProcessStatus=0, Action=1, TranNo=tran_no, TranDate=datetime(2026, 1, 15),
               CustID="AMAZON-US", CustPONo="1234567-7654321", Status="Open", CurrID="USD",
               DfltShipMethID="UPS GROUND", DfltWarehouseID="MAIN", FreightAmt=Decimal("5.00"),
               STaxAmt=Decimal("2.10"), TradeDiscAmt=Decimal("1.00"), TranCmnt="Amazon order", Hold="No",
               DfltShipToAddrName="Jane Buyer", DfltShipToAddrLine1="1 Main St", DfltShipToAddrLine2="Apt 2",
               DfltShipToCity="Reno", DfltShipToStateID="NV", DfltShipToCountryID="USA", DfltShipToPostalCode="89501")
    row.update(header or {})
    base = [dict(ItemID="WIDGET-BLU-L", QtyOrd=Decimal(3), UnitPrice=Decimal("10.50"), ExtAmt=Decimal("31.50")),
            dict(ItemID="TSHIRT-BLU-L", QtyOrd=Decimal(1), UnitPrice=Decimal("20"), ExtAmt=Decimal("20"),
                 WarehouseID="EAST", ShipMethID="FEDEX 2DAY")]
    defaults = dict(SessionKey=session, ProcessStatus=0, Action=1, TranNo=tran_no, Description=None,
                    UnitMeasID="EA", WarehouseID="MAIN", ShipMethID=None)
    staged_lines = [{**defaults, "SOLineNo": n, "UserFld1": f"{n:014d}", **b, **(lines or {}).get(n, {})}
                    for n, b in enumerate(base, start=1)]
    with engine.begin() as conn:
        conn.execute(insert(s.StgSalesOrder), row)
        conn.execute(insert(s.StgSOLine), staged_lines)


def run(engine, session=SESSION, company="SOA", previous=None) -> ImportResult:
    with engine.begin() as conn:
        return sales_order_import(conn, session, company, previous=previous)


def on_so(conn, item_id, whse_id) -> Decimal:
    inv, i, w = s.timInventory, s.timItem, s.timWarehouse
    return conn.execute(select(inv.c.QtyOnSO).join(i, i.c.ItemKey == inv.c.ItemKey).join(w, w.c.WhseKey == inv.c.WhseKey)
                        .where(i.c.ItemID == item_id, w.c.WhseID == whse_id)).scalar_one()


def test_import_creates_the_sales_order(sage_engine):
    with sage_engine.connect() as conn:
        before = on_so(conn, "WIDGET-BLU-L", "MAIN"), on_so(conn, "TSHIRT-BLU-L", "EAST")
    stage(sage_engine)
    result = run(sage_engine)
    assert result == ImportResult(ret_val=1, recs_processed=1, failed_recs=0, total_recs=1, continue_=0)
    with sage_engine.connect() as conn:
        so = conn.execute(select(s.tsoSalesOrder)).mappings().one()
        assert (so["TranNo"], so["TranID"], so["TranType"], so["Status"]) == ("0000000042", "SO-0000000042", 801, 1)
        assert so["SalesAmt"] == Decimal("51.50") and so["FreightAmt"] == Decimal("5")
        assert so["TranAmt"] == Decimal("57.60") == so["OpenAmt"]  # 51.50 + 5.00 + 2.10 - 1.00
        assert so["CustPONo"] == "1234567-7654321" and so["CreateType"] == 7
        log = conn.execute(select(s.tsoSalesOrdLog)).mappings().one()
        assert (log["SOKey"], log["TranNo"], log["TranType"], log["TranAmtHC"]) == (so["SOKey"], "0000000042", 801,
                                                                                    Decimal("57.60"))
        ship_to = conn.execute(select(s.tciAddress).where(s.tciAddress.c.AddrKey == so["DfltShipToAddrKey"])).mappings().one()
        assert (ship_to["AddrName"], ship_to["AddrLine2"], ship_to["AddrLine3"], ship_to["City"]) == (
            "Jane Buyer", "Apt 2", "", "Reno")
        lines = conn.execute(select(s.tsoSOLine, s.tsoSOLineDist, s.timWarehouse.c.WhseID, s.tciShipMethod.c.ShipMethID)
                             .join(s.tsoSOLineDist, s.tsoSOLineDist.c.SOLineKey == s.tsoSOLine.c.SOLineKey)
                             .join(s.timWarehouse, s.timWarehouse.c.WhseKey == s.tsoSOLineDist.c.WhseKey)
                             .join(s.tciShipMethod, s.tciShipMethod.c.ShipMethKey == s.tsoSOLineDist.c.ShipMethKey)
                             .order_by(s.tsoSOLine.c.SOLineNo)).mappings().all()
        assert [(r["SOLineNo"], r["UnitPriceOvrd"], r["QtyOrd"], r["QtyOpenToShip"], r["QtyShip"], r["WhseID"],
                 r["ShipMethID"], r["Status"]) for r in lines] == [
            (1, 1, 3, 3, 0, "MAIN", "UPS GROUND", 1), (2, 1, 1, 1, 0, "EAST", "FEDEX 2DAY", 1)]
        assert lines[0]["Description"] == "Widget, Blue, Large"  # from timItemDescription when not staged
        assert lines[0]["ShipToAddrKey"] == so["DfltShipToAddrKey"] and lines[0]["UserFld1"] == "00000000000001"
        assert lines[0]["SOLineKey"] + 1 == lines[1]["SOLineKey"]  # one block of surrogate keys
        assert (on_so(conn, "WIDGET-BLU-L", "MAIN"), on_so(conn, "TSHIRT-BLU-L", "EAST")) == (before[0] + 3,
                                                                                            before[1] + 1)
        assert set(conn.execute(select(s.StgSalesOrder.c.ProcessStatus)).scalars()) == {1}
        assert set(conn.execute(select(s.StgSOLine.c.ProcessStatus)).scalars()) == {1}
        assert conn.execute(select(s.tdmMigrationLogWrk.c.Status, s.tdmMigrationLogWrk.c.EntityID)).all() == [(3, "42")]


def test_closed_order_is_written_as_shipped(sqlite_engine):
    stage(sqlite_engine, header={"Status": "Closed"})
    assert run(sqlite_engine).ret_val == 1
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(s.tsoSalesOrder.c.Status, s.tsoSalesOrder.c.OpenAmt)).one() == (4, 0)
        dists = conn.execute(select(s.tsoSOLineDist.c.QtyOpenToShip, s.tsoSOLineDist.c.QtyShip,
                                    s.tsoSOLineDist.c.Status)).all()
        assert dists == [(0, 3, 2), (0, 1, 2)]
        assert on_so(conn, "WIDGET-BLU-L", "MAIN") == 0


REFUSALS = [  # (header overrides, line overrides, ColumnID, ColumnValue, words of the Comment)
    ({"CustID": "NOBODY"}, None, "CustID", "NOBODY", "CustID 'NOBODY' does not exist"),
    ({"CustID": "ONHOLD-CO"}, None, "CustID", "ONHOLD-CO", "'ONHOLD-CO' is on hold"),
    (None, {2: {"ItemID": "WIDGET-XXX"}}, "ItemID", "WIDGET-XXX", "line 2: ItemID 'WIDGET-XXX' does not exist"),
    ({"DfltWarehouseID": "WEST"}, None, "WarehouseID", "WEST", "WarehouseID 'WEST' does not exist"),
    (None, {1: {"WarehouseID": "NOWHR"}}, "WarehouseID", "NOWHR", "line 1: WarehouseID 'NOWHR' does not exist"),
    ({"DfltShipMethID": "PIGEON"}, None, "ShipMethID", "PIGEON", "ShipMethID 'PIGEON' does not exist"),
    (None, {1: {"UnitMeasID": "GAL"}}, "UnitMeasID", "GAL", "line 1: UnitMeasID 'GAL' does not exist"),
    ({"Status": "Shipped"}, None, "Status", "Shipped", "use Open[1] or Closed[4]"),
]


def test_validation_errors_refuse_the_order(sage_engine):
    """Each refusal in its own session: ProcessStatus 2 on header and lines, one failure row naming the problem."""
    for n, (header, lines, column, value, words) in enumerate(REFUSALS, start=1):
        session, tran_no = SESSION + n, str(n)
        stage(sage_engine, tran_no=tran_no, session=session, header=header, lines=lines)
        result = run(sage_engine, session=session)
        assert (result.ret_val, result.failed_recs, result.recs_processed, result.continue_) == (2, 1, 1, 0), words
        with sage_engine.connect() as conn:
            assert conn.execute(select(s.StgSalesOrder.c.ProcessStatus)
                                .where(s.StgSalesOrder.c.SessionKey == session)).scalars().all() == [2]
            assert conn.execute(select(s.StgSOLine.c.ProcessStatus)
                                .where(s.StgSOLine.c.SessionKey == session)).scalars().all() == [2, 2]
            log = conn.execute(select(s.tdmMigrationLogWrk)
                               .where(s.tdmMigrationLogWrk.c.SessionKey == session)).mappings().all()
        assert [(r["ColumnID"], r["ColumnValue"], r["Status"], r["EntityID"]) for r in log] == [
            (column, value, 1, tran_no)], words
        assert words in log[0]["Comment"]
    with sage_engine.connect() as conn:
        assert conn.execute(select(s.tsoSalesOrder)).first() is None
        assert on_so(conn, "WIDGET-BLU-L", "MAIN") == 0


def test_duplicate_tran_no_is_refused(sage_engine):
    stage(sage_engine, tran_no="77")
    assert run(sage_engine).ret_val == 1
    stage(sage_engine, tran_no="0000000077", session=SESSION + 1)
    result = run(sage_engine, session=SESSION + 1)
    assert result.ret_val == 2
    with sage_engine.connect() as conn:
        log = conn.execute(select(s.tdmMigrationLogWrk).where(s.tdmMigrationLogWrk.c.SessionKey == SESSION + 1)
                           ).mappings().one()
        assert (log["ColumnID"], log["Duplicate"], log["Status"], log["EntityID"]) == ("TranNo", 1, 1, "0000000077")
        assert "already exists" in log["Comment"]
        assert len(conn.execute(select(s.tsoSalesOrder)).all()) == 1


def test_every_problem_of_an_order_is_logged(sqlite_engine):
    stage(sqlite_engine, header={"CustID": "NOBODY"}, lines={1: {"ItemID": "NOPE"}, 2: {"QtyOrd": Decimal(0)}})
    assert run(sqlite_engine).ret_val == 2
    with sqlite_engine.connect() as conn:
        columns = conn.execute(select(s.tdmMigrationLogWrk.c.ColumnID)).scalars().all()
    assert sorted(columns) == ["CustID", "ItemID", "QtyOrd"]


def test_one_order_per_call_with_continue(sqlite_engine):
    for tran_no in ("1", "2", "3"):
        stage(sqlite_engine, tran_no=tran_no, header={"CustID": "NOBODY"} if tran_no == "2" else None)
    first = run(sqlite_engine)
    assert (first.ret_val, first.recs_processed, first.total_recs, first.continue_) == (1, 1, 3, 1)
    second = run(sqlite_engine, previous=first)
    assert (second.ret_val, second.recs_processed, second.failed_recs, second.total_recs, second.continue_) == (
        2, 2, 1, 3, 1)
    third = run(sqlite_engine, previous=second)
    assert (third.ret_val, third.recs_processed, third.failed_recs, third.total_recs, third.continue_) == (
        1, 3, 1, 3, 0)
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(s.tsoSalesOrder.c.TranNo).order_by(s.tsoSalesOrder.c.TranNo)).scalars().all() == [
            "0000000001", "0000000003"]
    assert run(sqlite_engine, previous=third).continue_ == 0


def test_parameter_errors(sqlite_engine):
    stage(sqlite_engine)
    assert run(sqlite_engine, company="XXX").ret_val == 3
    assert run(sqlite_engine, session=0).ret_val == 3
    with sqlite_engine.connect() as conn:  # nothing was touched
        assert conn.execute(select(s.StgSalesOrder.c.ProcessStatus)).scalar_one() == 0
        assert conn.execute(select(s.tdmMigrationLogWrk)).first() is None
