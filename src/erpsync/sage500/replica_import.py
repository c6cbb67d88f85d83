"""The replica's ``spSOapiSalesOrdIns``: Sage's sales-order import from ``StgSalesOrder`` / ``StgSOLine``.

Like the real procedure, one call processes at most ``MAX_ROWS_PER_RUN`` (1) order of the session and sets
``continue_`` while unprocessed rows remain, so callers loop. A refused order gets ``ProcessStatus`` 2 and
``tdmMigrationLogWrk`` rows (Status 1, ``EntityID`` = TranNo, ``Comment`` naming the problem); an imported one
gets ProcessStatus 1 and becomes ``tsoSalesOrdLog`` + ``tsoSalesOrder`` (+ a one-off ship-to ``tciAddress``) +
``tsoSOLine`` / ``tsoSOLineDist`` with keys from :func:`replica.next_keys`, and raises ``timInventory.QtyOnSO``.
Runs inside the caller's transaction. Its statements are built once, with bound parameters (below): the stand-in
runs for every order the replica takes, and building them anew for each order was most of its cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, Table, bindparam, func, insert, select, update

from erpsync.sage500 import schema as s
from erpsync.sage500 import sql
from erpsync.sage500.replica import next_keys

RET_UNKNOWN, RET_SUCCESS, RET_FAILURE, RET_PARAM_ERROR = 0, 1, 2, 3
NOT_PROCESSED, PROCESSED, FAILED = 0, 1, 2
LOG_FAILURE, LOG_SUCCESS = 1, 3
MAX_ROWS_PER_RUN = 1
CREATE_TYPE_MIGRATE = 7
_STATUS = {"open": sql.SO_OPEN, "1": sql.SO_OPEN, "closed": sql.SO_CLOSED, "4": sql.SO_CLOSED}
_YES = {"yes", "y", "1", "true"}


@dataclass(frozen=True)
class ImportResult:
    """The procedure's outputs: ``ret_val`` (_oRetVal: 1 success, 2 failure, 3 parameter error), the additive
    counters ``recs_processed`` / ``failed_recs`` / ``total_recs``, and ``continue_`` (1: rows remain)."""

    ret_val: int
    recs_processed: int = 0
    failed_recs: int = 0
    total_recs: int = 0
    continue_: int = 0


_hdr, _line = s.StgSalesOrder, s.StgSOLine
_COMPANY = select(s.tsmCompany).where(s.tsmCompany.c.CompanyID == bindparam("company_id"))
_PENDING = select(_hdr).where(_hdr.c.SessionKey == bindparam("session_key"), _hdr.c.ProcessStatus == NOT_PROCESSED)
_PENDING_COUNT = select(func.count()).select_from(_PENDING.subquery())
_PENDING_FIRST = _PENDING.order_by(_hdr.c.RowKey).limit(MAX_ROWS_PER_RUN + 1)
_OF_ORDER = (_line.c.SessionKey == bindparam("session_key"), _line.c.TranNo == bindparam("tran_no"),
             _line.c.ProcessStatus == NOT_PROCESSED)
_STAGED_LINES = select(_line).where(*_OF_ORDER).order_by(_line.c.SOLineNo)
_MARK_HEADER = (update(_hdr).where(_hdr.c.RowKey == bindparam("row_key"))
                .values(ProcessStatus=bindparam("process_status")))
_MARK_LINES = update(_line).where(*_OF_ORDER).values(ProcessStatus=bindparam("process_status"))
_TRAN_NO_TAKEN = select(s.tsoSalesOrder.c.TranID).where(
    s.tsoSalesOrder.c.CompanyID == bindparam("company_id"), s.tsoSalesOrder.c.TranType == sql.SO_TRAN_TYPE,
    s.tsoSalesOrder.c.TranNo == bindparam("tran_no"))
_ITEM_DESCRIPTION = select(s.timItemDescription.c.ShortDesc).where(
    s.timItemDescription.c.ItemKey == bindparam("item_key"))
_INSERT = {table: insert(table) for table in (s.tdmMigrationLogWrk, s.tciAddress, s.tsoSalesOrdLog, s.tsoSalesOrder,
                                              s.tsoSOLine, s.tsoSOLineDist, s.timInventory)}
_LOOKUPS: dict[tuple[Table, str], object] = {}


def _lookup_statement(table: Table, id_column: str):
    """``SELECT * FROM table WHERE CompanyID = :company_id AND id_column = :value``, built once per pair."""
    statement = _LOOKUPS.get((table, id_column))
    if statement is None:
        statement = _LOOKUPS[(table, id_column)] = select(table).where(
            table.c.CompanyID == bindparam("company_id"), table.c[id_column] == bindparam("value"))
    return statement


class _Refused(Exception):
    def __init__(self, problems: list[tuple[str, str, str, int]]):
        super().__init__("; ".join(p[2] for p in problems))
        self.problems = problems  # (ColumnID, ColumnValue, Comment, Duplicate)


def sales_order_import(conn: Connection, session_key: int, company_id: str, *,
                       previous: ImportResult | None = None, user_id: str = "erpsync",
                       now: datetime | None = None) -> ImportResult:
    """One run of ``spSOapiSalesOrdIns @iSessionKey, @iCompanyID`` (``previous``: the last run's counters)."""
    previous = previous or ImportResult(RET_UNKNOWN)
    company = conn.execute(_COMPANY, {"company_id": company_id}).first()
    if not session_key or company is None:
        return ImportResult(RET_PARAM_ERROR, previous.recs_processed, previous.failed_recs, previous.total_recs, 0)
    session = {"session_key": session_key}
    total = previous.total_recs or conn.execute(_PENDING_COUNT, session).scalar_one()
    rows = conn.execute(_PENDING_FIRST, session).mappings().all()
    processed, failed = previous.recs_processed, previous.failed_recs
    ret = RET_SUCCESS
    for header in rows[:MAX_ROWS_PER_RUN]:
        lines = conn.execute(_STAGED_LINES, {**session, "tran_no": header["TranNo"]}).mappings().all()
        try:
            _Order(conn, company, header, lines, user_id, now or s.sage_time()).write()
            status = PROCESSED
        except _Refused as refused:
            _log(conn, session_key, header["TranNo"], refused.problems)
            status, ret, failed = FAILED, RET_FAILURE, failed + 1
        _mark(conn, session_key, header, status)
        processed += 1
    return ImportResult(ret, processed, failed, total, int(len(rows) > MAX_ROWS_PER_RUN))


def _mark(conn: Connection, session_key: int, header, status: int) -> None:
    conn.execute(_MARK_HEADER, {"row_key": header["RowKey"], "process_status": status})
    conn.execute(_MARK_LINES, {"session_key": session_key, "tran_no": header["TranNo"], "process_status": status})
    if status == PROCESSED:
        _log(conn, session_key, header["TranNo"], [("TranNo", header["TranNo"], "Sales order imported", 0)],
             LOG_SUCCESS)


def _log(conn: Connection, session_key: int, tran_no: str | None, problems, status: int = LOG_FAILURE) -> None:
    conn.execute(_INSERT[s.tdmMigrationLogWrk], [
        dict(ColumnID=column, ColumnValue=None if value is None else str(value)[:100], Duplicate=duplicate,
             Comment=comment[:255], EntityID=tran_no, Status=status, SessionKey=session_key)
        for column, value, comment, duplicate in problems])


class _Order:
    """Validates one staged order against setup and, when clean, writes it."""

    def __init__(self, conn: Connection, company, header, lines, user_id: str, now: datetime):
        self.conn, self.co, self.h, self.lines, self.user, self.now = conn, company, header, lines, user_id, now
        self.problems: list[tuple[str, str, str, int]] = []
        self._found: dict[tuple[str, str, str], object] = {}  # (table, column, value) -> row or None

    def problem(self, column: str, value, comment: str, duplicate: int = 0) -> None:
        self.problems.append((column, value, comment, duplicate))

    def lookup(self, table, id_column: str, value: str | None, label: str, where: str = ""):
        if not value:
            return None
        found = (table.name, id_column, value)  # the header's and each line's warehouse, ship method: read once
        if found in self._found:
            row = self._found[found]
        else:
            row = self._found[found] = self.conn.execute(_lookup_statement(table, id_column), {
                "company_id": self.co.CompanyID, "value": value}).mappings().first()
        if row is None:
            self.problem(label, value, f"{where}{label} '{value}' does not exist in company {self.co.CompanyID}")
            return None
        return row

    def write(self) -> None:
        h, co = self.h, self.co.CompanyID
        tran_no = (h["TranNo"] or "").strip()
        if not tran_no:
            self.problem("TranNo", tran_no, "TranNo is required")
        elif self.conn.execute(_TRAN_NO_TAKEN, {"company_id": co, "tran_no": tran_no.zfill(10)}).first():
            self.problem("TranNo", tran_no, f"TranNo '{tran_no}' already exists in company {co}", 1)
        customer = self.lookup(s.tarCustomer, "CustID", h["CustID"], "CustID")
        if not h["CustID"]:
            self.problem("CustID", None, "CustID is required")
        elif customer is not None and customer["Hold"]:
            self.problem("CustID", h["CustID"], f"Customer '{h['CustID']}' is on hold; release the hold in Sage")
        elif customer is not None and customer["Status"] != 1:
            self.problem("CustID", h["CustID"], f"Customer '{h['CustID']}' is not active")
        status = _STATUS.get(str(h["Status"] or "Open").strip().lower())
        if status is None:
            self.problem("Status", h["Status"], f"Status '{h['Status']}' is invalid; use Open[1] or Closed[4]")
        whse = self.lookup(s.timWarehouse, "WhseID", h["DfltWarehouseID"], "WarehouseID")
        meth = self.lookup(s.tciShipMethod, "ShipMethID", h["DfltShipMethID"], "ShipMethID")
        if not self.lines:
            self.problem("SOLineNo", None, "the sales order has no lines")
        lines = [self.line(line, whse, meth) for line in self.lines]
        if self.problems:
            raise _Refused(self.problems)
        self.create(customer, status, whse, meth, tran_no.zfill(10), lines)

    def line(self, line, dflt_whse, dflt_meth) -> dict:
        where = f"line {line['SOLineNo']}: "
        item = self.lookup(s.timItem, "ItemID", line["ItemID"], "ItemID", where)
        if not line["ItemID"]:
            self.problem("ItemID", None, f"{where}ItemID is required")
        whse = self.lookup(s.timWarehouse, "WhseID", line["WarehouseID"], "WarehouseID", where) or dflt_whse
        if whse is None and not line["WarehouseID"]:
            self.problem("WarehouseID", None, f"{where}no WarehouseID on the line nor DfltWarehouseID on the order")
        meth = self.lookup(s.tciShipMethod, "ShipMethID", line["ShipMethID"], "ShipMethID", where)
        unit = self.lookup(s.tciUnitMeasure, "UnitMeasID", line["UnitMeasID"], "UnitMeasID", where)
        qty = line["QtyOrd"]
        if qty is None or qty <= 0:
            self.problem("QtyOrd", qty, f"{where}QtyOrd must be greater than zero")
        if line["UnitPrice"] is None:
            self.problem("UnitPrice", None, f"{where}UnitPrice is required (the replica does not price lines)")
        return dict(staged=line, item=item, whse=whse, meth=meth or dflt_meth, unit=unit)

    def create(self, customer, status: int, whse, meth, tran_no: str, lines: list[dict]) -> None:
        conn, h, now = self.conn, self.h, self.now
        so_key = next_keys(conn, "tsoSalesOrdLog")
        ship_to = customer["DfltShipToAddrKey"]
        if h["DfltShipToAddrName"] or h["DfltShipToAddrLine1"]:
            ship_to = next_keys(conn, "tciAddress")
            conn.execute(_INSERT[s.tciAddress], dict(
                AddrKey=ship_to, AddrName=h["DfltShipToAddrName"],
                **{f"AddrLine{n}": h[f"DfltShipToAddrLine{n}"] or "" for n in range(1, 6)},
                City=h["DfltShipToCity"], StateID=h["DfltShipToStateID"], CountryID=h["DfltShipToCountryID"],
                PostalCode=h["DfltShipToPostalCode"], Residential=1))
        closed = status == sql.SO_CLOSED
        amounts = [(ln["staged"]["ExtAmt"] if ln["staged"]["ExtAmt"] is not None
                    else (ln["staged"]["QtyOrd"] * ln["staged"]["UnitPrice"]).quantize(Decimal("0.001")))
                   for ln in lines]
        sales = sum(amounts, Decimal("0"))
        freight, tax, disc = (h[c] or Decimal("0") for c in ("FreightAmt", "STaxAmt", "TradeDiscAmt"))
        total = sales + freight + tax - disc
        conn.execute(_INSERT[s.tsoSalesOrdLog], dict(
            SOKey=so_key, CompanyID=self.co.CompanyID, TranType=sql.SO_TRAN_TYPE, TranNo=tran_no, TranNoRel=tran_no,
            TranDate=h["TranDate"], TranAmtHC=total, TranStatus=status))
        conn.execute(_INSERT[s.tsoSalesOrder], dict(
            SOKey=so_key, CompanyID=self.co.CompanyID, TranType=sql.SO_TRAN_TYPE, TranNo=tran_no, TranNoRel=tran_no,
            TranID=f"SO-{tran_no}", TranDate=h["TranDate"] or now, CustKey=customer["CustKey"], CustPONo=h["CustPONo"],
            Status=status, Hold=int(str(h["Hold"] or "No").strip().lower() in _YES), HoldReason=h["HoldReason"],
            BillToAddrKey=customer["DfltBillToAddrKey"], DfltShipToAddrKey=ship_to,
            DfltShipMethKey=meth["ShipMethKey"] if meth else None, DfltWhseKey=whse["WhseKey"] if whse else None,
            DfltShipDate=h["DfltShipDate"], CurrID=h["CurrID"] or self.co.CurrID, CurrExchRate=1.0,
            SalesAmt=sales, FreightAmt=freight, STaxAmt=tax, TradeDiscAmt=disc, TranAmt=total,
            OpenAmt=Decimal("0") if closed else total, NextLineNo=max(ln["staged"]["SOLineNo"] for ln in lines) + 1,
            TranCmnt=h["TranCmnt"], **{f"UserFld{n}": h[f"UserFld{n}"] for n in range(1, 5)},
            CloseDate=now if closed else None, CreateDate=now, CreateType=CREATE_TYPE_MIGRATE,
            CreateUserID=self.user, UpdateDate=now, UpdateUserID=self.user))
        line_key = next_keys(conn, "tsoSOLine", len(lines))
        dist_key = next_keys(conn, "tsoSOLineDist", len(lines))
        line_rows, dist_rows, on_so = [], [], {}
        line_status = sql.LINE_CLOSED if closed else sql.LINE_OPEN
        for n, (ln, amount) in enumerate(zip(lines, amounts, strict=True)):
            st, item = ln["staged"], ln["item"]
            unit_key = ln["unit"]["UnitMeasKey"] if ln["unit"] else item["StockUnitMeasKey"]
            description = st["Description"] or self.conn.execute(_ITEM_DESCRIPTION,
                                                                 {"item_key": item["ItemKey"]}).scalar()
            line_rows.append(dict(
                SOLineKey=line_key + n, SOKey=so_key, SOLineNo=st["SOLineNo"], ItemKey=item["ItemKey"],
                Description=description, ExtCmnt=st["ExtCmnt"], CmntOnly=0, UnitMeasKey=unit_key,
                UnitPrice=st["UnitPrice"], UnitPriceOvrd=1, Status=line_status, CloseDate=now if closed else None,
                UserFld1=st["UserFld1"], UserFld2=st["UserFld2"], UpdateCounter=0))
            qty = st["QtyOrd"]
            dist_rows.append(dict(
                SOLineDistKey=dist_key + n, SOLineKey=line_key + n, WhseKey=ln["whse"]["WhseKey"], QtyOrd=qty,
                OrigOrdered=qty, QtyOpenToShip=Decimal("0") if closed else qty, QtyShip=qty if closed else Decimal("0"),
                QtyInvcd=Decimal("0"), QtyOnBO=Decimal("0"), ExtAmt=amount, AmtInvcd=Decimal("0"),
                FreightAmt=st["FreightAmt"] or Decimal("0"), TradeDiscAmt=st["TradeDiscAmt"] or Decimal("0"),
                ShipMethKey=ln["meth"]["ShipMethKey"] if ln["meth"] else None, ShipToAddrKey=ship_to,
                ShipDate=h["DfltShipDate"], RequestDate=h["DfltShipDate"], PromiseDate=h["DfltShipDate"],
                DeliveryMeth=1, Hold=0, Status=line_status, GLAcctKey=customer["DfltSalesAcctKey"], UpdateCounter=0))
            if not closed:
                where = (item["ItemKey"], ln["whse"]["WhseKey"])
                on_so[where] = on_so.get(where, Decimal("0")) + qty
        conn.execute(_INSERT[s.tsoSOLine], line_rows)
        conn.execute(_INSERT[s.tsoSOLineDist], dist_rows)
        for (item_key, whse_key), qty in on_so.items():
            params = {"item_key": item_key, "whse_key": whse_key, "delta": qty}
            if conn.execute(sql.adjust_qty_on_so(), params).rowcount == 0:
                conn.execute(_INSERT[s.timInventory], dict(ItemKey=item_key, WhseKey=whse_key, QtyOnSO=qty))

