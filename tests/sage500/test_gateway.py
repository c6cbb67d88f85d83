"""The Sage gateway on the replica (SQLite and PostgreSQL): orders, voids, shipments, stock, prices, GL, schema."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, text

from erpsync import model
from erpsync.config import SageTables
from erpsync.errors import ConfigError, InvalidData, Permanent, SageRejected, SageUnavailable
from erpsync.sage500 import replica, warehouse
from erpsync.sage500 import schema as s
from erpsync.sage500.engine import make_engine
from erpsync.sage500.gateway import Sage500Gateway, ShipmentPage

ORDER = "113-0000001-0000001"


# ----- create --------------------------------------------------------------------------------------------------


def test_create_writes_order_and_extension_rows_once(gateway, sage_engine, make_order, rows):
    order = make_order(ORDER, lines=[("WIDGET-BLU-L", 2, "12.99"), ("HOODIE-BLU-L", 1, "40.00", "EAST")])
    written = gateway.create_sales_order(order)
    assert written.created and written.TranNo == "0000000001" and written.TranID == "SO-0000000001"
    again = gateway.create_sales_order(order)
    assert (again.created, again.SOKey, again.TranNo) == (False, written.SOKey, written.TranNo)
    assert rows(sage_engine, s.tsoSalesOrder) == 1 and rows(sage_engine, s.StgSalesOrder) == 1
    with sage_engine.connect() as conn:
        ext = conn.execute(select(s.tsoSalesOrderExt_AMZ)).mappings().one()
        so = conn.execute(select(s.tsoSalesOrder)).mappings().one()
    assert (ext["SOKey"], ext["AmazonOrderId"], ext["MarketplaceId"], ext["FulfillmentChannel"]) == (
        written.SOKey, ORDER, "ATVPDKIKX0DER", "MFN")
    assert so["CustPONo"] == ORDER[-15:] and so["Hold"] == 0
    assert so["TranAmt"] == Decimal("25.98") + Decimal("40") + Decimal("4.99") + Decimal("1.50") - 1
    found = gateway.order_by_amazon_id(ORDER)
    assert (found.SOKey, found.CustID, found.Status, found.TranDate) == (written.SOKey, "AMAZON-US", 1,
                                                                         datetime(2026, 1, 15, 12, tzinfo=timezone.utc))
    assert [(ln.SOLineNo, ln.ItemID, ln.QtyOrd, ln.QtyOpenToShip, ln.QtyShip, ln.WhseID, ln.OrderItemId, ln.SellerSKU)
            for ln in found.lines] == [
        (1, "WIDGET-BLU-L", 2, 2, 0, "MAIN", "00000000000001", "SKU-WIDGET-BLU-L"),
        (2, "HOODIE-BLU-L", 1, 1, 0, "EAST", "00000000000002", "SKU-HOODIE-BLU-L")]
    assert gateway.order_by_amazon_id("113-9999999-9999999") is None


def test_each_order_gets_the_next_tran_no(gateway, make_order):
    numbers = [gateway.create_sales_order(make_order(f"113-0000001-000000{n}")).TranNo for n in range(1, 4)]
    assert numbers == ["0000000001", "0000000002", "0000000003"]


def test_hold_and_closed_orders(gateway, make_order):
    held = gateway.order_by_amazon_id(gateway.create_sales_order(
        make_order(ORDER, Hold=1, HoldReason="Pending payment")).AmazonOrderId)
    assert held.Status == 1 and held.Hold == 1
    assert gateway.release_hold(ORDER) is True and gateway.release_hold(ORDER) is False
    assert gateway.order_by_amazon_id(ORDER).Hold == 0
    fba = make_order("113-0000002-0000002", Status="Closed", DfltWarehouseID="FBA", FulfillmentChannel="AFN",
                     lines=[("WIDGET-BLU-L", 1, "12.99", "FBA")])
    closed = gateway.order_by_amazon_id(gateway.create_sales_order(fba).AmazonOrderId)
    assert closed.Status == 4 and closed.FulfillmentChannel == "AFN"
    assert [(ln.QtyShip, ln.QtyOpenToShip, ln.Status) for ln in closed.lines] == [(1, 0, 2)]


def test_sage_refusal_names_the_problem_and_leaves_nothing(gateway, sage_engine, make_order, rows):
    order = make_order(ORDER, lines=[("WIDGET-BLU-L", 1, "12.99"), ("NO-SUCH-ITEM", 1, "5.00")])
    with pytest.raises(SageRejected) as refused:
        gateway.create_sales_order(order)
    assert f"Sage refused order {ORDER}" in str(refused.value)
    assert "line 2: ItemID 'NO-SUCH-ITEM' does not exist" in str(refused.value)
    assert refused.value.record == ORDER
    for table in (s.tsoSalesOrder, s.StgSalesOrder, s.tdmMigrationLogWrk, s.tsoSalesOrderExt_AMZ):
        assert rows(sage_engine, table) == 0
    with pytest.raises(SageRejected, match="'ONHOLD-CO' is on hold"):
        gateway.create_sales_order(make_order(ORDER, CustID="ONHOLD-CO"))
    assert gateway.create_sales_order(make_order(ORDER)).created  # fixed data, replayed: written


def test_values_too_long_for_sage_are_refused_before_writing(gateway, sage_engine, make_order, rows):
    with pytest.raises(InvalidData, match=r"StgSalesOrder.CustPONo has 19 characters, Sage allows 15"):
        gateway.create_sales_order(make_order(ORDER, CustPONo=ORDER))
    with pytest.raises(InvalidData, match="DfltShipToCity has 25 characters") as error:
        gateway.create_sales_order(make_order(ORDER, DfltShipToCity="Llanfairpwllgwyngyllgogery"[:25]))
    assert "Llanfair" not in str(error.value)  # addresses are personal data: never in messages
    assert rows(sage_engine, s.StgSalesOrder) == 0


def test_a_concurrent_duplicate_found_by_the_unique_key_counts_as_written(gateway, sage_engine, make_order,
                                                                          monkeypatch, rows):
    first = gateway.create_sales_order(make_order(ORDER))
    seen = []
    original = Sage500Gateway._written

    def miss_once(self, conn, amazon_id):  # the in-transaction check misses the row, as in a race
        seen.append(amazon_id)
        return None if len(seen) == 1 else original(self, conn, amazon_id)

    monkeypatch.setattr(Sage500Gateway, "_written", miss_once)
    again = gateway.create_sales_order(make_order(ORDER))
    assert (again.created, again.SOKey) == (False, first.SOKey)
    assert rows(sage_engine, s.tsoSalesOrder) == 1 and rows(sage_engine, s.tsoSalesOrderExt_AMZ) == 1


# ----- void ----------------------------------------------------------------------------------------------------


def test_void_releases_demand_and_refuses_shipped_orders(gateway, sage_engine, make_order, stock):
    stock(sage_engine, "WIDGET-BLU-L", {"A-01-01": 10})
    gateway.create_sales_order(make_order(ORDER, lines=[("WIDGET-BLU-L", 4, "12.99")]))
    assert gateway.stock_levels(["MAIN"])["WIDGET-BLU-L"] == 6
    assert gateway.void_sales_order(ORDER) == "voided"
    voided = gateway.order_by_amazon_id(ORDER)
    assert voided.Status == 3 and [(ln.Status, ln.QtyOpenToShip) for ln in voided.lines] == [(2, 0)]
    assert gateway.stock_levels(["MAIN"])["WIDGET-BLU-L"] == 10
    with sage_engine.connect() as conn:
        assert conn.execute(select(s.timInventory.c.QtyOnSO).join(s.timItem).join(s.timWarehouse).where(
            s.timItem.c.ItemID == "WIDGET-BLU-L", s.timWarehouse.c.WhseID == "MAIN")).scalar_one() == 0
    assert gateway.void_sales_order(ORDER) == "already_void"
    assert gateway.void_sales_order("113-9999999-9999999") == "not_found"

    other = "113-0000002-0000002"
    so = gateway.create_sales_order(make_order(other, lines=[("WIDGET-BLU-L", 2, "12.99")]))
    line = gateway.order_by_amazon_id(other).lines[0]
    ship_key = warehouse.ship_order(sage_engine, so.SOKey, [{"lines": {line.SOLineKey: 1}, "tracking_no": "1Z9"}])
    assert gateway.void_sales_order(other) == "shipped"  # picked, not yet committed: the warehouse has it
    warehouse.commit_shipment(sage_engine, ship_key)
    assert gateway.void_sales_order(other) == "shipped"
    assert gateway.order_by_amazon_id(other).Status == 1


# ----- shipments -----------------------------------------------------------------------------------------------


def test_partial_and_multi_package_shipments(gateway, sage_engine, make_order, stock):
    for item in ("WIDGET-BLU-L", "TSHIRT-BLU-L"):
        stock(sage_engine, item, {"A-01-01": 20})
    so = gateway.create_sales_order(make_order(ORDER, lines=[("WIDGET-BLU-L", 3, "12.99"), ("TSHIRT-BLU-L", 1, "15")]))
    widget, tshirt = gateway.order_by_amazon_id(ORDER).lines
    first = warehouse.ship_order(sage_engine, so.SOKey, [
        {"lines": {widget.SOLineKey: 1}, "tracking_no": "1ZA"},
        {"lines": {widget.SOLineKey: 1, tshirt.SOLineKey: 1}, "tracking_no": "9400B", "ship_meth_id": "USPS PRIORITY"},
    ])
    assert gateway.shipments_since(0) == ShipmentPage([], first, [first])  # pending: passed, to re-check
    warehouse.commit_shipment(sage_engine, first)
    assert gateway.shipments([first]).records == gateway.shipments_since(0).records
    records, cursor, pending = gateway.shipments_since(0).__dict__.values()
    assert cursor == first and len(records) == 1 and pending == []
    record = records[0]
    assert (record.AmazonOrderId, record.MarketplaceId, record.SOKey, record.SOTranID, record.TranStatus) == (
        ORDER, "ATVPDKIKX0DER", so.SOKey, so.TranID, 6)
    assert record.ShipDate.tzinfo is timezone.utc
    assert [(p.PackageNo, p.TrackingNo, p.ShipMethID, [(ln.OrderItemId, ln.Qty) for ln in p.lines])
            for p in record.packages] == [
        (1, "1ZA", "UPS GROUND", [("00000000000001", 1)]),
        (2, "9400B", "USPS PRIORITY", [("00000000000001", 1), ("00000000000002", 1)])]
    assert sorted((ln.OrderItemId, ln.Qty) for ln in record.lines) == [("00000000000001", 2), ("00000000000002", 1)]
    partly = gateway.order_by_amazon_id(ORDER)
    assert [(ln.QtyShip, ln.QtyOpenToShip, ln.Status) for ln in partly.lines] == [(2, 1, 1), (1, 0, 2)]
    assert partly.Status == 1
    assert gateway.shipments_since(cursor) == ShipmentPage([], cursor, [])

    rest = warehouse.ship_order(sage_engine, so.SOKey, [{"lines": {widget.SOLineKey: 1}, "tracking_no": "1ZC",
                                                         "ship_meth_id": "FEDEX 2DAY"}])
    warehouse.commit_shipment(sage_engine, rest)
    warehouse.post_shipment(sage_engine, rest)
    page = gateway.shipments_since(cursor)
    records, cursor = page.records, page.cursor
    assert cursor == rest and [(r.ShipKey, r.TranStatus, r.TranID is not None) for r in records] == [(rest, 3, True)]
    assert [(p.TrackingNo, p.ShipMethID) for p in records[0].packages] == [("1ZC", "FEDEX 2DAY")]
    assert gateway.order_by_amazon_id(ORDER).Status == 4  # fully shipped: closed


def test_the_cursor_passes_a_pending_shipment_which_is_rechecked_on_its_own(gateway, sage_engine, make_order, stock):
    stock(sage_engine, "WIDGET-BLU-L", {"A-01-01": 20})
    keys = []
    for n in (1, 2, 3):
        so = gateway.create_sales_order(make_order(f"113-0000001-000000{n}"))
        line = gateway.order_by_amazon_id(so.AmazonOrderId).lines[0]
        keys.append(warehouse.ship_order(sage_engine, so.SOKey, [{"lines": {line.SOLineKey: 2},
                                                                  "tracking_no": f"1Z{n}"}]))
    warehouse.commit_shipment(sage_engine, keys[1])  # the later shipment commits first
    page = gateway.shipments_since(0, limit=2)
    assert [r.ShipKey for r in page.records] == [keys[1]] and page.cursor == keys[1] and page.pending == [keys[0]]
    assert gateway.shipments_since(page.cursor).pending == [keys[2]]
    assert gateway.shipments(page.pending) == ShipmentPage([], 0, [keys[0]])  # still pending
    warehouse.commit_shipment(sage_engine, keys[0])
    again = gateway.shipments([keys[0], 999])  # 999: a pick Sage no longer has
    assert [r.ShipKey for r in again.records] == [keys[0]] and again.pending == []
    assert gateway.shipments([]) == ShipmentPage([], 0, [])


def test_configured_package_table_and_tracking_column(tmp_path, make_order, stock):
    tables = SageTables(package_table="tsoShipPackage_SITE", package_tracking_column="TrackingNumber")
    engine = make_engine(f"sqlite:///{tmp_path / 'site.db'}")
    replica.seed(engine, items=10, tables=tables)
    gateway = Sage500Gateway(engine, tables=tables)
    assert gateway.check_schema() == []
    stock(engine, "WIDGET-BLU-L", {"A-01-01": 5})
    so = gateway.create_sales_order(make_order(ORDER))
    line = gateway.order_by_amazon_id(ORDER).lines[0]
    warehouse.commit_shipment(engine, warehouse.ship_order(engine, so.SOKey, [
        {"lines": {line.SOLineKey: 2}, "tracking_no": "TBA123"}], tables=tables))
    with engine.connect() as conn:
        assert conn.execute(text('SELECT "TrackingNumber" FROM "tsoShipPackage_SITE"')).scalar_one() == "TBA123"
    assert gateway.shipments_since(0).records[0].packages[0].TrackingNo == "TBA123"
    assert "missing table tsoShipPackage_SITE" in Sage500Gateway(engine).check_schema() + Sage500Gateway(
        make_engine(f"sqlite:///{tmp_path / 'empty.db'}"), tables=tables).check_schema()
    engine.dispose()


# ----- catalog, stock, prices -------------------------------------------------------------------------------------


def test_catalog_lookups(gateway):
    ids = gateway.item_ids()
    assert len(ids) == 40 and ids == sorted(ids) and "WIDGET-BLU-L" in ids
    items = gateway.items(["WIDGET-BLU-L", "SOCKS-BLU-L", "NOPE"])
    assert set(items) == {"WIDGET-BLU-L", "SOCKS-BLU-L"}
    assert (items["WIDGET-BLU-L"].ShortDesc, items["WIDGET-BLU-L"].UnitMeasID, items["WIDGET-BLU-L"].Status) == (
        "Widget, Blue, Large", "EA", 1)
    assert items["SOCKS-BLU-L"].UnitMeasID == "PR"
    assert gateway.items([]) == {}
    assert gateway.customer("AMAZON-US").Hold == 0 and gateway.customer("ONHOLD-CO").Hold == 1
    assert gateway.customer("NOBODY") is None
    assert {"UPS GROUND", "UPS 2DAY", "FEDEX GROUND", "FEDEX 2DAY", "USPS PRIORITY", "DHL INTL", "AMZ FBA"} <= set(
        gateway.ship_method_ids())
    assert gateway.warehouse_ids() == ["EAST", "FBA", "MAIN"]


def test_stock_levels_follow_bins_orders_and_shipments(gateway, sage_engine, make_order, stock):
    # QC-HOLD is excluded from availability
    stock(sage_engine, "WIDGET-BLU-L", {"A-01-01": 10, "A-02-01": Decimal("2.5"), "QC-HOLD": 7, "E-01-01": 4})
    before = gateway.stock_levels(["MAIN"])
    assert before["WIDGET-BLU-L"] == Decimal("12.5")
    assert isinstance(before["WIDGET-BLU-L"], Decimal)
    assert gateway.stock_levels(["MAIN", "EAST"])["WIDGET-BLU-L"] == Decimal("16.5")
    assert gateway.stock_levels([]) == {}
    so = gateway.create_sales_order(make_order(ORDER, lines=[("WIDGET-BLU-L", 3, "12.99")]))
    assert gateway.stock_levels(["MAIN"])["WIDGET-BLU-L"] == Decimal("9.5")
    assert gateway.stock_levels(["EAST"])["WIDGET-BLU-L"] == 4  # the order ships from MAIN
    line = gateway.order_by_amazon_id(ORDER).lines[0]
    ship_key = warehouse.ship_order(sage_engine, so.SOKey, [{"lines": {line.SOLineKey: 2}, "tracking_no": "1Z"}])
    assert gateway.stock_levels(["MAIN"])["WIDGET-BLU-L"] == Decimal("9.5")  # picked: moved, not gone twice
    warehouse.commit_shipment(sage_engine, ship_key)
    assert gateway.stock_levels(["MAIN"])["WIDGET-BLU-L"] == Decimal("9.5")
    bins = s.timWhseBinInvt
    with sage_engine.connect() as conn:
        picked_bin = conn.execute(select(bins.c.QtyOnHand, bins.c.PendQtyDecrease).join(s.timWhseBin).join(s.timItem)
                                  .where(s.timWhseBin.c.WhseBinID == "A-01-01",
                                         s.timItem.c.ItemID == "WIDGET-BLU-L")).one()
    assert picked_bin == (8, 0)
    gateway.void_sales_order(ORDER)  # shipped: refused, demand stays
    assert gateway.stock_levels(["MAIN"])["WIDGET-BLU-L"] == Decimal("9.5")


def test_prices_effective_now(gateway, sage_engine):
    now = datetime.now(timezone.utc)
    with sage_engine.begin() as conn:
        item = conn.execute(select(s.timItem.c.ItemKey).where(s.timItem.c.ItemID == "MUG-12OZ-BLU")).scalar_one()
        whse = dict(conn.execute(select(s.timWarehouse.c.WhseID, s.timWarehouse.c.WhseKey)).all())
        conn.execute(insert(s.timPriceSheet), [
            dict(ItemKey=item, WhseKey=whse["MAIN"], CurrID="USD", EffectiveDate=s.sage_time(now - timedelta(days=1)),
                 ListPrice=Decimal("19.99")),
            dict(ItemKey=item, WhseKey=whse["MAIN"], CurrID="USD", EffectiveDate=s.sage_time(now + timedelta(days=1)),
                 ListPrice=Decimal("24.99")),
            dict(ItemKey=item, WhseKey=whse["EAST"], CurrID="USD", EffectiveDate=s.sage_time(now - timedelta(days=2)),
                 ListPrice=Decimal("18.49"))])
    usd = gateway.prices("USD")
    assert len(usd) == 40 and usd["MUG-12OZ-BLU"] == Decimal("19.99")
    assert gateway.prices("USD", "EAST") == {"MUG-12OZ-BLU": Decimal("18.49")}
    assert gateway.prices("USD", at=now + timedelta(days=2))["MUG-12OZ-BLU"] == Decimal("24.99")
    cad = gateway.prices("CAD")
    assert len(cad) == 40 and all(p % 1 == Decimal("0.99") for p in cad.values())
    assert gateway.prices("JPY") == {}


# ----- general ledger -----------------------------------------------------------------------------------------


def journal(reference="12345678901", lines=(("1050", "95.50"), ("6110", "4.50"), ("4010", "-100.00"))):
    return model.JournalEntry(reference=reference, date=datetime(2026, 1, 20, tzinfo=timezone.utc), currency="USD",
                              memo=f"Amazon settlement {reference}",
                              lines=[model.JournalLine(account=a, amount=Decimal(v), description=f"line {a}")
                                     for a, v in lines])


def test_post_journal_once_per_reference(gateway, sage_engine, rows):
    batch = gateway.post_journal(journal())
    with sage_engine.connect() as conn:
        log = conn.execute(select(s.tciBatchLog).where(s.tciBatchLog.c.BatchKey == batch)).mappings().one()
        posted = conn.execute(select(s.tglTransaction.c.PostAmt, s.tglAccount.c.GLAcctNo, s.tglTransaction.c.FiscYear,
                                     s.tglTransaction.c.FiscPer)
                              .join(s.tglAccount, s.tglAccount.c.GLAcctKey == s.tglTransaction.c.GLAcctKey)
                              .where(s.tglTransaction.c.BatchKey == batch).order_by(s.tglAccount.c.GLAcctNo)).all()
    assert (log["Status"], log["PostStatus"], log["BatchCmnt"]) == (6, 500, "AMZ:12345678901")
    assert posted == [(Decimal("95.5"), "1050", "2026", 1), (Decimal("-100"), "4010", "2026", 1),
                      (Decimal("4.5"), "6110", "2026", 1)]
    assert gateway.post_journal(journal()) == batch
    assert rows(sage_engine, s.tglPosting) == 3 and rows(sage_engine, s.tciBatchLog) == 1


def test_post_journal_refuses_unknown_accounts_and_unbalanced_entries(gateway, sage_engine, rows):
    with pytest.raises(Permanent, match="GL account\\(s\\) 9999 do not exist") as error:
        gateway.post_journal(journal(lines=(("1050", "10"), ("9999", "-10"))))
    assert error.value.code == "unknown_gl_account"
    lines = (model.JournalLine(account="1050", amount=Decimal("10")),
             model.JournalLine(account="4010", amount=Decimal("-9.99")))
    unbalanced = model.JournalEntry.model_construct(reference="S-2", date=datetime(2026, 1, 20, tzinfo=timezone.utc),
                                                    currency="USD", memo="", lines=lines)
    with pytest.raises(Permanent, match="not balanced") as error:
        gateway.post_journal(unbalanced)
    assert error.value.code == "gl_unbalanced"
    assert rows(sage_engine, s.tciBatchLog) == 0 and rows(sage_engine, s.tglPosting) == 0


def test_post_gl_batch_refuses_an_unbalanced_batch(sage_engine, rows):
    with sage_engine.begin() as conn:
        accounts = dict(conn.execute(select(s.tglAccount.c.GLAcctNo, s.tglAccount.c.GLAcctKey)).all())
        conn.execute(insert(s.tciBatchLog).values(BatchKey=900, CompanyID="SOA", BatchID="GL-900", Status=4,
                                                  PostStatus=0))
        conn.execute(insert(s.tglPosting), [
            dict(PostingKey=900, BatchKey=900, GLAcctKey=accounts["1010"], PostAmt=Decimal("10.00"), CurrID="USD"),
            dict(PostingKey=901, BatchKey=900, GLAcctKey=accounts["4010"], PostAmt=Decimal("-9.99"), CurrID="USD")])
    with pytest.raises(Permanent, match="GL batch GL-900 is not balanced: debits - credits = 0.01"):
        warehouse.post_gl_batch(sage_engine, 900)
    assert rows(sage_engine, s.tglTransaction) == 0
    with sage_engine.begin() as conn:
        conn.execute(insert(s.tglPosting).values(PostingKey=902, BatchKey=900, GLAcctKey=accounts["4010"],
                                                 PostAmt=Decimal("-0.01"), CurrID="USD"))
    assert warehouse.post_gl_batch(sage_engine, 900) == 3
    with pytest.raises(Permanent, match="already posted"):
        warehouse.post_gl_batch(sage_engine, 900)


# ----- schema and failures -----------------------------------------------------------------------------------------


def test_check_schema_names_missing_tables_and_columns(gateway, sage_engine):
    assert gateway.check_schema() == []
    with sage_engine.begin() as conn:
        conn.execute(text('DROP TABLE "tsoSOLineExt_AMZ"'))
        conn.execute(text('DROP TABLE "tsoSalesOrderExt_AMZ"'))
        conn.execute(text('ALTER TABLE "tsoSalesOrder" DROP COLUMN "CustPONo"'))
    assert gateway.check_schema() == ["tsoSalesOrder: missing column CustPONo", "missing table tsoSalesOrderExt_AMZ",
                                      "missing table tsoSOLineExt_AMZ"]
    with pytest.raises(ConfigError, match="run `erpsync check`"):
        gateway.order_by_amazon_id(ORDER)


def test_procedure_mode_does_not_expect_replica_tables(sqlite_engine):
    procedures = ["missing procedure spSOapiSalesOrdIns", "missing procedure spGetNextSurrogateKey",
                  "missing procedure spGetNextBlockSurrogateKey"]  # SQLite has none; a real Sage site has them
    assert Sage500Gateway(sqlite_engine, mode="procedure").check_schema() == procedures
    with sqlite_engine.begin() as conn:
        conn.execute(text('DROP TABLE "tciSurrogateKey_R"'))
    assert Sage500Gateway(sqlite_engine, mode="procedure").check_schema() == procedures
    assert Sage500Gateway(sqlite_engine).check_schema() == ["missing table tciSurrogateKey_R"]


def test_unreachable_database_is_retryable(tmp_path, make_order):
    down = Sage500Gateway(make_engine("postgresql+psycopg://postgres@127.0.0.1:9/sage?connect_timeout=2"))
    with pytest.raises(SageUnavailable, match="Sage database unavailable"):
        down.create_sales_order(make_order(ORDER))
    missing_dir = Sage500Gateway(make_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"))
    with pytest.raises(SageUnavailable):
        missing_dir.item_ids()
