"""The one door to Sage 500: every read and write erpsync does against the Sage database.

Mode ``procedure`` drives a real Sage 500 on SQL Server (``EXEC spSOapiSalesOrdIns``); mode ``replica`` runs the
same steps on the replica, with the procedure emulated in Python. Every statement comes from
:mod:`erpsync.sage500.sql`. Results are plain dataclasses with Sage's column names; money and quantities are
``Decimal``; datetimes are timezone-aware UTC.

Errors: database unreachable → :class:`~erpsync.errors.SageUnavailable` (retry); another writer holds the order →
:class:`~erpsync.errors.RecordLocked`; Sage refuses the order → :class:`~erpsync.errors.SageRejected`; a value
that cannot fit a Sage column or an unknown GL account → :class:`~erpsync.errors.Permanent`; missing tables →
:class:`~erpsync.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import Connection, Engine, String, inspect
from sqlalchemy import exc as sa_exc

from erpsync import logs, model
from erpsync.config import SageTables, Settings
from erpsync.errors import ConfigError, InvalidData, Permanent, RecordLocked, SageRejected, SageUnavailable
from erpsync.sage500 import schema as s
from erpsync.sage500 import sql
from erpsync.sage500.draft import StagedLine, StagedOrder, WrittenOrder
from erpsync.sage500.engine import engine_from_settings
from erpsync.sage500.replica import next_keys
from erpsync.sage500.replica_import import RET_PARAM_ERROR, RET_SUCCESS, ImportResult, sales_order_import
from erpsync.sage500.warehouse import post_gl_batch

log = logs.get("erpsync.sage500")

Mode = Literal["replica", "procedure"]
VoidOutcome = Literal["voided", "not_found", "already_void", "shipped"]
SESSION_SERIES = "StgSession"  # key series of import sessions
MAX_IMPORT_CALLS = 100
ZERO = Decimal("0")
CENT3 = Decimal("0.001")


@dataclass(frozen=True)
class ItemRecord:
    ItemKey: int
    ItemID: str
    ShortDesc: str | None
    UnitMeasID: str | None  # stock unit of measure
    Status: int


@dataclass(frozen=True)
class CustomerRecord:
    CustKey: int
    CustID: str
    CustName: str | None
    Status: int
    Hold: int


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
    TranDate: datetime
    CustID: str
    CustPONo: str | None
    TranAmt: Decimal
    CurrID: str | None
    AmazonOrderId: str
    MarketplaceId: str | None
    FulfillmentChannel: str | None
    lines: tuple[SalesOrderLine, ...]


@dataclass(frozen=True)
class PackageLine:
    OrderItemId: str | None
    SellerSKU: str | None
    ItemID: str | None
    Qty: Decimal


@dataclass(frozen=True)
class PackageRecord:
    PackageNo: int
    TrackingNo: str | None
    ShipMethID: str | None
    lines: tuple[PackageLine, ...]


@dataclass(frozen=True)
class ShipmentRecord:
    """A committed (TranStatus 6) or posted (3) shipment of one Amazon order. ``lines`` holds everything shipped
    (QtyShipped); ``packages`` how it was packed. A shipment packed in no package has ``packages == ()``."""

    ShipKey: int
    TranNo: str
    TranID: str | None
    TranStatus: int
    ShipDate: datetime | None
    SOKey: int
    SOTranNo: str
    SOTranID: str
    AmazonOrderId: str
    MarketplaceId: str | None
    packages: tuple[PackageRecord, ...]
    lines: tuple[PackageLine, ...]


class Sage500Gateway:
    """All Sage access for one company. Thread-safe (an Engine is); one instance per process is enough."""

    def __init__(self, engine: Engine, company_id: str = "SOA", mode: Mode = "replica",
                 tables: SageTables | None = None, *, user_id: str = "erpsync", lock_timeout_ms: int = 10_000):
        if mode not in ("replica", "procedure"):
            raise ConfigError(f"sage500.mode must be 'replica' or 'procedure', not {mode!r}")
        self.engine, self.company_id, self.mode = engine, company_id, mode
        self.tables = tables or SageTables()
        self.package = s.package_table(self.tables)
        self.user_id, self.lock_timeout_ms = user_id, lock_timeout_ms
        self._owns_engine = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "Sage500Gateway":
        cfg = settings.sage500
        gateway = cls(engine_from_settings(settings, create=False),  # a missing replica file is not made empty
                      cfg.company_id, cfg.mode, cfg.tables, user_id=cfg.user_id)
        gateway._owns_engine = True
        return gateway

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> "Sage500Gateway":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- sales orders ------------------------------------------------------------------------------------

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
                tran_no = self._next_tran_no(conn)
                conn.execute(sql.insert_stg_sales_order(), {**header, "SessionKey": session_key, "TranNo": tran_no})
                conn.execute(sql.insert_stg_so_line(),
                             [{**line, "SessionKey": session_key, "TranNo": tran_no} for line in lines])
                self._import(conn, session_key, amazon_id, tran_no)
                so = conn.execute(sql.order_by_tran_no(), {"company_id": self.company_id, "tran_no": tran_no}).first()
                if so is None:
                    raise SageRejected(f"Sage reported order {amazon_id} imported but TranNo {tran_no} is not in "
                                       f"tsoSalesOrder; check the import session {session_key}", record=amazon_id)
                conn.execute(sql.insert_order_ext(), dict(
                    SOKey=so.SOKey, AmazonOrderId=amazon_id, MarketplaceId=order.MarketplaceId,
                    FulfillmentChannel=order.FulfillmentChannel, PurchaseDate=s.sage_time(order.PurchaseDate),
                    LastSyncUtc=s.sage_time()))
                line_keys = {row.SOLineNo: row.SOLineKey
                             for row in conn.execute(sql.order_lines(), {"so_key": so.SOKey})}
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
            now = s.sage_time()
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
            released = conn.execute(sql.release_hold(), {"so_key": order.SOKey, "now": s.sage_time(),
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
            return SalesOrder(**{**row, "TranDate": s.utc(row["TranDate"])},
                              lines=tuple(SalesOrderLine(**line) for line in lines))

        return self._read(read)

    # ----- shipments ---------------------------------------------------------------------------------------

    def shipments_since(self, cursor: int, limit: int = 200) -> tuple[list[ShipmentRecord], int]:
        """Committed or posted shipments of Amazon orders with ShipKey > ``cursor``, oldest first, and the new
        cursor. The cursor never passes a shipment that is still pending (it may commit later), so a record
        can come back in a later call: consumers dedupe on (ShipKey, AmazonOrderId)."""
        def read(conn: Connection):
            keys = conn.execute(sql.committed_shipment_keys(limit), {"cursor": cursor}).scalars().all()
            if not keys:
                return [], cursor
            floor = conn.execute(sql.uncommitted_shipment_floor(), {"cursor": cursor}).scalar()
            rows = conn.execute(sql.shipment_details(self.package), {"ship_keys": list(keys)}).mappings().all()
            new_cursor = max(keys) if floor is None or floor > max(keys) else max(cursor, floor - 1)
            return _shipments(rows), new_cursor

        return self._read(read)

    # ----- catalog -----------------------------------------------------------------------------------------

    def items(self, item_ids: Iterable[str]) -> dict[str, ItemRecord]:
        ids = sorted(set(item_ids))
        if not ids:
            return {}
        rows = self._read(lambda conn: conn.execute(
            sql.items_by_id(), {"company_id": self.company_id, "item_ids": ids}).mappings().all())
        return {row["ItemID"]: ItemRecord(**row) for row in rows}

    def item_ids(self) -> list[str]:
        return self._read(lambda conn: list(conn.execute(sql.all_item_ids(),
                                                         {"company_id": self.company_id}).scalars()))

    def customer(self, cust_id: str) -> CustomerRecord | None:
        row = self._read(lambda conn: conn.execute(
            sql.customer_by_id(), {"company_id": self.company_id, "cust_id": cust_id}).mappings().first())
        return CustomerRecord(**row) if row else None

    def ship_method_ids(self) -> list[str]:
        return self._read(lambda conn: list(conn.execute(sql.all_ship_method_ids(),
                                                         {"company_id": self.company_id}).scalars()))

    def warehouse_ids(self) -> list[str]:
        return self._read(lambda conn: list(conn.execute(sql.all_warehouse_ids(),
                                                         {"company_id": self.company_id}).scalars()))

    # ----- stock and prices --------------------------------------------------------------------------------

    def stock_levels(self, whse_ids: Iterable[str]) -> dict[str, Decimal]:
        """Available quantity per ItemID over the warehouses: Σ bins (QtyOnHand − PendQtyDecrease, bins not
        excluded from availability) − open sales-order quantity not yet picked. May be negative; items without
        bins or demand are absent (no stock)."""
        params = {"company_id": self.company_id, "whse_ids": sorted(set(whse_ids))}

        def read(conn: Connection) -> dict[str, Decimal]:
            available = {r.ItemID: r.Qty for r in conn.execute(sql.bin_availability(), params)}
            picked = {r.ItemID: r.Qty for r in conn.execute(sql.picked_uncommitted(), params)}
            for r in conn.execute(sql.open_so_demand(), params):
                available[r.ItemID] = available.get(r.ItemID, ZERO) - (r.Qty - picked.get(r.ItemID, ZERO))
            return available

        return self._read(read) if params["whse_ids"] else {}

    def prices(self, currency: str, whse_id: str | None = None, *, at: datetime | None = None) -> dict[str, Decimal]:
        """ListPrice per ItemID effective at ``at`` (default now) in ``currency``; for one warehouse's price sheet
        or, when None, the first warehouse that prices the item."""
        params = {"company_id": self.company_id, "currency": currency, "now": s.sage_time(at), "whse_id": whse_id}

        def read(conn: Connection) -> dict[str, Decimal]:
            prices: dict[str, Decimal] = {}
            for row in conn.execute(sql.current_prices(whse_id is not None), params):
                prices.setdefault(row.ItemID, row.ListPrice)
            return prices

        return self._read(read)

    # ----- general ledger ----------------------------------------------------------------------------------

    def post_journal(self, entry: model.JournalEntry, batch_id_prefix: str = "AMZ") -> int:
        """Write ``entry`` as one balanced GL batch (tciBatchLog + tglPosting), once per ``entry.reference``
        (a repeat returns the existing BatchKey); in replica mode the batch is also posted to tglTransaction."""
        comment = f"{batch_id_prefix}:{entry.reference}"
        if len(comment) > 50:
            raise InvalidData(f"journal {entry.reference}: '{comment}' is longer than tciBatchLog.BatchCmnt (50)",
                              record=entry.reference)
        amounts = [line.amount.quantize(CENT3) for line in entry.lines]
        if sum(amounts, ZERO) != 0 or any(a != line.amount for a, line in zip(amounts, entry.lines, strict=True)):
            raise Permanent(f"journal {entry.reference} is not balanced to the tenth of a cent "
                            f"(Σ = {sum((line.amount for line in entry.lines), ZERO)}); nothing posted",
                            code="gl_unbalanced", record=entry.reference)
        with self._transaction(lock=f"erpsync:journal:{comment}") as conn:
            existing = conn.execute(sql.batch_by_comment(), {"company_id": self.company_id, "comment": comment}).first()
            if existing:
                log.info("gl_batch_exists", reference=entry.reference, batch_key=existing.BatchKey)
                return existing.BatchKey
            numbers = sorted({line.account for line in entry.lines})
            accounts = {r.GLAcctNo: r.GLAcctKey for r in conn.execute(
                sql.gl_accounts_by_no(), {"company_id": self.company_id, "acct_nos": numbers})}
            unknown = [n for n in numbers if n not in accounts]
            if unknown:
                raise Permanent(f"journal {entry.reference}: GL account(s) {', '.join(unknown)} do not exist in "
                                f"company {self.company_id}; fix [mapping.gl_accounts] or create them in Sage",
                                code="unknown_gl_account", record=entry.reference)
            batch_key = self._next_key(conn, "tciBatchLog")
            date = s.sage_time(entry.date)
            conn.execute(sql.insert_batch_log(), dict(
                BatchKey=batch_key, CompanyID=self.company_id, PostCompanyID=self.company_id,
                BatchID=f"{batch_id_prefix}-{batch_key}"[:20], Status=4, PostStatus=0, PostDate=date,
                BatchCmnt=comment))
            first = self._next_key(conn, "tglPosting", len(entry.lines))
            conn.execute(sql.insert_gl_posting(), [dict(
                PostingKey=first + n, BatchKey=batch_key, GLAcctKey=accounts[line.account], CurrID=entry.currency,
                PostAmt=amount, PostAmtHC=amount, PostQty=ZERO, PostCmnt=(line.description or entry.memo)[:50],
                ExtCmnt=line.description[:255], TranDate=date, PostDate=date, NatCurrBegBal=0)
                for n, (line, amount) in enumerate(zip(entry.lines, amounts, strict=True))])
            if self.mode == "replica":
                post_gl_batch(conn, batch_key)
        log.info("gl_batch_written", reference=entry.reference, batch_key=batch_key, lines=len(entry.lines))
        return batch_key

    # ----- schema ------------------------------------------------------------------------------------------

    def check_schema(self) -> list[str]:
        """What the target database lacks, by name: 'missing table X', 'X: missing column Y'."""
        def read(conn: Connection) -> list[str]:
            inspector = inspect(conn)
            actual = {name.lower(): name for name in inspector.get_table_names()}
            problems = []
            for table in s.expected_tables(self.tables, replica=self.mode == "replica"):
                name = actual.get(table.name.lower())
                if name is None:
                    problems.append(f"missing table {table.name}")
                    continue
                columns = {c["name"].lower() for c in inspector.get_columns(name)}
                problems += [f"{table.name}: missing column {c.name}" for c in table.columns
                             if c.name.lower() not in columns]
            return problems

        return self._read(read)

    # ----- internals ---------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, lock: str) -> Iterator[Connection]:
        """A write transaction holding an exclusive application lock on ``lock`` until it ends."""
        with self._errors(), self.engine.connect() as conn, conn.begin():
            backend = conn.dialect.name
            if backend == "sqlite":
                conn.execute(sql.begin_immediate_sqlite())
            elif backend == "postgresql":
                conn.execute(sql.lock_timeout_postgresql(), {"timeout": f"{self.lock_timeout_ms}ms"})
                conn.execute(sql.applock_postgresql(), {"resource": lock})
            elif backend == "mssql":
                granted = conn.execute(sql.applock_mssql(),
                                       {"resource": lock, "timeout_ms": self.lock_timeout_ms}).scalar()
                if granted is None or granted < 0:
                    raise RecordLocked(f"Sage application lock {lock!r} not granted (sp_getapplock {granted}); "
                                       f"another writer holds it", record=lock)
            yield conn

    def _read(self, fn):
        with self._errors(), self.engine.connect() as conn:
            return fn(conn)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sa_exc.DBAPIError as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    def _written(self, conn: Connection, amazon_order_id: str) -> WrittenOrder | None:
        row = conn.execute(sql.order_by_amazon_id(), {"amazon_order_id": amazon_order_id}).first()
        return WrittenOrder(amazon_order_id, row.SOKey, row.TranNo, row.TranID, created=False) if row else None

    def _next_key(self, conn: Connection, series: str, count: int = 1) -> int:
        if self.mode == "replica":
            return next_keys(conn, series, count)
        if count == 1:
            return conn.execute(sql.next_key_mssql(), {"series": series}).scalar_one()
        return conn.execute(sql.next_key_block_mssql(), {"series": series, "count": count}).scalar_one()

    def _next_tran_no(self, conn: Connection) -> str:
        if self.mode == "replica":
            return f"{next_keys(conn, 'tsoSalesOrder.TranNo'):010d}"
        highest = conn.execute(sql.max_tran_no_mssql(), {"company_id": self.company_id}).scalar()
        return f"{int(highest or 0) + 1:010d}"

    def _import(self, conn: Connection, session_key: int, amazon_id: str, tran_no: str) -> None:
        """Run the import until it reports no rows left; raise SageRejected with Sage's messages on failure."""
        result, refused = ImportResult(0), False
        for _ in range(MAX_IMPORT_CALLS):
            if self.mode == "replica":
                result = sales_order_import(conn, session_key, self.company_id, previous=result, user_id=self.user_id)
            else:
                row = conn.execute(sql.exec_sales_ord_ins(), {
                    "session_key": session_key, "company_id": self.company_id,
                    "recs_processed": result.recs_processed, "failed_recs": result.failed_recs,
                    "total_recs": result.total_recs}).mappings().one()
                result = ImportResult(**row)
            if result.ret_val == RET_PARAM_ERROR:
                raise ConfigError(f"spSOapiSalesOrdIns refused its parameters (company {self.company_id}, session "
                                  f"{session_key}); check sage500.company_id")
            refused = refused or result.ret_val != RET_SUCCESS
            if not result.continue_:
                break
        if refused or result.failed_recs:
            messages = [row.Comment for row in conn.execute(sql.migration_failures(), {"session_key": session_key})]
            detail = "; ".join(messages) or f"spSOapiSalesOrdIns returned {result.ret_val} without a message"
            raise SageRejected(f"Sage refused order {amazon_id} (TranNo {tran_no}): {detail}", record=amazon_id)

    def _staging_rows(self, order: StagedOrder) -> tuple[dict, list[dict]]:
        header = dict(
            ProcessStatus=0, Action=1, TranDate=s.sage_time(order.TranDate), CustID=order.CustID,
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
            _fits(order.AmazonOrderId, s.StgSOLine, line)
        _fits(order.AmazonOrderId, s.tsoSalesOrderExt_AMZ,
              {"AmazonOrderId": order.AmazonOrderId, "MarketplaceId": order.MarketplaceId,
               "FulfillmentChannel": order.FulfillmentChannel})
        for line in order.lines:
            _fits(order.AmazonOrderId, s.tsoSOLineExt_AMZ, {"OrderItemId": line.OrderItemId,
                                                            "SellerSKU": line.SellerSKU})
        return header, lines


def _staged_line(line: StagedLine) -> dict:
    return dict(
        ProcessStatus=0, Action=1, SOLineNo=line.SOLineNo, ItemID=line.ItemID, Description=line.Description,
        ExtCmnt=line.ExtCmnt or None, QtyOrd=line.QtyOrd, UnitMeasID=line.UnitMeasID, UnitPrice=line.UnitPrice,
        UnitPriceOvrd="Yes", ExtAmt=line.ExtAmt, FreightAmt=line.FreightAmt, TradeDiscAmt=line.TradeDiscAmt,
        WarehouseID=line.WarehouseID, ShipMethID=line.ShipMethID, UserFld1=line.UserFld1, UserFld2=line.UserFld2)


def _fits(record: str, table, values: dict) -> None:
    """Refuse a value longer than its Sage column (SQL Server would reject it; SQLite would not notice).
    The message names the column and the lengths, never the value (it may be an address)."""
    for name, value in values.items():
        column = table.c[name]
        if isinstance(value, str) and isinstance(column.type, String) and len(value) > column.type.length:
            raise InvalidData(f"order {record}: {table.name}.{name} has {len(value)} characters, Sage allows "
                              f"{column.type.length}; shorten it in the translation", record=record)


def _translate(exc: sa_exc.DBAPIError) -> Exception:
    text = str(exc.orig).lower()
    if getattr(exc.orig, "sqlstate", None) == "55P03" or "database is locked" in text:
        return RecordLocked(f"another writer holds the Sage record or database: {exc.orig}")
    if any(marker in text for marker in ("no such table", "no such column", "undefined table", "undefined column",
                                         "invalid object name", "invalid column name", "does not exist")):
        return ConfigError(f"the Sage database lacks a table or column erpsync needs ({exc.orig}); "
                           f"run `erpsync check`")
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) or exc.connection_invalidated:
        return SageUnavailable(f"Sage database unavailable: {type(exc.orig).__name__}: {exc.orig}")
    return exc


def _shipments(rows) -> list[ShipmentRecord]:
    grouped: dict[tuple[int, int], list] = {}
    for row in rows:
        grouped.setdefault((row["ShipKey"], row["SOKey"]), []).append(row)
    records = []
    for (ship_key, so_key), group in grouped.items():
        first = group[0]
        packages: dict[int, list] = {}
        lines: dict[int, PackageLine] = {}
        for row in group:
            lines[row["ShipLineKey"]] = PackageLine(row["OrderItemId"], row["SellerSKU"], row["ItemID"],
                                                    row["QtyShipped"])
            if row["PackageNo"] is not None:
                packages.setdefault(row["PackageNo"], []).append(row)
        records.append(ShipmentRecord(
            ShipKey=ship_key, TranNo=first["ShipTranNo"], TranID=first["ShipTranID"], TranStatus=first["TranStatus"],
            ShipDate=s.utc(first["ShipDate"]), SOKey=so_key, SOTranNo=first["TranNo"], SOTranID=first["TranID"],
            AmazonOrderId=first["AmazonOrderId"], MarketplaceId=first["MarketplaceId"],
            packages=tuple(PackageRecord(no, pkg[0]["TrackingNo"], pkg[0]["ShipMethID"],
                                         tuple(PackageLine(r["OrderItemId"], r["SellerSKU"], r["ItemID"],
                                                           r["QtyPacked"]) for r in pkg))
                           for no, pkg in sorted(packages.items())),
            lines=tuple(lines.values())))
    return records
