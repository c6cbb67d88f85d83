"""Orders into Sage end to end: the sandbox posts ORDER_CHANGE webhooks to our web app, real huey consumers run
the jobs, the replica holds the result. Every transformation is checked on the written rows; cancellations, FBA
orders and the polling safety net (sync_window and its cursor) too."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pycountry
import pytest
from sqlalchemy import select

from erpsync import config
from erpsync.amazon import translate
from erpsync.config import ConfigError, OrderSettings
from erpsync.flows.orders import CURSOR, first_start
from erpsync.runtime import store as store_schema
from erpsync.sage500 import schema as s
from erpsync.sage500 import warehouse
from erpsync.web.app import start as start_web

SHIP_METHODS = {"STANDARD": "UPS GROUND", "EXPEDITED": "UPS 2DAY", "SECOND_DAY": "UPS 2DAY",
                "NEXT_DAY": "UPS NEXTDAY"}

BEARER = {"Authorization": "Bearer test-api-token"}  # ERPSYNC_API_TOKEN as make_pipeline sets it: /metrics needs it


def sage_header(pipeline, order_id: str):
    so, x, a, m, c = s.tsoSalesOrder, s.tsoSalesOrderExt_AMZ, s.tciAddress, s.tciShipMethod, s.tarCustomer
    query = (select(so, x.c.MarketplaceId, x.c.FulfillmentChannel, c.c.CustID, m.c.ShipMethID,
                    a.c.AddrName, a.c.AddrLine1, a.c.AddrLine2, a.c.AddrLine3, a.c.City, a.c.StateID,
                    a.c.CountryID, a.c.PostalCode)
             .select_from(so.join(x, x.c.SOKey == so.c.SOKey).join(c, c.c.CustKey == so.c.CustKey)
                          .outerjoin(m, m.c.ShipMethKey == so.c.DfltShipMethKey)
                          .outerjoin(a, a.c.AddrKey == so.c.DfltShipToAddrKey))
             .where(x.c.AmazonOrderId == order_id))
    with pipeline.engine.connect() as conn:
        return conn.execute(query).mappings().one()


def sage_lines(pipeline, so_key: int):
    line, lx = s.tsoSOLine, s.tsoSOLineExt_AMZ
    with pipeline.engine.connect() as conn:
        return conn.execute(select(line.c.SOLineNo, line.c.UserFld1, line.c.UserFld2, line.c.ExtCmnt, lx.c.OrderItemId,
                                   lx.c.SellerSKU)
                            .select_from(line.join(lx, lx.c.SOLineKey == line.c.SOLineKey))
                            .where(line.c.SOKey == so_key)).mappings().all()


def test_webhook_orders_are_written_once_with_every_transformation(pipeline, webhook):
    # duplicate and reordered deliveries of every notification: the inbox and the job keys absorb them
    pipeline.control("PATCH", "faults", json={"duplicate_notifications": 1.0, "out_of_order_notifications": True})
    pipeline.configure("mapping", user_fields={"UserFld2": "marketplace_id", "UserFld3": "is_prime",
                                               "Line.UserFld2": "asin"})
    ids = pipeline.generate(10, seed=11, multi_line_share=0.5, multi_quantity_share=0.5, promotion_share=0.5,
                            gift_share=0.4, international_share=0.5, business_share=0.3)
    with pipeline.workers():
        pipeline.wait_journal(ids, "written")
    assert pipeline.runtime.store.dead_letters.list() == []
    seen = {"promotion": 0, "gift": 0, "abroad": 0, "multi_line": 0}
    for oid in ids:
        amazon = pipeline.amazon_order(oid)
        assert pipeline.sage_rows(oid) == (1, 1)
        sage = sage_header(pipeline, oid)
        # pricing: the Sage total is Amazon's to the cent
        assert sage["TranAmt"] == Decimal(amazon["proceeds"]["grandTotal"]["amount"])
        assert sage["SalesAmt"] + sage["FreightAmt"] + sage["STaxAmt"] - sage["TradeDiscAmt"] == sage["TranAmt"]
        # custom fields and enrichment
        assert (sage["MarketplaceId"], sage["FulfillmentChannel"], sage["CustID"]) == \
            ("ATVPDKIKX0DER", "MFN", "AMAZON-US")
        assert sage["CustPONo"] == oid[-15:] and sage["TranCmnt"].startswith(f"Amazon {oid}")
        prime = "Yes" if "PRIME" in amazon["programs"] else "No"
        assert (sage["UserFld2"], sage["UserFld3"]) == ("ATVPDKIKX0DER", prime)  # [mapping] user_fields
        level = amazon["fulfillment"]["fulfillmentServiceLevel"]
        assert sage["Status"] == 1 and sage["ShipMethID"] == SHIP_METHODS[level]
        items = {i["orderItemId"]: i for i in amazon["orderItems"]}
        lines = sage_lines(pipeline, sage["SOKey"])
        assert {line["OrderItemId"] for line in lines} == set(items)
        for line in lines:
            assert line["UserFld1"] == line["OrderItemId"]
            assert line["UserFld2"] == items[line["OrderItemId"]]["product"]["asin"]
            assert line["SellerSKU"] == items[line["OrderItemId"]]["product"]["sellerSku"]
        # address: Amazon's recipient in tciAddress, country as ISO alpha-3, nothing over Sage's limits
        address = amazon["recipient"]["deliveryAddress"]
        assert sage["AddrName"] == address["name"] and sage["AddrLine1"]
        assert sage["CountryID"] == pycountry.countries.get(alpha_2=address["countryCode"]).alpha_3
        assert sage["City"] == address["city"] and sage["PostalCode"] == address["postalCode"]
        if address["countryCode"] in ("US", "CA"):
            assert sage["StateID"] == address["stateOrRegion"]
        seen["abroad"] += address["countryCode"] != "US"
        seen["multi_line"] += len(items) > 1
        seen["promotion"] += any("promotion" in i for i in items.values())
        gifts = [i for i in items.values() if any(b["type"] == "GIFT_WRAP" for b in i["proceeds"]["breakdowns"])]
        seen["gift"] += bool(gifts)
        for line in lines:
            if items[line["OrderItemId"]] in gifts:
                assert "gift wrap" in line["ExtCmnt"]
        promotions = sum((-Decimal(d["value"]["amount"]) for i in items.values()
                          for b in i["proceeds"]["breakdowns"] if b["type"] == "DISCOUNT"
                          for d in b["detailedBreakdowns"] if d["subtype"] == "ITEM"), Decimal(0))
        assert sage["TradeDiscAmt"] == promotions  # item promotions are Sage trade discounts
    assert all(seen.values()), f"the generated orders should cover every case: {seen}"
    # every notification arrived twice: each NotificationId is in the inbox once, the repeats were answered 200
    published = pipeline.control("GET", "notifications")["published"]
    with pipeline.runtime.store.engine.connect() as conn:
        inbox = set(conn.execute(select(store_schema.inbox.c.notification_id)).scalars())
    assert inbox == {p["NotificationMetadata"]["NotificationId"] for p in published}
    metrics = httpx.get(f"{webhook.url}/metrics", headers=BEARER).text
    assert f'erpsync_webhook_notifications_total{{outcome="duplicate"}} {float(len(published))}' in metrics
    assert f'erpsync_webhook_notifications_total{{outcome="queued"}} {float(len(published))}' in metrics


def test_cancelled_before_shipment_is_voided_in_sage(pipeline, webhook):
    [oid] = pipeline.generate(1, seed=3)
    with pipeline.workers():
        pipeline.wait_journal([oid], "written")
        so_before = pipeline.sage_order(oid)
        pipeline.control("POST", f"orders/{oid}/cancel", json={"reason": "Buyer canceled"})
        pipeline.wait_journal([oid], "voided")
    order = pipeline.sage_order(oid)
    assert order.SOKey == so_before.SOKey and order.Status == 3  # the same order, canceled
    assert all(line.QtyOpenToShip == 0 for line in order.lines)
    assert pipeline.runtime.store.dead_letters.list() == []


def test_cancelled_before_it_reached_sage_is_never_written(pipeline, webhook):
    [oid] = pipeline.generate(1, seed=4)
    pipeline.control("POST", f"orders/{oid}/cancel", json={"reason": "Buyer canceled"})
    with pipeline.workers():
        pipeline.wait_journal([oid], "skipped")
        pipeline.runtime.drain(10)
    assert pipeline.sage_rows(oid) == (0, 0)


def test_cancelled_after_shipment_is_a_dead_letter_and_sage_is_untouched(pipeline, webhook):
    [oid] = pipeline.generate(1, seed=5, multi_line_share=0)
    with pipeline.workers():
        pipeline.wait_journal([oid], "written")
        order = pipeline.sage_order(oid)
        line = order.lines[0]
        ship_key = warehouse.ship_order(pipeline.engine, order.SOKey, [
            {"lines": {line.SOLineKey: line.QtyOrd}, "tracking_no": "1Z999AA10123456784"}])
        warehouse.commit_shipment(pipeline.engine, ship_key)
        # Amazon has not been told (no scan yet): the buyer can still cancel there
        pipeline.control("POST", f"orders/{oid}/cancel", json={"reason": "Buyer canceled"})
        pipeline.wait(lambda: pipeline.runtime.store.dead_letters.list(), what="a dead letter")
    [dead] = pipeline.runtime.store.dead_letters.list()
    assert dead.error_code == "cancelled_after_shipment" and oid in dead.message
    assert "cancelled on Amazon after Sage shipped" in dead.message or "after the Sage warehouse" in dead.message
    assert pipeline.sage_order(oid).Status == 4  # still the shipped (closed) order
    assert pipeline.journal(oid) == "failed"


def test_pending_orders_written_on_hold_are_released_once_amazon_takes_payment(make_pipeline):
    pipeline = make_pipeline(orders={"pending": "hold"})
    server = start_web(pipeline.runtime)
    pipeline.webhook_to(f"{server.url}/notifications")
    try:
        [oid] = pipeline.generate(1, seed=7, status="PENDING", pending_seconds=3600)
        with pipeline.workers():
            pipeline.wait_journal([oid], "written")
            held = sage_header(pipeline, oid)
            assert (held["Hold"], held["HoldReason"], held["Status"]) == (1, "Amazon: Pending", 1)
            pipeline.sandbox.world.advance(3600)  # payment authorized: Unshipped, notified
            pipeline.wait(lambda: sage_header(pipeline, oid)["Hold"] == 0, what="the hold released")
            assert pipeline.runtime.drain(10)
    finally:
        server.stop()
    released = sage_header(pipeline, oid)
    assert (released["SOKey"], released["HoldReason"], released["Status"]) == (held["SOKey"], None, 1)
    assert [e.detail["released"] for e in pipeline.runtime.store.audit_list(event="order.released")] == [True]


def test_fba_orders_are_skipped_by_default(pipeline, webhook):
    [oid] = pipeline.generate(1, seed=6, afn_share=1.0)
    with pipeline.workers():
        pipeline.wait_journal([oid], "skipped")
        pipeline.wait(lambda: pipeline.amazon_order(oid)["fulfillment"]["fulfillmentStatus"] == "SHIPPED")
        pipeline.runtime.drain(10)
    assert pipeline.sage_rows(oid) == (0, 0)
    assert pipeline.journal(oid) == "skipped"


def test_fba_orders_written_as_shipped_from_the_fba_warehouse(make_pipeline):
    pipeline = make_pipeline(orders={"afn": "shipped"})
    ids = pipeline.generate(2, seed=8, afn_share=1.0)
    with pipeline.workers():
        # no webhook here: the sync window finds them (Amazon ships FBA orders at once)
        pipeline.sandbox.world.advance(180)
        pipeline.runtime.run("sync_window")
        pipeline.wait_journal(ids, "written")
    for oid in ids:
        sage = sage_header(pipeline, oid)
        order = pipeline.sage_order(oid)
        assert sage["Status"] == 4 and sage["FulfillmentChannel"] == "AFN"  # Closed
        assert {line.WhseID for line in order.lines} == {"FBA"}
        assert all(line.QtyOpenToShip == 0 and line.QtyShip == line.QtyOrd for line in order.lines)
        assert sage["TranAmt"] == Decimal(pipeline.amazon_order(oid)["proceeds"]["grandTotal"]["amount"])


def test_sync_window_catches_missed_notifications_and_moves_its_cursor_past_handed_over_orders(pipeline):
    # no webhook, no SQS: every notification is missed
    ids = pipeline.generate(3, seed=9)
    world, store, runtime = pipeline.sandbox.world, pipeline.runtime.store, pipeline.runtime
    world.advance(180)  # searchOrders shows orders two minutes after their last update
    first = runtime.run("sync_window")
    assert first.status == "done" and (first.value["read"], first.value["queued"]) == (3, 3)
    cursor = store.cursor(CURSOR, initial=world.now())
    # handed over is enough: the pending apply_order carries the order, the cursor is not held back for it
    assert cursor.last_value >= max(datetime.fromisoformat(pipeline.amazon_order(o)["lastUpdatedTime"]) for o in ids)
    assert {pipeline.journal(o) for o in ids} == {"writing"}
    again = runtime.run("sync_window")  # the overlap reads them again while in flight: nothing new for Sage
    assert (again.value["read"], again.value["queued"], again.value["deferred"]) == (3, 0, 0)
    with pipeline.workers():
        pipeline.wait_journal(ids, "written")
        pipeline.runtime.drain(10)
    world.advance(60)
    last = runtime.run("sync_window")
    assert (last.value["read"], last.value["queued"]) == (3, 0)  # settled by the journal: no Sage write
    moved = store.cursor(CURSOR, initial=world.now()).last_value
    assert moved > cursor.last_value and moved >= world.now() - timedelta(minutes=3)
    assert [pipeline.sage_rows(o) for o in ids] == [(1, 1)] * 3


def test_the_first_sync_window_starts_at_orders_sync_start(pipeline):
    world, runtime, store = pipeline.sandbox.world, pipeline.runtime, pipeline.runtime.store
    ids = pipeline.generate(2, seed=12)
    updated = sorted(datetime.fromisoformat(pipeline.amazon_order(o)["lastUpdatedTime"]) for o in ids)
    world.advance(180)

    def first_window(start: datetime) -> dict:
        with store.engine.begin() as conn:  # a fresh installation: the window has no position yet
            conn.execute(store_schema.cursors.delete().where(store_schema.cursors.c.name == CURSOR))
        pipeline.configure("orders", sync_start=start.isoformat())
        counts = runtime.run("sync_window").value
        return {"read": counts["read"], "queued": counts["queued"]}

    # the sandbox clock runs while the two orders are generated, so under load they may be seconds apart
    assert first_window(updated[-1] + timedelta(seconds=1)) == {"read": 0, "queued": 0}
    assert first_window(updated[0] - timedelta(seconds=1)) == {"read": 2, "queued": 2}


def test_orders_sync_start_is_hours_back_or_a_timestamp_with_a_zone(tmp_path):
    now = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    assert first_start(OrderSettings(), now) == now - timedelta(hours=24)  # the default
    assert first_start(OrderSettings(sync_start=1.5), now) == now - timedelta(minutes=90)
    file = tmp_path / "erpsync.toml"
    for value, start in (("6", now - timedelta(hours=6)),
                         ('"2026-03-01T00:00:00Z"', datetime(2026, 3, 1, tzinfo=timezone.utc)),
                         ("2026-03-01T01:00:00+01:00", datetime(2026, 3, 1, tzinfo=timezone.utc))):  # TOML date
        file.write_text(f"[orders]\nsync_start = {value}\n")
        assert first_start(config.load(file).orders, now) == start
    for value, message in (('"2026-03-01T00:00:00"', "has no timezone"), ("-1", "hours >= 0")):
        file.write_text(f"[orders]\nsync_start = {value}\n")
        with pytest.raises(ConfigError, match=message):
            config.load(file)
    assert "sync_start = 24" in config.TEMPLATE


def test_a_stale_state_handed_over_after_a_newer_one_is_not_applied(pipeline):
    """An import that read the order before the buyer cancelled it hands over late, after the cancellation was
    applied: Sage must not get the order from the stale copy."""
    [oid] = pipeline.generate(1, seed=6)
    stale = translate.order_from_api(pipeline.amazon_order(oid)).model_dump(mode="json")
    pipeline.sandbox.world.advance(5)
    pipeline.control("POST", f"orders/{oid}/cancel", json={"reason": "Buyer canceled"})
    assert pipeline.runtime.run("import_order", {"amazon_order_id": oid}).status == "done"
    with pipeline.workers(queues=("sage500",)):
        pipeline.wait_journal([oid], "skipped")
        assert pipeline.runtime.drain(10)
    late = pipeline.runtime.run("apply_order", {"order": stale})
    assert (late.status, late.value["action"]) == ("done", "stale")
    assert pipeline.sage_rows(oid) == (0, 0) and pipeline.journal(oid) == "skipped"
