"""What makes the kill test pass, piece by piece, on the real SqliteHuey storage: ``Runtime.recover_lost`` re-queues
exactly the jobs whose message vanished, and the schedule queues its periodic jobs once however many workers run
one."""

from __future__ import annotations

import time
from datetime import timedelta

from erpsync.runtime.schedule import Scheduler


def take_and_lose(runtime, queue: str) -> dict:
    """What a worker killed mid-job leaves behind: huey has handed the message out (and deleted it)."""
    task = runtime.queues[queue].dequeue()
    assert task is not None
    return task.args[0]


def test_only_a_job_whose_message_is_gone_is_requeued(pipeline):
    runtime = pipeline.runtime
    runtime.enqueue("apply_order", key="apply_order:lost", order={"amazon_order_id": "111-0000000-0000001"})
    runtime.enqueue("apply_order", key="apply_order:waiting", order={"amazon_order_id": "111-0000000-0000002"})
    runtime.enqueue("apply_order", key="apply_order:later", delay=3600,
                    order={"amazon_order_id": "111-0000000-0000003"})
    lost = take_and_lose(runtime, "sage500")
    assert lost["key"] == "apply_order:lost"
    assert runtime.recover_lost(timedelta(seconds=60)) == []  # not stale yet: it may still be running
    time.sleep(0.05)
    assert runtime.recover_lost(timedelta(seconds=0.01)) == ["apply_order:lost"]
    assert runtime.pending()["sage500"] == {"queued": 2, "scheduled": 1}
    [requeued] = [t.args[0] for t in runtime.queues["sage500"].pending() if t.args[0]["key"] == "apply_order:lost"]
    # the very message that was lost, with its kwargs, under a new token: the lost copy can no longer run
    assert {**requeued, "token": None} == {**lost, "token": None} and requeued["token"] != lost["token"]
    assert runtime.recover_lost(timedelta(seconds=0.01)) == []  # queued again: nothing more to do
    assert runtime.store.job_key_get("apply_order:lost").message == requeued
    assert runtime.execute(lost).status == "superseded"


def test_the_schedule_queues_each_periodic_job_once_whatever_the_number_of_workers(pipeline):
    runtime = pipeline.runtime
    now = [1000.0]
    first, second = (Scheduler(runtime, clock=lambda: now[0]) for _ in range(2))
    assert first.tick() == ["sync_window", "scan_shipments", "sync_settlements", "recover_lost_jobs", "pii_purge"]
    assert second.tick() == ["sync_window", "scan_shipments", "sync_settlements", "recover_lost_jobs", "pii_purge"]
    assert runtime.pending()["amazon"]["queued"] == 2 and runtime.pending()["sage500"]["queued"] == 1
    now[0] += 1
    assert first.tick() == []  # nothing due yet
    now[0] += pipeline.settings.orders.shipment_scan_seconds
    assert "scan_shipments" in first.tick()  # due, still pending: the key keeps it single
    assert runtime.pending()["sage500"]["queued"] == 1
    now[0] += pipeline.settings.orders.sync_interval_seconds
    assert set(first.tick()) == {"sync_window", "scan_shipments", "recover_lost_jobs"}
    assert runtime.pending()["amazon"]["queued"] == 2
