"""translate.py against Amazon's own example responses (read from the reference models, never copied) and
against hand-made shapes for the cases the examples do not cover. Every money amount in an example must be
found again in the canonical model: a money field nobody maps makes these tests fail."""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timezone
from decimal import Decimal

import jsonschema
import pytest

from erpsync import model
from erpsync.amazon import translate
from erpsync.errors import InvalidData
from erpsync.model import Money

ORDERS_2026 = "orders_2026-01-01.json"
ORDERS_V0 = "ordersV0.json"
UTC = timezone.utc


def _v2026_orders(examples):
    orders = [body["order"] for _, body in examples(ORDERS_2026, "getOrder")]
    orders += [order for _, body in examples(ORDERS_2026, "searchOrders") for order in body["orders"]]
    return orders


def _category_sum(line: model.OrderLine, kind: str) -> Money:
    """What the canonical line holds for one proceeds category."""
    currency = line.currency
    zero = Money.zero(currency)
    return {
        "ITEM": line.item_price,
        "SHIPPING": line.shipping_price,
        "GIFT_WRAP": line.gift_wrap_price,
        "COD_FEE": line.cod_fee or zero,
        "OTHER": line.other_charges or zero,
        "TAX": line.tax_total,
        "DISCOUNT": -(line.promotion_discount + line.shipping_discount + (line.cod_fee_discount or zero)),
    }[kind]


def _check_v2026_money(raw: dict, order: model.Order, money_leaves) -> int:
    """Assert every money leaf of ``raw`` is held by ``order``; return how many were checked."""
    lines = {line.order_item_id: line for line in order.lines}
    checked = 0
    for path, amount, currency in money_leaves(raw):
        found = Money(amount=amount, currency=currency)
        if path == "proceeds.grandTotal":
            assert order.order_total == found, path
        elif match := re.fullmatch(r"payment\.paymentExecutions\[(\d+)\]\.paymentAmount", path):
            assert order.payments[int(match[1])] == found, path
        elif match := re.fullmatch(r"orderItems\[(\d+)\]\.(.+)", path):
            item = raw["orderItems"][int(match[1])]
            line = lines[item["orderItemId"]]
            rest = match[2]
            if rest == "product.price.unitPrice":
                assert line.unit_price == found, path
            elif rest == "proceeds.proceedsTotal":
                assert line.total == found, path
            elif rest == "expense.pointsCost.pointsGranted.pointsMonetaryValue":
                assert line.points_granted == found, path
            elif sub := re.fullmatch(r"proceeds\.breakdowns\[(\d+)\]\.subtotal", rest):
                kind = item["proceeds"]["breakdowns"][int(sub[1])]["type"]
                expected = sum((Decimal(b["subtotal"]["amount"]) for b in item["proceeds"]["breakdowns"]
                                if b["type"] == kind), Decimal(0))
                held = _category_sum(line, kind).amount
                assert held == (-abs(expected) if kind == "DISCOUNT" else expected), (path, held, expected)
            else:
                pytest.fail(f"money field {path} of order {order.amazon_order_id} is not mapped")
        else:
            pytest.fail(f"money field {path} of order {order.amazon_order_id} is not mapped")
        checked += 1
    return checked


def test_every_v2026_example_keeps_every_money_field(examples, money_leaves):
    raws = _v2026_orders(examples)
    assert len(raws) >= 6  # 3 getOrder + 3 searchOrders examples in the snapshot
    for raw in raws:
        order = translate.order_from_api(raw)
        assert _check_v2026_money(raw, order, money_leaves) >= 3, raw["orderId"]
        assert order.order_total == order.lines_total, order.amazon_order_id  # no tips or fees off-line here


def test_v2026_example_fields(examples):
    by_id = {raw["orderId"]: translate.order_from_api(raw) for raw in _v2026_orders(examples)}
    jp = by_id["250-1234567-8901234"]
    assert jp.status is model.OrderStatus.SHIPPED and jp.fulfillment_channel is model.FulfillmentChannel.AMAZON
    assert jp.is_prime and not jp.is_business_order and jp.seller_order_id == "JP-ORDER-2024-001"
    fire = next(line for line in jp.lines if line.sku == "FIRE-TV-4K-MAX-JP")
    assert (fire.quantity, fire.quantity_shipped) == (2, 2)
    assert fire.unit_price == Money(amount=Decimal("6980"), currency="JPY")
    assert fire.item_price == Money(amount=Decimal("13960"), currency="JPY")  # per unit × quantity
    assert next(line for line in jp.lines if line.sku == "ECHO-DOT-4-JP-CHARCOAL").promotion_ids == (
        "JP-WINTER-SALE-2024",)

    business = by_id["171-2345678-9012345"]
    assert business.is_business_order and business.buyer.company == "Oliveira Tecnologia Ltda"
    assert business.buyer.purchase_order_number == "PO-BR-2024-5678"
    assert business.ship_to.address_type is model.AddressType.COMMERCIAL and business.ship_to.country_code == "BR"
    assert business.status is model.OrderStatus.UNSHIPPED
    assert business.fulfillment_channel is model.FulfillmentChannel.MERCHANT
    assert business.shipment_service_level_category == "Standard"

    gift = by_id["171-9876543-2109876"]
    assert gift.lines[0].is_gift and gift.lines[0].promotion_ids == ("BR-NATAL-2024",)
    assert gift.latest_ship_date == datetime(2024, 12, 27, 23, 59, 59, tzinfo=UTC)

    uk = by_id["202-7654321-1098765"]
    assert uk.ship_to.district == "Greater London" and uk.ship_to.line3 == "" and uk.ship_to.phone
    taxed = by_id["114-9876543-1234567"]
    assert taxed.lines[0].item_tax == Money(amount=Decimal("10.00"), currency="USD")
    assert taxed.buyer is None  # BUYER was not requested in that example


def _order(items, **extra):
    """A small v2026 order of our own making (shapes from the model's definitions)."""
    return {"orderId": "113-0000001-0000001", "createdTime": "2026-03-01T10:00:00Z",
            "lastUpdatedTime": "2026-03-01T11:00:00+01:00",
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER"},
            "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT",
                            "fulfillmentServiceLevel": "SECOND_DAY"},
            "orderItems": items, **extra}


def _usd(amount: str) -> dict:
    return {"amount": amount, "currencyCode": "USD"}


def _item(breakdowns, total, quantity=2, item_id="11111111111111", **extra):
    return {"orderItemId": item_id, "quantityOrdered": quantity,
            "product": {"sellerSku": "WIDGET-BLU", "asin": "B000000001", "price": {"unitPrice": _usd("10.00")}},
            "proceeds": {"proceedsTotal": _usd(total), "breakdowns": breakdowns}, **extra}


@pytest.mark.parametrize("discount_sign", ["-", ""])
def test_detailed_tax_and_discount_are_split_whatever_the_discount_sign(discount_sign):
    breakdowns = [
        {"type": "ITEM", "subtotal": _usd("20.00")},
        {"type": "SHIPPING", "subtotal": _usd("5.00")},
        {"type": "GIFT_WRAP", "subtotal": _usd("3.00")},
        {"type": "COD_FEE", "subtotal": _usd("1.50")},
        {"type": "OTHER", "subtotal": _usd("0.25")},
        {"type": "DISCOUNT", "subtotal": _usd(f"{discount_sign}4.00"), "detailedBreakdowns": [
            {"subtype": "ITEM", "value": _usd(f"{discount_sign}2.50")},
            {"subtype": "SHIPPING", "value": _usd(f"{discount_sign}1.00")},
            {"subtype": "COD_FEE", "value": _usd(f"{discount_sign}0.50")}]},
        {"type": "TAX", "subtotal": _usd("2.60"), "detailedBreakdowns": [
            {"subtype": "ITEM", "value": _usd("1.60")},
            {"subtype": "SHIPPING", "value": _usd("0.50")},
            {"subtype": "GIFT_WRAP", "value": _usd("0.30")},
            {"subtype": "DISCOUNT", "value": _usd(f"{discount_sign}0.20")},
            {"subtype": "COD_FEE", "value": _usd("0.40")}]},
    ]
    # proceeds: charges 29.75 − discounts 4.00 + taxes 2.60 (the tax on the discount reduces the tax) = 28.35
    order = translate.order_from_api(_order([_item(breakdowns, "28.35")]))
    line = order.lines[0]
    usd = lambda value: Money(amount=Decimal(value), currency="USD")  # noqa: E731
    assert (line.item_price, line.shipping_price, line.gift_wrap_price) == (usd("20.00"), usd("5.00"), usd("3.00"))
    assert (line.cod_fee, line.other_charges, line.cod_fee_discount) == (usd("1.50"), usd("0.25"), usd("0.50"))
    assert (line.promotion_discount, line.shipping_discount) == (usd("2.50"), usd("1.00"))
    assert (line.shipping_tax, line.gift_wrap_tax, line.promotion_discount_tax) == (usd("0.50"), usd("0.30"),
                                                                                    usd("0.20"))
    assert line.item_tax == usd("2.00")  # ITEM 1.60 + the COD tax, which has no canonical field of its own
    assert line.total == usd("28.35") and line.unit_price == usd("10.00")
    assert order.shipment_service_level_category == "SecondDay"
    assert order.last_update_date == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_undetailed_discount_goes_to_the_promotion():
    breakdowns = [{"type": "ITEM", "subtotal": _usd("20.00")}, {"type": "DISCOUNT", "subtotal": _usd("-3.00")}]
    line = translate.order_from_api(_order([_item(breakdowns, "17.00")])).lines[0]
    assert line.promotion_discount == Money(amount=Decimal("3.00"), currency="USD")
    assert line.total == Money(amount=Decimal("17.00"), currency="USD")


def test_without_proceeds_the_goods_are_unit_price_times_quantity():
    item = _item([], "0")
    del item["proceeds"]
    line = translate.order_from_api(_order([item])).lines[0]
    assert line.item_price == Money(amount=Decimal("20.00"), currency="USD")
    assert line.item_tax == Money.zero("USD")


def test_cancelled_item_without_amounts_is_dropped_but_one_with_amounts_is_refused():
    empty = {"orderItemId": "2", "quantityOrdered": 0, "product": {"sellerSku": "X"}}
    order = translate.order_from_api(_order([_item([{"type": "ITEM", "subtotal": _usd("20.00")}], "20.00"), empty]))
    assert [line.order_item_id for line in order.lines] == ["11111111111111"]
    charged = _item([{"type": "ITEM", "subtotal": _usd("20.00")}], "20.00", quantity=0, item_id="2")
    with pytest.raises(InvalidData, match=r"orderItems\[0\]\.quantityOrdered: is 0 but the item carries amounts"):
        translate.order_from_api(_order([charged]))


@pytest.mark.parametrize("mutate, message", [
    (lambda o: o["orderItems"][0]["proceeds"]["breakdowns"].append({"type": "TIP", "subtotal": _usd("1.00")}),
     r"breakdowns\[1\]\.type: unknown proceeds category 'TIP'"),
    (lambda o: o["orderItems"][0]["proceeds"].update(proceedsTotal=_usd("21.00")),
     r"breakdowns add up to 20\.00 USD but proceedsTotal is 21\.00 USD"),
    (lambda o: o.pop("fulfillment"), r"fulfillment: is missing \(ask for includedData FULFILLMENT\)"),
    (lambda o: o["orderItems"][0]["proceeds"]["breakdowns"][0].update(subtotal={"amount": "20", "currencyCode": "EUR"}),
     r"breakdowns\[0\]\.subtotal: is in EUR but the item is in USD"),
    (lambda o: o["orderItems"][0]["proceeds"]["breakdowns"][0].update(subtotal=_usd("twenty")),
     r"subtotal\.amount: not a number: 'twenty'"),
    (lambda o: o["orderItems"][0]["product"].pop("sellerSku"), r"orderItems\[0\]\.product\.sellerSku: is missing"),
    (lambda o: o.update(createdTime="2026-03-01 10:00"), r"createdTime: timestamp without a timezone"),
    (lambda o: o.update(orderId="bad-id"), r"amazon_order_id"),
])
def test_bad_v2026_orders_are_refused_naming_order_and_field(mutate, message):
    raw = _order([_item([{"type": "ITEM", "subtotal": _usd("20.00")}], "20.00")])
    mutate(raw)
    with pytest.raises(InvalidData, match=message) as caught:
        translate.order_from_api(raw)
    assert raw["orderId"] in str(caught.value)


# --- Orders v0 -------------------------------------------------------------------------------------------------

V0_ITEM_FIELDS = {  # the v0 OrderItem money fields and where the canonical line keeps them
    "ItemPrice": "item_price", "ShippingPrice": "shipping_price", "ItemTax": "item_tax", "ShippingTax": "shipping_tax",
    "ShippingDiscount": "shipping_discount", "ShippingDiscountTax": "shipping_discount_tax",
    "PromotionDiscount": "promotion_discount", "PromotionDiscountTax": "promotion_discount_tax",
    "CODFee": "cod_fee", "CODFeeDiscount": "cod_fee_discount", "BuyerInfo.GiftWrapPrice": "gift_wrap_price",
    "BuyerInfo.GiftWrapTax": "gift_wrap_tax", "PointsGranted.PointsMonetaryValue": "points_granted",
}


def _check_v0_money(raw_order: dict, raw_items: list, order: model.Order, money_leaves) -> int:
    checked = 0
    for path, amount, currency in money_leaves(raw_order):
        found = Money(amount=amount, currency=currency)
        if path == "OrderTotal":
            assert order.order_total == found
        elif match := re.fullmatch(r"PaymentExecutionDetail\[(\d+)\]\.Payment", path):
            assert order.payments[int(match[1])] == found
        else:
            pytest.fail(f"money field {path} of order {order.amazon_order_id} is not mapped")
        checked += 1
    lines = {line.order_item_id: line for line in order.lines}
    for index, item in enumerate(raw_items):
        for path, amount, currency in money_leaves(item):
            assert path in V0_ITEM_FIELDS, f"money field OrderItems[{index}].{path} is not mapped"
            assert getattr(lines[item["OrderItemId"]], V0_ITEM_FIELDS[path]) == Money(amount=amount, currency=currency)
            checked += 1
    return checked


def test_v0_examples_keep_every_money_field(examples, money_leaves):
    orders = {params["orderId"]["value"]: body["payload"] for params, body in examples(ORDERS_V0, "getOrder")}
    items = {params["orderId"]["value"]: body["payload"]["OrderItems"]
             for params, body in examples(ORDERS_V0, "getOrderItems")}
    raw, raw_items = orders["TEST_CASE_200"], items["TEST_CASE_200"]
    order = translate.order_from_v0(raw, raw_items)
    assert _check_v0_money(raw, raw_items, order, money_leaves) == 4  # OrderTotal, ItemPrice, ItemTax, PromotionDiscount
    assert order.order_total == order.lines_total == Money(amount=Decimal("11.01"), currency="USD")
    line = order.lines[0]
    assert (line.sku, line.quantity, line.unit_price.amount, line.is_gift) == ("NABetaASINB00551Q3CS", 1,
                                                                               Decimal("10.00"), False)

    iba = translate.order_from_v0(orders["TEST_CASE_IBA_200"], [])
    assert _check_v0_money(orders["TEST_CASE_IBA_200"], [], iba, money_leaves) == 2  # OrderTotal + a payment
    assert iba.is_business_order and iba.fulfillment_channel is model.FulfillmentChannel.AMAZON

    listed = [order for _, body in examples(ORDERS_V0, "getOrders") for order in body["payload"]["Orders"]]
    assert len(listed) >= 4
    for raw_order in listed:
        _check_v0_money(raw_order, [], translate.order_from_v0(raw_order, []), money_leaves)


def test_v0_buyer_and_address_from_the_documented_example(examples):
    (_, body), = examples(ORDERS_V0, "getOrder", kind="examples")
    order = translate.order_from_v0(body["payload"], [])
    assert order.buyer == model.Customer(name="John Doe", email="user@example.com", company="A Company Name",
                                         purchase_order_number="1234567890123")
    assert (order.ship_to.city, order.ship_to.state_or_region, order.ship_to.country_code) == ("Canton", "MI", "US")
    assert order.status is model.OrderStatus.PENDING and order.order_total is None


def test_v0_items_in_two_currencies_are_refused(examples, money_leaves):
    (_, body), = examples(ORDERS_V0, "getOrderItems", kind="examples")
    payload = body["payload"]
    order = {"AmazonOrderId": payload["AmazonOrderId"], "PurchaseDate": "2013-09-07T02:00:00Z",
             "LastUpdateDate": "2013-09-07T02:00:00Z", "OrderStatus": "Unshipped", "MarketplaceId": "A1VC38T7YXB528"}
    # Amazon's documented example prices the first item in JPY and its gift wrap in GBP
    with pytest.raises(InvalidData, match=r"OrderItems\[0\]\.BuyerInfo\.GiftWrapPrice: is in GBP but the item is in JPY"):
        translate.order_from_v0(order, payload["OrderItems"])
    # the second item is consistent: every one of its money fields is kept, the unit price is the line ÷ quantity
    second = payload["OrderItems"][1]
    kept = translate.order_from_v0(order, [second])
    assert _check_v0_money(order, [second], kept, money_leaves) == 2
    assert kept.lines[0].unit_price == Money(amount=Decimal("8.975"), currency="JPY")
    assert kept.lines[0].is_gift and kept.lines[0].promotion_ids == ("FREESHIP",)


def test_v0_first_documented_item_without_its_foreign_gift_wrap_keeps_cod_and_points(examples, money_leaves):
    (_, body), = examples(ORDERS_V0, "getOrderItems", kind="examples")
    first = copy.deepcopy(body["payload"]["OrderItems"][0])
    first["BuyerInfo"]["GiftWrapPrice"]["CurrencyCode"] = "JPY"  # align the currency, keep every amount
    order = {"AmazonOrderId": "503-0000000-0000000", "PurchaseDate": "2013-09-07T02:00:00Z",
             "LastUpdateDate": "2013-09-07T02:00:00Z", "OrderStatus": "Shipped", "MarketplaceId": "A1VC38T7YXB528"}
    kept = translate.order_from_v0(order, [first])
    assert _check_v0_money(order, [first], kept, money_leaves) == 6
    line = kept.lines[0]
    # goods 25.99 + shipping 1.26 + gift wrap 41.99 + COD 10.00 − COD discount 1.00
    assert line.total == Money(amount=Decimal("78.24"), currency="JPY")


# --- listings, inventory, feeds, shipment confirmation ---------------------------------------------------------


def test_listing_example_prices_and_quantity(examples, money_leaves):
    (_, item), = examples("listingsItems_2021-08-01.json", "getListingsItem")
    prices = translate.listing_prices(item)
    offers = [leaf for leaf in money_leaves(item) if leaf[0].startswith("offers[")]
    assert len(offers) == 2 and len(money_leaves(item)) == 2  # no other money in the example
    assert {(p.marketplace_id, p.price.amount, p.price.currency) for p in prices} == {
        ("ATVPDKIKX0DER", Decimal("100.00"), "USD"), ("A2EUQ1WTGCTBG2", Decimal("130.00"), "CAD")}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert translate.listing_quantity(item, now) == model.StockLevel(sku="GM-ZDPI-9B4E", quantity=100, as_of=now)
    assert translate.listing_quantity(item, now, channel="AMAZON_NA") is None


def test_inventory_levels_use_the_fulfillable_quantity():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"sellerSku": "A", "totalQuantity": 9, "inventoryDetails": {"fulfillableQuantity": 7},
             "lastUpdatedTime": "2025-12-31T00:00:00Z"},
            {"sellerSku": "B", "totalQuantity": 4}]
    levels = translate.inventory_levels(rows, now)
    assert [(level.sku, level.quantity, level.as_of) for level in levels] == [
        ("A", 7, datetime(2025, 12, 31, tzinfo=UTC)), ("B", 4, now)]
    with pytest.raises(InvalidData, match="inventory summary 'C'|StockLevel 'C'"):
        translate.inventory_levels([{"sellerSku": "C", "totalQuantity": -1}], now)


def test_listings_feed_validates_against_amazons_schema(spapi_ref):
    now = datetime(2026, 5, 1, tzinfo=UTC)
    stock = [model.StockLevel(sku="WIDGET-BLU", quantity=Decimal("12.7"), as_of=now),
             model.StockLevel(sku="GADGET", quantity=0, as_of=now)]
    prices = [model.PriceUpdate(sku="WIDGET-BLU", marketplace_id="ATVPDKIKX0DER",
                                price=Money(amount=Decimal("19.99"), currency="USD")),
              model.PriceUpdate(sku="WIDGET-BLU", marketplace_id="A2EUQ1WTGCTBG2",
                                price=Money(amount=Decimal("25.50"), currency="CAD")),
              model.PriceUpdate(sku="ONLY-PRICE", marketplace_id="ATVPDKIKX0DER",
                                price=Money(amount=Decimal("5"), currency="USD"))]
    messages = translate.listings_messages(stock, prices)
    document = json.loads(json.dumps(translate.listings_feed("A1SELLER", messages), default=translate.json_number))
    schema = json.loads((spapi_ref / "schemas" / "feeds" / "listings-feed-schema-v2.json").read_text())
    jsonschema.validate(document, schema)
    by_sku = {message["sku"]: message for message in document["messages"]}
    assert [m["messageId"] for m in document["messages"]] == [1, 2, 3]
    widget = {patch["path"]: patch["value"] for patch in by_sku["WIDGET-BLU"]["patches"]}
    assert widget["/attributes/fulfillment_availability"] == [{"fulfillment_channel_code": "DEFAULT", "quantity": 12}]
    assert widget["/attributes/purchasable_offer"][0] == {
        "marketplace_id": "ATVPDKIKX0DER", "currency": "USD", "our_price": [{"schedule": [{"value_with_tax": 19.99}]}]}
    assert len(widget["/attributes/purchasable_offer"]) == 2
    assert [p["path"] for p in by_sku["ONLY-PRICE"]["patches"]] == ["/attributes/purchasable_offer"]
    assert by_sku["GADGET"]["patches"][0]["value"][0]["quantity"] == 0


def test_listings_messages_refuse_ambiguous_input():
    now = datetime(2026, 5, 1, tzinfo=UTC)
    twice = [model.StockLevel(sku="A", quantity=1, as_of=now), model.StockLevel(sku="A", quantity=2, as_of=now)]
    with pytest.raises(InvalidData, match="SKU 'A' has two stock levels"):
        translate.listings_messages(twice, [])
    price = model.PriceUpdate(sku="A", marketplace_id="M", price=Money(amount=Decimal("1"), currency="USD"))
    with pytest.raises(InvalidData, match="two prices for marketplace M"):
        translate.listings_messages([], [price, price])
    with pytest.raises(InvalidData, match="cannot be written exactly"):
        json.dumps({"x": Decimal("0.12345678901234567890")}, default=translate.json_number)


def test_package_detail_matches_amazons_confirm_shipment_example(examples):
    (params, _), = examples(ORDERS_V0, "confirmShipment", status="204")
    expected = copy.deepcopy(params["body"]["value"])
    detail = expected["packageDetail"]
    del detail["shipFromSupplySourceId"]  # not carried by the canonical package
    for item in detail["orderItems"]:
        del item["transparencyCodes"]
    package = model.Package(package_reference_id="1", carrier_code="FedEx", carrier_name="FedEx",
                            shipping_method="FedEx Ground", tracking_number="112345678",
                            items=[model.PackageItem(order_item_id="79039765272157", quantity=1)])
    body = translate.package_detail(package, "ATVPDKIKX0DER", datetime(2022, 2, 11, 1, 0, tzinfo=UTC))
    assert body == expected
    with pytest.raises(InvalidData, match="not a whole number"):
        translate.package_detail(package.model_copy(update={"items": (model.PackageItem(
            order_item_id="1", quantity=Decimal("1.5")),)}), "ATVPDKIKX0DER", datetime(2022, 2, 11, tzinfo=UTC))


# --- what no real order holds: negative prices, charges and totals, control characters, quantities ≤ 0 --------------


def _priced(unit: str, quantity: int = 2) -> dict:
    total = str(Decimal(unit) * quantity)
    item = _item([{"type": "ITEM", "subtotal": _usd(total)}], total, quantity=quantity)
    item["product"]["price"]["unitPrice"] = _usd(unit)
    return item


@pytest.mark.parametrize("raw, names", [
    (_order([_priced("-5.00")]), ["lines[0] (order item 11111111111111).unit_price is negative (-5.00 USD)",
                                  "item_price is negative (-10.00 USD)", "totals -10.00 USD"]),
    (_order([_item([{"type": "ITEM", "subtotal": _usd("20.00")}, {"type": "SHIPPING", "subtotal": _usd("-4.00")}],
                   "16.00")]), ["shipping_price is negative (-4.00 USD)"]),
    (_order([_item([{"type": "ITEM", "subtotal": _usd("20.00")},
                    {"type": "TAX", "subtotal": _usd("-1.00"), "detailedBreakdowns": [
                        {"subtype": "ITEM", "value": _usd("-1.00")}]}], "19.00")]), ["item_tax is negative"]),
    (_order([_item([{"type": "ITEM", "subtotal": _usd("20.00")}, {"type": "DISCOUNT", "subtotal": _usd("-25.00")}],
                   "-5.00")]), ["totals -5.00 USD: discounts exceed what the item costs"]),
    (_order([_item([{"type": "ITEM", "subtotal": _usd("20.00")}], "20.00")], proceeds={"grandTotal": _usd("-20.00")}),
     ["order_total is negative (-20.00 USD)"]),
])
def test_negative_prices_charges_taxes_and_totals_are_refused_naming_the_field(raw, names):
    with pytest.raises(InvalidData) as refused:
        translate.order_from_api(raw)
    message = str(refused.value)
    assert message.startswith("order 113-0000001-0000001 is refused:") and "nothing was written to Sage" in message
    assert [name for name in names if name not in message] == []
    assert refused.value.record == "113-0000001-0000001"


def test_discounts_stay_legitimate_whatever_their_sign_and_a_free_item_is_fine():
    for sign in ("-", ""):  # Amazon reports discounts negative in v2026; either sign is a reduction
        line = translate.order_from_api(_order([_item([
            {"type": "ITEM", "subtotal": _usd("20.00")},
            {"type": "DISCOUNT", "subtotal": _usd(f"{sign}20.00")},
            {"type": "TAX", "subtotal": _usd("1.00"), "detailedBreakdowns": [
                {"subtype": "ITEM", "value": _usd("2.00")}, {"subtype": "DISCOUNT", "value": _usd(f"{sign}1.00")}]},
        ], "1.00")])).lines[0]
        assert line.promotion_discount.amount == Decimal("20.00") and line.promotion_discount_tax.amount == 1
        assert line.total == Money(amount=Decimal("1.00"), currency="USD")


@pytest.mark.parametrize("where, value, field", [
    (("recipient", "deliveryAddress", "addressLine1"), "1 Main St\x00", "ship_to.line1"),
    (("recipient", "deliveryAddress", "city"), "Seattle\x1b[2J", "ship_to.city"),
    (("buyer", "buyerName"), "Jane\x7fRoe", "buyer.name"),
    (("orderItems", 0, "product", "title"), "Lamp\u0085", "lines[0].title"),
    (("orderItems", 0, "product", "sellerSku"), "WIDGET\tBLU", "lines[0].sku"),
])
def test_control_characters_in_any_text_are_refused_naming_the_field_not_the_text(where, value, field):
    raw = _order([_item([{"type": "ITEM", "subtotal": _usd("20.00")}], "20.00")],
                 buyer={"buyerName": "Jane Roe"},
                 recipient={"deliveryAddress": {"addressLine1": "1 Main St", "city": "Seattle", "countryCode": "US"}})
    node = raw
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(InvalidData, match=re.escape(f"{field} holds a control character")) as refused:
        translate.order_from_api(raw)
    assert value not in str(refused.value)


@pytest.mark.parametrize("quantity, problem", [(-1, "not a whole, non-negative quantity"),
                                               (Decimal("1.5"), "not a whole, non-negative quantity")])
def test_a_negative_or_fractional_quantity_is_refused(quantity, problem):
    raw = _order([_item([{"type": "ITEM", "subtotal": _usd("20.00")}], "20.00", quantity=str(quantity))])
    with pytest.raises(InvalidData, match=re.escape(f"orderItems[0].quantityOrdered: {problem}")):
        translate.order_from_api(raw)


def test_v0_negative_item_price_and_control_characters_are_refused(examples):
    [(_, order_body)] = examples(ORDERS_V0, "getOrder")[:1]
    raw_order = copy.deepcopy(order_body["payload"])
    item = {"ASIN": "B000000001", "OrderItemId": "1", "SellerSKU": "A", "QuantityOrdered": 1,
            "ItemPrice": {"CurrencyCode": "USD", "Amount": "-9.99"}}
    raw_order.pop("OrderTotal", None)
    with pytest.raises(InvalidData, match=r"item_price is negative \(-9\.99 USD\)"):
        translate.order_from_v0(raw_order, [item])
    item = {**item, "ItemPrice": {"CurrencyCode": "USD", "Amount": "9.99"}, "Title": "Lamp\x00"}
    with pytest.raises(InvalidData, match=r"lines\[0\]\.title holds a control character"):
        translate.order_from_v0(raw_order, [item])
