"""Benchmark: a 429 storm at 100% on the order reads, as long as you like, survived without a dead letter.

    .venv/bin/python benchmarks/throttle_storm.py [--orders 20] [--storm-seconds 3600] [--time-scale 60]

The sandbox (Amazon's usage plans, ``--time-scale`` times faster) answers every getOrder and searchOrders call
with 429 QuotaExceeded for ``--storm-seconds`` sandbox-seconds; erpsync (default retry budget of 8, SqliteHuey,
3 worker threads per queue, its rate limiter on) is asked to import ``--orders`` orders meanwhile. Printed: how
often the jobs were throttled during the storm, the most retry budget any job spent, the dead letters, and how
long after the storm every order was in Sage. Throttling defers a job on huey's schedule without spending its
budget, so no storm length dead-letters an order; the longest backoff after one is the rate limiter's (a 429
streak doubles it up to 1024 times the plan's interval, at most 15 minutes). Everything is in-process on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--storm-seconds", type=float, default=3600.0, help="sandbox-seconds of 429s at 100%%")
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=600.0, help="real seconds to wait for Sage afterwards")
    args = parser.parse_args()

    from erpsync import logs
    from erpsync.commands.demo import demo_settings
    from erpsync.flows.intake import import_key
    from erpsync.runtime.jobs import Runtime, load_job_modules
    from erpsync.sage500 import replica
    from erpsync.sage500.engine import make_engine
    from erpsync.sage500.gateway import Sage500Gateway
    from erpsync.sandbox.server import start as start_sandbox

    logs.configure(level="ERROR")
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory() as tmp, start_sandbox(time_scale=args.time_scale) as sandbox:
        settings = demo_settings(Path(tmp), sandbox.url, secrets.token_urlsafe(24), time_scale=args.time_scale)
        settings.queue.max_retries = 8
        engine = make_engine(settings.resolve_url(settings.sage500.url))
        replica.seed(engine)
        load_job_modules()
        runtime = Runtime(settings)
        store = runtime.store
        control = httpx.Client(base_url=f"{sandbox.url}/_sandbox", timeout=30)
        stocked = sorted(i for i, q in Sage500Gateway(engine).stock_levels(["MAIN"]).items() if q >= 60)
        ids = control.post("/orders", json={"count": args.orders, "skus": stocked, "status": "UNSHIPPED",
                                            "afn_share": 0}).json()["orderIds"]
        control.patch("/faults", json={"throttle_storm_rate": 1.0,
                                       "operations": ["getOrder", "searchOrders"]}).raise_for_status()
        for oid in ids:
            runtime.enqueue("import_order", key=import_key(oid, "storm"), amazon_order_id=oid, read=True)
        consumers = runtime.start_consumer(poll_seconds=0.05)
        runs, spent = 0, 0
        try:
            storm_end = time.monotonic() + args.storm_seconds / args.time_scale
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task(f"429 storm ({args.storm_seconds:g} sandbox-s)", total=args.storm_seconds)
                while (left := storm_end - time.monotonic()) > 0:
                    for pending in store.job_keys_pending(limit=100_000):
                        runs = max(runs, pending.attempts)
                        spent = max(spent, (pending.message or {}).get("spent", 0))
                    bar.update(task, completed=args.storm_seconds - left * args.time_scale)
                    time.sleep(min(left, 0.5))
            dead_in_storm = len(store.dead_letters.list(limit=100_000))
            control.delete("/faults").raise_for_status()
            ended = time.monotonic()
            deadline = ended + args.timeout
            while sum((e := store.journal_get(o)) is not None and e.status == "written" for o in ids) < len(ids):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            after = time.monotonic() - ended
            written = sum((e := store.journal_get(o)) is not None and e.status == "written" for o in ids)
            dead = len(store.dead_letters.list(limit=100_000))
        finally:
            consumers.stop()
            runtime.close()
            engine.dispose()
    print(f"429 storm of {args.storm_seconds:g} sandbox-seconds at 100% on getOrder and searchOrders "
          f"(time scale {args.time_scale:g}, {args.orders} orders, retry budget {settings.queue.max_retries}): "
          f"up to {runs} throttled runs of one job, most budget spent {spent} of {settings.queue.max_retries}, "
          f"{dead_in_storm} dead letters during the storm, {dead} in all; {written} of {len(ids)} orders written "
          f"to Sage {after:.1f} real s ({after * args.time_scale:.0f} sandbox-s) after the storm ended")


if __name__ == "__main__":
    main()
