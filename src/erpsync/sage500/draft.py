"""The contract between the order flow and the Sage gateway: a sales order ready to stage.

Field names are the Sage staging column names (``StgSalesOrder`` / ``StgSOLine``) so the gateway writes them
unchanged; the Amazon keys travel alongside for the extension tables ``tsoSalesOrderExt_AMZ`` / ``tsoSOLineExt_AMZ``.
Built by ``sage500/translate.py`` (pure), written by ``sage500/gateway.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class StagedLine:
    SOLineNo: int
    ItemID: str
    Description: str
    QtyOrd: Decimal
    UnitMeasID: str
    UnitPrice: Decimal  # Amazon's price, imposed: staged with ExtAmt (both read by Sage), checked after the import
    ExtAmt: Decimal
    WarehouseID: str
    ShipMethID: str | None = None
    TradeDiscAmt: Decimal = Decimal("0")
    FreightAmt: Decimal = Decimal("0")
    STaxAmt: Decimal = Decimal("0")
    ExtCmnt: str = ""
    UserFld1: str | None = None  # Amazon OrderItemId (14 digits) by default
    UserFld2: str | None = None
    # extension row tsoSOLineExt_AMZ
    OrderItemId: str = ""
    SellerSKU: str = ""


@dataclass(frozen=True)
class StagedOrder:
    # extension row tsoSalesOrderExt_AMZ (AmazonOrderId is the idempotency key)
    AmazonOrderId: str
    MarketplaceId: str
    FulfillmentChannel: str
    PurchaseDate: datetime
    # StgSalesOrder
    TranDate: datetime
    CustID: str
    CustPONo: str
    CurrID: str
    DfltWarehouseID: str
    DfltShipMethID: str | None
    FreightAmt: Decimal
    STaxAmt: Decimal
    TradeDiscAmt: Decimal
    TranCmnt: str
    DfltShipToAddrName: str
    DfltShipToAddrLine1: str
    DfltShipToAddrLine2: str = ""
    DfltShipToAddrLine3: str = ""
    DfltShipToAddrLine4: str = ""
    DfltShipToAddrLine5: str = ""
    DfltShipToCity: str = ""
    DfltShipToStateID: str = ""
    DfltShipToCountryID: str = ""
    DfltShipToPostalCode: str = ""
    Hold: int = 0
    HoldReason: str | None = None
    Status: str = "Open"  # "Open" or "Closed" (an FBA order written as already shipped)
    UserFld1: str | None = None
    UserFld2: str | None = None
    UserFld3: str | None = None
    UserFld4: str | None = None
    lines: tuple[StagedLine, ...] = field(default_factory=tuple)
    # what the translator wants a person to know (a value cut, a default used); not a Sage column
    notes: tuple[str, ...] = ()
    # why the order is written on hold for a person to check (data quality, a label that does not fit); the Sage
    # HoldReason (20 characters) only says "[quality] hold_reason"; not a Sage column
    review: tuple[str, ...] = ()

    @property
    def sales_amt(self) -> Decimal:
        return sum((line.ExtAmt for line in self.lines), Decimal("0"))

    @property
    def tran_amt(self) -> Decimal:
        """The Sage order total: lines + freight + sales tax − trade discount."""
        return self.sales_amt + self.FreightAmt + self.STaxAmt - self.TradeDiscAmt


@dataclass(frozen=True)
class WrittenOrder:
    """What the gateway reports after ``create_sales_order``: the Sage keys, and whether it already existed."""

    AmazonOrderId: str
    SOKey: int
    TranNo: str
    TranID: str
    created: bool  # False: the order was already in Sage (idempotent replay)
