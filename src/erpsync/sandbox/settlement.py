"""V2 settlement flat files (``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2``), generated from what the sandbox saw.

Pure: shipped orders, refunds and period charges in, a :class:`Settlement` (amount rows whose sum is the deposit)
and its tab-separated rendering out. Layout as observed in real files (spapi-notes §7.1): a header row with the 23
documented columns (+ ``promotion-id``), a summary row (settlement id, dates, deposit date, total, currency), then
one row per amount component. :data:`US_FORMAT` writes ``1234.56`` and ``2024-01-31``; :data:`EU_FORMAT` writes
``1234,56`` and ``31.01.2024``; :data:`CHANGED_FORMAT` is the EU format plus an extra column and a different
column order (the "settlement format change" fault), which a parser must survive by reading columns by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0")

COLUMNS: tuple[str, ...] = (
    "settlement-id", "settlement-start-date", "settlement-end-date", "deposit-date", "total-amount", "currency",
    "transaction-type", "order-id", "merchant-order-id", "adjustment-id", "shipment-id", "marketplace-name",
    "amount-type", "amount-description", "amount", "fulfillment-id", "posted-date", "posted-date-time",
    "order-item-code", "merchant-order-item-id", "merchant-adjustment-item-id", "sku", "quantity-purchased",
)
PROMOTION_ID = "promotion-id"


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- inputs --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemSale:
    """One shipped order item. Amounts are totals for ``quantity`` units, positive, in the settlement currency."""

    order_item_code: str
    sku: str
    quantity: int
    principal: Decimal
    shipping: Decimal = ZERO
    tax: Decimal = ZERO
    shipping_tax: Decimal = ZERO
    gift_wrap: Decimal = ZERO
    gift_wrap_tax: Decimal = ZERO
    promotion_principal: Decimal = ZERO  # the discount, positive
    promotion_shipping: Decimal = ZERO
    promotion_id: str = ""
    merchant_order_item_id: str = ""


@dataclass(frozen=True)
class ShippedOrder:
    order_id: str
    posted: datetime
    fulfillment: str  # "AFN" | "MFN"
    items: tuple[ItemSale, ...]
    shipment_id: str = ""
    merchant_order_id: str = ""
    marketplace_name: str = "Amazon.com"


@dataclass(frozen=True)
class ItemRefund:
    """A refunded order item: positive amounts given back to the buyer."""

    order_item_code: str
    sku: str
    quantity: int
    principal: Decimal
    shipping: Decimal = ZERO
    tax: Decimal = ZERO
    shipping_tax: Decimal = ZERO
    promotion_principal: Decimal = ZERO  # the part of the original discount clawed back, positive
    merchant_adjustment_item_id: str = ""


@dataclass(frozen=True)
class Refund:
    order_id: str
    adjustment_id: str
    posted: datetime
    fulfillment: str
    items: tuple[ItemRefund, ...]
    merchant_order_id: str = ""
    marketplace_name: str = "Amazon.com"


@dataclass(frozen=True)
class Reimbursement:
    """FBA pays the seller for units it damaged or lost."""

    sku: str
    quantity: int
    amount: Decimal  # positive
    reason: str = "WAREHOUSE_DAMAGE"  # WAREHOUSE_DAMAGE | WAREHOUSE_LOST | CustomerReturn ...
    adjustment_id: str = ""


@dataclass(frozen=True)
class InboundShipment:
    """An FBA inbound shipment whose transportation Amazon charges: the shipment id goes in ``order-id``."""

    shipment_id: str  # e.g. FBA15ABCD1234
    fee: Decimal  # positive; charged as a negative amount


@dataclass(frozen=True)
class PeriodCharges:
    """Seller-level charges of one settlement period (positive numbers; the sign is applied here)."""

    advertising: Decimal = ZERO
    subscription: Decimal = ZERO
    storage: Decimal = ZERO
    current_reserve: Decimal = ZERO  # held back from this deposit
    previous_reserve: Decimal = ZERO  # released from the previous settlement's reserve
    reimbursements: tuple[Reimbursement, ...] = ()
    inbound_shipments: tuple[InboundShipment, ...] = ()


@dataclass(frozen=True)
class FeeSchedule:
    """Amazon's selling fees, simplified: a referral fee (commission) with a per-item minimum, an FBA fee per unit,
    chargebacks of buyer-paid shipping and gift wrap on AFN orders, and a capped refund administration fee."""

    commission_rate: Decimal = Decimal("0.15")
    commission_minimum: Decimal = Decimal("0.30")
    fba_fee_per_unit: Decimal = Decimal("3.22")
    refund_admin_rate: Decimal = Decimal("0.20")
    refund_admin_cap: Decimal = Decimal("5.00")
    marketplace_facilitator: bool = True  # Amazon collects and remits the sales tax (US)

    def commission(self, item: ItemSale) -> Decimal:
        base = item.principal + item.shipping + item.gift_wrap - item.promotion_principal - item.promotion_shipping
        return max(cents(base * self.commission_rate), self.commission_minimum)


# --- rows ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One amount component of a transaction (one line of the file after the summary)."""

    transaction_type: str
    amount_type: str
    amount_description: str
    amount: Decimal
    posted: datetime
    order_id: str = ""
    merchant_order_id: str = ""
    adjustment_id: str = ""
    shipment_id: str = ""
    marketplace_name: str = ""
    fulfillment_id: str = ""
    order_item_code: str = ""
    merchant_order_item_id: str = ""
    merchant_adjustment_item_id: str = ""
    sku: str = ""
    quantity_purchased: int | None = None
    promotion_id: str = ""


@dataclass(frozen=True)
class Settlement:
    settlement_id: str
    start: datetime
    end: datetime
    deposit_date: datetime
    currency: str
    rows: tuple[Row, ...] = field(default=())

    @property
    def total(self) -> Decimal:
        return sum((row.amount for row in self.rows), ZERO)


def order_rows(order: ShippedOrder, fees: FeeSchedule) -> list[Row]:
    """The rows of one shipped order: item price, promotions, withheld tax, fees."""
    rows: list[Row] = []
    common = dict(order_id=order.order_id, merchant_order_id=order.merchant_order_id, shipment_id=order.shipment_id,
                  marketplace_name=order.marketplace_name, fulfillment_id=order.fulfillment, posted=order.posted)
    afn = order.fulfillment == "AFN"
    for item in order.items:
        line = dict(common, order_item_code=item.order_item_code, merchant_order_item_id=item.merchant_order_item_id,
                    sku=item.sku, quantity_purchased=item.quantity)

        def add(amount_type: str, description: str, amount: Decimal, *, promotion_id: str = "") -> None:
            if amount:
                rows.append(Row("Order", amount_type, description, cents(amount), promotion_id=promotion_id, **line))

        add("ItemPrice", "Principal", item.principal)
        add("ItemPrice", "Shipping", item.shipping)
        add("ItemPrice", "Tax", item.tax)
        add("ItemPrice", "ShippingTax", item.shipping_tax)
        add("ItemPrice", "GiftWrap", item.gift_wrap)
        add("ItemPrice", "GiftWrapTax", item.gift_wrap_tax)
        add("Promotion", "Principal", -item.promotion_principal, promotion_id=item.promotion_id)
        add("Promotion", "Shipping", -item.promotion_shipping, promotion_id=item.promotion_id)
        if fees.marketplace_facilitator:
            add("ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", -item.tax)
            add("ItemWithheldTax", "MarketplaceFacilitatorTax-Shipping", -item.shipping_tax)
            add("ItemWithheldTax", "MarketplaceFacilitatorTax-Other", -item.gift_wrap_tax)
        add("ItemFees", "Commission", -fees.commission(item))
        if afn:
            add("ItemFees", "FBAPerUnitFulfillmentFee", -fees.fba_fee_per_unit * item.quantity)
            add("ItemFees", "ShippingChargeback", -item.shipping)
            add("ItemFees", "GiftwrapChargeback", -item.gift_wrap)
    return rows


def refund_rows(refund: Refund, original: ShippedOrder | None, fees: FeeSchedule) -> list[Row]:
    """The rows of one refund. The commission is given back in proportion to the refunded principal, less the
    refund administration fee (``RefundCommission``)."""
    rows: list[Row] = []
    common = dict(order_id=refund.order_id, merchant_order_id=refund.merchant_order_id,
                  adjustment_id=refund.adjustment_id, marketplace_name=refund.marketplace_name,
                  fulfillment_id=refund.fulfillment, posted=refund.posted)
    sold = {item.order_item_code: item for item in (original.items if original else ())}
    for item in refund.items:
        line = dict(common, order_item_code=item.order_item_code,
                    merchant_adjustment_item_id=item.merchant_adjustment_item_id, sku=item.sku,
                    quantity_purchased=item.quantity)

        def add(amount_type: str, description: str, amount: Decimal) -> None:
            if amount:
                rows.append(Row("Refund", amount_type, description, cents(amount), **line))

        add("ItemPrice", "Principal", -item.principal)
        add("ItemPrice", "Shipping", -item.shipping)
        add("ItemPrice", "Tax", -item.tax)
        add("ItemPrice", "ShippingTax", -item.shipping_tax)
        add("Promotion", "Principal", item.promotion_principal)
        if fees.marketplace_facilitator:
            add("ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", item.tax)
            add("ItemWithheldTax", "MarketplaceFacilitatorTax-Shipping", item.shipping_tax)
        sale = sold.get(item.order_item_code)
        if sale is not None and sale.principal:
            share = min(item.principal / sale.principal, Decimal(1))
            commission = cents(fees.commission(sale) * share)
        else:
            refunded = ItemSale(item.order_item_code, item.sku, item.quantity, item.principal, item.shipping,
                                promotion_principal=item.promotion_principal)
            commission = fees.commission(refunded)
        add("ItemFees", "Commission", commission)
        add("ItemFees", "RefundCommission", -min(cents(commission * fees.refund_admin_rate), fees.refund_admin_cap))
    return rows


def period_rows(charges: PeriodCharges, posted: datetime, marketplace_name: str) -> list[Row]:
    rows: list[Row] = []

    def add(transaction_type: str, amount_type: str, description: str, amount: Decimal, **extra) -> None:
        if amount:
            rows.append(Row(transaction_type, amount_type, description, cents(amount), posted=posted,
                            marketplace_name=extra.pop("marketplace_name", marketplace_name), **extra))

    add("ServiceFee", "Cost of Advertising", "TransactionTotalAmount", -charges.advertising)
    add("ServiceFee", "Subscription", "Subscription Fee", -charges.subscription)
    add("other-transaction", "other-transaction", "Storage Fee", -charges.storage)
    for shipment in charges.inbound_shipments:
        add("other-transaction", "other-transaction", "FBAInboundTransportationFee", -shipment.fee,
            order_id=shipment.shipment_id, shipment_id=shipment.shipment_id, fulfillment_id="AFN")
    for reimbursement in charges.reimbursements:
        add("other-transaction", "FBA Inventory Reimbursement", reimbursement.reason, reimbursement.amount,
            adjustment_id=reimbursement.adjustment_id, sku=reimbursement.sku,
            quantity_purchased=reimbursement.quantity, fulfillment_id="AFN")
    add("other-transaction", "other-transaction", "Previous Reserve Amount Balance", charges.previous_reserve,
        marketplace_name="")
    add("other-transaction", "other-transaction", "Current Reserve Amount", -charges.current_reserve,
        marketplace_name="")
    return rows


# The (transaction-type, amount-type, amount-description) triples this generator can write: the settlement
# mapping in the product must know each of them.
KINDS: frozenset[tuple[str, str, str]] = frozenset(
    {("Order", "ItemPrice", d) for d in ("Principal", "Shipping", "Tax", "ShippingTax", "GiftWrap", "GiftWrapTax")}
    | {("Order", "Promotion", d) for d in ("Principal", "Shipping")}
    | {("Order", "ItemWithheldTax", f"MarketplaceFacilitatorTax-{d}") for d in ("Principal", "Shipping", "Other")}
    | {("Order", "ItemFees", d) for d in ("Commission", "FBAPerUnitFulfillmentFee", "ShippingChargeback",
                                          "GiftwrapChargeback")}
    | {("Refund", "ItemPrice", d) for d in ("Principal", "Shipping", "Tax", "ShippingTax")}
    | {("Refund", "Promotion", "Principal")}
    | {("Refund", "ItemWithheldTax", f"MarketplaceFacilitatorTax-{d}") for d in ("Principal", "Shipping")}
    | {("Refund", "ItemFees", d) for d in ("Commission", "RefundCommission")}
    | {("ServiceFee", "Cost of Advertising", "TransactionTotalAmount"),
       ("ServiceFee", "Subscription", "Subscription Fee")}
    | {("other-transaction", "other-transaction", d) for d in (
        "Storage Fee", "FBAInboundTransportationFee", "Previous Reserve Amount Balance", "Current Reserve Amount")}
    | {("other-transaction", "FBA Inventory Reimbursement", d) for d in (
        "WAREHOUSE_DAMAGE", "WAREHOUSE_LOST", "CustomerReturn")}
)


def build(settlement_id: str, start: datetime, end: datetime, deposit_date: datetime, currency: str,
          orders: Iterable[ShippedOrder] = (), refunds: Iterable[Refund] = (),
          charges: PeriodCharges = PeriodCharges(), fees: FeeSchedule = FeeSchedule(),
          marketplace_name: str = "Amazon.com") -> Settlement:
    """Every amount row of one settlement period, in posting order (period charges at the end date)."""
    orders = list(orders)
    by_id = {order.order_id: order for order in orders}
    rows: list[Row] = []
    for order in orders:
        rows += order_rows(order, fees)
    for refund in refunds:
        rows += refund_rows(refund, by_id.get(refund.order_id), fees)
    rows.sort(key=lambda row: row.posted)
    rows += period_rows(charges, end, marketplace_name)
    return Settlement(settlement_id, start, end, deposit_date, currency, tuple(rows))


# --- rendering -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileFormat:
    decimal_comma: bool = False
    day_first: bool = False
    promotion_id: bool = True  # the 24th column seen in real files
    extra_columns: tuple[str, ...] = ()  # appended after the known columns, left empty
    order: tuple[str, ...] | None = None  # a different column order (names), None for Amazon's

    def columns(self) -> tuple[str, ...]:
        names = COLUMNS + ((PROMOTION_ID,) if self.promotion_id else ()) + self.extra_columns
        if self.order is None:
            return names
        if sorted(self.order) != sorted(names):
            raise ValueError(f"column order must name each of {names} once")
        return self.order

    def number(self, value: Decimal) -> str:
        text = f"{cents(value):f}"
        return text.replace(".", ",") if self.decimal_comma else text

    def date(self, value: datetime) -> str:
        value = value.astimezone(timezone.utc)
        return value.strftime("%d.%m.%Y") if self.day_first else value.strftime("%Y-%m-%d")

    def date_time(self, value: datetime) -> str:
        return f"{self.date(value)} {value.astimezone(timezone.utc):%H:%M:%S} UTC"


US_FORMAT = FileFormat()
EU_FORMAT = FileFormat(decimal_comma=True, day_first=True)


def _swapped(fmt: FileFormat, first: str, second: str) -> FileFormat:
    names = list(fmt.columns())
    i, j = names.index(first), names.index(second)
    names[i], names[j] = names[j], names[i]
    return replace(fmt, order=tuple(names))


CHANGED_FORMAT = _swapped(replace(EU_FORMAT, extra_columns=("transaction-id",)), "amount", "amount-description")


def _row_values(settlement: Settlement, row: Row, fmt: FileFormat) -> dict[str, str]:
    return {
        "settlement-id": settlement.settlement_id,
        "transaction-type": row.transaction_type,
        "order-id": row.order_id,
        "merchant-order-id": row.merchant_order_id,
        "adjustment-id": row.adjustment_id,
        "shipment-id": row.shipment_id,
        "marketplace-name": row.marketplace_name,
        "amount-type": row.amount_type,
        "amount-description": row.amount_description,
        "amount": fmt.number(row.amount),
        "fulfillment-id": row.fulfillment_id,
        "posted-date": fmt.date(row.posted),
        "posted-date-time": fmt.date_time(row.posted),
        "order-item-code": row.order_item_code,
        "merchant-order-item-id": row.merchant_order_item_id,
        "merchant-adjustment-item-id": row.merchant_adjustment_item_id,
        "sku": row.sku,
        "quantity-purchased": "" if row.quantity_purchased is None else str(row.quantity_purchased),
        PROMOTION_ID: row.promotion_id,
    }


def render(settlement: Settlement, fmt: FileFormat = US_FORMAT) -> str:
    """The flat file: tab-separated, ``\\n`` line ends, header + summary + one line per row."""
    columns = fmt.columns()
    summary = {
        "settlement-id": settlement.settlement_id,
        "settlement-start-date": fmt.date_time(settlement.start),
        "settlement-end-date": fmt.date_time(settlement.end),
        "deposit-date": fmt.date_time(settlement.deposit_date),
        "total-amount": fmt.number(settlement.total),
        "currency": settlement.currency,
    }
    lines = ["\t".join(columns), "\t".join(summary.get(c, "") for c in columns)]
    for row in settlement.rows:
        values = _row_values(settlement, row, fmt)
        lines.append("\t".join(_clean(values.get(c, "")) for c in columns))
    return "\n".join(lines) + "\n"


def _clean(value: str) -> str:
    """Tabs and line breaks cannot appear inside a field of a tab-separated file."""
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")
