"""Confirmations from Sage's side: a pick never committed stops no other confirmation (it is passed, remembered and
re-checked on its own), and the shipDate sent to Amazon is Sage's local ship time converted to UTC across both
daylight-saving changes of the site's time zone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update

from erpsync.flows.binder import apply_key
from erpsync.flows.shipments import PENDING
from erpsync.sage500 import schema, warehouse


def written_order(pipeline, **options):
    [oid] = pipeline.generate(1, multi_line_share=0.0, **options)
    pipeline.runtime.run("import_order", {"amazon_order_id": oid, "read": True})
    pipeline.runtime.run("apply_order", pipeline.runtime.store.job_key_get(apply_key(oid)).message["payload"])
    pipeline.runtime.store.job_key_release(apply_key(oid))  # ran here, not by a worker
    assert pipeline.journal(oid) == "written"
    return oid, pipeline.sage_order(oid)


def stock_up(pipeline, item_id: str, qty: int) -> None:
    bins, items, wb = schema.timWhseBinInvt, schema.timItem, schema.timWhseBin
    with pipeline.engine.begin() as conn:
        item = conn.execute(select(items.c.ItemKey).where(items.c.ItemID == item_id)).scalar_one()
        main_bin = conn.execute(select(wb.c.WhseBinKey).where(wb.c.WhseBinID == "A-01-01")).scalar_one()
        conn.execute(bins.delete().where(bins.c.ItemKey == item))
        conn.execute(insert(bins).values(WhseBinKey=main_bin, ItemKey=item, QtyOnHand=qty))


def test_a_pending_pick_stops_no_confirmation_and_is_confirmed_when_it_commits(pipeline):
    sku = pipeline.stocked_skus()[0]
    stock_up(pipeline, sku, 1000)
    oid, order = written_order(pipeline, quantity=251, skus=[sku])
    [line] = order.lines
    runtime = pipeline.runtime

    def pick(n: int) -> int:
        return warehouse.ship_order(pipeline.engine, order.SOKey, [{"lines": {line.SOLineKey: 1},
                                                                    "tracking_no": f"1Z{n:016d}"}])

    stuck = pick(0)  # picked, never committed (yet)
    later = [pick(n) for n in range(1, 251)]
    for ship_key in later:
        warehouse.commit_shipment(pipeline.engine, ship_key)
    assert runtime.run("scan_shipments").value == {"shipments": 250, "packages": 250}
    assert runtime.store.key_set(PENDING) == {stuck}
    assert runtime.run("scan_shipments").value == {"shipments": 0, "packages": 0}  # nothing queued twice
    with pipeline.workers():
        pipeline.wait(lambda: len(pipeline.confirmed(oid)) == 250, timeout=120, what="250 confirmations")
        assert pipeline.journal(oid) == "shipped"
        warehouse.commit_shipment(pipeline.engine, stuck)
        assert runtime.run("scan_shipments").value == {"shipments": 1, "packages": 1}
        pipeline.wait_journal([oid], "confirmed", timeout=60)
    assert runtime.store.key_set(PENDING) == set()
    confirmed = pipeline.confirmed(oid)
    assert len(confirmed) == 251 and {c["tracking_number"] for c in confirmed} == {f"1Z{n:016d}" for n in range(251)}
    assert pipeline.amazon_order(oid)["fulfillment"]["fulfillmentStatus"] == "SHIPPED"


def test_a_pick_deleted_in_sage_is_forgotten(pipeline):
    oid, order = written_order(pipeline)
    [line] = order.lines
    stuck = warehouse.ship_order(pipeline.engine, order.SOKey, [{"lines": {line.SOLineKey: 1}, "tracking_no": "1ZX"}])
    assert pipeline.runtime.run("scan_shipments").value == {"shipments": 0, "packages": 0}
    assert pipeline.runtime.store.key_set(PENDING) == {stuck}
    with pipeline.engine.begin() as conn:  # the warehouse deletes the pick in Sage
        conn.execute(schema.tsoShipmentLog.delete().where(schema.tsoShipmentLog.c.ShipKey == stuck))
    pipeline.runtime.run("scan_shipments")
    assert pipeline.runtime.store.key_set(PENDING) == set()


# (Sage's local ship time in America/Chicago, the shipDate Amazon must receive)
DST = [(datetime(2026, 3, 8, 1, 59), "2026-03-08T07:59:00"), (datetime(2026, 3, 8, 3, 1), "2026-03-08T08:01:00"),
       (datetime(2026, 11, 1, 0, 30), "2026-11-01T05:30:00"), (datetime(2026, 11, 1, 2, 30), "2026-11-01T08:30:00")]


def test_the_ship_date_sent_to_amazon_is_utc_across_daylight_saving(make_pipeline):
    pipeline = make_pipeline(sage500={"timezone": "America/Chicago"})
    sku = pipeline.stocked_skus()[0]
    stock_up(pipeline, sku, 100)
    oid, order = written_order(pipeline, quantity=len(DST), skus=[sku])
    [line] = order.lines
    for n, (local, _) in enumerate(DST):
        ship_key = warehouse.ship_order(pipeline.engine, order.SOKey, [{"lines": {line.SOLineKey: 1},
                                                                        "tracking_no": f"1ZDST{n}"}])
        with pipeline.engine.begin() as conn:  # written by Sage's screens in the server's local time
            conn.execute(update(schema.tsoPendShipment).where(schema.tsoPendShipment.c.ShipKey == ship_key)
                         .values(CreateDate=local))
        warehouse.commit_shipment(pipeline.engine, ship_key)
    assert pipeline.runtime.run("scan_shipments").value == {"shipments": len(DST), "packages": len(DST)}
    with pipeline.workers():
        pipeline.wait_journal([oid], "confirmed", timeout=60)
    sent = {c["tracking_number"]: c["ship_date"] for c in pipeline.confirmed(oid)}
    assert [sent[f"1ZDST{n}"][:19] for n in range(len(DST))] == [utc for _, utc in DST]
    assert all(sent[f"1ZDST{n}"].endswith("Z") or sent[f"1ZDST{n}"].endswith("+00:00") for n in range(len(DST)))
