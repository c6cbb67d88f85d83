"""Canonical order -> Sage staging rows: pricing (exact to the cent, property-tested), enrichment, custom fields,
status-driven header values, and the permanent errors. Pure: no database, no network."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from erpsync import errors, model
from erpsync.config import Settings
from erpsync.sage500.translate import ItemInfo, resolve_skus, staged_order

OID = "113-1234567-7654321"
ITEMS = {"WIDGET-BLUE": ItemInfo("WIDGET-BLUE", "Widget, blue", "EA"),
         "GADGET-1": ItemInfo("GADGET-1", None, "BOX")}


def money(amount) -> dict:
    return {"amount": str(amount), "currency": "USD"}


def make_line(**overrides) -> dict:
    line = {"order_item_id": "11111111111111", "sku": "WIDGET-BLUE", "title": "Blue widget from Amazon",
            "quantity": "2", "unit_price": money("5.00"), "item_price": money("10.00"),
            "shipping_price": money("4.00"), "shipping_discount": money("1.00"), "promotion_discount": money("0.50"),
            "gift_wrap_price": money("0"), "item_tax": money("0.80"), "shipping_tax": money("0.32"),
            "gift_wrap_tax": money("0"), "promotion_discount_tax": money("0.04"),
            "shipping_discount_tax": money("0.08")}
    line.update({k: money(v) if k.endswith(("_price", "_discount", "_tax", "_fee", "_charges")) else v
                 for k, v in overrides.items()})
    return line


def make_order(lines=None, total="auto", **overrides) -> model.Order:
    data = {"amazon_order_id": OID, "marketplace_id": "ATVPDKIKX0DER", "status": "Unshipped",
            "fulfillment_channel": "MFN", "purchase_date": "2026-03-01T10:00:00Z",
            "last_update_date": "2026-03-01T10:05:00Z", "shipment_service_level_category": "Expedited",
            "ship_to": {"name": "Jane Doe", "line1": "123 Main St", "city": "Austin", "state_or_region": "Texas",
                        "postal_code": "78701", "country_code": "US"},
            "lines": lines if lines is not None else [make_line()]}
    data.update(overrides)
    order = model.parse(model.Order, data, record=OID)
    if total == "auto":
        total = order.lines_total.amount if order.lines else None
    return order.model_copy(update={"order_total": None if total is None else model.Money(**money(total))})


def stage(order, settings=None, items=ITEMS, **kw):
    return staged_order(order, settings or Settings(), items, **kw)


def test_header_and_line_of_a_plain_merchant_order():
    staged = stage(make_order())
    assert (staged.AmazonOrderId, staged.MarketplaceId, staged.FulfillmentChannel) == (OID, "ATVPDKIKX0DER", "MFN")
    assert (staged.CustID, staged.CustPONo, staged.CurrID) == ("AMAZON-US", "1234567-7654321", "USD")
    assert (staged.DfltWarehouseID, staged.DfltShipMethID, staged.Status, staged.Hold) == ("MAIN", "UPS 2DAY", "Open", 0)
    assert staged.TranCmnt == f"Amazon {OID}"
    assert staged.TranDate == staged.PurchaseDate == make_order().purchase_date
    assert (staged.DfltShipToAddrName, staged.DfltShipToAddrLine1, staged.DfltShipToCity, staged.DfltShipToStateID,
            staged.DfltShipToCountryID, staged.DfltShipToPostalCode) == (
        "Jane Doe", "123 Main St", "Austin", "TX", "USA", "78701")
    (line,) = staged.lines
    assert (line.SOLineNo, line.ItemID, line.Description, line.QtyOrd, line.UnitMeasID) == (
        1, "WIDGET-BLUE", "Widget, blue", Decimal("2"), "EA")
    assert (line.UnitPrice, line.ExtAmt, line.FreightAmt, line.TradeDiscAmt, line.STaxAmt) == (
        Decimal("5.00000"), Decimal("10.00"), Decimal("3.00"), Decimal("0.50"), Decimal("1.00"))
    assert (line.UserFld1, line.OrderItemId, line.SellerSKU, line.WarehouseID, line.ShipMethID) == (
        "11111111111111", "11111111111111", "WIDGET-BLUE", "MAIN", "UPS 2DAY")
    assert (staged.FreightAmt, staged.STaxAmt, staged.TradeDiscAmt) == (Decimal("3.00"), Decimal("1.00"),
                                                                         Decimal("0.50"))
    assert staged.tran_amt == Decimal("13.50") == make_order().order_total.amount
    assert staged.notes == ()


def test_sums_over_several_lines_and_sage_description_falls_back_to_the_amazon_title():
    lines = [make_line(), make_line(order_item_id="22222222222222", sku="gadget-1", title="G" * 60, quantity="1",
                                    item_price="19.99", gift_wrap_price="2.50", gift_wrap_tax="0.20")]
    staged = stage(make_order(lines=lines))
    first, second = staged.lines
    assert second.SOLineNo == 2 and second.ItemID == "GADGET-1" and second.UnitMeasID == "BOX"
    assert second.Description == "G" * 40  # no Sage ShortDesc: the Amazon title, cut to 40
    assert second.FreightAmt == Decimal("5.50") and "gift wrap 2.50 in freight" in second.ExtCmnt
    assert staged.FreightAmt == first.FreightAmt + second.FreightAmt
    assert staged.STaxAmt == Decimal("2.20") and staged.tran_amt == make_order(lines=lines).order_total.amount


def test_unit_price_keeps_five_decimals_and_ext_amt_the_exact_amount():
    (line,) = stage(make_order(lines=[make_line(quantity="3", item_price="10.00")])).lines
    assert line.UnitPrice == Decimal("3.33333") and line.ExtAmt == Decimal("10.00") and line.QtyOrd == 3


def test_line_is_split_when_sage_could_not_rebuild_the_amount_from_its_unit_price():
    order = make_order(lines=[make_line(quantity="300", item_price="100.00")])
    first, second = stage(order).lines
    assert (first.QtyOrd, first.UnitPrice, first.ExtAmt) == (Decimal("200"), Decimal("0.33"), Decimal("66.00"))
    assert (second.QtyOrd, second.UnitPrice, second.ExtAmt) == (Decimal("100"), Decimal("0.34"), Decimal("34.00"))
    assert second.OrderItemId == first.OrderItemId and second.SOLineNo == 2
    assert second.FreightAmt == second.STaxAmt == second.TradeDiscAmt == 0  # charged once, on the first part
    assert "split in two prices" in first.ExtCmnt
    assert stage(order).tran_amt == order.order_total.amount


def test_cod_fee_and_other_charges_go_to_freight():
    order = make_order(lines=[make_line(cod_fee="3.00", cod_fee_discount="1.00", other_charges="0.75")])
    (line,) = stage(order).lines
    assert line.FreightAmt == Decimal("5.75")
    assert "COD fee 3.00 in freight; COD fee discount -1.00 in freight; other charges 0.75 in freight" in line.ExtCmnt
    assert stage(order).tran_amt == order.order_total.amount == Decimal("16.25")


def test_shipping_discount_above_shipping_becomes_a_goods_discount():
    order = make_order(lines=[make_line(shipping_price="4.00", shipping_discount="6.00")])
    (line,) = stage(order).lines
    assert line.FreightAmt == 0 and line.TradeDiscAmt == Decimal("2.50")
    assert stage(order).tran_amt == order.order_total.amount


def test_total_mismatch_explains_each_component():
    order = make_order(total="15.50")  # items add up to 13.50: Amazon charged 2.00 outside the items
    with pytest.raises(errors.TotalMismatch) as info:
        stage(order)
    message = str(info.value)
    assert info.value.record == OID and errors.classify(info.value) == "permanent"
    assert f"order {OID}: the Sage total 13.50 USD does not equal Amazon's order total 15.50 USD" in message
    assert "(Sage − Amazon = -2.00)" in message
    assert ("goods 10.00 + shipping 4.00 − shipping discount 1.00 − promotion discount 0.50 + gift wrap 0 "
            "+ COD fee 0 − COD fee discount 0 + other charges 0 + tax 1.00 = 13.50") in message
    assert "Sage: SalesAmt 10.00 + FreightAmt 3.00 + STaxAmt 1.00 − TradeDiscAmt 0.50 = 13.50" in message
    assert "Amazon's order total is +2.00 against the sum of its own items" in message
    assert "erpsync defect" not in message


def test_a_difference_within_the_tolerance_is_noted_not_raised():
    settings = Settings(orders={"total_tolerance": "0.01"})
    staged = stage(make_order(total="13.51"), settings)
    assert staged.tran_amt == Decimal("13.50")
    assert any("-0.01" in note and "total_tolerance" in note for note in staged.notes)


def test_no_amazon_total_means_nothing_to_compare():
    assert stage(make_order(total=None)).tran_amt == Decimal("13.50")


def test_pending_order_is_held_and_fba_order_is_closed_from_the_fba_warehouse():
    pending = stage(make_order(status="Pending"))
    assert (pending.Hold, pending.HoldReason, pending.Status) == (1, "Amazon: Pending", "Open")
    fba = stage(make_order(status="Shipped", fulfillment_channel="AFN", ship_to=None))
    assert (fba.Status, fba.DfltWarehouseID, fba.DfltShipMethID, fba.Hold) == ("Closed", "FBA", None, 0)
    assert fba.lines[0].WarehouseID == "FBA" and fba.DfltShipToAddrLine1 == ""
    assert any("customer's default ship-to" in note for note in fba.notes)


def test_unshipped_merchant_order_without_ship_to_is_invalid():
    with pytest.raises(errors.InvalidData, match="includedData=RECIPIENT"):
        stage(make_order(ship_to=None))


def test_user_fields_from_config_on_header_and_line():
    settings = Settings(mapping={"user_fields": {"UserFld2": "marketplace_id", "UserFld3": "is_prime",
                                                 "Line.UserFld2": "sku"}})
    staged = stage(make_order(), settings)
    assert (staged.UserFld1, staged.UserFld2, staged.UserFld3) == (None, "ATVPDKIKX0DER", "No")
    assert staged.lines[0].UserFld2 == "WIDGET-BLUE" and staged.lines[0].UserFld1 == "11111111111111"


def test_address_overflow_goes_to_the_tran_comment_when_it_fits_else_to_line_one():
    short = {"name": "N", "line1": "A" * 40, "line2": "B" * 40, "line3": "C" * 40, "city": "D", "district": "E" * 40,
             "state_or_region": "Bavaria", "postal_code": "80331", "country_code": "DE", "company": "F" * 10}
    staged = stage(make_order(ship_to=short))
    assert staged.TranCmnt == f"Amazon {OID}; ship-to: Bavaria"
    long = {**short, "state_or_region": "Freistaat Bayern, Regierungsbezirk Oberbayern"}
    staged = stage(make_order(ship_to=long))
    assert staged.TranCmnt == f"Amazon {OID}"
    assert staged.lines[0].ExtCmnt.startswith("ship-to (continued): Freistaat Bayern, Regierungsbezirk Oberbayern")
    assert any("ExtCmnt" in note for note in staged.notes)
    # the label cannot print it all: written on hold for someone to check, with the reason
    assert (staged.Hold, staged.HoldReason) == (1, "Amazon: review")
    (reason,) = staged.review
    assert reason.startswith("label: the ship-to needs more than 5 address lines")
    assert "Bayern" not in reason  # reasons are kept in the audit table: no address text in them


def test_overflow_hold_follows_quality_checks_and_hold_reason():
    short = {"name": "N", "line1": "A" * 40, "line2": "B" * 40, "line3": "C" * 40, "city": "D", "district": "E" * 40,
             "state_or_region": "Bavaria", "postal_code": "80331", "country_code": "DE", "company": "F" * 10}
    settings = Settings(quality={"checks": ["price"], "hold_reason": "CHECK LABEL"})
    staged = stage(make_order(ship_to=short), settings)
    assert (staged.Hold, staged.HoldReason, staged.review) == (0, None, ())
    assert any(note.startswith("label: the ship-to needs more than 5") for note in staged.notes)
    staged = stage(make_order(ship_to=short), Settings(quality={"hold_reason": "CHECK LABEL"}))
    assert (staged.Hold, staged.HoldReason) == (1, "CHECK LABEL")


def test_review_reasons_hold_the_order_and_pending_alone_keeps_amazons_hold_reason():
    staged = stage(make_order(), review=["price: SKU WIDGET-BLUE ..."])
    assert (staged.Hold, staged.HoldReason, staged.review) == (1, "Amazon: review", ("price: SKU WIDGET-BLUE ...",))
    pending = stage(make_order(status="Pending"))
    assert (pending.Hold, pending.HoldReason, pending.review) == (1, "Amazon: Pending", ())
    both = stage(make_order(status="Pending"), review=["quantity: ..."])
    assert (both.Hold, both.HoldReason) == (1, "Amazon: review")  # a person releases it, not Amazon's payment
    fba = stage(make_order(status="Shipped", fulfillment_channel="AFN"), review=["price: ..."])
    assert (fba.Status, fba.Hold, fba.review) == ("Closed", 0, ())
    assert "price: ... (not held: Amazon has shipped this FBA order)" in fba.notes


def test_unknown_sku_and_unreadable_item_are_permanent():
    with pytest.raises(errors.UnknownSku, match="closest items: WIDGET-BLUE"):
        stage(make_order(lines=[make_line(sku="WIDGET-BLU")]))
    with pytest.raises(errors.UnknownSku, match="could not be read"):
        stage(make_order(), items={}, known_item_ids=["WIDGET-BLUE"])


def test_unknown_marketplace_and_empty_order_are_permanent():
    with pytest.raises(errors.Permanent, match=r"\[mapping\] customers"):
        stage(make_order(marketplace_id="A1VC38T7YXB528"))
    with pytest.raises(errors.InvalidData, match="no order items"):
        stage(make_order(lines=[], total=None))


def test_resolve_skus_tells_the_flow_which_items_to_read():
    order = make_order(lines=[make_line(sku="AMZ-WIDGET-BLUE")])
    rules = Settings(mapping={"sku_rules": [{"pattern": "^AMZ-", "replace": ""}]}).mapping
    assert resolve_skus(order, rules, ITEMS) == {"AMZ-WIDGET-BLUE": ("WIDGET-BLUE", "rule 1")}


# --- property: the Sage total equals Amazon's to the cent for any valid line components --------------------------

CENTS = st.integers(min_value=0, max_value=500_000).map(lambda c: Decimal(c).scaleb(-2))
SMALL = st.integers(min_value=0, max_value=5_000).map(lambda c: Decimal(c).scaleb(-2))


@st.composite
def amazon_lines(draw):
    count = draw(st.integers(min_value=1, max_value=4))
    lines = []
    for index in range(count):
        item_price = draw(CENTS)
        lines.append(make_line(
            order_item_id=f"{index + 1:014d}", quantity=str(draw(st.integers(min_value=1, max_value=5000))),
            item_price=item_price, shipping_price=draw(SMALL), shipping_discount=draw(SMALL),
            promotion_discount=draw(st.integers(0, int(item_price * 100)).map(lambda c: Decimal(c).scaleb(-2))),
            gift_wrap_price=draw(SMALL), item_tax=draw(SMALL), shipping_tax=draw(SMALL), gift_wrap_tax=draw(SMALL),
            promotion_discount_tax=draw(SMALL), shipping_discount_tax=draw(SMALL),
            **draw(st.fixed_dictionaries({}, optional={"cod_fee": SMALL, "cod_fee_discount": SMALL,
                                                       "other_charges": SMALL}))))
    return lines


@hsettings(max_examples=300, deadline=None)
@given(lines=amazon_lines())
def test_property_sage_total_equals_amazon_total_and_every_line_is_exact(lines):
    order = make_order(lines=lines)
    staged = stage(order)
    assert staged.tran_amt == order.order_total.amount
    quantities, amounts = defaultdict(Decimal), defaultdict(Decimal)
    for line in staged.lines:
        assert line.UnitPrice == line.UnitPrice.quantize(Decimal("0.00001"))
        assert (line.UnitPrice * line.QtyOrd).quantize(Decimal("0.001")) == line.ExtAmt  # Sage can rebuild it
        assert line.FreightAmt >= 0
        quantities[line.OrderItemId] += line.QtyOrd
        amounts[line.OrderItemId] += line.ExtAmt
    for source in order.lines:
        assert quantities[source.order_item_id] == source.quantity
        assert amounts[source.order_item_id] == source.item_price.amount


def test_an_item_for_more_units_than_orders_max_line_quantity_is_refused_naming_it():
    settings = Settings()
    assert settings.orders.max_line_quantity == 10_000
    at_limit = make_order([make_line(quantity="10000", unit_price="1.00", item_price="10000.00")])
    assert stage(at_limit, settings).lines[0].QtyOrd == 10_000
    huge = make_order([make_line(quantity="1000000000", unit_price="1.00", item_price="1000000000.00")])
    with pytest.raises(errors.InvalidData) as refused:
        stage(huge, settings)
    message = str(refused.value)
    assert f"order {OID}: order item 11111111111111 (SKU 'WIDGET-BLUE') is for 1000000000 units" in message
    assert "[orders] max_line_quantity = 10000" in message and refused.value.record == OID
    lowered = Settings(orders={"max_line_quantity": 5})
    with pytest.raises(errors.InvalidData, match="more than \\[orders\\] max_line_quantity = 5"):
        stage(make_order([make_line(quantity="6", unit_price="1.00", item_price="6.00")]), lowered)
