"""`erpsync dlq`, `check` and `worker` as a user runs them."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import TEST_JOBS, runs, step
from typer.testing import CliRunner

from erpsync import config
from erpsync.cli import app
from erpsync.commands import worker as worker_command
from erpsync.runtime.jobs import Runtime
from tests.processes import stop

ERPSYNC = Path(sys.executable).parent / "erpsync"
TOML = """
[queue]
max_retries = 2
backoff_base_seconds = 0.01
backoff_max_seconds = 0.02
job_modules = ["erpsync_test_jobs"]
"""


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def dead_letter(workdir):
    (workdir / "erpsync.toml").write_text(TOML)
    rt = Runtime(config.load())
    rt.enqueue("test.write_item", sku="WIDGET-BLU")
    [outcome] = step(rt)
    rt.close()
    return outcome.dead_letter_id


def test_dlq_list_show_replay_discard(dead_letter, workdir):
    listed = invoke("dlq", "list", "--json")
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["job"], row["error_code"], row["status"]) == \
        (dead_letter, "test.write_item", "unknown_sku", "open")
    table = invoke("dlq", "list")
    assert "test.write_item" in table.stdout and "unknown_sku" in table.stdout

    shown = invoke("dlq", "show", str(dead_letter), "--json")
    assert json.loads(shown.stdout)["payload"] == {"sku": "WIDGET-BLU"}
    assert "WIDGET-BLU" in invoke("dlq", "show", str(dead_letter)).stdout
    missing = invoke("dlq", "show", "999")
    assert missing.exit_code == 1 and "dead letter 999 does not exist" in missing.stderr

    again = invoke("dlq", "replay", str(dead_letter), "--now")  # mapping still missing
    assert again.exit_code == 1 and "failed again" in again.stdout
    [newer] = json.loads(invoke("dlq", "list", "--json").stdout)
    (workdir / "erpsync.toml").write_text(TOML + '[mapping]\nsku_aliases = { "WIDGET-BLU" = "WIDGET-BLUE" }\n')
    fixed = invoke("dlq", "replay", str(newer["id"]), "--now", "--json")
    assert fixed.exit_code == 0, fixed.output
    result = json.loads(fixed.stdout)
    assert result["outcome"]["status"] == "done" and result["dead_letter"]["replay_result"] == "succeeded"
    assert invoke("dlq", "list").stdout.strip() == "no open dead letters"

    everything = json.loads(invoke("dlq", "list", "--status", "all", "--json").stdout)
    assert {d["status"] for d in everything} == {"replayed"}
    refused = invoke("dlq", "discard", str(dead_letter))
    assert refused.exit_code == 1 and "is replayed, not open" in refused.stderr


def test_dlq_replay_queues_for_a_worker_and_discard(dead_letter):
    queued = invoke("dlq", "replay", str(dead_letter))
    assert queued.exit_code == 0 and "queued on sage500" in queued.stdout
    rt = Runtime(config.load())
    assert rt.pending()["sage500"]["queued"] == 1
    step(rt)
    [newer] = rt.store.dead_letters.list()
    assert newer.replay_of == dead_letter
    discarded = invoke("dlq", "discard", str(newer.id), "--json")
    assert json.loads(discarded.stdout)["status"] == "discarded"
    rt.close()


def test_init_then_check_succeeds_in_an_empty_directory_with_no_services(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERPSYNC_")}
    done = subprocess.run(f"{ERPSYNC} init && {ERPSYNC} check", shell=True, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("config", "state store", "queue", "sage500", "amazon"):
        assert any(line.startswith("ok") and f" {name} " in line for line in done.stdout.splitlines()), name
    assert (tmp_path / ".erpsync" / "state.db").exists() and (tmp_path / ".erpsync" / "queue.db").exists()


def test_check_names_a_bad_config_and_a_bad_backend(workdir):
    (workdir / "erpsync.toml").write_text("[queue]\nworkers = 'many'\n")
    bad = invoke("check")
    assert bad.exit_code == 2 and "configuration error" in bad.stderr and "workers" in bad.stderr
    (workdir / "erpsync.toml").write_text('[queue]\nurl = "amqp://127.0.0.1"\n[amazon]\nendpoint = "na"\n')
    failed = invoke("check")
    assert failed.exit_code == 1
    lines = failed.stdout.splitlines()
    assert any(line.startswith("FAIL") and "amqp://127.0.0.1" in line for line in lines)
    assert any("ERPSYNC_LWA_REFRESH_TOKEN is not set" in line for line in lines)


def test_worker_runs_jobs_until_interrupted(workdir):
    (workdir / "erpsync.toml").write_text(TOML)
    env = {**os.environ, "PYTHONPATH": TEST_JOBS}
    proc = subprocess.Popen([str(ERPSYNC), "worker", "--queue", "all", "--workers", "1", "--no-schedule"],
                            cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rt = Runtime(config.load())
        rt.enqueue("test.flaky", marker="w1", fail_times=1)
        rt.enqueue("test.locked", marker="w2", lock_times=0)
        assert rt.drain(timeout=30), rt.pending()
        assert runs(rt, "w1") == [1, 2] and runs(rt, "w2") == [1]
    finally:
        time.sleep(0.2)
        out, errs = stop(proc, signal.SIGINT)
    assert proc.returncode == 0, errs
    assert "jobs:" in out and "test.flaky" in out and "worker stopped" in out
    rt.close()


def test_ctrl_c_while_the_worker_starts_still_stops_every_consumer_thread(workdir, monkeypatch):
    """Ctrl-C that lands before the worker's wait loop (here: while it announces itself) must not leave consumer
    threads running behind a finished main thread — the process would never exit."""
    (workdir / "erpsync.toml").write_text(TOML)
    announce = worker_command.console.print

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        announce(*args, **kwargs)

    monkeypatch.setattr(worker_command.console, "print", interrupted)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    before = set(threading.enumerate())
    try:
        result = invoke("worker", "--queue", "all", "--workers", "1", "--no-schedule")
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    assert result.exit_code == 0, result.output
    assert "worker stopped" in result.output
    deadline = time.monotonic() + 10
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(threading.enumerate()) - before


def test_worker_refuses_an_unknown_queue(workdir):
    result = invoke("worker", "--queue", "ebay")
    assert result.exit_code == 2 and "--queue 'ebay'" in result.stderr


def test_dlq_list_shows_no_buyer_data_and_show_keeps_it_for_replay(workdir):
    """A dead letter of apply_order carries the canonical order (buyer, ship-to) for its replay: `dlq list`, as a
    table or JSON, shows none of it; `dlq show` does."""
    (workdir / "erpsync.toml").write_text(TOML)
    rt = Runtime(config.load())
    payload = {"order": {"amazon_order_id": "113-1234567-7654321",
                         "buyer": {"name": "Jane Roe", "email": "jroe4711@marketplace.amazon.com"},
                         "ship_to": {"name": "Jane Roe", "line1": "42 Quiet Lane", "postal_code": "98109",
                                     "phone": "+1 206 555 0100"}}}
    from erpsync.runtime import deadletter

    dead = deadletter.capture(rt.store, job="apply_order", queue="sage500", key="apply_order:113-1234567-7654321",
                              payload=payload, exc=ValueError("order 113-1234567-7654321: SKU 'X' has no Sage item"),
                              attempts=1, first_failed_at=datetime.now(timezone.utc))
    rt.close()
    pii = ("Jane Roe", "jroe4711", "42 Quiet Lane", "555 0100")
    for args in (("dlq", "list"), ("dlq", "list", "--json"), ("dlq", "list", "--status", "all", "--json")):
        listed = invoke(*args)
        assert listed.exit_code == 0 and "apply_order" in listed.stdout, listed.output
        assert [value for value in pii if value in listed.stdout] == [], args
    [row] = json.loads(invoke("dlq", "list", "--json").stdout)
    assert row["id"] == dead and "payload" not in row
    shown = invoke("dlq", "show", str(dead), "--json")
    assert json.loads(shown.stdout)["payload"] == payload  # kept whole for the replay
