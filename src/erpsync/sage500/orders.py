"""Sales orders in Sage: written once through Sage's import, voided, released from hold, read back.

Writing one order is one transaction on either backend: the order's application lock, a look-up in
``tsoSalesOrderExt_AMZ`` (written already: return it), the staging rows ``StgSalesOrder`` / ``StgSOLine`` under a
new SessionKey (``spGetNextSurrogateKey 'StgSession'``), ``spSOapiSalesOrdIns`` called until ``@oContinue = 0``,
Sage's messages read from ``tdmMigrationLogWrk`` when it refused, the created order found by its TranNo (a
procedure that reports success without an order is refused), the staged prices checked against what Sage wrote,
then the extension rows. Only the procedure call itself goes to the backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import Connection, Numeric, String
from sqlalchemy import exc as sa_exc

from erpsync import logs
from erpsync.errors import ConfigError, InvalidData, SageRejected
from erpsync.sage500 import schema as s
from erpsync.sage500 import sql
from erpsync.sage500.backend import NEXT_KEY, NEXT_KEY_BLOCK, SALES_ORDER_IMPORT
from erpsync.sage500.database import SageDatabase
from erpsync.sage500.draft import StagedLine, StagedOrder, WrittenOrder
from erpsync.sage500.replica_import import RET_PARAM_ERROR, RET_SUCCESS, ImportResult

log = logs.get("erpsync.sage500")

VoidOutcome = Literal["voided", "not_found", "already_void", "shipped"]
SESSION_SERIES = "StgSession"  # key series of import sessions
MAX_IMPORT_CALLS = 100


@dataclass(frozen=True)
class SalesOrderLine:
    SOLineKey: int
    SOLineNo: int
    ItemID: str | None
    Description: str | None
    UnitPrice: Decimal
    Status: int  # 1 open, 2 closed
    QtyOrd: Decimal
    QtyShip: Decimal
    QtyOpenToShip: Decimal
    ExtAmt: Decimal
    WhseID: str | None
    OrderItemId: str | None
    SellerSKU: str | None


@dataclass(frozen=True)
class SalesOrder:
    SOKey: int
    TranNo: str
    TranID: str
    Status: int  # 1 open, 3 canceled, 4 closed
    Hold: int  # 1: on hold (e.g. written while Amazon still said Pending)
    TranDate: datetime  # aware UTC (Sage's local time converted)
    CustID: str
    CustPONo: str | None
    TranAmt: Decimal
    CurrID: str | None
    AmazonOrderId: str
    MarketplaceId: str | None
    FulfillmentChannel: str | None
    lines: tuple[SalesOrderLine, ...]


class SalesOrders(SageDatabase):

    def create_sales_order(self, order: StagedOrder) -> WrittenOrder:
        """Write ``order`` once: a second call (or a concurrent one) for the same AmazonOrderId returns the
        existing order with ``created=False``. One transaction: lock, check, stage, import, extension rows."""
        header, lines = self._staging_rows(order)
        amazon_id = order.AmazonOrderId
        try:
            with self._transaction(lock=f"erpsync:order:{amazon_id}") as conn:
                existing = self._written(conn, amazon_id)
                if existing:
                    return existing
                session_key = self._next_key(conn, SESSION_SERIES)
                tran_no = self.backend.next_tran_no(conn, self.company_id)
                conn.execute(sql.insert_stg_sales_order(), {**header, "SessionKey": session_key, "TranNo": tran_no})
                conn.execute(sql.insert_stg_so_line(),
                             [{**line, "SessionKey": session_key, "TranNo": tran_no} for line in lines])
                self._import(conn, session_key, amazon_id, tran_no)
                so = conn.execute(sql.order_by_tran_no(), {"company_id": self.company_id, "tran_no": tran_no}).first()
                if so is None:
                    raise SageRejected(f"Sage reported order {amazon_id} imported but TranNo {tran_no} is not in "
                                       f"tsoSalesOrder; check the import session {session_key}", record=amazon_id)
                written_lines = conn.execute(sql.order_lines(), {"so_key": so.SOKey}).all()
                _check_prices(amazon_id, tran_no, order, written_lines)
                conn.execute(sql.insert_order_ext(), dict(
                    SOKey=so.SOKey, AmazonOrderId=amazon_id, MarketplaceId=order.MarketplaceId,
                    FulfillmentChannel=order.FulfillmentChannel, PurchaseDate=s.sage_time(order.PurchaseDate),
                    LastSyncUtc=s.sage_time()))
                line_keys = {row.SOLineNo: row.SOLineKey for row in written_lines}
                extensions = [dict(SOLineKey=line_keys[line.SOLineNo], OrderItemId=line.OrderItemId,
                                   SellerSKU=line.SellerSKU or None) for line in order.lines if line.OrderItemId]
                if extensions:
                    conn.execute(sql.insert_line_ext(), extensions)
                written = WrittenOrder(amazon_id, so.SOKey, so.TranNo, so.TranID, created=True)
        except sa_exc.IntegrityError:
            existing = self._read(lambda conn: self._written(conn, amazon_id))
            if existing is None:
                raise
            log.info("sage_order_exists", amazon_order_id=amazon_id, so_key=existing.SOKey, race=True)
            return existing
        log.info("sage_order_created", amazon_order_id=amazon_id, so_key=written.SOKey, tran_no=written.TranNo)
        return written

    def void_sales_order(self, amazon_order_id: str) -> VoidOutcome:
        """Cancel the Sage order of an Amazon order (Status 3; lines and distributions closed, QtyOnSO released)
        unless the warehouse has shipped or picked any of it."""
        with self._transaction(lock=f"erpsync:order:{amazon_order_id}") as conn:
            order = conn.execute(sql.order_by_amazon_id(), {"amazon_order_id": amazon_order_id}).first()
            if order is None:
                return "not_found"
            if order.Status == sql.SO_CANCELED:
                return "already_void"
            activity = conn.execute(sql.order_ship_activity(), {"so_key": order.SOKey}).one()
            if activity.QtyShip > 0 or activity.ShipLines > 0 or order.Status == sql.SO_CLOSED:
                return "shipped"
            for row in conn.execute(sql.open_demand_of_order(), {"so_key": order.SOKey}).all():
                conn.execute(sql.adjust_qty_on_so(), {"item_key": row.ItemKey, "whse_key": row.WhseKey,
                                                      "delta": -row.Qty})
            now = self.clock.to_sage()
            conn.execute(sql.cancel_order(), {"so_key": order.SOKey, "now": now, "user_id": self.user_id})
            conn.execute(sql.close_order_lines(), {"so_key": order.SOKey, "now": now})
            conn.execute(sql.close_order_dists(), {"so_key": order.SOKey})
        log.info("sage_order_voided", amazon_order_id=amazon_order_id, so_key=order.SOKey)
        return "voided"

    def release_hold(self, amazon_order_id: str) -> bool:
        """Lift the hold of an open order (Amazon has taken payment); False when it was not on hold."""
        with self._transaction(lock=f"erpsync:order:{amazon_order_id}") as conn:
            order = conn.execute(sql.order_by_amazon_id(), {"amazon_order_id": amazon_order_id}).first()
            if order is None or order.Status != sql.SO_OPEN:
                return False
            released = conn.execute(sql.release_hold(), {"so_key": order.SOKey, "now": self.clock.to_sage(),
                                                         "user_id": self.user_id}).rowcount
        if released:
            log.info("sage_order_released", amazon_order_id=amazon_order_id, so_key=order.SOKey)
        return bool(released)

    def order_by_amazon_id(self, amazon_order_id: str) -> SalesOrder | None:
        def read(conn: Connection) -> SalesOrder | None:
            row = conn.execute(sql.order_by_amazon_id(), {"amazon_order_id": amazon_order_id}).mappings().first()
            if row is None:
                return None
            lines = conn.execute(sql.order_lines(), {"so_key": row["SOKey"]}).mappings().all()
            return SalesOrder(**{**row, "TranDate": self.clock.from_sage(row["TranDate"])},
                              lines=tuple(SalesOrderLine(**line) for line in lines))

        return self._read(read)

    # ----- the import sequence ---------------------------------------------------------------------------------

    def _written(self, conn: Connection, amazon_order_id: str) -> WrittenOrder | None:
        row = conn.execute(sql.order_by_amazon_id(), {"amazon_order_id": amazon_order_id}).first()
        return WrittenOrder(amazon_order_id, row.SOKey, row.TranNo, row.TranID, created=False) if row else None

    def _next_key(self, conn: Connection, series: str, count: int = 1) -> int:
        if count == 1:
            return self.backend.call(conn, NEXT_KEY, {"series": series})["next_key"]
        return self.backend.call(conn, NEXT_KEY_BLOCK, {"series": series, "count": count})["next_key"]

    def _import(self, conn: Connection, session_key: int, amazon_id: str, tran_no: str) -> None:
        """Run the import until it reports no rows left; raise SageRejected with Sage's messages on failure."""
        result, refused = ImportResult(0), False
        for _ in range(MAX_IMPORT_CALLS):
            result = ImportResult(**self.backend.call(conn, SALES_ORDER_IMPORT, {
                "session_key": session_key, "company_id": self.company_id,
                "recs_processed": result.recs_processed, "failed_recs": result.failed_recs,
                "total_recs": result.total_recs}))
            if result.ret_val == RET_PARAM_ERROR:
                raise ConfigError(f"spSOapiSalesOrdIns refused its parameters (company {self.company_id}, session "
                                  f"{session_key}); check sage500.company_id")
            refused = refused or result.ret_val != RET_SUCCESS
            if not result.continue_:
                break
        else:
            raise SageRejected(f"spSOapiSalesOrdIns still reported rows left after {MAX_IMPORT_CALLS} calls for "
                               f"order {amazon_id} (session {session_key}); nothing written", record=amazon_id)
        if refused or result.failed_recs:
            messages = [row.Comment for row in conn.execute(sql.migration_failures(), {"session_key": session_key})]
            detail = "; ".join(messages) or f"spSOapiSalesOrdIns returned {result.ret_val} without a message"
            raise SageRejected(f"Sage refused order {amazon_id} (TranNo {tran_no}): {detail}", record=amazon_id)

    def _staging_rows(self, order: StagedOrder) -> tuple[dict, list[dict]]:
        header = dict(
            ProcessStatus=0, Action=1, TranDate=self.clock.to_sage(order.TranDate), CustID=order.CustID,
            CustPONo=order.CustPONo, Status=order.Status, CurrID=order.CurrID, DfltShipMethID=order.DfltShipMethID,
            DfltWarehouseID=order.DfltWarehouseID, FreightAmt=order.FreightAmt, STaxAmt=order.STaxAmt,
            TradeDiscAmt=order.TradeDiscAmt, TranCmnt=order.TranCmnt, Hold="Yes" if order.Hold else "No",
            HoldReason=order.HoldReason, DfltShipToAddrName=order.DfltShipToAddrName,
            **{f"DfltShipToAddrLine{n}": getattr(order, f"DfltShipToAddrLine{n}") for n in range(1, 6)},
            DfltShipToCity=order.DfltShipToCity, DfltShipToStateID=order.DfltShipToStateID,
            DfltShipToCountryID=order.DfltShipToCountryID, DfltShipToPostalCode=order.DfltShipToPostalCode,
            **{f"UserFld{n}": getattr(order, f"UserFld{n}") for n in range(1, 5)})
        lines = [_staged_line(line) for line in order.lines]
        if not lines:
            raise InvalidData(f"order {order.AmazonOrderId} has no lines to write to Sage", record=order.AmazonOrderId)
        _fits(order.AmazonOrderId, s.StgSalesOrder, header)
        for line in lines:
            _fits(order.AmazonOrderId, s.StgSOLine, line, f"line {line['SOLineNo']}: ")
        _fits(order.AmazonOrderId, s.tsoSalesOrderExt_AMZ,
              {"AmazonOrderId": order.AmazonOrderId, "MarketplaceId": order.MarketplaceId,
               "FulfillmentChannel": order.FulfillmentChannel})
        for line in order.lines:
            _fits(order.AmazonOrderId, s.tsoSOLineExt_AMZ, {"OrderItemId": line.OrderItemId,
                                                            "SellerSKU": line.SellerSKU})
        return header, lines


def _staged_line(line: StagedLine) -> dict:
    """The StgSOLine row: only columns spSOapiSalesOrdIns reads (UnitPriceOvrd is not one of them). Amazon's
    price is imposed by staging UnitPrice and ExtAmt, which it does read; :func:`_check_prices` verifies."""
    return dict(
        ProcessStatus=0, Action=1, SOLineNo=line.SOLineNo, ItemID=line.ItemID, Description=line.Description,
        ExtCmnt=line.ExtCmnt or None, QtyOrd=line.QtyOrd, UnitMeasID=line.UnitMeasID, UnitPrice=line.UnitPrice,
        ExtAmt=line.ExtAmt, FreightAmt=line.FreightAmt, TradeDiscAmt=line.TradeDiscAmt,
        WarehouseID=line.WarehouseID, ShipMethID=line.ShipMethID, UserFld1=line.UserFld1, UserFld2=line.UserFld2)


def _check_prices(amazon_id: str, tran_no: str, order: StagedOrder, written_lines) -> None:
    """Sage must keep the staged UnitPrice and ExtAmt of every line: a site whose procedure re-prices from its
    price sheet would otherwise invoice the buyer's order at another price. Refused (rolled back) if not."""
    written = {row.SOLineNo: row for row in written_lines}
    for line in order.lines:
        row = written.get(line.SOLineNo)
        if row is None:
            raise SageRejected(f"Sage imported order {amazon_id} (TranNo {tran_no}) without line {line.SOLineNo}; "
                               f"nothing written", record=amazon_id)
        if row.UnitPrice != line.UnitPrice or row.ExtAmt != line.ExtAmt:
            raise SageRejected(
                f"Sage re-priced order {amazon_id} line {line.SOLineNo} ({line.ItemID}): staged UnitPrice "
                f"{line.UnitPrice} / ExtAmt {line.ExtAmt}, Sage wrote {row.UnitPrice} / {row.ExtAmt}; nothing "
                f"written. The site's spSOapiSalesOrdIns does not keep a staged price: see 'Prices' in "
                f"docs/sage500.md", record=amazon_id)


def _fits(record: str, table, values: dict, where: str = "") -> None:
    """Refuse a value that cannot fit its Sage column (SQL Server would reject it; SQLite would not notice): a
    string longer than the column, a number with more integer digits than its precision allows. The message
    names the column and the limit, never the value (it may be an address)."""
    for name, value in values.items():
        column = table.c[name]
        kind = column.type
        if isinstance(value, str) and isinstance(kind, String) and kind.length and len(value) > kind.length:
            raise InvalidData(f"order {record}: {where}{table.name}.{name} has {len(value)} characters, Sage allows "
                              f"{kind.length}; shorten it in the translation", record=record)
        if isinstance(value, Decimal) and isinstance(kind, Numeric) and kind.precision and value.is_finite():
            digits = value.adjusted() + 1 if value else 0
            if digits > kind.precision - (kind.scale or 0):
                raise InvalidData(f"order {record}: {where}{table.name}.{name} has {digits} digits before the "
                                  f"decimal point, Sage's DECIMAL({kind.precision},{kind.scale}) allows "
                                  f"{kind.precision - (kind.scale or 0)}", record=record)
