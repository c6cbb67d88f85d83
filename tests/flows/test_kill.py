"""The kill test: a real ``erpsync worker`` process dies between the Sage commit and the job's acknowledgement
(huey had already deleted the message when the worker took it). A normal worker finds the pending job whose message
is gone, runs it again, and the order exists exactly once in Sage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from erpsync.flows.binder import apply_key
from erpsync.flows.orders import CRASH_AFTER_SAGE_COMMIT
from tests.processes import stop

ERPSYNC = str(Path(sys.executable).parent / "erpsync")


def test_a_worker_killed_after_the_sage_commit_leaves_exactly_one_order(make_pipeline):
    pipeline = make_pipeline(queue={"recover_after_seconds": 1.0, "lease_seconds": 1.0})
    [oid] = pipeline.generate(1, seed=51, multi_line_share=1.0)
    runtime = pipeline.runtime
    assert runtime.run("import_order", {"amazon_order_id": oid, "read": True}).value == "write"
    assert runtime.pending()["sage500"]["queued"] == 1
    worker = [ERPSYNC, "worker", "--queue", "sage500", "--workers", "1", "--config", str(pipeline.config_path)]
    env = {k: v for k, v in os.environ.items() if k != CRASH_AFTER_SAGE_COMMIT}

    crashed = subprocess.run([*worker, "--no-schedule"], env={**env, CRASH_AFTER_SAGE_COMMIT: "1"},
                             cwd=pipeline.base, capture_output=True, text=True, timeout=60)
    assert crashed.returncode == 137, crashed.stdout + crashed.stderr
    # Sage committed; the job never finished: its message is gone from huey, its key still pending
    assert pipeline.sage_rows(oid) == (1, 1)
    assert pipeline.journal(oid) == "writing"
    assert runtime.pending()["sage500"] == {"queued": 0, "scheduled": 0}
    assert runtime.store.job_key_get(apply_key(oid)) is not None

    recovering = subprocess.Popen(worker, env=env, cwd=pipeline.base, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
    try:
        pipeline.wait_journal([oid], "written", timeout=60)
    finally:
        output = stop(recovering)[0]
    assert "job.recovered" in output and apply_key(oid) in output
    assert pipeline.sage_rows(oid) == (1, 1)  # exactly one tsoSalesOrderExt_AMZ row and one tsoSalesOrder
    [written] = runtime.store.audit_list(event="order.written")
    assert written.detail["created"] is False  # the rerun found the order the killed worker had committed
    entry = runtime.store.journal_get(oid)
    assert entry.so_key == pipeline.sage_order(oid).SOKey and entry.tran_no
    assert runtime.store.job_key_get(apply_key(oid)) is None and runtime.store.dead_letters.list() == []
