"""Leases: a job lost with a worker killed mid-run is re-queued once its lease expires (here a 1 s lease, by
default 30 s), not after a fixed wait; a job that runs far longer than its lease, its worker's heartbeat alive, is
never re-queued nor run twice; a stale copy of a re-queued message changes nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import TEST_JOBS, runs, step

from erpsync import config
from erpsync.runtime.jobs import Runtime
from erpsync.runtime.store import utcnow
from tests.processes import stop, wait_until

ERPSYNC = Path(sys.executable).parent / "erpsync"
LEASE = 1.0
TOML = f"""
[queue]
max_retries = 2
backoff_base_seconds = 0.01
backoff_max_seconds = 0.02
lease_seconds = {LEASE}
job_modules = ["erpsync_test_jobs"]
"""


def wait(condition, timeout: float, what: str):
    return wait_until(condition, what, timeout)


@pytest.fixture
def rt(workdir):
    (workdir / "erpsync.toml").write_text(TOML)
    runtime = Runtime(config.load())
    yield runtime
    runtime.close()


def test_a_job_of_a_worker_killed_mid_run_is_requeued_once_its_lease_expires(rt, workdir):
    release = workdir / "release"
    assert rt.enqueue("test.slow", key="slow:killed", marker="killed", release=str(release))
    worker = subprocess.Popen([str(ERPSYNC), "worker", "--queue", "amazon", "--workers", "1", "--no-schedule"],
                              cwd=workdir, env={**os.environ, "PYTHONPATH": TEST_JOBS},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait(lambda: runs(rt, "killed") == [1], 60, "the worker to start the job")
        running = rt.store.job_key_get("slow:killed")
        assert running.leased_by.endswith(f":{worker.pid}")
        assert rt.recover_lost(timedelta(seconds=600)) == []  # running, heartbeat alive: not lost
    finally:
        stop(worker, signal.SIGKILL)
    # the worker is dead mid-job: huey's message is gone, the key still pending with its last lease
    assert rt.pending()["amazon"] == {"queued": 0, "scheduled": 0}
    # a recovery tick (every lease/4 in a worker's schedule) re-queues it once the lease has expired, however long
    # before the fallback for messages lost outside a run (queue.recover_after_seconds, here 600 s)
    wait(lambda: rt.recover_lost(timedelta(seconds=600)) == ["slow:killed"], LEASE + 10, "the lease to expire")
    requeued = rt.store.job_key_get("slow:killed")
    assert requeued.leased_until is None and requeued.token != running.token
    assert rt.pending()["amazon"]["queued"] == 1
    release.touch()
    assert [o.status for o in step(rt)] == ["done"]
    assert runs(rt, "killed") == [1, 2]  # the killed run counts, then the re-queued one
    assert rt.store.job_key_get("slow:killed") is None and rt.store.dead_letters.list() == []


def test_a_live_job_running_longer_than_its_lease_is_never_requeued(rt, workdir):
    release = workdir / "release"
    assert rt.enqueue("test.slow", key="slow:long", marker="long", release=str(release))
    with rt.start_consumer(["amazon"], workers=1, poll_seconds=0.05):
        first = wait(lambda: (p := rt.store.job_key_get("slow:long")) and p.leased_until and p, 30,
                     "the job to start")
        recovered = []

        def renewed_well_past_the_first_lease():
            recovered.extend(rt.recover_lost(timedelta(0)))  # every tick, the strictest fallback
            current = rt.store.job_key_get("slow:long")
            return current.leased_until > first.leased_until + timedelta(seconds=3 * LEASE)

        wait(renewed_well_past_the_first_lease, 30, "the heartbeat to renew the lease past three leases")
        assert recovered == [] and rt.pending()["amazon"] == {"queued": 0, "scheduled": 0}
        release.touch()
        assert rt.drain(timeout=30)
    assert runs(rt, "long") == [1]  # one run, never a second one beside it
    assert rt.store.job_key_get("slow:long") is None


def test_a_stale_copy_of_a_requeued_message_is_not_run(rt, workdir):
    release = workdir / "release"
    release.touch()
    assert rt.enqueue("test.slow", key="slow:copy", marker="copy", release=str(release))
    stale = rt.queues["amazon"].dequeue().args[0]  # taken by a worker that died before its lease
    past = rt.store.job_key_get("slow:copy")
    assert rt.recover_lost(timedelta(0)) == ["slow:copy"]
    assert rt.execute(stale).status == "superseded"  # the old copy turns up: the key is not its own any more
    assert runs(rt, "copy") == [] and rt.store.job_key_get("slow:copy").token != past.token
    assert [o.status for o in step(rt)] == ["done"]
    assert runs(rt, "copy") == [1]


def test_a_message_that_kills_every_worker_running_it_ends_as_one_dead_letter(rt, workdir):
    assert rt.enqueue("test.slow", key="slow:poison", marker="poison", release=str(workdir / "never"))
    for death in range(1, 4):  # max_retries = 2: the third death is one too many
        message = rt.queues["amazon"].dequeue().args[0]  # a worker takes it ...
        assert rt.store.job_lease_take("slow:poison", message["token"], until=utcnow() - timedelta(seconds=1),
                                       by="host:666")  # ... and dies: its lease expires
        assert rt.recover_lost(timedelta(seconds=600)) == (["slow:poison"] if death < 3 else [])
        assert rt.pending()["amazon"]["queued"] == (1 if death < 3 else 0)
    [dead] = rt.store.dead_letters.list()
    assert (dead.job, dead.error_code, dead.attempts) == ("test.slow", "worker_lost", 3)
    assert "died under it 3 times" in dead.message and "host:666" in dead.message
    assert rt.store.job_key_get("slow:poison") is None
