"""Buyer data retention: ``erpsync pii purge`` leaves no name, address, phone or e-mail of an order past its
retention anywhere in the state store, keeps what is younger, never touches Sage, and a purged dead letter still
replays (the order is read from Amazon again)."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa
from typer.testing import CliRunner

from erpsync.cli import app
from erpsync.flows.binder import apply_key
from erpsync.runtime import deadletter, pii
from erpsync.runtime.store import metadata, utcnow
from erpsync.sage500 import schema, warehouse

runner = CliRunner()
RETENTION = timedelta(days=30)


def imported(pipeline, **options) -> str:
    """An order read from the sandbox and applied to Sage here (no workers): written, or a dead letter."""
    [oid] = pipeline.generate(1, multi_line_share=0, **options)
    runtime = pipeline.runtime
    runtime.run("import_order", {"amazon_order_id": oid, "read": True})
    runtime.run("apply_order", runtime.store.job_key_get(apply_key(oid)).message["payload"], key=apply_key(oid))
    runtime.store.job_key_release(apply_key(oid))
    return oid


def store_text(store) -> str:
    """Every row of every state store table, as text."""
    with store.reader.connect() as conn:
        return json.dumps({t.name: [dict(r._mapping) for r in conn.execute(sa.select(t))]
                           for t in metadata.sorted_tables}, default=str)


def personal(order: dict) -> set[str]:
    ship_to, buyer = order.get("ship_to") or {}, order.get("buyer") or {}
    values = {ship_to.get("name"), ship_to.get("line1"), ship_to.get("phone"), buyer.get("name"),
              buyer.get("email")}
    return {v for v in values if v and len(v) >= 5}


def sage_names(pipeline) -> set[str]:
    with pipeline.engine.connect() as conn:
        return set(conn.execute(sa.select(schema.tciAddress.c.AddrName)).scalars())


def test_purge_redacts_every_trace_past_retention_keeps_sage_and_the_replay_reads_amazon_again(pipeline):
    runtime, store = pipeline.runtime, pipeline.runtime.store
    shipped = imported(pipeline, seed=41)
    order = pipeline.sage_order(shipped)
    ship_key = warehouse.ship_order(pipeline.engine, order.SOKey, [
        {"lines": {line.SOLineKey: line.QtyOrd for line in order.lines}, "tracking_no": "1Z999AA10000000041"}])
    warehouse.commit_shipment(pipeline.engine, ship_key)
    runtime.run("scan_shipments")
    assert pipeline.journal(shipped) == "shipped"

    refused = imported(pipeline, seed=22, skus=["WIDGET-BLUE-L"])
    [dead] = store.dead_letters.list()
    assert (dead.job, dead.error_code, dead.record) == ("apply_order", "unknown_sku", refused)
    buyer_data = personal(dead.payload["order"])
    assert len(buyer_data) >= 3, dead.payload["order"]
    # a message stuck in retries for longer than the retention carries the whole order too
    store.job_key_claim("apply_order:stuck", job="apply_order", queue="sage500", due_at=utcnow() - 2 * RETENTION,
                        stale_after=timedelta(days=1), message={"job": "apply_order", "payload": dead.payload})
    # a past error of the shipped order that quoted the buyer (the journal keeps the last one)
    quoted = sorted(buyer_data)[0]
    store.journal_set(shipped, "shipped", error=f"carrier refused the label for {quoted}")
    # an ORDER_CHANGE notification in the inbox (stored without personal data, but purged all the same)
    store.inbox_add("0f6a1b2c-0000-4000-8000-000000000041", notification_type="ORDER_CHANGE",
                    amazon_order_id=shipped, payload={"amazon_order_id": shipped, "buyer": {"name": quoted}})
    assert all(value in store_text(store) for value in buyer_data)
    sage_before = (pipeline.sage_order(shipped), sage_names(pipeline))

    # today: only the stuck message is past the retention; the fresh dead letter keeps what a replay needs
    report = pii.purge(store, RETENTION)
    assert report.counts["job_messages"] == 1 and report.counts["dead_letters"] == 0
    assert store.dead_letters.get(dead.id).payload == dead.payload
    assert "[redacted]" in json.dumps(store.job_key_get("apply_order:stuck").message)

    # a month and a day later (the command, as the schedule runs it): nothing personal is left anywhere
    later = utcnow() + RETENTION + timedelta(days=1)
    report = pii.purge(store, RETENTION, now=later)
    assert report.orders == 1 and report.counts["dead_letters"] == 1 and report.counts["journal"] == 1
    text = store_text(store)
    assert [value for value in buyer_data if value in text] == []
    purged = store.dead_letters.get(dead.id).payload
    assert purged["order"]["ship_to"] == "[redacted]" and pii.PURGED in purged
    assert pii.purge(store, RETENTION, now=later).total == 0  # idempotent
    assert (pipeline.sage_order(shipped), sage_names(pipeline)) == sage_before  # Sage is the seller's books

    # the repair still works: the replay reads the order from Amazon again, buyer and address included
    pipeline.configure("mapping", sku_aliases={"WIDGET-BLUE-L": "WIDGET-BLU-L"})
    result = deadletter.replay(runtime, dead.id, now=True)
    assert result.outcome.status == "done", result.outcome
    assert pipeline.journal(refused) == "written" and pipeline.sage_rows(refused) == (1, 1)
    ship_to_name = dead.payload["order"]["ship_to"]["name"]
    assert ship_to_name[:40] in sage_names(pipeline)


def test_erpsync_pii_purge_reports_what_it_redacted(pipeline):
    imported(pipeline, seed=22, skus=["WIDGET-BLUE-L"])
    result = runner.invoke(app, ["pii", "purge", "--days", "0", "--json", "--config", str(pipeline.config_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["dead_letters"] == 1 and report["orders"] == 0
    assert pii.PURGED in pipeline.runtime.store.dead_letters.list()[0].payload
