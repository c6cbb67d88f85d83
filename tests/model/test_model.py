from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from erpsync import model
from erpsync.model import InvalidRecord, Money, parse


def usd(x: str) -> dict:
    return {"amount": x, "currency": "USD"}


def line(**over) -> dict:
    base = dict(order_item_id="11111111111111", sku="WIDGET-BLU", quantity="2",
                unit_price=usd("10.00"), item_price=usd("20.00"), shipping_price=usd("5.00"),
                shipping_discount=usd("1.00"), promotion_discount=usd("2.00"), gift_wrap_price=usd("3.00"),
                item_tax=usd("1.60"), shipping_tax=usd("0.40"), gift_wrap_tax=usd("0.24"),
                promotion_discount_tax=usd("0.16"), shipping_discount_tax=usd("0.08"))
    base.update(over)
    return base


def order(**over) -> dict:
    base = dict(amazon_order_id="113-1234567-1234567", marketplace_id="ATVPDKIKX0DER", status="Unshipped",
                fulfillment_channel="MFN", purchase_date="2026-11-20T10:00:00Z",
                last_update_date="2026-11-20T11:00:00+01:00", lines=[line()])
    base.update(over)
    return base


def test_line_total_adds_every_component_exactly():
    ln = parse(model.OrderLine, line(), record="113-1234567-1234567/11111111111111")
    # 20 + 5 + 3 - 1 - 2 + (1.60 + 0.40 + 0.24 - 0.16 - 0.08)
    assert ln.total == Money(amount=Decimal("27.00"), currency="USD")
    assert ln.tax_total.amount == Decimal("2.00")
    assert isinstance(ln.total.amount, Decimal)


def test_order_normalises_time_to_utc_and_sums_lines():
    o = parse(model.Order, order(lines=[line(), line(order_item_id="2")]), record="113-1234567-1234567")
    assert o.last_update_date == datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
    assert o.last_update_date.utcoffset() == timedelta(0)
    assert o.lines_total.amount == Decimal("54.00")


def test_naive_timestamps_are_refused_with_the_field_named():
    with pytest.raises(InvalidRecord) as exc:
        parse(model.Order, order(purchase_date="2026-11-20T10:00:00"), record="113-1234567-1234567")
    assert "113-1234567-1234567" in str(exc.value)
    assert "purchase_date" in str(exc.value)
    assert "timezone" in str(exc.value)


def test_validation_error_names_record_and_each_bad_field():
    with pytest.raises(InvalidRecord) as exc:
        parse(model.Order, order(amazon_order_id="113-1", lines=[line(quantity="0")]), record="notif-42")
    fields = [field for field, _ in exc.value.problems]
    assert "amazon_order_id" in fields
    assert "lines.0.quantity" in fields
    assert "notif-42" in str(exc.value)


def test_mixed_currencies_are_refused():
    with pytest.raises(InvalidRecord, match="mixes currencies"):
        parse(model.OrderLine, line(item_tax={"amount": "1", "currency": "EUR"}), record="x")
    with pytest.raises(InvalidRecord, match="mixes currencies"):
        parse(model.Order, order(order_total={"amount": "27.00", "currency": "CAD"}), record="x")


def test_money_keeps_float_input_exact_to_its_repr():
    assert Money(amount=0.1, currency="USD").amount == Decimal("0.1")
    with pytest.raises(ValueError):
        Money(amount="1", currency="USD") + Money(amount="1", currency="EUR")


def test_package_other_carrier_needs_a_name_and_reference_is_positive():
    item = {"order_item_id": "1", "quantity": "1"}
    with pytest.raises(InvalidRecord, match="carrier_name"):
        parse(model.Package, {"package_reference_id": "1", "tracking_number": "1Z", "carrier_code": "Other",
                              "items": [item]}, record="ship 7")
    with pytest.raises(InvalidRecord, match="package_reference_id"):
        parse(model.Package, {"package_reference_id": "0", "tracking_number": "1Z", "carrier_code": "UPS",
                              "items": [item]}, record="ship 7")


def test_journal_entry_must_balance():
    lines = [{"account": "1000", "amount": "100.00"}, {"account": "4000", "amount": "-99.99"}]
    with pytest.raises(InvalidRecord, match="not balanced"):
        parse(model.JournalEntry, {"reference": "S1", "date": "2026-11-20T00:00:00Z", "currency": "USD",
                                   "lines": lines}, record="settlement S1")
    lines[1]["amount"] = "-100.00"
    entry = parse(model.JournalEntry, {"reference": "S1", "date": "2026-11-20T00:00:00Z", "currency": "USD",
                                       "lines": lines}, record="settlement S1")
    assert sum(l.amount for l in entry.lines) == 0


def test_records_are_immutable_and_strict():
    ln = parse(model.OrderLine, line(), record="x")
    with pytest.raises(Exception):
        ln.sku = "OTHER"
    with pytest.raises(InvalidRecord, match="colour: Extra inputs"):
        parse(model.OrderLine, line(colour="blue"), record="x")
