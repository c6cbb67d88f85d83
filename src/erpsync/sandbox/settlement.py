"""V2 settlement flat files (``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2``) from the world's money ledger.

Pure. The ledger already holds each order's and refund's amounts in settlement terms (``orders.py`` books them
when items ship or are refunded); :func:`period_events` adds the seller-level charges of a period (advertising,
subscription, storage, FBA inbound transportation with the FBA shipment id in ``order-id``, reimbursements,
reserves) and :func:`render` writes the file. Layout as observed in real files (spapi-notes §7.1): a header row
with the 23 documented columns (+ ``promotion-id``), a summary row (settlement id, dates, deposit date, total,
currency), then one row per amount; the amounts add up to ``total-amount`` to the cent.

:data:`US_FORMAT` writes ``1234.56`` and ``2024-01-31``; :data:`EU_FORMAT` writes ``1234,56`` and ``31.01.2024``;
:func:`changed` adds an unexpected column and swaps two (the "settlement format change" fault), which a parser
survives only by reading columns by name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from decimal import Decimal

from erpsync.sandbox.world import MoneyEvent, cents

ZERO = Decimal("0")

COLUMNS: tuple[str, ...] = (
    "settlement-id", "settlement-start-date", "settlement-end-date", "deposit-date", "total-amount", "currency",
    "transaction-type", "order-id", "merchant-order-id", "adjustment-id", "shipment-id", "marketplace-name",
    "amount-type", "amount-description", "amount", "fulfillment-id", "posted-date", "posted-date-time",
    "order-item-code", "merchant-order-item-id", "merchant-adjustment-item-id", "sku", "quantity-purchased",
)
PROMOTION_ID = "promotion-id"
EXTRA_COLUMN = "transaction-id"  # what the format-change fault adds


@dataclass(frozen=True)
class Reimbursement:
    """FBA pays the seller for units it damaged or lost."""

    sku: str
    quantity: int
    amount: Decimal  # positive
    reason: str = "WAREHOUSE_DAMAGE"  # WAREHOUSE_DAMAGE | WAREHOUSE_LOST | CustomerReturn
    adjustment_id: str = ""


@dataclass(frozen=True)
class InboundShipment:
    """An FBA inbound shipment whose transportation Amazon charges."""

    shipment_id: str  # e.g. FBA15ABCD1234; written in order-id and shipment-id
    fee: Decimal  # positive


@dataclass(frozen=True)
class PeriodCharges:
    """Seller-level money of one settlement period, as positive numbers (the sign is applied here)."""

    advertising: Decimal = ZERO
    subscription: Decimal = ZERO
    storage: Decimal = ZERO
    current_reserve: Decimal = ZERO  # held back from this deposit
    previous_reserve: Decimal = ZERO  # the previous settlement's reserve, released
    reimbursements: tuple[Reimbursement, ...] = ()
    inbound_shipments: tuple[InboundShipment, ...] = ()


def period_events(charges: PeriodCharges, posted: datetime, currency: str, marketplace_id: str) -> list[MoneyEvent]:
    events: list[MoneyEvent] = []

    def add(transaction_type: str, amount_type: str, description: str, amount: Decimal, **extra) -> None:
        if amount:
            events.append(MoneyEvent(posted, transaction_type, amount_type, description, cents(amount), currency,
                                     marketplace_id, **extra))

    add("ServiceFee", "Cost of Advertising", "TransactionTotalAmount", -charges.advertising)
    add("ServiceFee", "Subscription", "Subscription Fee", -charges.subscription)
    add("other-transaction", "other-transaction", "Storage Fee", -charges.storage)
    for shipment in charges.inbound_shipments:
        add("other-transaction", "other-transaction", "FBAInboundTransportationFee", -shipment.fee,
            order_id=shipment.shipment_id, shipment_id=shipment.shipment_id, fulfillment_id="AFN")
    for item in charges.reimbursements:
        add("other-transaction", "FBA Inventory Reimbursement", item.reason, item.amount,
            adjustment_id=item.adjustment_id, sku=item.sku, quantity=item.quantity, fulfillment_id="AFN")
    add("other-transaction", "other-transaction", "Previous Reserve Amount Balance", charges.previous_reserve)
    add("other-transaction", "other-transaction", "Current Reserve Amount", -charges.current_reserve)
    return events


# The (transaction-type, amount-type, amount-description) triples :func:`period_events` writes.
PERIOD_KINDS: frozenset[tuple[str, str, str]] = frozenset({
    ("ServiceFee", "Cost of Advertising", "TransactionTotalAmount"),
    ("ServiceFee", "Subscription", "Subscription Fee"),
    ("other-transaction", "other-transaction", "Storage Fee"),
    ("other-transaction", "other-transaction", "FBAInboundTransportationFee"),
    ("other-transaction", "other-transaction", "Previous Reserve Amount Balance"),
    ("other-transaction", "other-transaction", "Current Reserve Amount"),
    *(("other-transaction", "FBA Inventory Reimbursement", r)
      for r in ("WAREHOUSE_DAMAGE", "WAREHOUSE_LOST", "CustomerReturn")),
})


@dataclass(frozen=True)
class Settlement:
    settlement_id: str
    start: datetime
    end: datetime
    deposit_date: datetime
    currency: str
    marketplace_name: str  # e.g. "Amazon.com"
    events: tuple[MoneyEvent, ...] = ()

    @property
    def total(self) -> Decimal:
        return sum((cents(event.amount) for event in self.events), ZERO)


# --- rendering -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileFormat:
    decimal_comma: bool = False
    day_first: bool = False
    promotion_id: bool = True  # the 24th column seen in real files
    extra_columns: tuple[str, ...] = ()  # appended after the known columns, left empty
    order: tuple[str, ...] | None = None  # another column order (every name once), None for Amazon's

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
        return value.astimezone(timezone.utc).strftime("%d.%m.%Y" if self.day_first else "%Y-%m-%d")

    def date_time(self, value: datetime) -> str:
        return f"{self.date(value)} {value.astimezone(timezone.utc):%H:%M:%S} UTC"


US_FORMAT = FileFormat()
EU_FORMAT = FileFormat(decimal_comma=True, day_first=True)


def changed(fmt: FileFormat) -> FileFormat:
    """``fmt`` with an extra column and ``amount`` swapped with ``amount-description``."""
    names = list(replace(fmt, extra_columns=fmt.extra_columns + (EXTRA_COLUMN,), order=None).columns())
    i, j = names.index("amount"), names.index("amount-description")
    names[i], names[j] = names[j], names[i]
    return replace(fmt, extra_columns=fmt.extra_columns + (EXTRA_COLUMN,), order=tuple(names))


def _clean(value: str) -> str:
    """Tabs and line breaks cannot appear inside a field of a tab-separated file."""
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def render(settlement: Settlement, fmt: FileFormat = US_FORMAT) -> str:
    """The flat file: tab-separated, ``\\n`` line ends, header + summary + one line per ledger event."""
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
    for event in settlement.events:
        values = {
            "settlement-id": settlement.settlement_id,
            "transaction-type": event.transaction_type,
            "order-id": event.order_id,
            "adjustment-id": event.adjustment_id,
            "shipment-id": event.shipment_id,
            "marketplace-name": settlement.marketplace_name if event.transaction_type in ("Order", "Refund")
            or event.sku else "",
            "amount-type": event.amount_type,
            "amount-description": event.amount_description,
            "amount": fmt.number(event.amount),
            "fulfillment-id": event.fulfillment_id,
            "posted-date": fmt.date(event.posted),
            "posted-date-time": fmt.date_time(event.posted),
            "order-item-code": event.order_item_code,
            "sku": event.sku,
            "quantity-purchased": "" if event.quantity is None else str(event.quantity),
        }
        lines.append("\t".join(_clean(values.get(c, "")) for c in columns))
    return "\n".join(lines) + "\n"
