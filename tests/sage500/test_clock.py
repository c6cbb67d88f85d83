"""Sage's clock: local server time in naive columns, converted both ways at the gateway with zoneinfo — across
both daylight-saving changes of America/Chicago in 2026 (Mar 8 02:00 CST → 03:00 CDT; Nov 1 02:00 CDT → 01:00 CST).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from erpsync.config import Settings
from erpsync.errors import ConfigError
from erpsync.sage500 import schema as s
from erpsync.sage500 import warehouse
from erpsync.sage500.clock import SageClock
from erpsync.sage500.gateway import Sage500Gateway

CHICAGO = SageClock.named("America/Chicago")
Z = timezone.utc

# (Sage's naive local time, the UTC instant it means)
SPRING = [(datetime(2026, 3, 8, 1, 59), datetime(2026, 3, 8, 7, 59, tzinfo=Z)),  # CST, UTC-6
          (datetime(2026, 3, 8, 3, 1), datetime(2026, 3, 8, 8, 1, tzinfo=Z))]  # CDT, UTC-5: 3 minutes later
FALL = [(datetime(2026, 11, 1, 0, 30), datetime(2026, 11, 1, 5, 30, tzinfo=Z)),  # CDT
        (datetime(2026, 11, 1, 1, 30), datetime(2026, 11, 1, 6, 30, tzinfo=Z)),  # twice that night: the first
        (datetime(2026, 11, 1, 2, 30), datetime(2026, 11, 1, 8, 30, tzinfo=Z))]  # CST, UTC-6


@pytest.mark.parametrize("local, instant", SPRING + FALL)
def test_both_ways_across_daylight_saving(local, instant):
    assert CHICAGO.from_sage(local) == instant and CHICAGO.from_sage(local).tzinfo is Z
    assert CHICAGO.to_sage(instant) == local


def test_the_second_pass_of_the_repeated_hour_and_the_skipped_hour():
    assert CHICAGO.to_sage(datetime(2026, 11, 1, 7, 30, tzinfo=Z)) == datetime(2026, 11, 1, 1, 30)  # CST pass
    assert CHICAGO.from_sage(datetime(2026, 3, 8, 2, 30)) == datetime(2026, 3, 8, 8, 30, tzinfo=Z)  # never shown


def test_utc_by_default_and_unknown_zones_refused():
    clock = SageClock()
    assert clock.from_sage(datetime(2026, 7, 1, 12)) == datetime(2026, 7, 1, 12, tzinfo=Z)
    assert clock.from_sage(None) is None
    with pytest.raises(ConfigError, match="'America/Chicgo' is not an IANA time zone name"):
        SageClock.named("America/Chicgo")
    with pytest.raises(ValueError, match="not an IANA time zone name"):
        Settings(sage500={"timezone": "Central"})
    assert Settings(sage500={"timezone": "America/Chicago"}).sage500.timezone == "America/Chicago"


@pytest.mark.parametrize("local, instant", [SPRING[0], SPRING[1], FALL[1], FALL[2]])
def test_tran_date_written_and_read_in_sages_local_time(sage_engine, make_order, local, instant):
    gateway = Sage500Gateway(sage_engine, clock=CHICAGO)
    gateway.create_sales_order(make_order("113-0000003-0000001", TranDate=instant, PurchaseDate=instant))
    with sage_engine.connect() as conn:
        staged = conn.execute(select(s.StgSalesOrder.c.TranDate)).scalar_one()
        so = conn.execute(select(s.tsoSalesOrder.c.TranDate, s.tsoSalesOrder.c.CreateDate)).one()
        ext = conn.execute(select(s.tsoSalesOrderExt_AMZ.c.PurchaseDate)).scalar_one()
    assert staged == so.TranDate == local
    assert ext == instant.replace(tzinfo=None)  # the extension table is erpsync's own: UTC
    assert abs(CHICAGO.from_sage(so.CreateDate) - datetime.now(Z)).total_seconds() < 3600  # Sage's clock, not UTC
    assert gateway.order_by_amazon_id("113-0000003-0000001").TranDate == instant


@pytest.mark.parametrize("local, instant", SPRING + FALL)
def test_ship_dates_read_as_utc_across_daylight_saving(sage_engine, make_order, stock, local, instant):
    gateway = Sage500Gateway(sage_engine, clock=CHICAGO)
    stock(sage_engine, "WIDGET-BLU-L", {"A-01-01": 10})
    so = gateway.create_sales_order(make_order("113-0000003-0000002"))
    line = gateway.order_by_amazon_id("113-0000003-0000002").lines[0]
    pending = warehouse.ship_order(sage_engine, so.SOKey, [{"lines": {line.SOLineKey: 1}, "tracking_no": "1ZA"}])
    with sage_engine.begin() as conn:  # Sage's warehouse screens write the server's local time
        conn.execute(update(s.tsoPendShipment).where(s.tsoPendShipment.c.ShipKey == pending).values(CreateDate=local))
    warehouse.commit_shipment(sage_engine, pending)
    [record] = gateway.shipments_since(0).records
    assert record.ShipDate == instant
    warehouse.post_shipment(sage_engine, pending)  # posted: the date comes from tsoShipment.TranDate
    [record] = gateway.shipments([pending]).records
    assert record.TranStatus == 3 and record.ShipDate == instant


def test_price_sheets_are_in_force_by_sages_clock(sage_engine):
    """A price the site keyed to take effect in two hours of Sage's local time is not in force yet — though that
    local time is already past in UTC (Chicago is behind): the listing prices and the data-quality check read the
    sheets at Sage's now."""
    from decimal import Decimal

    from sqlalchemy import insert

    from erpsync import model
    from erpsync.flows import prices, quality

    gateway = Sage500Gateway(sage_engine, clock=CHICAGO)
    settings = Settings()
    in_force = prices.sheet_prices(settings, gateway, "ATVPDKIKX0DER")["WIDGET-BLU-L"]
    with sage_engine.begin() as conn:
        row = conn.execute(select(s.timPriceSheet).join(s.timItem, s.timItem.c.ItemKey == s.timPriceSheet.c.ItemKey)
                           .join(s.timWarehouse, s.timWarehouse.c.WhseKey == s.timPriceSheet.c.WhseKey)
                           .where(s.timItem.c.ItemID == "WIDGET-BLU-L", s.timPriceSheet.c.CurrID == "USD",
                                  s.timWarehouse.c.WhseID == "MAIN")
                           .order_by(s.timPriceSheet.c.EffectiveDate.desc())).mappings().first()
        conn.execute(insert(s.timPriceSheet).values(
            {**row, "EffectiveDate": CHICAGO.to_sage() + timedelta(hours=2), "ListPrice": Decimal("999")}))
    assert prices.sheet_prices(settings, gateway, "ATVPDKIKX0DER")["WIDGET-BLU-L"] == in_force
    money = {"amount": "20", "currency": "USD"}
    nothing = {"amount": "0", "currency": "USD"}
    order = model.parse(model.Order, {
        "amazon_order_id": "113-0000003-0000009", "marketplace_id": "ATVPDKIKX0DER", "status": "Unshipped",
        "fulfillment_channel": "MFN", "purchase_date": "2026-03-01T10:00:00Z", "last_update_date":
        "2026-03-01T10:00:00Z", "lines": [{
            "order_item_id": "10000000000001", "sku": "WIDGET-BLU-L", "quantity": 1, "unit_price": money,
            "item_price": money, **{k: nothing for k in (
                "shipping_price", "shipping_discount", "promotion_discount", "gift_wrap_price", "item_tax",
                "shipping_tax", "gift_wrap_tax", "promotion_discount_tax", "shipping_discount_tax")}}]},
        record="test")
    evidence = quality.evidence(gateway.engine, "SOA", order, ["WIDGET-BLU-L"], settings,
                                sage_now=gateway.clock.to_sage())
    assert evidence.prices == {"WIDGET-BLU-L": in_force}
    in_utc = quality.evidence(gateway.engine, "SOA", order, ["WIDGET-BLU-L"], settings)  # the old reading
    assert in_utc.prices == {"WIDGET-BLU-L": Decimal("999")}
