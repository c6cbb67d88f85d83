"""The split deployment (ARCHITECTURE §4): the cloud runs the amazon queue, an on-premises agent next to SQL Server
the sage500 queue. The amazon queue's jobs complete with Sage out of reach — its URL names a file that does not
exist, and the adapter factory fails any amazon-queue job that asks for a Sage gateway — and hand every order to
the one sage500 job, ``apply_order``, which reads Sage and decides once Sage is reachable again."""

from __future__ import annotations

from datetime import datetime

from erpsync.flows import connections
from erpsync.flows import jobs as declared
from erpsync.flows.binder import apply_key
from erpsync.flows.orders import CURSOR


def test_the_amazon_queue_reads_amazon_and_the_state_store_only_and_hands_over(pipeline, monkeypatch):
    touched: list[str] = []
    sage = connections.sage

    def guarded(ctx):
        if declared.get(ctx.job).queue == "amazon":
            touched.append(ctx.job)
            raise AssertionError(f"{ctx.job} (queue amazon) asked for a Sage gateway")
        return sage(ctx)

    monkeypatch.setattr(connections, "sage", guarded)
    sage_url = pipeline.sections.get("sage500", {}).get("url", "sqlite:///.erpsync/sage500.db")
    pipeline.configure("sage500", url=f"sqlite:///{pipeline.base / 'nowhere' / 'sage500.db'}")
    runtime, store, world = pipeline.runtime, pipeline.runtime.store, pipeline.sandbox.world
    imported, windowed = pipeline.generate(2, seed=71)  # no webhook: the notifications go nowhere
    [pending] = pipeline.generate(1, seed=72, status="PENDING", pending_seconds=3600)  # orders.pending = "skip"

    # the cloud side alone: a notified order, then the window for the rest
    outcome = runtime.run("import_order", {"amazon_order_id": imported, "status": "Unshipped"})
    assert (outcome.status, outcome.value) == ("done", "write") and pipeline.journal(imported) == "writing"
    world.advance(180)  # searchOrders shows orders two minutes after their last update
    window = runtime.run("sync_window")
    assert window.status == "done", window.error
    # the imported one is pending in Sage's queue with this very state: nothing new for it
    assert (window.value["read"], window.value["queued"], window.value["deferred"]) == (3, 2, 0)
    assert touched == [] and runtime.pending()["sage500"]["queued"] == 3
    for oid in (imported, windowed, pending):
        handed = store.job_key_get(apply_key(oid))
        assert (handed.job, handed.queue) == ("apply_order", "sage500")
        assert handed.message["payload"]["order"]["amazon_order_id"] == oid  # the canonical order travels
    assert (pipeline.journal(windowed), pipeline.journal(pending)) == ("writing", None)
    updated = [datetime.fromisoformat(pipeline.amazon_order(o)["lastUpdatedTime"])
               for o in (imported, windowed, pending)]
    # handed over is enough: the window's end is recorded, the pending apply_order jobs carry the orders
    assert store.cursor(CURSOR, initial=world.now()).last_value >= max(updated)

    # the on-premises side, with Sage reachable again, decides on what Sage holds
    pipeline.configure("sage500", url=sage_url)
    with pipeline.workers(queues=("sage500",)):
        pipeline.wait_journal([imported, windowed], "written")
        pipeline.wait_journal([pending], "skipped")
        assert runtime.drain(10), pipeline.describe()
    assert [pipeline.sage_rows(o) for o in (imported, windowed, pending)] == [(1, 1), (1, 1), (0, 0)]
    decided = {e.detail["amazon_order_id"] for e in store.audit_list(event="order.skipped")}
    assert decided == {pending}

    # the next window finds every order applied in Sage (the skipped Pending one too) and moves past them all
    world.advance(60)
    again = runtime.run("sync_window")
    assert (again.value["read"], again.value["queued"], again.value["deferred"]) == (3, 0, 0)
    assert store.cursor(CURSOR, initial=world.now()).last_value > max(updated)
    assert touched == [] and store.dead_letters.list() == []
