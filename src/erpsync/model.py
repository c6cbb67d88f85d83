"""Canonical data model: channel-agnostic records that every flow speaks.

Money and quantities are ``Decimal``; time is timezone-aware UTC. This module imports nothing of ours.
Use :func:`parse` to build a record from untrusted data: its error names the record and each bad field.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

ZERO = Decimal("0")
CENT = Decimal("0.01")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (naive datetimes are ambiguous)")
    return value.astimezone(timezone.utc)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        # floats lose cents; accept them only through their shortest repr, never binary expansion
        return Decimal(repr(value))
    return value


class Record(BaseModel):
    """Base of every canonical record: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class InvalidRecord(ValueError):
    """A record failed validation. ``record`` names it; ``problems`` lists (field, message)."""

    def __init__(self, kind: str, record: str, problems: list[tuple[str, str]]):
        self.kind, self.record, self.problems = kind, record, problems
        detail = "; ".join(f"{field}: {message}" for field, message in problems)
        super().__init__(f"{kind} {record!r} is invalid: {detail}")


R = TypeVar("R", bound=BaseModel)


def parse(cls: type[R], data: Any, *, record: str) -> R:
    """Validate ``data`` as ``cls``; on failure raise :class:`InvalidRecord` naming ``record`` and the fields."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = [(".".join(str(p) for p in err["loc"]) or "(record)", err["msg"]) for err in exc.errors()]
        raise InvalidRecord(cls.__name__, record, problems) from None


class Money(Record):
    amount: Decimal
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")

    _coerce = field_validator("amount", mode="before")(_no_float)

    @classmethod
    def zero(cls, currency: str) -> "Money":
        return cls(amount=ZERO, currency=currency)

    def _same(self, other: "Money") -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __neg__(self) -> "Money":
        return Money(amount=-self.amount, currency=self.currency)

    def __mul__(self, factor: Decimal | int) -> "Money":
        return Money(amount=self.amount * Decimal(factor), currency=self.currency)

    def rounded(self) -> "Money":
        return Money(amount=self.amount.quantize(CENT), currency=self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


class OrderStatus(str, enum.Enum):
    """Amazon's order lifecycle, channel-neutral names."""

    PENDING_AVAILABILITY = "PendingAvailability"
    PENDING = "Pending"
    UNSHIPPED = "Unshipped"
    PARTIALLY_SHIPPED = "PartiallyShipped"
    SHIPPED = "Shipped"
    INVOICE_UNCONFIRMED = "InvoiceUnconfirmed"
    CANCELED = "Canceled"
    UNFULFILLABLE = "Unfulfillable"


class FulfillmentChannel(str, enum.Enum):
    MERCHANT = "MFN"  # seller-fulfilled: ships from a Sage warehouse
    AMAZON = "AFN"  # fulfilled by Amazon (FBA)


class AddressType(str, enum.Enum):
    RESIDENTIAL = "Residential"
    COMMERCIAL = "Commercial"


class Address(Record):
    name: str | None = None
    company: str | None = None
    line1: str = ""
    line2: str = ""
    line3: str = ""
    city: str | None = None
    district: str | None = None
    state_or_region: str | None = None
    postal_code: str | None = None
    country_code: str = Field(min_length=2, max_length=2)
    phone: str | None = None
    address_type: AddressType | None = None


class Customer(Record):
    """The buyer as Amazon shows it (an anonymised relay e-mail, a name, a business name)."""

    name: str | None = None
    email: str | None = None
    company: str | None = None
    purchase_order_number: str | None = None


class OrderLine(Record):
    """One order item. Every price is the line total for ``quantity`` units, as Amazon charges it;
    discounts are positive amounts that reduce what the buyer pays."""

    order_item_id: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    asin: str | None = None
    title: str | None = None
    quantity: Decimal = Field(gt=0)
    quantity_shipped: Decimal = ZERO
    unit_price: Money
    item_price: Money
    shipping_price: Money
    shipping_discount: Money
    promotion_discount: Money
    gift_wrap_price: Money
    item_tax: Money
    shipping_tax: Money
    gift_wrap_tax: Money
    promotion_discount_tax: Money
    shipping_discount_tax: Money
    promotion_ids: tuple[str, ...] = ()
    is_gift: bool = False
    # charges some marketplaces add (None: Amazon did not report one); they count in ``total``
    cod_fee: Money | None = None
    cod_fee_discount: Money | None = None
    other_charges: Money | None = None  # Amazon's "OTHER" proceeds category
    points_granted: Money | None = None  # Amazon Points given to the buyer (JP): seller-funded, not in ``total``

    _coerce = field_validator("quantity", "quantity_shipped", mode="before")(_no_float)

    @model_validator(mode="after")
    def _one_currency(self) -> "OrderLine":
        moneys = [v for v in self.__dict__.values() if isinstance(v, Money)]
        if len({m.currency for m in moneys}) > 1:
            raise ValueError(f"order item {self.order_item_id} mixes currencies")
        return self

    @property
    def currency(self) -> str:
        return self.item_price.currency

    @property
    def tax_total(self) -> Money:
        return (
            self.item_tax + self.shipping_tax + self.gift_wrap_tax
            - self.promotion_discount_tax - self.shipping_discount_tax
        )

    @property
    def total(self) -> Money:
        """What the buyer pays for this line: goods + shipping + gift wrap − discounts + taxes."""
        total = (
            self.item_price + self.shipping_price + self.gift_wrap_price
            - self.shipping_discount - self.promotion_discount + self.tax_total
        )
        for charge in (self.cod_fee, self.other_charges):
            total = total if charge is None else total + charge
        return total if self.cod_fee_discount is None else total - self.cod_fee_discount

    @property
    def quantity_open(self) -> Decimal:
        return self.quantity - self.quantity_shipped


class Order(Record):
    amazon_order_id: str = Field(pattern=r"^\d{3}-\d{7}-\d{7}$")
    seller_order_id: str | None = None
    marketplace_id: str = Field(min_length=1)
    status: OrderStatus
    fulfillment_channel: FulfillmentChannel
    purchase_date: UtcDatetime
    last_update_date: UtcDatetime
    ship_service_level: str | None = None
    shipment_service_level_category: str | None = None
    earliest_ship_date: UtcDatetime | None = None
    latest_ship_date: UtcDatetime | None = None
    order_total: Money | None = None  # Amazon's total, when it gave one: the Sage total must match it
    is_business_order: bool = False
    is_prime: bool = False
    is_premium: bool = False
    is_replacement: bool = False
    buyer: Customer | None = None
    ship_to: Address | None = None
    lines: tuple[OrderLine, ...] = ()
    payments: tuple[Money, ...] = ()  # payment executions (card, COD, Pix …) when Amazon lists them

    @model_validator(mode="after")
    def _consistent(self) -> "Order":
        ids = [line.order_item_id for line in self.lines]
        if len(ids) != len(set(ids)):
            raise ValueError(f"order {self.amazon_order_id} repeats an order item id")
        currencies = {line.currency for line in self.lines}
        if self.order_total is not None:
            currencies.add(self.order_total.currency)
        if len(currencies) > 1:
            raise ValueError(f"order {self.amazon_order_id} mixes currencies {sorted(currencies)}")
        return self

    @property
    def currency(self) -> str | None:
        if self.order_total is not None:
            return self.order_total.currency
        return self.lines[0].currency if self.lines else None

    @property
    def lines_total(self) -> Money | None:
        if not self.lines:
            return None
        total = Money.zero(self.lines[0].currency)
        for line in self.lines:
            total = total + line.total
        return total


class PackageItem(Record):
    order_item_id: str = Field(min_length=1)
    quantity: Decimal = Field(gt=0)

    _coerce = field_validator("quantity", mode="before")(_no_float)


class Package(Record):
    package_reference_id: str = Field(pattern=r"^[1-9]\d*$")
    tracking_number: str = Field(min_length=1)
    carrier_code: str = Field(min_length=1)
    carrier_name: str | None = None
    shipping_method: str | None = None
    items: tuple[PackageItem, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _other_named(self) -> "Package":
        if self.carrier_code == "Other" and not self.carrier_name:
            raise ValueError("carrier_name is required when carrier_code is 'Other'")
        return self


class Shipment(Record):
    """A committed warehouse shipment of one Amazon order, with one or more packages."""

    amazon_order_id: str
    marketplace_id: str
    shipment_id: str  # the ERP's shipment number
    ship_date: UtcDatetime
    packages: tuple[Package, ...] = Field(min_length=1)


class StockLevel(Record):
    sku: str = Field(min_length=1)
    item_id: str | None = None
    warehouse_id: str | None = None
    quantity: Decimal = Field(ge=0)
    as_of: UtcDatetime

    _coerce = field_validator("quantity", mode="before")(_no_float)


class PriceUpdate(Record):
    sku: str = Field(min_length=1)
    marketplace_id: str
    price: Money

    @field_validator("price")
    @classmethod
    def _positive(cls, value: Money) -> Money:
        if value.amount <= 0:
            raise ValueError("price must be greater than zero")
        return value


class SettlementLine(Record):
    transaction_type: str
    amount_type: str
    amount_description: str
    amount: Decimal
    order_id: str | None = None
    merchant_order_id: str | None = None
    adjustment_id: str | None = None
    shipment_id: str | None = None
    marketplace_name: str | None = None
    fulfillment_id: str | None = None
    posted_date: date | None = None
    order_item_code: str | None = None
    merchant_order_item_id: str | None = None
    merchant_adjustment_item_id: str | None = None
    sku: str | None = None
    quantity_purchased: Decimal | None = None
    promotion_id: str | None = None

    _coerce = field_validator("amount", "quantity_purchased", mode="before")(_no_float)


class SettlementReport(Record):
    settlement_id: str = Field(min_length=1)
    start_date: UtcDatetime
    end_date: UtcDatetime
    deposit_date: UtcDatetime | None = None
    total_amount: Money
    lines: tuple[SettlementLine, ...] = ()

    @property
    def lines_sum(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


class JournalLine(Record):
    account: str = Field(min_length=1)  # the Sage GLAcctNo
    amount: Decimal  # signed: debit positive, credit negative
    description: str = ""

    _coerce = field_validator("amount", mode="before")(_no_float)


class JournalEntry(Record):
    reference: str = Field(min_length=1)  # e.g. the settlement id; posted once per reference
    date: UtcDatetime
    currency: str = Field(min_length=3, max_length=3)
    memo: str = ""
    lines: tuple[JournalLine, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _balanced(self) -> "JournalEntry":
        total = sum((line.amount for line in self.lines), ZERO)
        if total != 0:
            raise ValueError(f"journal {self.reference} is not balanced: debits − credits = {total}")
        return self


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
