"""The mission's error cases, each against the sandbox over HTTP, the replica and real SqliteHuey consumers:
rate limit exceeded at peak, an invalid SellerSKU repaired by an alias and a replay, Sage unavailable, and the
same order written concurrently by threads and processes while every notification arrives twice."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import structlog
from typer.testing import CliRunner

from erpsync.cli import app
from erpsync.flows.binder import apply_key
from erpsync.runtime.schedule import Scheduler

runner = CliRunner()


@contextmanager
def captured_events():
    """structlog events of every level, whatever level an earlier command configured."""
    saved = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as events:
            yield events
    finally:
        structlog.configure(wrapper_class=saved)


def test_rate_limit_exceeded_at_peak_loses_nothing_and_leaves_nothing_stuck(make_pipeline, webhook):
    pipeline = make_pipeline(orders={"sync_interval_seconds": 1, "backlog_threshold": 20})
    # a throttle storm on the order reads, on top of Amazon's usage plans (getOrder burst 30, searchOrders 20)
    pipeline.control("PATCH", "faults", json={"throttle_storm_rate": 0.3, "operations": ["getOrder", "searchOrders"]})
    ids = pipeline.generate(40, seed=21)
    # the peak: every notification (placed, then paid) is queued before a worker starts
    pipeline.wait(lambda: len(pipeline.runtime.store.job_keys_pending()) == 80, what="80 queued imports")
    scheduler = Scheduler(pipeline.runtime, tick_seconds=0.2)
    with captured_events() as events, pipeline.workers():
        scheduler.start()
        try:
            pipeline.wait_journal(ids, "written", timeout=90)
            assert pipeline.runtime.drain(30), pipeline.describe()  # nothing stuck in a queue or schedule
        finally:
            scheduler.stop()
    assert pipeline.runtime.store.dead_letters.list() == []
    assert all(pipeline.sage_rows(oid) == (1, 1) for oid in ids)
    retries = [e for e in events if e["event"] == "job.retry"]
    assert any(e["error_code"] in ("throttled", "rate_limited") for e in retries), "the storm was never felt"
    # under backlog, imports were left to the newest-first reader and the window's pages, which handed them over
    assert any(e["event"] == "order.deferred" for e in events)
    assert any(e["event"] in ("orders.window", "orders.notified_read") and e["queued"] > 0 for e in events)


def test_invalid_seller_sku_is_a_dead_letter_until_an_alias_and_a_replay_create_the_order(pipeline, webhook):
    [oid] = pipeline.generate(1, seed=22, skus=["WIDGET-BLUE-L"], multi_line_share=0)
    with pipeline.workers():
        pipeline.wait(lambda: pipeline.runtime.store.dead_letters.list(), what="a dead letter")
        [dead] = pipeline.runtime.store.dead_letters.list()
        assert (dead.job, dead.error_code, dead.record) == ("apply_order", "unknown_sku", oid)
        assert "SKU 'WIDGET-BLUE-L'" in dead.message and f"order {oid}" in dead.message
        assert "closest items: WIDGET-BLU-L" in dead.message and "sku_aliases" in dead.message
        assert pipeline.journal(oid) == "failed" and pipeline.sage_rows(oid) == (0, 0)

        pipeline.configure("mapping", sku_aliases={"WIDGET-BLUE-L": "WIDGET-BLU-L"})
        result = runner.invoke(app, ["dlq", "replay", str(dead.id), "--config", str(pipeline.config_path)])
        assert result.exit_code == 0, result.output
        pipeline.wait_journal([oid], "written")
    order = pipeline.sage_order(oid)
    assert {line.ItemID for line in order.lines} == {"WIDGET-BLU-L"}
    assert {line.SellerSKU for line in order.lines} == {"WIDGET-BLUE-L"}
    replayed = pipeline.runtime.store.dead_letters.get(dead.id)
    assert (replayed.status, replayed.replay_result) == ("replayed", "succeeded")
    assert pipeline.runtime.store.dead_letters.list() == []


def test_sage_unavailable_keeps_the_backlog_without_dead_letters_and_drains_it_on_recovery(make_pipeline, webhook):
    # a retry budget of 2: had the outage spent it, every job below would be a dead letter
    pipeline = make_pipeline(queue={"max_retries": 2, "backoff_base_seconds": 0.02, "backoff_max_seconds": 0.2})
    sage_url = pipeline.sections.get("sage500", {}).get("url", "sqlite:///.erpsync/sage500.db")
    first = pipeline.generate(2, seed=23)
    with pipeline.workers(queues=("amazon",)):
        pipeline.wait_journal(first, "writing")  # read from Amazon, write queued for Sage
        # Sage goes away: the URL now names a directory, which SQLite cannot open
        pipeline.configure("sage500", url=f"sqlite:///{pipeline.base / '.erpsync'}")
        later = pipeline.generate(2, seed=24)
        with pipeline.workers(queues=("sage500",)):
            def retried() -> bool:
                pending = {p.key: p for p in pipeline.runtime.store.job_keys_pending()}
                # the amazon side still reads the later orders and hands them over: apply_order waits for Sage
                keys = [apply_key(o) for o in first + later]
                return all(k in pending and pending[k].attempts >= 4
                           and "Sage database unavailable" in pending[k].last_error for k in keys)

            pipeline.wait(retried, timeout=30, what="retries through the outage")
            assert pipeline.runtime.store.dead_letters.list() == []
            assert {pipeline.journal(o) for o in first} == {"writing"}
            pipeline.configure("sage500", url=sage_url)  # Sage is back
            pipeline.wait_journal(first + later, "written")
            assert pipeline.runtime.drain(20)
    assert pipeline.runtime.store.dead_letters.list() == []
    assert all(pipeline.sage_rows(o) == (1, 1) for o in first + later)


WRITER = """
import json, sys, time
from pathlib import Path
from erpsync import config
from erpsync.runtime.jobs import Runtime, load_job_modules
load_job_modules()
runtime = Runtime(config.load(sys.argv[1]))
payload = json.loads(Path(sys.argv[2]).read_text())
go = Path(sys.argv[3])
while not go.exists():
    time.sleep(0.005)
print(runtime.run("apply_order", payload).value)
"""


def test_duplicate_creation_through_concurrency_and_retries_is_impossible(pipeline, webhook):
    pipeline.control("PATCH", "faults", json={"duplicate_notifications": 1.0})
    [oid] = pipeline.generate(1, seed=25, multi_line_share=1.0)
    runtime = pipeline.runtime
    # the import hands the canonical order to apply_order; take that message and run it many times at once
    assert runtime.run("import_order", {"amazon_order_id": oid, "read": True}).status == "done"
    payload = runtime.store.job_key_get(apply_key(oid)).message["payload"]
    file, go = pipeline.base / "write.json", pipeline.base / "go"
    file.write_text(json.dumps(payload))
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(pipeline.config_path), str(file), str(go)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results: list = []
    barrier = threading.Barrier(6)

    def write() -> None:
        barrier.wait()
        results.append(runtime.run("apply_order", payload).value)

    threads = [threading.Thread(target=write) for _ in range(6)]
    time.sleep(1.5)  # the processes are importing; then everybody goes at once, with the queued job and webhooks
    with pipeline.workers():
        go.touch()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        outputs = [p.communicate(timeout=60) for p in processes]
        pipeline.wait_journal([oid], "written")
        assert runtime.drain(20), pipeline.describe()
    assert all(p.returncode == 0 for p in processes), outputs
    created = [r["created"] for r in results] + ["'created': True" in out for out, _ in outputs]
    assert created.count(True) <= 1 and len(created) == 8
    assert pipeline.sage_rows(oid) == (1, 1)  # one extension row, one sales order
    assert len({r["SOKey"] for r in results}) == 1
    assert runtime.store.dead_letters.list() == []
