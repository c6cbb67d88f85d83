"""The pure rules of stock and prices (no database, no network): availability, price markup and rounding, the
guard, what changes, which items are published; the feed messages and the per-message results; the listings
report parser."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erpsync import mapping
from erpsync.amazon import listings_feed, listings_report
from erpsync.config import InventorySettings, MappingSettings, PriceSettings
from erpsync.errors import InvalidData

D = Decimal


@given(st.decimals(-1000, 1000, places=3), st.decimals(0, 100, places=0), st.decimals(0, 50, places=0))
def test_available_units_are_whole_and_never_negative(net, unwritten, safety):
    units = mapping.available_units(net, unwritten, safety)
    assert isinstance(units, int) and units >= 0
    assert units <= max(net - unwritten - safety, D(0))
    assert units > net - unwritten - safety - 1


def test_availability_subtracts_unwritten_orders_and_safety_stock():
    assert mapping.available_units(D("10.5"), D(2), D(3)) == 5
    assert mapping.available_units(D(4), D(5), D(0)) == 0
    rules = InventorySettings(safety_stock=D(2), safety_stock_by_sku={"TENT": D(5)})
    assert mapping.safety_stock_for("TENT", rules) == 5 and mapping.safety_stock_for("OTHER", rules) == 2


@pytest.mark.parametrize("sheet, rules, expected", [
    ("19.99", {}, "19.99"),
    ("10.00", {"markup_percent": "15"}, "11.50"),
    ("19.20", {"ending": "0.99"}, "19.99"),
    ("19.995", {"ending": "0.99"}, "20.99"),
    ("20.00", {"ending": "0.99"}, "20.99"),
    ("12.34", {"round_to": "0.05"}, "12.35"),
    ("100", {"markup_percent": "-10", "ending": "0.95"}, "90.95"),
])
def test_listing_price_markup_and_rounding(sheet, rules, expected):
    assert mapping.listing_price(D(sheet), PriceSettings(**rules)) == D(expected)


def test_price_bounds_and_guard():
    rules = PriceSettings(minimum_percent=D(10), maximum_percent=D(20))
    assert mapping.price_bounds(D("50.00"), rules) == (D("45.00"), D("60.00"))
    assert mapping.price_bounds(D("50.00"), PriceSettings()) == (None, None)
    guard = PriceSettings()
    assert mapping.price_guard("X", D("5.00"), D("500.00"), guard) is not None
    assert "-99%" in mapping.price_guard("X", D("5.00"), D("500.00"), guard)
    assert mapping.price_guard("X", D("129.99"), D("100.00"), guard) is None  # +30% is allowed
    assert mapping.price_guard("X", D("130.01"), D("100.00"), guard) is not None
    assert mapping.price_guard("X", D("5.00"), None, guard) is None  # nothing acknowledged yet


def test_listing_changes_skip_values_in_flight_or_refused():
    desired = {"quantity": 5, "price": "9.99"}
    assert mapping.listing_changes(desired, None, None, None) == desired
    assert mapping.listing_changes(desired, {"quantity": 5, "price": "9.99"}, None, None) == {}
    assert mapping.listing_changes(desired, {"quantity": 4}, {"quantity": 5}, None) == {"price": "9.99"}
    assert mapping.listing_changes(desired, None, None, {"quantity": 5, "price": "9.99"}) == {}
    assert mapping.listing_changes(desired, desired, None, None, full=True) == desired


def test_which_items_are_published():
    rules = InventorySettings(include=["TENT-*", "CAP"], exclude=["TENT-OLD"])
    assert mapping.unpublished("TENT-2P", 5, True, rules) is None
    assert "exclude" in mapping.unpublished("TENT-OLD", 5, True, rules)
    assert "include" in mapping.unpublished("SOCKS", 5, True, rules)
    assert "kit" in mapping.unpublished("TENT-KIT", 7, True, rules)
    assert "kit" in mapping.unpublished("TENT-KIT", 8, True, rules)
    assert "inactive" in mapping.unpublished("CAP", 5, False, rules)
    aliases = MappingSettings(sku_aliases={"AMZ-TENT": "TENT-2P", "AMZ-TENT-B": "tent-2p", "AMZ-MAT": "MAT"})
    assert mapping.skus_by_item(aliases) == {"tent-2p": ["AMZ-TENT", "AMZ-TENT-B"], "mat": ["AMZ-MAT"]}
    assert mapping.skus_by_item(MappingSettings()) == {}


def test_messages_and_per_message_results():
    message = listings_feed.message(3, "TENT", {"quantity": 4, "price": "19.99", "minimum_price": "17.99",
                                                "attributes": {"item_name": "Tent"}},
                                    product_type="PRODUCT", marketplace_id="ATVPDKIKX0DER", currency="USD")
    paths = [p["path"] for p in message["patches"]]
    assert paths == ["/attributes/fulfillment_availability", "/attributes/purchasable_offer", "/attributes/item_name"]
    offer = message["patches"][1]["value"][0]
    assert offer["our_price"][0]["schedule"][0]["value_with_tax"] == D("19.99")
    assert offer["minimum_seller_allowed_price"][0]["schedule"][0]["value_with_tax"] == D("17.99")
    report = {"summary": {"messagesProcessed": 3}, "issues": [
        {"messageId": 2, "code": "90220", "severity": "ERROR", "message": "bad", "attributeName": "item_name"},
        {"messageId": 3, "code": "1", "severity": "WARNING", "message": "meh"},
        {"code": "2", "severity": "ERROR", "message": "feed-wide"}]}
    found = listings_feed.results(report, [1, 2, 3])
    assert found.accepted == {1, 3} and list(found.errors) == [2] and len(found.feed_issues) == 1
    assert listings_feed.describe(found.errors[2]) == "90220 item_name: bad"
    assert listings_feed.results({"summary": {"messagesProcessed": 0}, "issues": []}, [1]).accepted == set()


def test_the_listings_report_is_read_by_header_name():
    text = "status\tseller-sku\tprice\tquantity\tfulfillment-channel\textra\nActive\tA\t9.99\t4\tDEFAULT\tx\n" \
           "Active\tB\t5,50\t\tAMAZON_NA\t\n"
    rows = {row.sku: row for row in listings_report.parse(text)}
    assert rows["A"].quantity == 4 and rows["A"].price == D("9.99") and rows["A"].seller_fulfilled
    assert rows["B"].quantity is None and rows["B"].price == D("5.50") and not rows["B"].seller_fulfilled
    with pytest.raises(InvalidData, match="no column quantity"):
        listings_report.parse("seller-sku\tfulfillment-channel\nA\tDEFAULT\n")
    with pytest.raises(InvalidData, match="SKU 'A'"):
        listings_report.parse("seller-sku\tquantity\tfulfillment-channel\nA\tmany\tDEFAULT\n")
