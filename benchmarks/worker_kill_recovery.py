"""Benchmark: how long after a worker is SIGKILLed mid-job its job is queued again, with the default lease.

    .venv/bin/python benchmarks/worker_kill_recovery.py [--runs 3] [--lease-seconds 30]

An ``erpsync worker --no-schedule`` process (``[queue] lease_seconds`` as given, everything else the defaults)
takes a job that runs until it is told to stop (``test.slow`` from ``tests/runtime/erpsync_test_jobs.py``); this
process runs the schedule as a second worker would (its recovery of lost jobs ticks every quarter of the lease) and
SIGKILLs the worker once the job has run for a whole lease, heartbeat alive and never re-queued meanwhile.
Printed: seconds from the kill until the job is back on its queue (bounded by the lease plus a tick). Everything
runs on 127.0.0.1 in a temporary directory and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_JOBS = REPO / "tests" / "runtime"


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def queued(runtime) -> bool:
    """Is the job's message on the amazon queue (the schedule queues its periodic jobs there too)?"""
    return any(task.args and task.args[0].get("key") == "slow:bench" for task in runtime.queues["amazon"].pending())


def one_run(lease: float) -> float:
    from erpsync import config
    from erpsync.runtime.jobs import Runtime, load_job_modules
    from erpsync.runtime.schedule import Scheduler

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "erpsync.toml").write_text(f'[queue]\nlease_seconds = {lease}\njob_modules = ["erpsync_test_jobs"]\n')
        settings = config.load(base / "erpsync.toml")
        load_job_modules(settings.queue.job_modules)
        runtime = Runtime(settings)
        runtime.enqueue("test.slow", key="slow:bench", marker="bench", release=str(base / "release"))
        worker = subprocess.Popen([str(Path(sys.executable).parent / "erpsync"), "worker", "--queue", "amazon",
                                   "--workers", "1", "--no-schedule"], cwd=base,
                                  env={**os.environ, "PYTHONPATH": str(TEST_JOBS)},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        scheduler = Scheduler(runtime, tick_seconds=0.1).start()
        try:
            wait(lambda: (p := runtime.store.job_key_get("slow:bench")) is not None and p.leased_by, 60,
                 "the worker to start the job")
            started = time.monotonic()
            wait(lambda: time.monotonic() - started > lease, lease + 5, "a whole lease")
            if queued(runtime):
                raise SystemExit("a live job was re-queued")
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            killed = time.monotonic()
            wait(lambda: queued(runtime), 10 * lease, "the job to be re-queued")
            return time.monotonic() - killed
        finally:
            scheduler.stop()
            if worker.poll() is None:
                worker.kill()
                worker.wait(30)
            runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lease-seconds", type=float, default=30.0)
    args = parser.parse_args()
    from erpsync import logs

    logs.configure(level="ERROR")
    sys.path.insert(0, str(TEST_JOBS))
    seconds = []
    for run in range(1, args.runs + 1):
        seconds.append(one_run(args.lease_seconds))
        print(f"run {run}: re-queued {seconds[-1]:.1f} s after the SIGKILL")
    print(f"a job lost with a SIGKILLed worker is re-queued {statistics.median(seconds):.1f} s after the kill "
          f"(median of {args.runs}, longest {max(seconds):.1f} s) with a {args.lease_seconds:g} s lease")


if __name__ == "__main__":
    main()
