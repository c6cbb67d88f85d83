"""Message translator: canonical :class:`model.Order` -> the Sage staging rows (:class:`StagedOrder`). Pure.

Item data (description, unit of measure) comes in as ``items``, filled by the order flow from the gateway, so this
module reads nothing. Every rule is in docs/mapping.md; the one invariant is that the Sage order total equals
Amazon's order total to the cent (within ``[orders] total_tolerance``), or :class:`errors.TotalMismatch`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from erpsync import errors, mapping, model
from erpsync.config import MappingSettings, Settings
from erpsync.sage500 import address as addresses
from erpsync.sage500.draft import StagedLine, StagedOrder

UNIT_PRICE = Decimal("0.00001")  # StgSOLine.UnitPrice decimal(15,5)
AMOUNT = Decimal("0.001")  # Sage money decimal(15,3)
ZERO = Decimal("0")
TRAN_CMNT, EXT_CMNT, DESCRIPTION = 50, 255, 40
HOLD_REASON = "Amazon: Pending"


@dataclass(frozen=True)
class ItemInfo:
    """What Sage knows of an item: timItem.ItemID, timItemDescription.ShortDesc, the sales unit of measure."""

    item_id: str
    description: str | None
    unit_measure_id: str


def resolve_skus(order: model.Order, settings: MappingSettings,
                 known_item_ids: Iterable[str] | None) -> dict[str, mapping.SkuMatch]:
    """SellerSKU -> Sage ItemID for every line (the flow uses it to know which items to read)."""
    mapper = mapping.SkuMapper(settings, known_item_ids)
    return {line.sku: mapper.resolve(line.sku, order_id=order.amazon_order_id) for line in order.lines}


def staged_order(order: model.Order, settings: Settings, items: Mapping[str, ItemInfo], *,
                 known_item_ids: Iterable[str] | None = None, review: Sequence[str] = ()) -> StagedOrder:
    """The StgSalesOrder/StgSOLine rows for ``order``. SKUs resolve against ``known_item_ids`` (default: the keys
    of ``items``), which must then hold every resolved ItemID. ``review``: reasons to hold the order for a person
    to check (the data-quality checks); a ship-to that does not fit the label adds its own (``[quality] checks``
    "label"). With any reason the order is written on hold (``[quality] hold_reason``), the reasons in
    ``StagedOrder.review``. Raises :class:`errors.Permanent` subclasses."""
    oid = order.amazon_order_id
    if not order.lines:
        raise errors.InvalidData(f"order {oid} has no order items; nothing to write to Sage", record=oid)
    limit = settings.orders.max_line_quantity
    for line in order.lines:
        if line.quantity > limit:
            raise errors.InvalidData(
                f"order {oid}: order item {line.order_item_id} (SKU {line.sku!r}) is for {line.quantity} units, more "
                f"than [orders] max_line_quantity = {limit}; nothing was written to Sage. If the order is genuine, "
                f"raise max_line_quantity and replay the dead letter", record=oid)
    rules = settings.mapping
    skus = resolve_skus(order, rules, items.keys() if known_item_ids is None else known_item_ids)
    warehouse = mapping.warehouse_for(order, rules)
    ship_method = mapping.ship_method_for(order, rules)
    notes: list[str] = []

    lines: list[StagedLine] = []
    for line in order.lines:
        item_id = skus[line.sku].item_id
        item = items.get(item_id)
        if item is None:
            raise errors.UnknownSku(f"SKU {line.sku!r} (order {oid}) maps to Sage item {item_id!r}, whose data "
                                    f"could not be read; check the item exists and is active, then replay the "
                                    f"dead letter", record=oid)
        line_fields, line_notes = mapping.user_fields(line, rules)
        notes += line_notes
        lines += _lines(line, item, len(lines) + 1, warehouse, ship_method, line_fields)

    header_fields, header_notes = mapping.user_fields(order, rules)
    notes += header_notes
    ship_to, overflow, label_problems = _ship_to(order, rules, notes)
    labels = [f"label: {problem}" for problem in label_problems]
    if "label" in settings.quality.checks:
        reasons = [*review, *labels]
    else:
        reasons = list(review)
        notes += [f'{label} (not held: [quality] checks has no "label")' for label in labels]
    shipped = order.fulfillment_channel is model.FulfillmentChannel.AMAZON  # written Closed: nothing to hold
    if shipped and reasons:
        notes += [f"{reason} (not held: Amazon has shipped this FBA order)" for reason in reasons]
        reasons = []
    tran_cmnt = f"Amazon {oid}"
    if overflow and len(f"{tran_cmnt}; ship-to: {overflow}") <= TRAN_CMNT:
        tran_cmnt = f"{tran_cmnt}; ship-to: {overflow}"
    elif overflow:
        first = lines[0]
        comment = "; ".join(filter(None, [f"ship-to (continued): {overflow}", first.ExtCmnt]))
        if len(comment) > EXT_CMNT:
            raise errors.InvalidData(f"order {oid}: the ship-to address is too long for Sage even with its comments "
                                     f"({len(overflow)} characters left over); enter the order by hand and discard "
                                     f"the dead letter", record=oid)
        lines[0] = replace(first, ExtCmnt=comment)
        notes.append("ship-to address continues in line 1's comment (ExtCmnt)")

    staged = StagedOrder(
        AmazonOrderId=oid,
        MarketplaceId=order.marketplace_id,
        FulfillmentChannel=order.fulfillment_channel.value,
        PurchaseDate=order.purchase_date,
        TranDate=order.purchase_date,
        CustID=mapping.customer_for(order, rules),
        CustPONo=mapping.short_order_id(oid),
        CurrID=order.currency or "",
        DfltWarehouseID=warehouse,
        DfltShipMethID=ship_method,
        FreightAmt=sum((ln.FreightAmt for ln in lines), ZERO),
        STaxAmt=sum((ln.STaxAmt for ln in lines), ZERO),
        TradeDiscAmt=sum((ln.TradeDiscAmt for ln in lines), ZERO),
        TranCmnt=tran_cmnt,
        **ship_to,
        Hold=1 if reasons or order.status is model.OrderStatus.PENDING else 0,
        HoldReason=(settings.quality.hold_reason if reasons
                    else HOLD_REASON if order.status is model.OrderStatus.PENDING else None),
        Status="Closed" if shipped else "Open",
        **header_fields,
        lines=tuple(lines),
        notes=tuple(notes),
        review=tuple(reasons),
    )
    return _check_total(order, staged, settings.orders.total_tolerance)


def _lines(line: model.OrderLine, item: ItemInfo, number: int, warehouse: str, ship_method: str | None,
           user_fields: dict[str, str]) -> list[StagedLine]:
    """One Sage line per Amazon item, or two when Sage could not rebuild the amount from a 5-decimal unit price."""
    charges = {"gift wrap": line.gift_wrap_price.amount, "COD fee": _amount(line.cod_fee),
               "COD fee discount": -_amount(line.cod_fee_discount), "other charges": _amount(line.other_charges)}
    freight = line.shipping_price.amount - line.shipping_discount.amount + sum(charges.values(), ZERO)
    discount = line.promotion_discount.amount
    if freight < 0:  # discounts larger than shipping and the charges: the rest is a discount on the goods
        discount, freight = discount - freight, ZERO
    comments = [f"{name} {amount} in freight" for name, amount in charges.items() if amount]
    if line.promotion_ids:
        comments.append("promotions: " + ", ".join(line.promotion_ids))
    parts = _priced(line)
    if len(parts) > 1:
        comments.append(f"Amazon charged {line.item_price.amount} for {line.quantity}: split in two prices")
    description = (item.description or line.title or item.item_id)[:DESCRIPTION].rstrip()
    staged = []
    for index, (quantity, unit_price, amount) in enumerate(parts):
        first = index == 0
        staged.append(StagedLine(
            SOLineNo=number + index, ItemID=item.item_id, Description=description, QtyOrd=quantity,
            UnitMeasID=item.unit_measure_id, UnitPrice=unit_price, ExtAmt=amount, WarehouseID=warehouse,
            ShipMethID=ship_method,
            TradeDiscAmt=discount if first else ZERO,
            FreightAmt=freight if first else ZERO,
            STaxAmt=line.tax_total.amount if first else ZERO,
            ExtCmnt="; ".join(comments)[:EXT_CMNT],
            UserFld1=line.order_item_id, UserFld2=user_fields.get("UserFld2"),
            OrderItemId=line.order_item_id, SellerSKU=line.sku,
        ))
    return staged


def _amount(money: model.Money | None) -> Decimal:
    return ZERO if money is None else money.amount


def _priced(line: model.OrderLine) -> list[tuple[Decimal, Decimal, Decimal]]:
    """(QtyOrd, UnitPrice, ExtAmt) parts whose amounts add up to Amazon's item price exactly.

    UnitPrice = item price / quantity at 5 decimals, staged with ExtAmt. When Sage's own quantity × unit
    price at its 3-decimal money precision would not give back Amazon's amount (only possible from 100 units up),
    the line is split: ``n − r`` units at ``p`` and ``r`` units at ``p + 1 smallest unit``."""
    quantity, amount = line.quantity, line.item_price.amount
    unit = (amount / quantity).quantize(UNIT_PRICE, rounding=ROUND_HALF_UP)
    if (unit * quantity).quantize(AMOUNT, rounding=ROUND_HALF_UP) == amount:
        return [(quantity, unit, amount)]
    if quantity != quantity.to_integral_value():
        raise errors.InvalidData(f"order item {line.order_item_id}: fractional quantity {quantity} at "
                                 f"{amount} cannot be priced exactly in Sage", record=line.order_item_id)
    exponent = min(amount.as_tuple().exponent, -2)  # type: ignore[operator]
    step = Decimal(1).scaleb(exponent)
    base, extra = divmod(int(amount.scaleb(-exponent)), int(quantity))
    low, high = step * base, step * (base + 1)
    return [(quantity - extra, low, low * (quantity - extra)), (Decimal(extra), high, high * extra)]


def _ship_to(order: model.Order, rules: MappingSettings,
             notes: list[str]) -> tuple[dict[str, str], str, tuple[str, ...]]:
    """The DfltShipTo* columns, the text five address lines could not hold, and why the label may not print
    whole (:func:`addresses.fit`)."""
    if order.ship_to is None:
        if order.fulfillment_channel is model.FulfillmentChannel.MERCHANT and order.status in (
                model.OrderStatus.UNSHIPPED, model.OrderStatus.PARTIALLY_SHIPPED):
            raise errors.InvalidData(
                f"order {order.amazon_order_id} has no ship-to address, so the warehouse cannot ship it; Amazon "
                f"returns it only when getOrder asks for includedData=RECIPIENT: fix the reader and replay the "
                f"dead letter", record=order.amazon_order_id)
        notes.append("no ship-to address from Amazon: Sage uses the customer's default ship-to")
        return {"DfltShipToAddrName": "", "DfltShipToAddrLine1": ""}, "", ()
    fitted = addresses.fit(order.ship_to, rules.countries)
    columns = {"DfltShipToAddrName": fitted.name}
    columns.update({f"DfltShipToAddrLine{i}": text for i, text in enumerate(fitted.lines, start=1)})
    columns.update(DfltShipToCity=fitted.city, DfltShipToStateID=fitted.state,
                   DfltShipToCountryID=fitted.country, DfltShipToPostalCode=fitted.postal_code)
    notes += [f"ship-to: {note}" for note in fitted.notes]
    return columns, " / ".join(fitted.overflow), fitted.problems


def _check_total(order: model.Order, staged: StagedOrder, tolerance: Decimal) -> StagedOrder:
    if order.order_total is None:
        return staged
    amazon = order.order_total.amount
    difference = staged.tran_amt - amazon
    if abs(difference) > tolerance:
        raise errors.TotalMismatch(_explain(order, staged, amazon, difference), record=order.amazon_order_id)
    if difference:
        return replace(staged, notes=staged.notes + (
            f"Sage total differs from Amazon's by {difference:+} (within [orders] total_tolerance {tolerance})",))
    return staged


def _explain(order: model.Order, staged: StagedOrder, amazon: Decimal, difference: Decimal) -> str:
    def total(attribute: str) -> Decimal:
        return sum((_amount(getattr(line, attribute)) for line in order.lines), ZERO)

    currency = order.currency
    items = order.lines_total.amount if order.lines_total else ZERO
    parts = [
        f"order {order.amazon_order_id}: the Sage total {staged.tran_amt} {currency} does not equal Amazon's order "
        f"total {amazon} {currency} (Sage − Amazon = {difference:+})",
        f"Amazon's items: goods {total('item_price')} + shipping {total('shipping_price')} − shipping discount "
        f"{total('shipping_discount')} − promotion discount {total('promotion_discount')} + gift wrap "
        f"{total('gift_wrap_price')} + COD fee {total('cod_fee')} − COD fee discount {total('cod_fee_discount')} + "
        f"other charges {total('other_charges')} + tax {sum((line.tax_total.amount for line in order.lines), ZERO)} "
        f"= {items}",
        f"Sage: SalesAmt {staged.sales_amt} + FreightAmt {staged.FreightAmt} + STaxAmt {staged.STaxAmt} − "
        f"TradeDiscAmt {staged.TradeDiscAmt} = {staged.tran_amt}",
    ]
    if items != amazon:
        parts.append(f"Amazon's order total is {amazon - items:+} against the sum of its own items: a charge or "
                     f"credit outside the items (e.g. a COD fee or an order-level fee) that has no Sage line")
    if staged.tran_amt != items:
        parts.append(f"the Sage rows differ from Amazon's items by {staged.tran_amt - items:+}: an erpsync defect, "
                     f"please report it")
    parts.append("check the order in Seller Central; if the difference is expected, raise [orders] total_tolerance "
                 "or enter the order by hand, then replay or discard the dead letter")
    return "; ".join(parts)
