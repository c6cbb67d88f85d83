"""Mapping rules: order status -> action, SKU harmonisation, ship methods and carriers, enrichment, user fields,
GL accounts. Pure: no database, no network."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from erpsync import errors, model
from erpsync.config import ConfigError, MappingSettings, OrderSettings, Settings
from erpsync.mapping import (
    ActionKind,
    Carrier,
    SageOrderState,
    SkuMapper,
    carrier_for,
    customer_for,
    gl_account,
    order_action,
    ship_method_for,
    short_order_id,
    user_fields,
    warehouse_for,
)

OID = "113-1234567-7654321"


def money(amount: str) -> dict:
    return {"amount": amount, "currency": "USD"}


def make_order(**overrides) -> model.Order:
    line = {"order_item_id": "11111111111111", "sku": "WIDGET-BLUE", "asin": "B000TEST01", "quantity": "2",
            "unit_price": money("5.00"), "item_price": money("10.00"), "shipping_price": money("0"),
            "shipping_discount": money("0"), "promotion_discount": money("0"), "gift_wrap_price": money("0"),
            "item_tax": money("0"), "shipping_tax": money("0"), "gift_wrap_tax": money("0"),
            "promotion_discount_tax": money("0"), "shipping_discount_tax": money("0")}
    data = {"amazon_order_id": OID, "marketplace_id": "ATVPDKIKX0DER", "status": "Unshipped",
            "fulfillment_channel": "MFN", "purchase_date": "2026-03-01T10:00:00Z",
            "last_update_date": "2026-03-01T10:05:00Z", "shipment_service_level_category": "Standard",
            "is_prime": True, "lines": [line]}
    data.update(overrides)
    return model.parse(model.Order, data, record=data["amazon_order_id"])


def state(status="open", open_="2", shipped="0", hold=False) -> SageOrderState:
    return SageOrderState(status=status, quantity_open=Decimal(open_), quantity_shipped=Decimal(shipped), on_hold=hold)


# --- order status ------------------------------------------------------------------------------------------------

DEFAULTS = OrderSettings()
HOLD = OrderSettings(pending="hold")
FBA_SHIPPED = OrderSettings(afn="shipped")


@pytest.mark.parametrize("status, channel, settings, sage, expected", [
    ("Pending", "MFN", DEFAULTS, None, ActionKind.SKIP),
    ("Pending", "MFN", HOLD, None, ActionKind.WRITE_ON_HOLD),
    ("Unshipped", "MFN", DEFAULTS, None, ActionKind.WRITE),
    ("PartiallyShipped", "MFN", DEFAULTS, None, ActionKind.WRITE),
    ("Shipped", "MFN", DEFAULTS, None, ActionKind.REPORT),
    ("Canceled", "MFN", DEFAULTS, None, ActionKind.SKIP),
    ("Unfulfillable", "MFN", DEFAULTS, None, ActionKind.SKIP),
    ("PendingAvailability", "MFN", DEFAULTS, None, ActionKind.SKIP),
    ("Shipped", "AFN", DEFAULTS, None, ActionKind.SKIP),
    ("Unshipped", "AFN", DEFAULTS, None, ActionKind.SKIP),
    ("Shipped", "AFN", FBA_SHIPPED, None, ActionKind.WRITE_SHIPPED),
    ("InvoiceUnconfirmed", "AFN", FBA_SHIPPED, None, ActionKind.WRITE_SHIPPED),
    ("Unshipped", "AFN", FBA_SHIPPED, None, ActionKind.SKIP),
    # already in Sage
    ("Unshipped", "MFN", DEFAULTS, state(), ActionKind.SKIP),
    ("Unshipped", "MFN", HOLD, state(hold=True), ActionKind.RELEASE_HOLD),
    ("Pending", "MFN", HOLD, state(hold=True), ActionKind.SKIP),
    ("Canceled", "MFN", DEFAULTS, state(), ActionKind.VOID),
    ("Canceled", "MFN", DEFAULTS, state(status="canceled"), ActionKind.SKIP),
    ("Unshipped", "MFN", DEFAULTS, state(status="canceled"), ActionKind.REPORT),
    ("Shipped", "MFN", DEFAULTS, state(open_="2"), ActionKind.REPORT),
    ("Shipped", "MFN", DEFAULTS, state(status="closed", open_="0", shipped="2"), ActionKind.SKIP),
    ("Shipped", "AFN", FBA_SHIPPED, state(status="closed", open_="0", shipped="2"), ActionKind.SKIP),
])
def test_order_action(status, channel, settings, sage, expected):
    action = order_action(make_order(status=status, fulfillment_channel=channel), settings, sage)
    assert action.kind is expected
    assert action.reason


@pytest.mark.parametrize("sage", [state(open_="1", shipped="1"), state(status="closed", open_="0", shipped="2")])
def test_cancelled_after_shipment_is_a_conflict_naming_the_order(sage):
    with pytest.raises(errors.ConflictAfterShipment) as info:
        order_action(make_order(status="Canceled"), DEFAULTS, sage)
    assert OID in str(info.value) and "Seller Central" in str(info.value)
    assert info.value.record == OID and errors.classify(info.value) == "permanent"


# --- SKU harmonisation ---------------------------------------------------------------------------------------------

ITEMS = ["WIDGET-BLUE", "WIDGET-BL", "WIDGET-RED", "GADGET-1", "GIZMO-XL"]


def mapper(aliases=None, rules=None, known=ITEMS) -> SkuMapper:
    return SkuMapper(MappingSettings(sku_aliases=aliases or {}, sku_rules=rules or []), known)


def test_identity_then_case_insensitive_identity_with_sage_spelling():
    assert mapper().resolve("WIDGET-BLUE", order_id=OID) == ("WIDGET-BLUE", "identity")
    assert mapper().resolve("widget-blue", order_id=OID) == ("WIDGET-BLUE", "identity (case)")


def test_case_insensitive_identity_refuses_ambiguous_spellings():
    with pytest.raises(errors.UnknownSku):
        mapper(known=["Widget", "WIDGET"]).resolve("widget", order_id=OID)


def test_alias_wins_over_identity_and_uses_sage_spelling():
    m = mapper(aliases={"WIDGET-RED": "gadget-1"})
    assert m.resolve("WIDGET-RED", order_id=OID) == ("GADGET-1", "alias")
    assert m.resolve("widget-red", order_id=OID) == ("GADGET-1", "alias")


def test_alias_to_a_missing_item_names_the_alias():
    with pytest.raises(errors.UnknownSku) as info:
        mapper(aliases={"W": "NOPE"}).resolve("W", order_id=OID)
    assert "aliased to 'NOPE'" in str(info.value) and "sku_aliases" in str(info.value)


def test_rules_apply_in_order_until_a_sage_item_is_found():
    rules = [{"pattern": "^AMZ-", "replace": ""}, {"pattern": "-FBA$", "replace": ""},
             {"pattern": r"^(\w+)_(\w+)$", "replace": r"\1-\2"}]
    m = mapper(rules=rules)
    assert m.resolve("AMZ-GADGET-1", order_id=OID) == ("GADGET-1", "rule 1")
    assert m.resolve("AMZ-GIZMO-XL-FBA", order_id=OID) == ("GIZMO-XL", "rule 2")
    assert m.resolve("gizmo_xl", order_id=OID) == ("GIZMO-XL", "rule 3 (case)")


def test_unknown_sku_names_sku_order_three_closest_items_with_scores_and_the_fix():
    with pytest.raises(errors.UnknownSku) as info:
        mapper().resolve("WIDGET-BLU", order_id=OID)
    message = str(info.value)
    assert message.startswith(f"SKU 'WIDGET-BLU' (order {OID}) has no Sage item; closest items: WIDGET-BLUE (95), "
                              f"WIDGET-BL (95), WIDGET-RED (")
    assert len(re.findall(r" \(\d+\)", message)) == 3  # exactly three suggestions, each with its score
    assert 'add an alias under [mapping] sku_aliases (e.g. "WIDGET-BLU" = "WIDGET-BLUE")' in message
    assert "replay the dead letter" in message
    assert info.value.record == OID and errors.classify(info.value) == "permanent"


def test_unknown_sku_with_no_sage_items_says_so():
    with pytest.raises(errors.UnknownSku, match="Sage has no items at all"):
        mapper(known=[]).resolve("X", order_id=OID)


def test_without_an_item_list_the_mapping_is_unchecked():
    m = mapper(aliases={"A": "B"}, rules=[{"pattern": "^AMZ-", "replace": ""}], known=None)
    assert m.resolve("A", order_id=OID) == ("B", "alias")
    assert m.resolve("AMZ-X", order_id=OID) == ("X", "unchecked (rule 1)")
    assert m.resolve("Y", order_id=OID) == ("Y", "unchecked (identity)")


def test_a_bad_rule_is_a_config_error_at_load(tmp_path):
    from erpsync import config

    file = tmp_path / "erpsync.toml"
    file.write_text('[mapping]\nsku_rules = [{pattern = "([", replace = ""}]\n')
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        config.load(file)


# --- ship methods and carriers ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("level, category, expected", [
    (None, "Standard", "UPS GROUND"),
    (None, "SECOND_DAY", "UPS 2DAY"),  # v2026 spelling
    (None, "NextDay", "UPS NEXTDAY"),
    (None, "FREE_ECONOMY", "UPS GROUND"),
    ("Std US D2D Dom", "Expedited", "UPS 2DAY"),  # free-text level unmapped: its category decides
    (None, None, None),
])
def test_ship_method_defaults(level, category, expected):
    order = make_order(ship_service_level=level, shipment_service_level_category=category)
    assert ship_method_for(order, MappingSettings()) == expected


def test_ship_method_config_overrides_defaults_and_level_beats_category():
    rules = MappingSettings(ship_methods={"Std US D2D Dom": "USPS PRIORITY", "standard": "FEDEX GROUND"})
    assert ship_method_for(make_order(ship_service_level="Std US D2D Dom"), rules) == "USPS PRIORITY"
    assert ship_method_for(make_order(), rules) == "FEDEX GROUND"
    assert ship_method_for(make_order(shipment_service_level_category="SecondDay"), rules) == "UPS 2DAY"


def test_unmapped_ship_service_is_permanent_and_names_the_key():
    order = make_order(ship_service_level="Drone", shipment_service_level_category="Hyperloop")
    with pytest.raises(errors.Permanent) as info:
        ship_method_for(order, MappingSettings())
    assert info.value.code == "unmapped_ship_method"
    assert "'Drone' / 'Hyperloop'" in str(info.value) and "[mapping] ship_methods" in str(info.value)


def test_fba_orders_have_no_ship_method():
    assert ship_method_for(make_order(fulfillment_channel="AFN"), MappingSettings()) is None


def test_carrier_defaults_for_every_replica_ship_method():
    rules = MappingSettings()
    assert carrier_for("UPS GROUND", rules) == Carrier("UPS", None, "UPS Ground")
    assert carrier_for("ups 2day", rules) == Carrier("UPS", None, "UPS 2nd Day Air")
    assert carrier_for("FEDEX GROUND", rules).carrier_code == "FedEx"
    assert carrier_for("FEDEX 2DAY", rules).carrier_code == "FedEx"
    assert carrier_for("USPS PRIORITY", rules) == ("USPS", None, "Priority Mail")
    assert carrier_for("DHL INTL", rules).carrier_code == "DHL"
    assert carrier_for("UPS NEXTDAY", rules) == ("UPS", None, "UPS Next Day Air")
    assert carrier_for("USPS FIRST", rules) == ("USPS", None, "First-Class Package")


def test_unmapped_ship_method_falls_back_to_other_named_by_the_method():
    assert carrier_for("LOCAL COURIER ", MappingSettings()) == Carrier("Other", "LOCAL COURIER", None)


def test_carrier_config_merges_over_defaults():
    rules = MappingSettings(carriers={"UPS GROUND": {"carrier_code": "UPS", "shipping_method": "Ground"},
                                      "ACME": {"carrier_code": "Other", "carrier_name": "Acme Freight"}})
    assert carrier_for("UPS GROUND", rules).shipping_method == "Ground"
    assert carrier_for("ACME", rules) == Carrier("Other", "Acme Freight", None)
    assert carrier_for("FEDEX 2DAY", rules).carrier_code == "FedEx"


def test_other_carrier_needs_a_name_in_config():
    with pytest.raises(ValueError, match="carrier_name is required"):
        MappingSettings(carriers={"ACME": {"carrier_code": "Other"}})


# --- enrichment ----------------------------------------------------------------------------------------------------

def test_customer_per_marketplace_and_unknown_marketplace_names_the_key():
    assert customer_for(make_order(), MappingSettings()) == "AMAZON-US"
    assert customer_for(make_order(marketplace_id="A1F83G8C2ARO7P"), MappingSettings()) == "AMAZON-UK"
    with pytest.raises(errors.Permanent) as info:
        customer_for(make_order(marketplace_id="A1VC38T7YXB528"), MappingSettings())
    assert info.value.code == "unmapped_marketplace"
    assert "A1VC38T7YXB528" in str(info.value) and "[mapping] customers" in str(info.value)


def test_warehouse_by_fulfillment_channel():
    assert warehouse_for(make_order(), MappingSettings()) == "MAIN"
    assert warehouse_for(make_order(fulfillment_channel="AFN"), MappingSettings()) == "FBA"
    with pytest.raises(errors.Permanent, match=r"\[mapping\] warehouses"):
        warehouse_for(make_order(fulfillment_channel="AFN"), MappingSettings(warehouses={"MFN": "MAIN"}))


# --- custom fields -------------------------------------------------------------------------------------------------

def test_short_order_id_is_the_last_15_characters():
    assert short_order_id("113-1234567-7654321") == "1234567-7654321"
    assert len(short_order_id("113-1234567-7654321")) == 15


def test_user_fields_render_attributes_and_cut_to_15_with_a_note():
    rules = MappingSettings(user_fields={"UserFld2": "marketplace_id", "UserFld3": "is_prime",
                                         "UserFld4": "amazon_order_id", "UserFld1": "status",
                                         "Line.UserFld2": "asin"})
    values, notes = user_fields(make_order(), rules)
    assert values == {"UserFld2": "ATVPDKIKX0DER", "UserFld3": "Yes", "UserFld4": OID[:15], "UserFld1": "Unshipped"}
    assert len(notes) == 1 and "UserFld4" in notes[0] and "cut to 15" in notes[0]
    line_values, line_notes = user_fields(make_order().lines[0], rules)
    assert line_values == {"UserFld2": "B000TEST01"} and line_notes == []


def test_user_fields_follow_dotted_paths_and_skip_missing_values():
    rules = MappingSettings(user_fields={"UserFld1": "buyer.purchase_order_number", "UserFld2": "purchase_date"})
    values, _ = user_fields(make_order(buyer={"purchase_order_number": "PO-77"}), rules)
    assert values == {"UserFld1": "PO-77", "UserFld2": "26-03-01 10:00"}
    assert user_fields(make_order(), rules)[0] == {"UserFld2": "26-03-01 10:00"}


@pytest.mark.parametrize("fields, message", [
    ({"UserFld9": "status"}, "is not a Sage user field"),
    ({"Line.UserFld1": "asin"}, "is not a Sage user field"),
    ({"UserFld1": "colour"}, "has no attribute 'colour'"),
    ({"UserFld1": "lines"}, "cannot go in a user field"),
])
def test_bad_user_field_config_is_a_config_error(fields, message):
    with pytest.raises(errors.ConfigError, match=message):
        user_fields(make_order(), MappingSettings(user_fields=fields))


# --- GL accounts ---------------------------------------------------------------------------------------------------

def test_gl_account_most_specific_key_first_and_fails_closed():
    rules = MappingSettings(gl_accounts={"Order/ItemPrice/Principal": "4000", "Order/ItemFees": "6100",
                                         "Refund": "4900"})
    assert gl_account(rules, "Order", "ItemPrice", "Principal") == "4000"
    assert gl_account(rules, "Order", "ItemFees", "Commission") == "6100"
    assert gl_account(rules, "Refund", "ItemPrice", "Principal") == "4900"
    with pytest.raises(errors.Permanent) as info:
        gl_account(rules, "Order", "ItemPrice", "Tax")
    assert info.value.code == "unmapped_gl_account" and "'Order/ItemPrice/Tax'" in str(info.value)


def test_settings_defaults_are_consistent():
    settings = Settings()
    assert settings.orders.total_tolerance == Decimal("0.00")
    assert set(settings.mapping.warehouses) == {"MFN", "AFN"}
