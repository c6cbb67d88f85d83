"""Sage's clock: local server time in naive columns, converted both ways at the gateway with zoneinfo — across
both daylight-saving changes of America/Chicago in 2026 (Mar 8 02:00 CST → 03:00 CDT; Nov 1 02:00 CDT → 01:00 CST).
"""

from __future__ import annotations

from datetime import datetime, timezone

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
