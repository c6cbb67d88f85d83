"""Pure mapping rules between Amazon and Sage 500, read from ``[mapping]`` and ``[orders]`` in erpsync.toml.

No I/O: every function takes the settings section it needs and returns a value or raises an error from
:mod:`erpsync.errors` that names the record and the key to fix. docs/mapping.md explains each rule and default.
"""

from __future__ import annotations

import enum
import fnmatch
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, Literal, NamedTuple

from rapidfuzz import fuzz, process, utils

from erpsync import errors, model
from erpsync.config import CarrierSettings, InventorySettings, MappingSettings, OrderSettings, PriceSettings

# --- order status ------------------------------------------------------------------------------------------------


class ActionKind(str, enum.Enum):
    WRITE = "write"  # create the Sage order, Open
    WRITE_ON_HOLD = "write_on_hold"  # create it on hold (Pending, orders.pending = "hold")
    WRITE_SHIPPED = "write_shipped"  # create it Closed from the FBA warehouse (AFN, orders.afn = "shipped")
    RELEASE_HOLD = "release_hold"  # it was written on hold while Pending; Amazon has taken payment since
    VOID = "void"  # cancel the Sage order: Amazon cancelled it and nothing has shipped
    REPORT = "report"  # Amazon and Sage disagree in a way a person must look at; nothing is changed
    SKIP = "skip"  # nothing to do, now or yet


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    reason: str


@dataclass(frozen=True)
class SageOrderState:
    """What the order flow read from Sage about an order already written (tsoSalesOrder + its line dists)."""

    status: Literal["open", "closed", "canceled"]
    quantity_open: Decimal  # Σ QtyOpenToShip
    quantity_shipped: Decimal  # Σ QtyShip
    on_hold: bool = False


S = model.OrderStatus
_SHIPPED = (S.SHIPPED, S.INVOICE_UNCONFIRMED)
_OPEN = (S.UNSHIPPED, S.PARTIALLY_SHIPPED)


def order_action(order: model.Order, settings: OrderSettings, sage: SageOrderState | None = None) -> Action:
    """What to do in Sage for ``order`` given what Sage already holds (``sage`` None: not written yet).

    Raises :class:`errors.ConflictAfterShipment` when Amazon cancelled an order Sage has (partly) shipped."""
    oid, status = order.amazon_order_id, order.status
    afn = order.fulfillment_channel is model.FulfillmentChannel.AMAZON
    if sage is None:
        return _new_order_action(order, settings, afn)
    if sage.status == "canceled":
        if status is S.CANCELED:
            return Action(ActionKind.SKIP, "already void in Sage")
        return Action(ActionKind.REPORT, f"void in Sage but {status.value} on Amazon: Amazon still expects it")
    if status is S.CANCELED:
        if sage.status == "closed" or sage.quantity_shipped > 0:
            raise errors.ConflictAfterShipment(
                f"order {oid} was cancelled on Amazon after Sage shipped {sage.quantity_shipped} unit(s) "
                f"(Sage status {sage.status}); Sage cannot void it: stop the parcel or refund the buyer in "
                f"Seller Central, record a return in Sage, then discard this dead letter", record=oid)
        return Action(ActionKind.VOID, "cancelled on Amazon, nothing shipped in Sage")
    if status in _SHIPPED and not afn and sage.status == "open" and sage.quantity_open > 0:
        return Action(ActionKind.REPORT,
                      f"{status.value} on Amazon while Sage has {sage.quantity_open} unit(s) open to ship")
    if status in _OPEN and sage.on_hold:
        return Action(ActionKind.RELEASE_HOLD, f"{status.value} on Amazon: payment taken, release the Sage hold")
    return Action(ActionKind.SKIP, f"already in Sage ({sage.status}), nothing changed")


def _new_order_action(order: model.Order, settings: OrderSettings, afn: bool) -> Action:
    status = order.status
    if status in (S.CANCELED, S.UNFULFILLABLE, S.PENDING_AVAILABILITY):
        return Action(ActionKind.SKIP, f"{status.value} on Amazon: nothing to write")
    if afn:
        if settings.afn == "skip":
            return Action(ActionKind.SKIP, 'FBA order and orders.afn = "skip"')
        if status in _SHIPPED:
            return Action(ActionKind.WRITE_SHIPPED, "FBA order shipped by Amazon: write it Closed")
        return Action(ActionKind.SKIP, f"FBA order {status.value}: written once Amazon has shipped it")
    if status is S.PENDING:
        if settings.pending == "hold":
            return Action(ActionKind.WRITE_ON_HOLD, 'Pending (payment not taken) and orders.pending = "hold"')
        return Action(ActionKind.SKIP, 'Pending (payment not taken): written once Unshipped (orders.pending = "skip")')
    if status in _SHIPPED:
        return Action(ActionKind.REPORT, f"{status.value} on Amazon but not in Sage: shipped outside Sage; "
                                         f"not written, so the warehouse does not ship it twice")
    return Action(ActionKind.WRITE, f"{status.value} on Amazon: write it Open")


# --- SKU harmonisation -------------------------------------------------------------------------------------------


class SkuMatch(NamedTuple):
    item_id: str
    how: str  # "alias", "identity", "identity (case)", "rule 1", ... or "unchecked"


class SkuMapper:
    """SellerSKU -> Sage ItemID: the alias table, then the SKU itself (exactly, then ignoring case, as SQL Server's
    default collation compares), then ``sku_rules`` applied one after another until a result is a Sage item.

    ``known_item_ids`` None means no Sage item list is at hand (a preview without a database): the alias or else the
    SKU with every rule applied is returned unchecked."""

    def __init__(self, settings: MappingSettings, known_item_ids: Iterable[str] | None):
        self._aliases = settings.sku_aliases
        self._aliases_folded = {k.casefold(): v for k, v in settings.sku_aliases.items()}
        self._rules = [(re.compile(r.pattern), r.replace) for r in settings.sku_rules]
        self._known = None if known_item_ids is None else list(dict.fromkeys(known_item_ids))
        self._exact = set(self._known or ())
        self._folded: dict[str, str | None] = {}
        for item in self._known or ():
            key = item.casefold()
            self._folded[key] = None if key in self._folded else item  # None: ambiguous, two items differ by case

    def resolve(self, sku: str, *, order_id: str) -> SkuMatch:
        alias = self._aliases.get(sku) or self._aliases_folded.get(sku.casefold())
        if alias is not None:
            if self._known is None:
                return SkuMatch(alias, "alias")
            found = self._lookup(alias)
            if found is None:
                raise errors.UnknownSku(
                    f"SKU {sku!r} (order {order_id}) is aliased to {alias!r} under [mapping] sku_aliases, but Sage "
                    f"has no item {alias!r}; {self._closest(alias)}; correct the alias and replay the dead letter",
                    record=order_id)
            return SkuMatch(found[0], "alias")
        candidates = [(sku, "identity")]
        current = sku
        for number, (pattern, replace) in enumerate(self._rules, start=1):
            rewritten = pattern.sub(replace, current)
            if rewritten != current:
                current = rewritten
                candidates.append((current, f"rule {number}"))
        if self._known is None:
            item, how = candidates[-1]
            return SkuMatch(item, f"unchecked ({how})")
        for candidate, how in candidates:
            found = self._lookup(candidate)
            if found is not None:
                return SkuMatch(found[0], how + found[1])
        example = self._best(sku)[0][0] if self._known else "<ItemID>"
        raise errors.UnknownSku(
            f"SKU {sku!r} (order {order_id}) has no Sage item; {self._closest(sku)}; add an alias under "
            f"[mapping] sku_aliases (e.g. \"{sku}\" = \"{example}\") and replay the dead letter", record=order_id)

    def _lookup(self, item_id: str) -> tuple[str, str] | None:
        if item_id in self._exact:
            return item_id, ""
        folded = self._folded.get(item_id.casefold())
        return (folded, " (case)") if folded else None

    def _closest(self, sku: str) -> str:
        if not self._known:
            return "Sage has no items at all"
        return "closest items: " + ", ".join(f"{item} ({round(score)})" for item, score, _ in self._best(sku))

    def _best(self, sku: str) -> list[tuple[str, float, int]]:
        return process.extract(sku, self._known or [], scorer=fuzz.ratio, processor=utils.default_process, limit=3)


# --- ship methods and carriers -----------------------------------------------------------------------------------

# The replica's ship methods. Amazon's carrierCode values are its own list (UPS, USPS, FedEx, DHL, ... or Other).
DEFAULT_CARRIERS: dict[str, CarrierSettings] = {
    "UPS GROUND": CarrierSettings(carrier_code="UPS", shipping_method="UPS Ground"),
    "UPS 2DAY": CarrierSettings(carrier_code="UPS", shipping_method="UPS 2nd Day Air"),
    "FEDEX GROUND": CarrierSettings(carrier_code="FedEx", shipping_method="FedEx Ground"),
    "UPS NEXTDAY": CarrierSettings(carrier_code="UPS", shipping_method="UPS Next Day Air"),
    "FEDEX 2DAY": CarrierSettings(carrier_code="FedEx", shipping_method="FedEx 2Day"),
    "USPS PRIORITY": CarrierSettings(carrier_code="USPS", shipping_method="Priority Mail"),
    "USPS FIRST": CarrierSettings(carrier_code="USPS", shipping_method="First-Class Package"),
    "DHL INTL": CarrierSettings(carrier_code="DHL", shipping_method="DHL Express Worldwide"),
}

# Amazon's ShipmentServiceLevelCategory (v0 names; v2026's fulfillmentServiceLevel matches them ignoring case and
# underscores) -> the replica's ShipMethID: never slower than the buyer paid for. SameDay cannot be bought from a
# parcel carrier, so it goes to the fastest parcel service; a site with a courier maps it to its own ShipMethID.
DEFAULT_SHIP_METHODS: dict[str, str] = {
    "Standard": "UPS GROUND",
    "FreeEconomy": "UPS GROUND",
    "Scheduled": "UPS GROUND",
    "Expedited": "UPS 2DAY",
    "SecondDay": "UPS 2DAY",
    "Priority": "UPS NEXTDAY",
    "NextDay": "UPS NEXTDAY",
    "SameDay": "UPS NEXTDAY",
}


class Carrier(NamedTuple):
    carrier_code: str
    carrier_name: str | None
    shipping_method: str | None


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]", "", text).casefold()


def carrier_for(ship_meth_id: str, settings: MappingSettings) -> Carrier:
    """The Amazon carrier of a Sage ShipMethID (compared ignoring case); unmapped: ``Other`` named by the ID."""
    table = {k.casefold(): v for k, v in {**DEFAULT_CARRIERS, **settings.carriers}.items()}
    found = table.get(ship_meth_id.strip().casefold())
    if found is None:
        return Carrier("Other", ship_meth_id.strip(), None)
    return Carrier(found.carrier_code, found.carrier_name, found.shipping_method)


def ship_method_for(order: model.Order, settings: MappingSettings) -> str | None:
    """The Sage ShipMethID for an order: its ship service level, else its category, looked up ignoring case, spaces
    and underscores. None for FBA orders and when Amazon gave neither (Sage then uses the customer's default).

    An unmapped level is a :class:`errors.Permanent` error: guessing a slower method breaks the promise to the buyer."""
    if order.fulfillment_channel is model.FulfillmentChannel.AMAZON:
        return None
    table = {_key(k): v for k, v in {**DEFAULT_SHIP_METHODS, **settings.ship_methods}.items()}
    levels = [v for v in (order.ship_service_level, order.shipment_service_level_category) if v]
    for level in levels:
        if _key(level) in table:
            return table[_key(level)]
    if not levels:
        return None
    raise errors.Permanent(
        f"order {order.amazon_order_id}: no Sage ship method for Amazon service level "
        f"{' / '.join(repr(v) for v in levels)}; add it under [mapping] ship_methods "
        f"(\"{levels[-1]}\" = \"<ShipMethID>\") and replay the dead letter",
        code="unmapped_ship_method", record=order.amazon_order_id)


# --- enrichment: customer, warehouse -----------------------------------------------------------------------------


def customer_for(order: model.Order, settings: MappingSettings) -> str:
    cust = settings.customers.get(order.marketplace_id)
    if cust is None:
        raise errors.Permanent(
            f"order {order.amazon_order_id}: marketplace {order.marketplace_id} has no Sage customer; add it under "
            f"[mapping] customers (\"{order.marketplace_id}\" = \"<CustID>\") and replay the dead letter",
            code="unmapped_marketplace", record=order.amazon_order_id)
    return cust


def warehouse_for(order: model.Order, settings: MappingSettings) -> str:
    channel = order.fulfillment_channel.value
    whse = settings.warehouses.get(channel)
    if whse is None:
        raise errors.Permanent(
            f"order {order.amazon_order_id}: fulfillment channel {channel} has no Sage warehouse; add it under "
            f"[mapping] warehouses (\"{channel}\" = \"<WhseID>\") and replay the dead letter",
            code="unmapped_warehouse", record=order.amazon_order_id)
    return whse


# --- custom fields -----------------------------------------------------------------------------------------------

USER_FIELD_LENGTH = 15
HEADER_USER_FIELDS = ("UserFld1", "UserFld2", "UserFld3", "UserFld4")
LINE_USER_FIELDS = ("Line.UserFld2",)  # StgSOLine.UserFld1 always carries the OrderItemId


def short_order_id(amazon_order_id: str) -> str:
    """The visible form of an Amazon order id in CustPONo (15 characters): its last 15, '1234567-1234567'."""
    return amazon_order_id[-USER_FIELD_LENGTH:]


def user_fields(record: model.Order | model.OrderLine, settings: MappingSettings) -> tuple[dict[str, str], list[str]]:
    """The Sage UserFld values ``[mapping] user_fields`` asks for from this order (header columns) or order line
    (``Line.`` columns), and a note for each value cut to 15 characters. Bad keys are a :class:`errors.ConfigError`."""
    line = isinstance(record, model.OrderLine)
    values: dict[str, str] = {}
    notes: list[str] = []
    for column, attribute in settings.user_fields.items():
        if column not in HEADER_USER_FIELDS + LINE_USER_FIELDS:
            raise errors.ConfigError(
                f"[mapping] user_fields: {column!r} is not a Sage user field; use one of "
                f"{', '.join(HEADER_USER_FIELDS + LINE_USER_FIELDS)} (Line.UserFld1 holds the OrderItemId)")
        if column.startswith("Line.") != line:
            continue
        text = _render(_attribute(record, attribute, column))
        if text is None:
            continue
        name = column.removeprefix("Line.")
        if len(text) > USER_FIELD_LENGTH:
            notes.append(f"{name} ({attribute}) cut to {USER_FIELD_LENGTH} characters: {text!r}")
            text = text[:USER_FIELD_LENGTH]
        values[name] = text
    return values, notes


def _attribute(record: Any, path: str, column: str) -> Any:
    value = record
    for part in path.split("."):
        if value is None:
            return None
        if not isinstance(value, model.Record) or part not in type(value).model_fields:
            kind = "order line" if isinstance(record, model.OrderLine) else "order"
            fields = ", ".join(type(record).model_fields)
            raise errors.ConfigError(f"[mapping] user_fields {column} = {path!r}: an {kind} has no attribute "
                                     f"{part!r}; choose from {fields} (dotted for nested records)")
        value = getattr(value, part)
    return value


def _render(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.strftime("%y-%m-%d %H:%M")
    if isinstance(value, model.Money):
        return str(value.amount)
    if isinstance(value, (str, int, Decimal)):
        return str(value)
    raise errors.ConfigError(f"[mapping] user_fields: {type(value).__name__} values cannot go in a user field; "
                             f"name a plain attribute (text, number, flag, date) instead")


# --- GL accounts -------------------------------------------------------------------------------------------------


def gl_account(settings: MappingSettings, transaction_type: str, amount_type: str, amount_description: str) -> str:
    """The Sage GLAcctNo for a settlement amount: ``[mapping] gl_accounts`` looked up from the most specific key
    ("Order/ItemPrice/Principal") to the least ("Order/ItemPrice", "Order"). Unmapped: fail closed."""
    keys = [f"{transaction_type}/{amount_type}/{amount_description}", f"{transaction_type}/{amount_type}",
            transaction_type]
    for key in keys:
        if key in settings.gl_accounts:
            return settings.gl_accounts[key]
    raise errors.Permanent(
        f"no GL account for settlement amount {keys[0]!r}; add one of {', '.join(repr(k) for k in keys)} under "
        f"[mapping] gl_accounts and replay the dead letter", code="unmapped_gl_account", record=keys[0])


# --- settlement amounts -> GL accounts ---------------------------------------------------------------------------

# The built-in table for [mapping.settlement] accounts (the replica's chart of accounts): every common
# (transaction-type, amount-type, amount-description) of a V2 settlement file, and only full keys, so an amount
# Amazon adds later is unknown and fails closed instead of landing in a catch-all account.
_TAX = ("Tax", "ShippingTax", "GiftWrapTax")
_WITHHELD = ("MarketplaceFacilitatorTax-Principal", "MarketplaceFacilitatorTax-Shipping",
             "MarketplaceFacilitatorTax-Other", "MarketplaceFacilitatorTax-Giftwrap")
DEFAULT_SETTLEMENT_ACCOUNTS: dict[str, str] = {
    "Order/ItemPrice/Principal": "4010", "Order/ItemPrice/Shipping": "4020", "Order/ItemPrice/GiftWrap": "4030",
    **{f"Order/ItemPrice/{t}": "2310" for t in _TAX},
    "Order/Promotion/Principal": "4050", "Order/Promotion/Shipping": "4050", "Order/Promotion/GiftWrap": "4050",
    # Amazon collects and remits marketplace facilitator tax: the same account as the tax, so it nets to zero
    **{f"Order/ItemWithheldTax/{t}": "2310" for t in _WITHHELD},
    "Order/ItemFees/Commission": "6110", "Order/ItemFees/FBAPerUnitFulfillmentFee": "6120",
    "Order/ItemFees/FBAWeightBasedFee": "6120", "Order/ItemFees/ShippingChargeback": "6160",
    "Order/ItemFees/GiftwrapChargeback": "6160", "Order/ItemFees/SalesTaxCollectionFee": "6160",
    "Order/ItemFees/DigitalServicesFee": "6160", "Order/ItemFees/FixedClosingFee": "6110",
    "Order/ItemFees/VariableClosingFee": "6110",
    # Sage's order flow writes no returns: a refund is nowhere else in the ledger, whichever channel
    "Refund/ItemPrice/Principal": "4060", "Refund/ItemPrice/Shipping": "4060", "Refund/ItemPrice/GiftWrap": "4060",
    **{f"Refund/ItemPrice/{t}": "2310" for t in _TAX},
    "Refund/Promotion/Principal": "4060", "Refund/Promotion/Shipping": "4060", "Refund/Promotion/GiftWrap": "4060",
    **{f"Refund/ItemWithheldTax/{t}": "2310" for t in _WITHHELD},
    "Refund/ItemFees/Commission": "6110", "Refund/ItemFees/RefundCommission": "6110",
    "Refund/ItemFees/ShippingChargeback": "6160", "Refund/ItemFees/DigitalServicesFee": "6160",
    "ServiceFee/Cost of Advertising/TransactionTotalAmount": "6150",
    "ServiceFee/Subscription/Subscription Fee": "6140",
    "other-transaction/other-transaction/Subscription Fee": "6140",
    "other-transaction/other-transaction/Storage Fee": "6130",
    "other-transaction/other-transaction/StorageRenewalBilling": "6130",
    "other-transaction/other-transaction/FBAInboundTransportationFee": "6120",
    "other-transaction/other-transaction/RemovalComplete": "6120",
    "other-transaction/other-transaction/DisposalComplete": "6120",
    "other-transaction/other-transaction/Current Reserve Amount": "1260",
    "other-transaction/other-transaction/Previous Reserve Amount Balance": "1260",
    **{f"other-transaction/FBA Inventory Reimbursement/{r}": "4900"
       for r in ("WAREHOUSE_DAMAGE", "WAREHOUSE_LOST", "CustomerReturn", "REVERSAL_REIMBURSEMENT",
                 "CustomerServiceIssue", "FREE_REPLACEMENT_REFUND_ITEMS", "MISSING_FROM_INBOUND")},
}
# On Order rows these amount types are what Sage's invoice holds (principal, shipping, gift wrap, tax, promotions)
INVOICED_AMOUNT_TYPES = frozenset({"ItemPrice", "Promotion"})
Rule = Literal["clearing", "revenue", "mapped"]


class SettlementAccount(NamedTuple):
    account: str  # Sage GLAcctNo
    rule: Rule  # clearing: the order is in Sage; revenue: it is not; mapped: the amount is not order revenue


class SettlementAccounts:
    """Categorisation: (transaction-type, amount-type, amount-description, fulfillment-id) -> GL account and the
    rule that chose it, from ``[mapping.settlement]`` over :data:`DEFAULT_SETTLEMENT_ACCOUNTS`. ``account``
    returns None for an amount with no account (the caller collects them and fails closed). Answers are cached:
    a settlement has a few dozen kinds of amount and up to millions of rows."""

    def __init__(self, mapping: MappingSettings, orders: OrderSettings):
        self.rules = mapping.settlement
        self.accounts = {**DEFAULT_SETTLEMENT_ACCOUNTS, **self.rules.accounts}
        self.channels = {"MFN": "receivable", "AFN": "receivable" if orders.afn == "shipped" else "revenue",
                         **self.rules.channels}
        self._cache: dict[tuple[str, str, str, str], SettlementAccount | None] = {}

    def account(self, transaction_type: str, amount_type: str, description: str,
                channel: str) -> SettlementAccount | None:
        key = (transaction_type, amount_type, description, channel)
        try:
            return self._cache[key]
        except KeyError:
            found = self._cache[key] = self._find(*key)
            return found

    def _find(self, transaction_type: str, amount_type: str, description: str, channel: str
              ) -> SettlementAccount | None:
        if transaction_type == "Order" and amount_type in INVOICED_AMOUNT_TYPES:
            where = self.channels.get(channel)
            if where is None:
                raise errors.Permanent(
                    f"settlement order amounts with fulfillment-id {channel!r}: erpsync cannot tell whether Sage "
                    f"invoiced these orders; set [mapping.settlement] channels = {{ {channel!r} = \"receivable\" "
                    f"}} (in Sage) or \"revenue\" (not in Sage) and replay the dead letter",
                    code="unmapped_settlement_channel", record=channel or "(empty fulfillment-id)")
            if where == "receivable":
                return SettlementAccount(self.rules.receivable, "clearing")
        for key in (f"{transaction_type}/{amount_type}/{description}", f"{transaction_type}/{amount_type}",
                    transaction_type):
            if key in self.accounts:
                rule: Rule = "revenue" if transaction_type == "Order" and amount_type in INVOICED_AMOUNT_TYPES \
                    else "mapped"
                return SettlementAccount(self.accounts[key], rule)
        return None


# --- stock and prices to Amazon (docs/inventory.md) ----------------------------------------------------------------

# Marketplace -> the currency its offers are priced in (the Sage price sheet's CurrID).
MARKETPLACE_CURRENCY = {
    "ATVPDKIKX0DER": "USD", "A2EUQ1WTGCTBG2": "CAD", "A1AM78C64UM0Y8": "MXN", "A2Q3Y263D00KWC": "BRL",
    "A1F83G8C2ARO7P": "GBP", "A1PA6795UKMFR9": "EUR", "A13V1IB3VIYZZH": "EUR", "APJ6JRA9NG5V4": "EUR",
    "A1RKKUPIHCS9HS": "EUR", "A1805IZSGTT6HS": "EUR", "A1VC38T7YXB528": "JPY", "A39IBJ37TRP1C6": "AUD",
}
KIT_ITEM_TYPES = frozenset({7, 8})  # timItem.ItemType: 7 BTO kit, 8 assembly kit (excluded, docs/inventory.md)
LISTING_FIELDS = ("quantity", "price", "minimum_price", "maximum_price", "attributes")


def currency_for(marketplace_id: str) -> str:
    try:
        return MARKETPLACE_CURRENCY[marketplace_id]
    except KeyError:
        raise errors.ConfigError(f"marketplace {marketplace_id} has no known currency; erpsync prices "
                                 f"{', '.join(sorted(MARKETPLACE_CURRENCY))}") from None


def skus_by_item(settings: MappingSettings) -> dict[str, list[str]]:
    """The SellerSKUs each aliased Sage item is sold under (casefolded ItemID → the ``sku_aliases`` keys naming
    it, sorted); an item absent here is sold under its ItemID."""
    found: dict[str, list[str]] = {}
    for sku, item in sorted(settings.sku_aliases.items()):
        found.setdefault(item.casefold(), []).append(sku)
    return found


def unpublished(item_id: str, item_type: int, active: bool, settings: InventorySettings) -> str | None:
    """Why a Sage item is not published to Amazon, or None: inactive, a kit, not in ``include``, in ``exclude``."""
    if not active:
        return "inactive in Sage"
    if item_type in KIT_ITEM_TYPES:
        return "a kit (excluded: docs/inventory.md)"
    if settings.include and not _patterns(tuple(settings.include)).match(item_id):
        return "not in [inventory] include"
    if settings.exclude and _patterns(tuple(settings.exclude)).match(item_id):
        return "in [inventory] exclude"
    return None


@functools.lru_cache(maxsize=16)
def _patterns(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled expression for shell-style patterns (``TENT-*``), case-sensitive as fnmatchcase."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def safety_stock_for(item_id: str, settings: InventorySettings) -> Decimal:
    return settings.safety_stock_by_sku.get(item_id, settings.safety_stock)


def available_units(net_in_sage: Decimal, unwritten_amazon: Decimal, safety_stock: Decimal) -> int:
    """Units to offer on Amazon: what Sage can ship (bins less open Sage orders) less Amazon orders Sage has not
    written yet less the safety stock, in whole units (a fraction is not offered), never below 0."""
    units = (net_in_sage - unwritten_amazon - safety_stock).to_integral_value(rounding=ROUND_FLOOR)
    return max(int(units), 0)


def listing_price(sheet_price: Decimal, settings: PriceSettings) -> Decimal:
    """The Amazon price of a Sage sheet price: markup, then rounded half-up to ``round_to``, then raised to the
    next price with the given ``ending`` (19.20 with ending 0.99 is 19.99)."""
    price = sheet_price * (1 + settings.markup_percent / 100)
    price = (price / settings.round_to).to_integral_value(rounding=ROUND_HALF_UP) * settings.round_to
    if settings.ending is not None:
        whole = price.to_integral_value(rounding=ROUND_FLOOR)
        price = whole + settings.ending if whole + settings.ending >= price else whole + 1 + settings.ending
    return price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def price_bounds(price: Decimal, settings: PriceSettings) -> tuple[Decimal | None, Decimal | None]:
    """(minimum_seller_allowed_price, maximum_seller_allowed_price) around ``price``, when configured."""
    cent = Decimal("0.01")
    low = None if settings.minimum_percent is None else \
        (price * (1 - settings.minimum_percent / 100)).quantize(cent, rounding=ROUND_HALF_UP)
    high = None if settings.maximum_percent is None else \
        (price * (1 + settings.maximum_percent / 100)).quantize(cent, rounding=ROUND_HALF_UP)
    return low, high


def price_guard(sku: str, new: Decimal, acknowledged: Decimal | None, settings: PriceSettings) -> str | None:
    """Why ``new`` must be held for review instead of sent (a change over ``guard_percent`` from the price Amazon
    last acknowledged: a typo in Sage must not sell a $500 item for $5), or None."""
    if acknowledged is None or acknowledged <= 0:
        return None
    change = (new - acknowledged) / acknowledged * 100
    if abs(change) <= settings.guard_percent:
        return None
    return (f"SKU {sku!r}: the new price {new} is {change:+.0f}% from the price Amazon acknowledged ({acknowledged}), "
            f"more than [prices] guard_percent ({settings.guard_percent}%); held, not sent. Correct the Sage price "
            f"sheet and replay this dead letter, or approve it with `erpsync prices approve {sku}`")


def listing_changes(desired: dict[str, Any], acknowledged: dict[str, Any] | None, in_flight: dict[str, Any] | None,
                    refused: dict[str, Any] | None, *, full: bool = False) -> dict[str, Any]:
    """The fields of ``desired`` to send: those that differ from what Amazon acknowledged, unless the same value is
    already in flight or Amazon refused exactly that value before (its dead letter is open); ``full``: all."""
    if full:
        return dict(desired)
    acknowledged, in_flight, refused = acknowledged or {}, in_flight or {}, refused or {}
    return {name: value for name, value in desired.items()
            if value != acknowledged.get(name) and value != in_flight.get(name) and value != refused.get(name)}
