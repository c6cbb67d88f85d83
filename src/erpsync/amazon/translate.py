"""Message Translator: SP-API JSON ⇄ canonical model. Pure functions: no I/O, no clock, no settings.

Inbound
    :func:`order_from_api`   Orders v2026-01-01 ``Order`` → :class:`model.Order`
    :func:`order_from_v0`    Orders v0 ``Order`` + ``OrderItem[]`` → :class:`model.Order`
    :func:`listing_prices`, :func:`listing_quantity`   Listings Items ``Item`` → ``PriceUpdate[]`` / ``StockLevel``
    :func:`inventory_levels` FBA ``InventorySummary[]`` → ``StockLevel[]``
Outbound
    :func:`listings_messages`, :func:`listings_feed`   canonical stock and prices → ``JSON_LISTINGS_FEED``
    :func:`package_detail`   canonical ``Package`` → ``confirmShipment`` body

Every money amount Amazon sends lands in a canonical field (nothing is dropped silently): an unknown proceeds
category, a currency mix or a line whose parts do not add up to Amazon's own total raises
:class:`errors.InvalidData` naming the order, the item and the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from erpsync import model
from erpsync.errors import InvalidData
from erpsync.model import Money

ZERO = Decimal("0")

# Orders v2026-01-01 vocabulary → canonical
_STATUS = {
    "PENDING_AVAILABILITY": model.OrderStatus.PENDING_AVAILABILITY,
    "PENDING": model.OrderStatus.PENDING,
    "UNSHIPPED": model.OrderStatus.UNSHIPPED,
    "PARTIALLY_SHIPPED": model.OrderStatus.PARTIALLY_SHIPPED,
    "SHIPPED": model.OrderStatus.SHIPPED,
    "CANCELLED": model.OrderStatus.CANCELED,
    "UNFULFILLABLE": model.OrderStatus.UNFULFILLABLE,
}
_FULFILLED_BY = {"MERCHANT": model.FulfillmentChannel.MERCHANT, "AMAZON": model.FulfillmentChannel.AMAZON}
_ADDRESS_TYPE = {"RESIDENTIAL": model.AddressType.RESIDENTIAL, "COMMERCIAL": model.AddressType.COMMERCIAL,
                 "Residential": model.AddressType.RESIDENTIAL, "Commercial": model.AddressType.COMMERCIAL}

# proceeds breakdown type → OrderLine money field
_CHARGES = {"ITEM": "item_price", "SHIPPING": "shipping_price", "GIFT_WRAP": "gift_wrap_price",
            "COD_FEE": "cod_fee", "OTHER": "other_charges"}
# detailed breakdown subtype → (field, is a reduction). Subtypes not listed stay in the default field.
_TAX_DETAIL = {"ITEM": ("item_tax", False), "SHIPPING": ("shipping_tax", False),
               "GIFT_WRAP": ("gift_wrap_tax", False), "DISCOUNT": ("promotion_discount_tax", True)}
_DISCOUNT_DETAIL = {"ITEM": ("promotion_discount", True), "SHIPPING": ("shipping_discount", True),
                    "COD_FEE": ("cod_fee_discount", True)}
_REQUIRED_MONEY = ("item_price", "shipping_price", "shipping_discount", "promotion_discount", "gift_wrap_price",
                   "item_tax", "shipping_tax", "gift_wrap_tax", "promotion_discount_tax", "shipping_discount_tax")
_OPTIONAL_MONEY = ("cod_fee", "cod_fee_discount", "other_charges", "points_granted")


class _Bad(Exception):
    """Internal: a field is missing or unreadable at ``path``; turned into InvalidData naming the order."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")


def _need(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if not isinstance(obj, Mapping):
        raise _Bad(path, f"expected an object, got {type(obj).__name__}")
    value = obj.get(key)
    if value is None or value == "":
        raise _Bad(f"{path}.{key}" if path else key, "is missing")
    return value


def _decimal(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise _Bad(path, f"not a number: {value!r}")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise _Bad(path, f"not a number: {value!r}") from None
    if not number.is_finite():
        raise _Bad(path, f"not a finite number: {value!r}")
    return number


def _money(value: Any, path: str, *, amount: str = "amount", currency: str = "currencyCode") -> Money | None:
    if value is None:
        return None
    code = _need(value, currency, path)
    if not isinstance(code, str) or len(code) != 3 or not code.isalpha() or not code.isupper():
        raise _Bad(f"{path}.{currency}", f"not an ISO 4217 currency code: {code!r}")
    return Money(amount=_decimal(_need(value, amount, path), f"{path}.{amount}"), currency=code)


def _money0(value: Any, path: str) -> Money | None:
    return _money(value, path, amount="Amount", currency="CurrencyCode")


def _time(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise _Bad(path, f"not an ISO 8601 timestamp: {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(path, f"not an ISO 8601 timestamp: {value!r}") from None
    if moment.utcoffset() is None:
        raise _Bad(path, f"timestamp without a timezone: {value!r}")
    return moment.astimezone(timezone.utc)


def _opt_time(value: Any, path: str) -> datetime | None:
    return None if value in (None, "") else _time(value, path)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _flag(value: Any) -> bool:
    """v0 sends some booleans as the strings "true"/"false"."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _quantity(value: Any, path: str) -> Decimal:
    number = _decimal(value, path)
    if number < 0 or number != number.to_integral_value():
        raise _Bad(path, f"not a whole, non-negative quantity: {value!r}")
    return number


class _Amounts:
    """Money fields of one order line being assembled; refuses a second currency."""

    def __init__(self, path: str):
        self.path = path
        self.values: dict[str, Decimal] = {}
        self.currency: str | None = None

    def add(self, field: str, money: Money | None, where: str) -> None:
        if money is None:
            return
        if self.currency is None:
            self.currency = money.currency
        elif money.currency != self.currency:
            raise _Bad(where, f"is in {money.currency} but the item is in {self.currency}")
        self.values[field] = self.values.get(field, ZERO) + money.amount

    def fields(self, fallback_currency: str | None) -> dict[str, Any]:
        currency = self.currency or fallback_currency
        if currency is None:
            raise _Bad(self.path, "carries no amount and no currency (ask for includedData PROCEEDS)")
        out: dict[str, Any] = {name: Money(amount=self.values.get(name, ZERO), currency=currency)
                               for name in _REQUIRED_MONEY}
        out.update({name: Money(amount=self.values[name], currency=currency)
                    for name in _OPTIONAL_MONEY if name in self.values})
        return out


def _invalid(kind: str, record: str, problem: str) -> InvalidData:
    return InvalidData(f"{kind} {record}: {problem}", record=record)


def _unreadable(record: str, exc: Exception) -> InvalidData:
    """A field of another JSON type than Amazon's model gives it (a list for an object, an object for a text …),
    found where the translator reads it rather than by a check of its own (R4's fuzzing found these)."""
    return _invalid("order", record, f"a field has a JSON type Amazon's model does not give it "
                                     f"({type(exc).__name__}); compare the order with the model, nothing was written")


# Canonical amounts that are never below zero, whatever Amazon's signs: prices, charges, taxes (discounts are stored
# as positive reductions by the translator and may arrive with either sign, so they are not among them).
_NEVER_NEGATIVE = ("unit_price", "item_price", "shipping_price", "gift_wrap_price", "cod_fee", "item_tax",
                   "shipping_tax", "gift_wrap_tax")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # NUL, C0 and C1 control characters (tab and newline included)


def _sane(order: model.Order) -> model.Order:
    """Refuse what no real order holds and Sage must never get: a negative price, charge, tax or total, and
    control characters in any text. The error names the order and each field, never the refused text."""
    problems = [f"{where} holds a control character (e.g. NUL)"
                for where, text in _texts(order.model_dump(mode="python")) if _CONTROL.search(text)]
    for index, line in enumerate(order.lines):
        item = f"lines[{index}] (order item {line.order_item_id})"
        problems += [f"{item}.{name} is negative ({getattr(line, name)})" for name in _NEVER_NEGATIVE
                     if getattr(line, name) is not None and getattr(line, name).amount < 0]
        if line.total.amount < 0:
            problems.append(f"{item} totals {line.total}: discounts exceed what the item costs")
    if order.order_total is not None and order.order_total.amount < 0:
        problems.append(f"order_total is negative ({order.order_total})")
    problems += [f"payments[{i}] is negative ({p})" for i, p in enumerate(order.payments) if p.amount < 0]
    if problems:
        raise InvalidData(f"order {order.amazon_order_id} is refused: {'; '.join(problems)}. No Amazon order has "
                          f"this; nothing was written to Sage. Check the order in Seller Central, enter it by hand "
                          f"if it is genuine, and discard the dead letter", record=order.amazon_order_id)
    return order


def _texts(value: Any, path: str = "") -> Iterable[tuple[str, str]]:
    """(path, text) of every string in a dumped record."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _texts(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _texts(item, f"{path}[{index}]")


def _build(cls: type[model.R], data: dict[str, Any], kind: str, record: str) -> model.R:
    try:
        return model.parse(cls, data, record=record)
    except model.InvalidRecord as exc:
        raise InvalidData(str(exc), record=record) from None
    except ValueError as exc:  # a Money arithmetic error surfaced by a validator
        raise _invalid(kind, record, str(exc)) from None


# --- Orders v2026-01-01 ----------------------------------------------------------------------------------------


def order_from_api(order: Mapping[str, Any]) -> model.Order:
    """An Orders v2026-01-01 ``Order`` (searchOrders / getOrder) as a canonical order.

    Prices per unit come from ``product.price.unitPrice``; line amounts from ``proceeds.breakdowns`` (TAX and
    DISCOUNT split by ``detailedBreakdowns``; an undetailed part stays on the item). Discounts become positive
    reductions whatever sign Amazon uses. A line whose parts differ from its ``proceedsTotal`` is refused.
    """
    order_id = str(order.get("orderId") or "(no orderId)") if isinstance(order, Mapping) else "(not an object)"
    try:
        data = _order_2026(order)
    except _Bad as exc:
        raise _invalid("order", order_id, str(exc)) from None
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        raise _unreadable(order_id, exc) from None
    return _sane(_build(model.Order, data, "order", order_id))


def _order_2026(order: Mapping[str, Any]) -> dict[str, Any]:
    order_id = _need(order, "orderId", "")
    channel = _need(order, "salesChannel", "")
    fulfillment = order.get("fulfillment")
    if not isinstance(fulfillment, Mapping):
        raise _Bad("fulfillment", "is missing (ask for includedData FULFILLMENT)")
    status = _need(fulfillment, "fulfillmentStatus", "fulfillment")
    if status not in _STATUS:
        raise _Bad("fulfillment.fulfillmentStatus", f"unknown status {status!r}")
    fulfilled_by = fulfillment.get("fulfilledBy", "MERCHANT")
    if fulfilled_by not in _FULFILLED_BY:
        raise _Bad("fulfillment.fulfilledBy", f"unknown value {fulfilled_by!r}")
    programs = set(order.get("programs") or ())
    aliases = {a.get("aliasType"): a.get("aliasId") for a in order.get("orderAliases") or () if isinstance(a, Mapping)}
    associations = {a.get("associationType") for a in order.get("associatedOrders") or () if isinstance(a, Mapping)}
    proceeds = order.get("proceeds") or {}
    grand_total = _money(proceeds.get("grandTotal"), "proceeds.grandTotal")
    level = fulfillment.get("fulfillmentServiceLevel")
    ship_by = fulfillment.get("shipByWindow") or {}

    items = _need(order, "orderItems", "") if "orderItems" in order else []
    fallback = grand_total.currency if grand_total else _first_currency(items)
    lines = [line for index, item in enumerate(items)
             if (line := _line_2026(item, f"orderItems[{index}]", fallback)) is not None]
    payments = [_money(p.get("paymentAmount"), f"payment.paymentExecutions[{i}].paymentAmount")
                for i, p in enumerate((order.get("payment") or {}).get("paymentExecutions") or ())]
    return {
        "amazon_order_id": order_id,
        "seller_order_id": _text(aliases.get("SELLER_ORDER_ID")),
        "marketplace_id": _need(channel, "marketplaceId", "salesChannel"),
        "status": _STATUS[status],
        "fulfillment_channel": _FULFILLED_BY[fulfilled_by],
        "purchase_date": _time(_need(order, "createdTime", ""), "createdTime"),
        "last_update_date": _time(_need(order, "lastUpdatedTime", ""), "lastUpdatedTime"),
        "ship_service_level": None,  # v2026 reports the service level category only
        "shipment_service_level_category": _camel(level) if isinstance(level, str) else None,
        "earliest_ship_date": _opt_time(ship_by.get("earliestDateTime"), "fulfillment.shipByWindow.earliestDateTime"),
        "latest_ship_date": _opt_time(ship_by.get("latestDateTime"), "fulfillment.shipByWindow.latestDateTime"),
        "order_total": grand_total,
        "is_business_order": "AMAZON_BUSINESS" in programs,
        "is_prime": "PRIME" in programs,
        "is_premium": "PREMIUM" in programs,
        "is_replacement": "REPLACEMENT_ORIGINAL_ID" in associations,
        "buyer": _buyer_2026(order.get("buyer")),
        "ship_to": _address_2026((order.get("recipient") or {}).get("deliveryAddress"), "recipient.deliveryAddress"),
        "lines": lines,
        "payments": [p for p in payments if p is not None],
    }


def _camel(value: str) -> str:
    """``FREE_ECONOMY`` → ``FreeEconomy`` (the v0 spelling the mapping tables use)."""
    return "".join(part.capitalize() for part in value.split("_"))


def _first_currency(items: Iterable[Any]) -> str | None:
    for item in items:
        price = ((item or {}).get("product") or {}).get("price") or {}
        unit = price.get("unitPrice") if isinstance(price, Mapping) else None
        if isinstance(unit, Mapping) and isinstance(unit.get("currencyCode"), str):
            return unit["currencyCode"]
    return None


def _buyer_2026(buyer: Any) -> dict[str, Any] | None:
    if not isinstance(buyer, Mapping):
        return None
    return {"name": _text(buyer.get("buyerName")), "email": _text(buyer.get("buyerEmail")),
            "company": _text(buyer.get("buyerCompanyName")),
            "purchase_order_number": _text(buyer.get("buyerPurchaseOrderNumber"))}


def _address_2026(address: Any, path: str) -> dict[str, Any] | None:
    if not isinstance(address, Mapping):
        return None
    return {
        "name": _text(address.get("name")), "company": _text(address.get("companyName")),
        "line1": address.get("addressLine1") or "", "line2": address.get("addressLine2") or "",
        "line3": address.get("addressLine3") or "", "city": _text(address.get("city")),
        "district": _text(address.get("districtOrCounty")), "state_or_region": _text(address.get("stateOrRegion")),
        "postal_code": _text(address.get("postalCode")), "country_code": _need(address, "countryCode", path),
        "phone": _text(address.get("phone")), "address_type": _ADDRESS_TYPE.get(address.get("addressType")),
    }


def _line_2026(item: Any, path: str, fallback_currency: str | None) -> dict[str, Any] | None:
    item_id = _need(item, "orderItemId", path)
    quantity = _quantity(_need(item, "quantityOrdered", path), f"{path}.quantityOrdered")
    product = item.get("product") or {}
    amounts = _Amounts(path)
    unit = _money((product.get("price") or {}).get("unitPrice"), f"{path}.product.price.unitPrice")
    if unit is not None:
        amounts.add("_unit", unit, f"{path}.product.price.unitPrice")
    proceeds = item.get("proceeds") or {}
    breakdowns = proceeds.get("breakdowns") or ()
    for index, breakdown in enumerate(breakdowns):
        where = f"{path}.proceeds.breakdowns[{index}]"
        kind = _need(breakdown, "type", where)
        subtotal = _money(_need(breakdown, "subtotal", where), f"{where}.subtotal")
        details = breakdown.get("detailedBreakdowns") or ()
        if kind == "TAX":
            _allocate(amounts, subtotal, details, _TAX_DETAIL, ("item_tax", False), where)
        elif kind == "DISCOUNT":
            _allocate(amounts, subtotal, details, _DISCOUNT_DETAIL, ("promotion_discount", True), where)
        elif kind in _CHARGES:
            amounts.add(_CHARGES[kind], subtotal, f"{where}.subtotal")
        else:
            raise _Bad(f"{where}.type", f"unknown proceeds category {kind!r}: erpsync would lose its amount")
    if not breakdowns and unit is not None:  # no PROCEEDS asked for: the goods are still unit price × quantity
        amounts.add("item_price", unit * quantity, f"{path}.product.price.unitPrice")
    points = ((item.get("expense") or {}).get("pointsCost") or {}).get("pointsGranted") or {}
    amounts.add("points_granted", _money(points.get("pointsMonetaryValue"),
                                          f"{path}.expense.pointsCost.pointsGranted.pointsMonetaryValue"),
                f"{path}.expense.pointsCost.pointsGranted.pointsMonetaryValue")
    amounts.values.pop("_unit", None)
    if quantity == 0:
        if any(amounts.values.values()):
            raise _Bad(f"{path}.quantityOrdered", "is 0 but the item carries amounts")
        return None  # a cancelled item: nothing ordered, nothing charged
    money = amounts.fields(fallback_currency)
    unit_price = unit if unit is not None else Money(amount=money["item_price"].amount / quantity,
                                                      currency=money["item_price"].currency)
    fulfillment = item.get("fulfillment") or {}
    packing = fulfillment.get("packing") or {}
    line = {
        "order_item_id": item_id,
        "sku": _need(product, "sellerSku", f"{path}.product"),
        "asin": _text(product.get("asin")),
        "title": _text(product.get("title")),
        "quantity": quantity,
        "quantity_shipped": _quantity(fulfillment.get("quantityFulfilled") or 0, f"{path}.fulfillment.quantityFulfilled"),
        "unit_price": unit_price,
        "promotion_ids": tuple(p["promotionId"] for p in (item.get("promotion") or {}).get("breakdowns") or ()
                               if isinstance(p, Mapping) and _text(p.get("promotionId"))),
        "is_gift": bool(packing.get("giftOption")),
        **money,
    }
    total = _money(proceeds.get("proceedsTotal"), f"{path}.proceeds.proceedsTotal")
    if total is not None and breakdowns:
        try:
            parsed = model.parse(model.OrderLine, line, record=item_id)
        except model.InvalidRecord as exc:
            raise _Bad(path, "; ".join(f"{field}: {message}" for field, message in exc.problems)) from None
        if parsed.total != total:
            raise _Bad(f"{path}.proceeds", f"breakdowns add up to {parsed.total} but proceedsTotal is {total}")
    return line


def _allocate(amounts: _Amounts, subtotal: Money, details: Iterable[Any],
              table: Mapping[str, tuple[str, bool]], default: tuple[str, bool], where: str) -> None:
    """Spread ``subtotal`` over canonical fields by ``detailedBreakdowns``; the rest goes to ``default``.

    Reductions (discounts, tax on discounts) are stored positive; ``effect`` tracks what is left of the
    subtotal's effect on the line total, so the canonical total equals Amazon's whatever sign it uses.
    """
    default_field, default_reduces = default
    effect = -abs(subtotal.amount) if default_reduces else subtotal.amount
    for index, detail in enumerate(details):
        spot = f"{where}.detailedBreakdowns[{index}]"
        value = _money(_need(detail, "value", spot), f"{spot}.value")
        field, reduces = table.get(detail.get("subtype"), default)
        amount = abs(value.amount) if reduces else value.amount
        amounts.add(field, Money(amount=amount, currency=value.currency), spot)
        effect -= -amount if reduces else amount
    rest = -effect if default_reduces else effect
    amounts.add(default_field, Money(amount=rest, currency=subtotal.currency), f"{where}.subtotal")


# --- Orders v0 -------------------------------------------------------------------------------------------------

_V0_ITEM_MONEY = {
    "ItemPrice": "item_price", "ShippingPrice": "shipping_price", "ItemTax": "item_tax",
    "ShippingTax": "shipping_tax", "ShippingDiscount": "shipping_discount",
    "ShippingDiscountTax": "shipping_discount_tax", "PromotionDiscount": "promotion_discount",
    "PromotionDiscountTax": "promotion_discount_tax", "CODFee": "cod_fee", "CODFeeDiscount": "cod_fee_discount",
}


def order_from_v0(order: Mapping[str, Any], items: list[Mapping[str, Any]]) -> model.Order:
    """An Orders v0 ``Order`` with its ``OrderItem`` list (getOrder + getOrderItems) as a canonical order.

    v0 ``ItemPrice`` is the line total (price × quantity); the unit price is derived from it.
    """
    order_id = str(order.get("AmazonOrderId") or "(no AmazonOrderId)") if isinstance(order, Mapping) \
        else "(not an object)"
    try:
        data = _order_v0(order, items)
    except _Bad as exc:
        raise _invalid("order", order_id, str(exc)) from None
    return _sane(_build(model.Order, data, "order", order_id))


def _order_v0(order: Mapping[str, Any], items: list[Mapping[str, Any]]) -> dict[str, Any]:
    status = _need(order, "OrderStatus", "")
    try:
        status = model.OrderStatus(status)
        channel = model.FulfillmentChannel(order.get("FulfillmentChannel") or "MFN")
    except ValueError as exc:
        raise _Bad("OrderStatus/FulfillmentChannel", str(exc)) from None
    total = _money0(order.get("OrderTotal"), "OrderTotal")
    fallback = total.currency if total else None
    buyer = order.get("BuyerInfo")
    address = order.get("ShippingAddress")
    payments = [_money0(p.get("Payment"), f"PaymentExecutionDetail[{i}].Payment")
                for i, p in enumerate(order.get("PaymentExecutionDetail") or ())]
    lines = [line for index, item in enumerate(items)
             if (line := _line_v0(item, f"OrderItems[{index}]", fallback)) is not None]
    return {
        "amazon_order_id": _need(order, "AmazonOrderId", ""),
        "seller_order_id": _text(order.get("SellerOrderId")),
        "marketplace_id": _need(order, "MarketplaceId", ""),
        "status": status,
        "fulfillment_channel": channel,
        "purchase_date": _time(_need(order, "PurchaseDate", ""), "PurchaseDate"),
        "last_update_date": _time(_need(order, "LastUpdateDate", ""), "LastUpdateDate"),
        "ship_service_level": _text(order.get("ShipServiceLevel")),
        "shipment_service_level_category": _text(order.get("ShipmentServiceLevelCategory")),
        "earliest_ship_date": _opt_time(order.get("EarliestShipDate"), "EarliestShipDate"),
        "latest_ship_date": _opt_time(order.get("LatestShipDate"), "LatestShipDate"),
        "order_total": total,
        "is_business_order": _flag(order.get("IsBusinessOrder")),
        "is_prime": _flag(order.get("IsPrime")),
        "is_premium": _flag(order.get("IsPremiumOrder")),
        "is_replacement": _flag(order.get("IsReplacementOrder")),
        "buyer": None if not isinstance(buyer, Mapping) else {
            "name": _text(buyer.get("BuyerName")), "email": _text(buyer.get("BuyerEmail")),
            "company": _text((buyer.get("BuyerTaxInfo") or {}).get("CompanyLegalName")),
            "purchase_order_number": _text(buyer.get("PurchaseOrderNumber"))},
        "ship_to": None if not isinstance(address, Mapping) else {
            "name": _text(address.get("Name")), "company": _text(address.get("CompanyName")),
            "line1": address.get("AddressLine1") or "", "line2": address.get("AddressLine2") or "",
            "line3": address.get("AddressLine3") or "", "city": _text(address.get("City")),
            "district": _text(address.get("County") or address.get("District")),
            "state_or_region": _text(address.get("StateOrRegion")), "postal_code": _text(address.get("PostalCode")),
            "country_code": _need(address, "CountryCode", "ShippingAddress"), "phone": _text(address.get("Phone")),
            "address_type": _ADDRESS_TYPE.get(address.get("AddressType"))},
        "lines": lines,
        "payments": [p for p in payments if p is not None],
    }


def _line_v0(item: Any, path: str, fallback_currency: str | None) -> dict[str, Any] | None:
    quantity = _quantity(_need(item, "QuantityOrdered", path), f"{path}.QuantityOrdered")
    amounts = _Amounts(path)
    for key, field in _V0_ITEM_MONEY.items():
        amounts.add(field, _money0(item.get(key), f"{path}.{key}"), f"{path}.{key}")
    gift = item.get("BuyerInfo") or {}
    amounts.add("gift_wrap_price", _money0(gift.get("GiftWrapPrice"), f"{path}.BuyerInfo.GiftWrapPrice"),
                f"{path}.BuyerInfo.GiftWrapPrice")
    amounts.add("gift_wrap_tax", _money0(gift.get("GiftWrapTax"), f"{path}.BuyerInfo.GiftWrapTax"),
                f"{path}.BuyerInfo.GiftWrapTax")
    points = (item.get("PointsGranted") or {}).get("PointsMonetaryValue")
    amounts.add("points_granted", _money0(points, f"{path}.PointsGranted.PointsMonetaryValue"),
                f"{path}.PointsGranted.PointsMonetaryValue")
    if quantity == 0:
        if any(amounts.values.values()):
            raise _Bad(f"{path}.QuantityOrdered", "is 0 but the item carries amounts")
        return None
    money = amounts.fields(fallback_currency)
    return {
        "order_item_id": _need(item, "OrderItemId", path),
        "sku": _need(item, "SellerSKU", path),
        "asin": _text(item.get("ASIN")),
        "title": _text(item.get("Title")),
        "quantity": quantity,
        "quantity_shipped": _quantity(item.get("QuantityShipped") or 0, f"{path}.QuantityShipped"),
        "unit_price": Money(amount=money["item_price"].amount / quantity, currency=money["item_price"].currency),
        "promotion_ids": tuple(p for p in item.get("PromotionIds") or () if _text(p)),
        "is_gift": _flag(item.get("IsGift")) or bool(gift.get("GiftWrapLevel") or gift.get("GiftMessageText")),
        **money,
    }


# --- Listings Items and FBA inventory --------------------------------------------------------------------------


def listing_prices(item: Mapping[str, Any]) -> list[model.PriceUpdate]:
    """The B2C offers of a Listings Items ``Item`` (getListingsItem with includedData=offers) as prices."""
    sku = str(item.get("sku") or "(no sku)")
    prices = []
    try:
        for index, offer in enumerate(item.get("offers") or ()):
            if offer.get("offerType", "B2C") != "B2C":
                continue
            price = _money(_need(offer, "price", f"offers[{index}]"), f"offers[{index}].price")
            prices.append({"sku": _need(item, "sku", ""), "marketplace_id": _need(offer, "marketplaceId",
                                                                                 f"offers[{index}]"), "price": price})
    except _Bad as exc:
        raise _invalid("listing", sku, str(exc)) from None
    return [_build(model.PriceUpdate, p, "listing", sku) for p in prices]


def listing_quantity(item: Mapping[str, Any], as_of: datetime, channel: str = "DEFAULT") -> model.StockLevel | None:
    """The quantity Amazon shows for ``channel`` (``DEFAULT`` = seller-fulfilled), or None if it shows none."""
    sku = str(item.get("sku") or "(no sku)")
    for entry in item.get("fulfillmentAvailability") or ():
        if entry.get("fulfillmentChannelCode") == channel and entry.get("quantity") is not None:
            return _build(model.StockLevel, {"sku": sku, "quantity": entry["quantity"], "as_of": as_of},
                          "listing", sku)
    return None


def inventory_levels(summaries: Iterable[Mapping[str, Any]], as_of: datetime) -> list[model.StockLevel]:
    """FBA ``InventorySummary`` rows as stock levels: the fulfillable quantity (total when details are off)."""
    levels = []
    for summary in summaries:
        sku = str(summary.get("sellerSku") or "(no sellerSku)")
        details = summary.get("inventoryDetails") or {}
        quantity = details.get("fulfillableQuantity", summary.get("totalQuantity"))
        try:
            moment = _opt_time(summary.get("lastUpdatedTime"), "lastUpdatedTime") or as_of
        except _Bad as exc:
            raise _invalid("inventory summary", sku, str(exc)) from None
        levels.append(_build(model.StockLevel, {"sku": summary.get("sellerSku"), "quantity": quantity,
                                                "as_of": moment}, "inventory summary", sku))
    return levels


# --- outbound: JSON_LISTINGS_FEED and confirmShipment ----------------------------------------------------------


def listings_messages(stock: list[model.StockLevel], prices: list[model.PriceUpdate], *,
                      product_type: str = "PRODUCT", fulfillment_channel_code: str = "DEFAULT",
                      first_message_id: int = 1) -> list[dict[str, Any]]:
    """One ``PATCH`` message per SKU replacing ``fulfillment_availability`` and/or ``purchasable_offer``.

    Quantities are floored to whole units (never offer what is not there); prices stay ``Decimal`` in the
    message (:func:`listings_feed` writes them as exact JSON numbers). Messages are numbered from
    ``first_message_id`` in SKU order, so a processing-report issue maps back to its SKU.
    """
    by_sku: dict[str, list[dict[str, Any]]] = {}
    seen_stock: set[str] = set()
    for level in stock:
        if level.sku in seen_stock:
            raise InvalidData(f"SKU {level.sku!r} has two stock levels in one feed; aggregate them first",
                              record=level.sku)
        seen_stock.add(level.sku)
        units = int(level.quantity.to_integral_value(rounding=ROUND_FLOOR))
        by_sku.setdefault(level.sku, []).append({
            "op": "replace", "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": fulfillment_channel_code, "quantity": units}]})
    offers: dict[str, list[dict[str, Any]]] = {}
    for update in prices:
        entries = offers.setdefault(update.sku, [])
        if any(entry["marketplace_id"] == update.marketplace_id for entry in entries):
            raise InvalidData(f"SKU {update.sku!r} has two prices for marketplace {update.marketplace_id} "
                              f"in one feed; send the latest only", record=update.sku)
        entries.append({"marketplace_id": update.marketplace_id, "currency": update.price.currency,
                        "our_price": [{"schedule": [{"value_with_tax": update.price.amount}]}]})
    for sku, entries in offers.items():
        by_sku.setdefault(sku, []).append({"op": "replace", "path": "/attributes/purchasable_offer", "value": entries})
    return [{"messageId": first_message_id + index, "sku": sku, "operationType": "PATCH",
             "productType": product_type, "patches": by_sku[sku]}
            for index, sku in enumerate(sorted(by_sku))]


def listings_feed(seller_id: str, messages: list[dict[str, Any]], *, issue_locale: str = "en_US") -> dict[str, Any]:
    """The ``JSON_LISTINGS_FEED`` document (header version 2.0) for ``messages``."""
    if not messages:
        raise InvalidData("a JSON_LISTINGS_FEED needs at least one message", record=seller_id)
    return {"header": {"sellerId": seller_id, "version": "2.0", "issueLocale": issue_locale},
            "messages": messages}


def json_number(value: Any) -> Any:
    """``json.dumps(default=json_number)``: a Decimal becomes a JSON number with exactly its digits."""
    if isinstance(value, Decimal):
        number = float(value)
        if Decimal(repr(number)) != value:
            raise InvalidData(f"amount {value} cannot be written exactly as a JSON number")
        return number
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def package_detail(package: model.Package, marketplace_id: str, ship_date: datetime) -> dict[str, Any]:
    """The ``ConfirmShipmentRequest`` body for one package (Orders v0 confirmShipment)."""
    if ship_date.utcoffset() is None:
        raise InvalidData(f"package {package.package_reference_id}: ship date must carry a timezone",
                          record=package.package_reference_id)
    items = []
    for item in package.items:
        if item.quantity != item.quantity.to_integral_value():
            raise InvalidData(f"package {package.package_reference_id}: item {item.order_item_id} quantity "
                              f"{item.quantity} is not a whole number of units", record=item.order_item_id)
        items.append({"orderItemId": item.order_item_id, "quantity": int(item.quantity)})
    detail: dict[str, Any] = {
        "packageReferenceId": package.package_reference_id,
        "carrierCode": package.carrier_code,
        "trackingNumber": package.tracking_number,
        "shipDate": ship_date.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "orderItems": items,
    }
    if package.carrier_name:
        detail["carrierName"] = package.carrier_name
    if package.shipping_method:
        detail["shippingMethod"] = package.shipping_method
    return {"marketplaceId": marketplace_id, "packageDetail": detail}
