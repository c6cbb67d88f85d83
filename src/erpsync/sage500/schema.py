"""Sage 500 tables as SQLAlchemy Core, with the real names and types (reference/sage500.md §11, §2-8).

Only the columns erpsync reads or writes, plus the ones a faithful replica needs. Surrogate keys are plain INT
(never IDENTITY: Sage hands them out through ``spGetNextSurrogateKey``), except the staging tables' ``RowKey``.
Types compile on SQLite, PostgreSQL and SQL Server: money ``Numeric(15,3)``, quantities ``Numeric(16,8)``, unit
prices ``Numeric(15,5)``, flags ``SmallInteger`` 0/1 (staging flags are 'Yes'/'No' text, as in Sage).

Tables whose ``info`` says ``replica_only`` exist only in the replica. The package table (tracking numbers) is
not standard Sage: its name and tracking column come from :class:`erpsync.config.SageTables`
(see :func:`package_table`); whatever the database calls the tracking column, its key here is ``TrackingNo``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cache

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

from erpsync.config import SageTables

metadata = MetaData()


def sage_time(value: datetime | None = None) -> datetime:
    """Sage DATETIME columns hold no time zone: erpsync writes UTC, naive (``None``: now)."""
    value = value or datetime.now(timezone.utc)
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def utc(value: datetime | None) -> datetime | None:
    """A naive UTC value read from Sage, made timezone-aware."""
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def _money(name: str, nullable: bool = True) -> Column:
    return Column(name, Numeric(15, 3), nullable=nullable, server_default="0" if not nullable else None)


def _qty(name: str, nullable: bool = True) -> Column:
    return Column(name, Numeric(16, 8), nullable=nullable, server_default="0" if not nullable else None)


def _flag(name: str, default: int = 0) -> Column:
    return Column(name, SmallInteger, nullable=False, server_default=str(default))


def _key(name: str, target: str | None = None, **kw) -> Column:
    if target:
        return Column(name, Integer, ForeignKey(target), **kw)
    return Column(name, Integer, **kw)


def _pk(name: str) -> Column:
    return Column(name, Integer, primary_key=True, autoincrement=False)


def _audit() -> list[Column]:
    return [
        Column("CreateDate", DateTime), Column("CreateType", SmallInteger), Column("CreateUserID", String(30)),
        Column("UpdateDate", DateTime), Column("UpdateUserID", String(30)),
        Column("UpdateCounter", Integer, nullable=False, server_default="0"),
    ]


def _user_fields(count: int) -> list[Column]:
    return [Column(f"UserFld{n}", String(15)) for n in range(1, count + 1)]


# ===== common / setup ========================================================================================

tsmCompany = Table(
    "tsmCompany", metadata,
    Column("CompanyID", String(3), primary_key=True), Column("CompanyName", String(40)), Column("CurrID", String(3)),
)

tciAddress = Table(
    "tciAddress", metadata,
    _pk("AddrKey"), Column("AddrName", String(40)),
    *[Column(f"AddrLine{n}", String(40), nullable=False, server_default="") for n in range(1, 6)],
    Column("City", String(20)), Column("StateID", String(3)), Column("CountryID", String(3)),
    Column("PostalCode", String(10)), Column("Phone", String(17)), _flag("Residential"),
    Column("UpdateCounter", Integer, nullable=False, server_default="0"),
)

tciContact = Table(
    "tciContact", metadata,
    _pk("CntctKey"), _key("CntctOwnerKey"), Column("EntityType", Integer), Column("Name", String(40)),
    Column("EMailAddr", String(256)), Column("Phone", String(17)),
    Column("UpdateCounter", Integer, nullable=False, server_default="0"),
)

tciShipMethod = Table(
    "tciShipMethod", metadata,
    _pk("ShipMethKey"), Column("CompanyID", String(3), nullable=False), Column("ShipMethID", String(15), nullable=False),
    Column("ShipMethDesc", String(40)),
    UniqueConstraint("CompanyID", "ShipMethID"),
)

tciUnitMeasure = Table(
    "tciUnitMeasure", metadata,
    _pk("UnitMeasKey"), Column("CompanyID", String(3), nullable=False), Column("UnitMeasID", String(6), nullable=False),
    UniqueConstraint("CompanyID", "UnitMeasID"),
)

tciPaymentTerms = Table(
    "tciPaymentTerms", metadata,
    _pk("PmtTermsKey"), Column("CompanyID", String(3), nullable=False), Column("PmtTermsID", String(15), nullable=False),
)

# ===== GL accounts (customers reference them) ================================================================

tglAccount = Table(
    "tglAccount", metadata,
    _pk("GLAcctKey"), Column("CompanyID", String(3), nullable=False), Column("GLAcctNo", String(100), nullable=False),
    Column("Description", String(40)), Column("PostingType", SmallInteger, server_default="1"),
    Column("Status", SmallInteger, server_default="1"),
    UniqueConstraint("CompanyID", "GLAcctNo"),
)

# ===== customers =============================================================================================

tarCustomer = Table(
    "tarCustomer", metadata,
    _pk("CustKey"), Column("CompanyID", String(3), nullable=False), Column("CustID", String(12), nullable=False),
    Column("CustName", String(40)), _flag("Status", 1), _flag("Hold"),
    _key("PrimaryAddrKey", "tciAddress.AddrKey"), _key("DfltBillToAddrKey", "tciAddress.AddrKey"),
    _key("DfltShipToAddrKey", "tciAddress.AddrKey"), _key("PrimaryCntctKey", "tciContact.CntctKey"),
    _key("DfltSalesAcctKey", "tglAccount.GLAcctKey"), _key("CustClassKey"),
    Column("ShipPriority", SmallInteger, server_default="3"), *_user_fields(4), *_audit(),
    UniqueConstraint("CompanyID", "CustID"),
)

tarCustAddr = Table(
    "tarCustAddr", metadata,
    Column("AddrKey", Integer, ForeignKey("tciAddress.AddrKey"), primary_key=True, autoincrement=False),
    _key("CustKey", "tarCustomer.CustKey", nullable=False), Column("CustAddrID", String(15)),
    _key("ShipMethKey", "tciShipMethod.ShipMethKey"), _key("WhseKey"), _key("PmtTermsKey"),
    Column("FreightMethod", SmallInteger), _key("CustPriceGroupKey"), Column("CurrID", String(3)),
    Column("LanguageID", Integer, server_default="1033"),
)

# ===== items / inventory =====================================================================================

timWarehouse = Table(
    "timWarehouse", metadata,
    _pk("WhseKey"), Column("CompanyID", String(3), nullable=False), Column("WhseID", String(6), nullable=False),
    Column("Description", String(40)),
    UniqueConstraint("CompanyID", "WhseID"),
)

timItem = Table(
    "timItem", metadata,
    _pk("ItemKey"), Column("CompanyID", String(3), nullable=False), Column("ItemID", String(30), nullable=False),
    Column("ItemType", SmallInteger, nullable=False), Column("Status", SmallInteger, server_default="1"),
    _key("StockUnitMeasKey", "tciUnitMeasure.UnitMeasKey"),
    UniqueConstraint("CompanyID", "ItemID"),
)

timItemDescription = Table(
    "timItemDescription", metadata,
    _key("ItemKey", "timItem.ItemKey"), Column("LanguageID", Integer, server_default="1033"),
    Column("ShortDesc", String(40)), Column("LongDesc", String(255)),
    PrimaryKeyConstraint("ItemKey", "LanguageID"),
)

timInventory = Table(
    "timInventory", metadata,
    _key("ItemKey", "timItem.ItemKey"), _key("WhseKey", "timWarehouse.WhseKey"),
    _qty("QtyOnSO", False), _qty("QtyOnPO", False), _qty("QtyOnWO", False), _qty("QtyReqForWO", False),
    _qty("MinStockQty", False),
    PrimaryKeyConstraint("ItemKey", "WhseKey"),
)

timWhseBin = Table(
    "timWhseBin", metadata,
    _pk("WhseBinKey"), _key("WhseKey", "timWarehouse.WhseKey", nullable=False), Column("WhseBinID", String(15)),
    Column("Type", SmallInteger, server_default="1"), _flag("ExclFromAvail"),
    UniqueConstraint("WhseKey", "WhseBinID"),
)

timWhseBinInvt = Table(
    "timWhseBinInvt", metadata,
    _key("WhseBinKey", "timWhseBin.WhseBinKey"), _key("ItemKey", "timItem.ItemKey"),
    _qty("QtyOnHand", False), _qty("PendQtyIncrease", False), _qty("PendQtyDecrease", False),
    PrimaryKeyConstraint("WhseBinKey", "ItemKey"),
)

timPriceSheet = Table(
    "timPriceSheet", metadata,
    _key("ItemKey", "timItem.ItemKey"), _key("WhseKey"), Column("CurrID", String(3)), Column("EffectiveDate", DateTime),
    Column("ListPrice", Numeric(15, 5)), Column("Sheet2Price", Numeric(15, 5)), Column("Sheet3Price", Numeric(15, 5)),
    Column("Sheet4Price", Numeric(15, 5)),
    PrimaryKeyConstraint("ItemKey", "WhseKey", "CurrID", "EffectiveDate"),
)

# ===== sales orders ==========================================================================================

tsoSalesOrdLog = Table(
    "tsoSalesOrdLog", metadata,
    _pk("SOKey"), Column("CompanyID", String(3)), Column("TranType", Integer), Column("TranNo", String(10)),
    Column("TranNoRel", String(15)), Column("TranDate", DateTime), _money("TranAmtHC"), Column("TranStatus", SmallInteger),
)

tsoSalesOrder = Table(
    "tsoSalesOrder", metadata,
    _pk("SOKey"), Column("CompanyID", String(3), nullable=False),
    Column("TranType", Integer, nullable=False, server_default="801"), Column("TranNo", String(10), nullable=False),
    Column("TranNoRel", String(15)), Column("TranID", String(13)), Column("TranDate", DateTime, nullable=False),
    _key("CustKey", "tarCustomer.CustKey", nullable=False), Column("CustPONo", String(15)), _flag("Status", 1),
    _flag("Hold"), Column("HoldReason", String(20)), _flag("CrHold"),
    _key("BillToAddrKey", "tciAddress.AddrKey"), _key("DfltShipToAddrKey", "tciAddress.AddrKey"),
    _key("DfltShipMethKey", "tciShipMethod.ShipMethKey"), _key("DfltWhseKey", "timWarehouse.WhseKey"),
    Column("DfltShipDate", DateTime), Column("DfltRequestDate", DateTime), Column("FreightMethod", SmallInteger),
    Column("CurrID", String(3), server_default="USD"), Column("CurrExchRate", Float, server_default="1"),
    *[_money(name, False) for name in ("SalesAmt", "FreightAmt", "STaxAmt", "TradeDiscAmt", "TranAmt", "OpenAmt")],
    Column("NextLineNo", Integer, server_default="1"), Column("TranCmnt", String(50)), *_user_fields(4),
    Column("CloseDate", DateTime), *_audit(),
    UniqueConstraint("CompanyID", "TranType", "TranNo"),
)

tsoSOLine = Table(
    "tsoSOLine", metadata,
    _pk("SOLineKey"), _key("SOKey", "tsoSalesOrder.SOKey", nullable=False),
    Column("SOLineNo", SmallInteger, nullable=False), _key("ItemKey", "timItem.ItemKey"),
    Column("Description", String(40)), Column("ExtCmnt", String(255)), _flag("CmntOnly"),
    _key("UnitMeasKey", "tciUnitMeasure.UnitMeasKey"), Column("UnitPrice", Numeric(15, 5)), _flag("UnitPriceOvrd"),
    _flag("Status", 1), Column("CloseDate", DateTime), *_user_fields(2),
    Column("UpdateCounter", Integer, nullable=False, server_default="0"),
)

tsoSOLineDist = Table(
    "tsoSOLineDist", metadata,
    _pk("SOLineDistKey"), _key("SOLineKey", "tsoSOLine.SOLineKey", nullable=False),
    _key("WhseKey", "timWarehouse.WhseKey"),
    *[_qty(name, False) for name in ("QtyOrd", "OrigOrdered", "QtyOpenToShip", "QtyShip", "QtyInvcd", "QtyOnBO")],
    *[_money(name, False) for name in ("ExtAmt", "AmtInvcd", "FreightAmt", "TradeDiscAmt")],
    _key("ShipMethKey", "tciShipMethod.ShipMethKey"), _key("ShipToAddrKey", "tciAddress.AddrKey"),
    Column("ShipDate", DateTime), Column("RequestDate", DateTime), Column("PromiseDate", DateTime),
    _flag("DeliveryMeth", 1), _flag("Hold"), _flag("Status", 1), _key("GLAcctKey"),
    Column("UpdateCounter", Integer, nullable=False, server_default="0"),
)

# ===== staging (inputs of spSOapiSalesOrdIns) ===============================================================
# Only columns Sage's procedure reads (reference §6): one it ignores (StgSOLine.UnitPriceOvrd) is not staged.


def _stg_common() -> list[Column]:
    return [
        Column("RowKey", Integer, primary_key=True, autoincrement=True),  # IDENTITY in Sage
        Column("SessionKey", Integer, nullable=False, index=True), _flag("ProcessStatus"),
        Column("Action", SmallInteger, server_default="1"), Column("TranNo", String(10)),
    ]


# implicit_returning off: SQL Server refuses OUTPUT without INTO on a table with triggers (a site may add them)
StgSalesOrder = Table(
    "StgSalesOrder", metadata, *_stg_common(),
    Column("TranDate", DateTime), Column("CustID", String(12)), Column("CustPONo", String(15)),
    Column("Status", String(12)), Column("CurrID", String(3)), Column("DfltShipMethID", String(15)),
    Column("DfltWarehouseID", String(6)), Column("DfltShipDate", DateTime),
    _money("FreightAmt"), _money("STaxAmt"), _money("TradeDiscAmt"), Column("TranCmnt", String(50)),
    Column("Hold", String(3)), Column("HoldReason", String(20)),
    Column("DfltShipToAddrName", String(40)), *[Column(f"DfltShipToAddrLine{n}", String(40)) for n in range(1, 6)],
    Column("DfltShipToCity", String(20)), Column("DfltShipToStateID", String(3)),
    Column("DfltShipToCountryID", String(3)), Column("DfltShipToPostalCode", String(10)), *_user_fields(4),
    implicit_returning=False,
)

StgSOLine = Table(
    "StgSOLine", metadata, *_stg_common(),
    Column("SOLineNo", Integer), Column("ItemID", String(30)), Column("Description", String(40)),
    Column("ExtCmnt", String(255)), _qty("QtyOrd"), Column("UnitMeasID", String(6)), Column("UnitPrice", Numeric(15, 5)),
    _money("ExtAmt"), _money("FreightAmt"), _money("TradeDiscAmt"),
    Column("WarehouseID", String(6)), Column("ShipMethID", String(15)), Column("Status", String(25)), *_user_fields(2),
    implicit_returning=False,
)

tdmMigrationLogWrk = Table(
    "tdmMigrationLogWrk", metadata,
    Column("ColumnID", String(35)), Column("ColumnValue", String(100)), Column("Duplicate", SmallInteger),
    Column("Comment", String(255)), Column("EntityID", String(255)), Column("Status", SmallInteger),
    Column("SessionKey", Integer, index=True),
)

# ===== shipments =============================================================================================

tsoPendShipment = Table(
    "tsoPendShipment", metadata,
    _pk("ShipKey"), Column("CompanyID", String(3)), _key("BatchKey"), Column("TranType", Integer, server_default="810"),
    Column("TranNo", String(10)), _key("WhseKey", "timWarehouse.WhseKey"), _money("FreightAmt", False),
    Column("CreateDate", DateTime), Column("CreateUserID", String(30)), Column("UserFld1", String(15)),
)

tsoShipment = Table(
    "tsoShipment", metadata,
    _pk("ShipKey"), Column("CompanyID", String(3)), _key("BatchKey"), Column("TranType", Integer, server_default="810"),
    Column("TranNo", String(10)), Column("TranID", String(13)), Column("TranDate", DateTime), Column("PostDate", DateTime),
    _key("ShipMethKey", "tciShipMethod.ShipMethKey"), _key("WhseKey", "timWarehouse.WhseKey"),
)

tsoShipmentLog = Table(
    "tsoShipmentLog", metadata,
    _pk("ShipKey"), Column("TranStatus", SmallInteger),  # 6 committed, 3 posted (1: pending, replica)
)

tsoShipLine = Table(
    "tsoShipLine", metadata,
    _pk("ShipLineKey"), _key("ShipKey", nullable=False, index=True), _key("SOLineKey", "tsoSOLine.SOLineKey"),
    _key("ItemKey", "timItem.ItemKey"), _key("InvtTranKey"), _key("KitShipLineKey"), _key("PickListKey"),
)

tsoShipLineDist = Table(
    "tsoShipLineDist", metadata,
    _pk("ShipLineDistKey"), _key("ShipLineKey", "tsoShipLine.ShipLineKey", nullable=False),
    _key("SOLineDistKey", "tsoSOLineDist.SOLineDistKey"), _qty("QtyShipped"), _money("FreightAmt", False),
    _key("WhseBinKey", "timWhseBin.WhseBinKey"),  # (R) the bin picked from; Sage keeps it in inventory transactions
)

tsoShipPkgContent_R = Table(  # (R) which shipment lines went into which package
    "tsoShipPkgContent_R", metadata,
    _key("ShipKey"), Column("PackageNo", SmallInteger), _key("ShipLineKey", "tsoShipLine.ShipLineKey"),
    _qty("QtyPacked", False),
    PrimaryKeyConstraint("ShipKey", "PackageNo", "ShipLineKey"),
)

# ===== GL batches ============================================================================================

tciBatchLog = Table(
    "tciBatchLog", metadata,
    _pk("BatchKey"), Column("CompanyID", String(3)), Column("PostCompanyID", String(3)), Column("BatchID", String(20)),
    Column("BatchType", Integer), Column("ModuleNo", SmallInteger), Column("Status", SmallInteger),
    Column("PostStatus", SmallInteger), Column("PostDate", DateTime), Column("BatchCmnt", String(50)),
)

tglPosting = Table(
    "tglPosting", metadata,
    _pk("PostingKey"), _key("BatchKey", "tciBatchLog.BatchKey", nullable=False, index=True),
    _key("GLAcctKey", "tglAccount.GLAcctKey", nullable=False), _key("AcctRefKey"), Column("CurrID", String(3)),
    _money("PostAmt"), _money("PostAmtHC"), Column("PostQty", Numeric(16, 8), server_default="0"),
    Column("PostCmnt", String(50)), Column("ExtCmnt", String(255)), _key("JrnlKey"), Column("JrnlNo", Integer),
    Column("TranDate", DateTime), _key("TranKey"), Column("TranNo", String(10)), Column("TranType", Integer),
    Column("PostDate", DateTime), Column("NatCurrBegBal", SmallInteger, server_default="0"),
    Column("SourceModuleNo", SmallInteger),
)

tglTransaction = Table(
    "tglTransaction", metadata,
    _pk("glTranKey"), _key("BatchKey", nullable=False, index=True), _key("GLAcctKey", nullable=False), _key("AcctRefKey"),
    Column("CreateType", SmallInteger), Column("CreateDate", DateTime), Column("CurrExchRate", Float),
    Column("CurrID", String(3)), Column("ExtCmnt", String(255)), Column("FiscYear", String(5)),
    Column("FiscPer", SmallInteger), _key("JrnlKey"), Column("JrnlNo", Integer), _money("PostAmt"), _money("PostAmtHC"),
    Column("PostCmnt", String(50)), Column("PostDate", DateTime), Column("PostQty", Numeric(16, 8)),
    Column("SourceModuleNo", SmallInteger), Column("TranDate", DateTime), _key("TranKey"), Column("TranNo", String(10)),
    Column("TranType", Integer),
)

tglFiscalPeriod = Table(  # the fiscal calendar: one row per period; Status 1 open, 2 closed [I]
    "tglFiscalPeriod", metadata,
    Column("CompanyID", String(3), primary_key=True), Column("FiscYear", String(5), primary_key=True),
    Column("FiscPer", SmallInteger, primary_key=True, autoincrement=False), Column("StartDate", DateTime),
    Column("EndDate", DateTime), Column("Status", SmallInteger),
)

# ===== Amazon extension tables (the *_ext / partner-suffix convention) ======================================

tsoSalesOrderExt_AMZ = Table(
    "tsoSalesOrderExt_AMZ", metadata,
    Column("SOKey", Integer, ForeignKey("tsoSalesOrder.SOKey"), primary_key=True, autoincrement=False),
    Column("AmazonOrderId", String(19), nullable=False, unique=True), Column("MarketplaceId", String(20)),
    Column("FulfillmentChannel", String(10)), Column("PurchaseDate", DateTime), Column("LastSyncUtc", DateTime),
)

tsoSOLineExt_AMZ = Table(
    "tsoSOLineExt_AMZ", metadata,
    Column("SOLineKey", Integer, ForeignKey("tsoSOLine.SOLineKey"), primary_key=True, autoincrement=False),
    Column("OrderItemId", String(20), nullable=False), Column("SellerSKU", String(40)),
)

# ===== replica only ==========================================================================================

tciSurrogateKey_R = Table(  # (R) the counters behind spGetNextSurrogateKey (the real key table is unknown)
    "tciSurrogateKey_R", metadata,
    Column("TableName", String(40), primary_key=True), Column("NextKey", Integer, nullable=False),
    info={"replica_only": True},
)


@cache
def _package_table(name: str, tracking_column: str) -> Table:
    return Table(
        name, MetaData(),
        Column("ShipKey", Integer, nullable=False), Column("PackageNo", SmallInteger, nullable=False),
        Column(tracking_column, String(50), key="TrackingNo"),
        Column("ShipMethKey", Integer),  # (R) carrier per package; NULL: the shipment's ship method
        Column("Weight", Numeric(15, 3)), Column("PkgCmnt", String(255)),
        PrimaryKeyConstraint("ShipKey", "PackageNo"),
    )


def package_table(tables: SageTables | None = None) -> Table:
    """The per-package tracking table the site uses (default ``tsoShipmentPkg_R.TrackingNo``)."""
    tables = tables or SageTables()
    return _package_table(tables.package_table, tables.package_tracking_column)


def expected_tables(tables: SageTables | None = None, *, replica: bool = True) -> list[Table]:
    """Every table erpsync needs in the target database (replica-only ones when ``replica``)."""
    wanted = [t for t in metadata.sorted_tables if replica or not t.info.get("replica_only")]
    return [*wanted, package_table(tables)]
