"""Benchmark: order intake under sustained overload, erpsync against a naive python-amazon-sp-api loop.

    .venv/bin/python benchmarks/order_intake.py [--rate 6000] [--hours 2] [--after-minutes 20] [--time-scale 20]
                                                [--csv intake.csv] [--skip-naive]

The time-scaled sandbox enforces Amazon's real usage plans. Orders arrive steadily at ``--rate`` per sandbox-hour
for ``--hours`` sandbox-hours (each notified by an ORDER_CHANGE webhook), then nothing for ``--after-minutes``
(a stalled intake shows there). Two runs, one after the other, each against a fresh sandbox:

* **erpsync** with its defaults: its web app takes the webhooks, huey workers on the embedded SQLite queue
  (``[queue] workers`` threads per queue), the schedule, the SQLite Sage 500 replica; counted: orders in Sage
  (``tsoSalesOrderExt_AMZ``).
* **naive**: the documented python-amazon-sp-api way — Orders v0 ``getOrders`` since the last LastUpdateDate seen,
  then ``getOrderItems`` for each new order, retrying a throttled call after a sandbox-second; counted: orders read
  completely (it writes nothing to Sage, so this is its upper bound).

Printed per run: orders per sandbox-hour in steady state (from sandbox-minute 30 to the end of arrivals, past the
initial bursts) and over the whole arrival period, against the limit of the plans (searchOrders 0.0056/s × 100
orders a page + getOrder 0.5/s ≈ 3,816/h for erpsync; getOrderItems 0.5/s = 1,800/h bounds the naive loop), the
orders still missing at the end, and the 429 answers the sandbox gave. ``--csv`` writes orders taken per
sandbox-minute for both runs, the arrivals and the plans' limit, in the format ``benchmarks/plots.py`` reads
(``series,sandbox_hours,orders_in_sage``, docs/benchmarks.md). Everything is on 127.0.0.1 and stops by itself; on a shared machine
the figures move with the load.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

STEADY_FROM = timedelta(minutes=30)  # past the plans' bursts
MARKETPLACE = "ATVPDKIKX0DER"


@dataclass
class Run:
    name: str
    limit_per_hour: float
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (sandbox minute, arrived, taken)
    throttled: Counter = field(default_factory=Counter)
    served: Counter = field(default_factory=Counter)

    def rate(self, start_minute: float, end_minute: float) -> float:
        """Orders taken per sandbox-hour between two sandbox minutes (interpolated on the samples)."""
        taken = [(m, t) for m, _a, t in self.samples]

        def at(minute: float) -> float:
            before = max((s for s in taken if s[0] <= minute), default=taken[0])
            after = min((s for s in taken if s[0] >= minute), default=taken[-1])
            if after[0] == before[0]:
                return before[1]
            return before[1] + (after[1] - before[1]) * (minute - before[0]) / (after[0] - before[0])

        return (at(end_minute) - at(start_minute)) / ((end_minute - start_minute) / 60)


class Sandbox:
    """The sandbox in a process of its own (as Amazon is), counting in its token buckets every call it served and
    every 429 it answered (``GET /_bench/calls``)."""

    def __init__(self, time_scale: float, seed: int = 11):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._urls, self._stop = context.Queue(), context.Event()
        self._process = context.Process(target=_serve_sandbox, args=(time_scale, seed, self._urls, self._stop),
                                        name="sandbox", daemon=True)
        self.time_scale = time_scale

    def __enter__(self) -> Sandbox:
        self._process.start()
        self.url = self._urls.get(timeout=120)
        self.control = httpx.Client(base_url=f"{self.url}/_sandbox", timeout=60)
        self._now0 = datetime.fromisoformat(self.control.get("/time").json()["now"].replace("Z", "+00:00"))
        self._t0 = time.monotonic()
        return self

    def now(self) -> datetime:
        """Sandbox time (its clock runs ``time_scale`` times faster, from when it started)."""
        return self._now0 + timedelta(seconds=(time.monotonic() - self._t0) * self.time_scale)

    def calls(self) -> tuple[Counter, Counter]:
        counts = httpx.get(f"{self.url}/_bench/calls", timeout=30).json()
        return Counter(counts["served"]), Counter(counts["throttled"])

    def __exit__(self, *exc) -> None:
        self.control.close()
        self._stop.set()
        self._process.join(30)
        if self._process.is_alive():
            self._process.terminate()


def _serve_sandbox(time_scale: float, seed: int, urls, stop) -> None:
    from erpsync.sandbox.app import create_app
    from erpsync.sandbox.server import start
    from erpsync.sandbox.world import World

    world = World.create(time_scale=time_scale, seed=seed)
    app = create_app(world)
    served, throttled = Counter(), Counter()
    bucket_of = world.throttler.bucket

    class Counted:
        def __init__(self, operation, bucket):
            self.operation, self.bucket = operation, bucket

        def try_take(self) -> bool:
            taken = self.bucket.try_take()
            (served if taken else throttled)[self.operation] += 1
            return taken

        def __getattr__(self, name):
            return getattr(self.bucket, name)

    world.throttler.bucket = lambda seller, operation: Counted(operation, bucket_of(seller, operation))

    @app.get("/_bench/calls")
    def calls() -> dict:
        return {"served": dict(served), "throttled": dict(throttled)}

    running = start(app=app)
    urls.put(running.url)
    stop.wait()
    running.stop()


def drive(sandbox: Sandbox, run: Run, args, taken: Callable[[], int], skus: list[str] | None,
          console: Console) -> None:
    """Orders arrive at ``args.rate`` per sandbox-hour for ``args.hours``; sample every sandbox-minute until
    ``args.after_minutes`` after the last arrival."""
    start = sandbox.now()
    arrive_for = timedelta(hours=args.hours)
    end = arrive_for + timedelta(minutes=args.after_minutes)
    arrived = 0
    next_sample = 0.0
    body = {"status": "UNSHIPPED", "afn_share": 0}
    if skus:
        body["skus"] = skus
    last_print = time.monotonic()
    while True:
        elapsed = sandbox.now() - start
        if elapsed >= end:
            break
        due = min(elapsed, arrive_for).total_seconds() / 3600 * args.rate
        if int(due) > arrived:
            count = min(int(due) - arrived, 1000)
            sandbox.control.post("/orders", json={**body, "count": count}).raise_for_status()
            arrived += count
        minute = elapsed.total_seconds() / 60
        if minute >= next_sample:
            run.samples.append((round(minute, 2), arrived, taken()))
            next_sample = math.floor(minute) + 1
            if time.monotonic() - last_print > 30:
                console.print(f"  [{run.name}] sandbox minute {minute:6.1f}: {arrived} arrived, "
                              f"{run.samples[-1][2]} taken")
                last_print = time.monotonic()
        time.sleep(0.05)
    run.samples.append((round((sandbox.now() - start).total_seconds() / 60, 2), arrived, taken()))
    run.served, run.throttled = sandbox.calls()


def run_erpsync(args, console: Console) -> Run:
    """``erpsync web`` and ``erpsync worker`` as a seller runs them, configured by an erpsync.toml that names only
    the sandbox and its time scale (every other setting is the default)."""
    import socket
    import subprocess

    from sqlalchemy import func, select

    from erpsync.config import Settings
    from erpsync.sage500 import replica, schema
    from erpsync.sage500.engine import make_engine
    from erpsync.sage500.gateway import Sage500Gateway

    run = Run("erpsync", limit_per_hour=(0.0056 * 100 + 0.5) * 3600)
    token = secrets.token_urlsafe(24)
    erpsync = str(Path(sys.executable).with_name("erpsync"))
    with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp, Sandbox(args.time_scale) as sandbox:
        base = Path(tmp)
        (base / "erpsync.toml").write_text(f'[amazon]\nsandbox_url = "{sandbox.url}"\n\n'
                                           f"[sandbox]\ntime_scale = {args.time_scale}\n")
        settings = Settings(base_dir=base)
        engine = make_engine(settings.resolve_url(settings.sage500.url))
        replica.seed(engine)
        stocked = sorted(item for item, qty in Sage500Gateway(engine).stock_levels(["MAIN"]).items() if qty >= 60)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {**os.environ, "ERPSYNC_WEBHOOK_TOKEN": token}
        env.pop("ERPSYNC_CONFIG", None)
        logs = {name: (base / f"{name}.log").open("w") for name in ("web", "worker")}
        processes = [
            subprocess.Popen([erpsync, "web", "--port", str(port), "--host", "127.0.0.1"], cwd=base, env=env,
                             stdout=logs["web"], stderr=subprocess.STDOUT),
            subprocess.Popen([erpsync, "worker"], cwd=base, env=env, stdout=logs["worker"],
                             stderr=subprocess.STDOUT)]
        ext = schema.tsoSalesOrderExt_AMZ

        def in_sage() -> int:
            with engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(ext)).scalar_one()

        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"erpsync web did not start: see {base / 'web.log'}")
                time.sleep(0.2)
            sandbox.control.put("/notifications/sinks", json={
                "webhook_url": f"http://127.0.0.1:{port}/notifications",
                "webhook_headers": {settings.amazon.notifications.webhook_header: token},
                "senders": 6}).raise_for_status()  # as Amazon: notifications of different orders in flight at once
            drive(sandbox, run, args, in_sage, stocked, console)
        finally:
            sandbox.control.put("/notifications/sinks", json={})
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
            for handle in logs.values():
                handle.close()
            if args.keep_logs:
                for name in logs:
                    (args.keep_logs / f"{name}.log").write_bytes((base / f"{name}.log").read_bytes())
            engine.dispose()
    return run


def run_naive(args, console: Console) -> Run:
    """python-amazon-sp-api as its documentation shows it: getOrders, then getOrderItems per order."""
    # sp_api caches access tokens for an hour of real time; the sandbox's expire in 3600 / time_scale seconds
    os.environ.setdefault("SP_API_AUTH_CACHE_TTL", str(max(1, int(3600 / args.time_scale / 2))))
    import types

    from sp_api.api import OrdersV0
    from sp_api.auth import AccessTokenClient
    from sp_api.base import SellingApiException, SellingApiRequestThrottledException

    from erpsync.sandbox.world import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN

    run = Run("naive sp-api", limit_per_hour=0.5 * 3600)
    stop = threading.Event()
    read: set[str] = set()
    errors: Counter = Counter()
    with Sandbox(args.time_scale) as sandbox:
        lwa = type("SandboxAccessTokenClient", (AccessTokenClient,),
                   {"scheme": "http://", "host": sandbox.url.removeprefix("http://")})
        orders = OrdersV0(marketplace=types.SimpleNamespace(endpoint=sandbox.url, marketplace_id=MARKETPLACE,
                                                            region="us-east-1"),
                          credentials={"refresh_token": DEFAULT_REFRESH_TOKEN, "lwa_app_id": DEFAULT_CLIENT_ID,
                                       "lwa_client_secret": DEFAULT_CLIENT_SECRET},
                          auth_token_client_class=lwa)
        pause = 1 / args.time_scale  # a sandbox-second

        def retrying(call, *a, **kw):
            while not stop.is_set():
                try:
                    return call(*a, **kw)
                except SellingApiRequestThrottledException:
                    time.sleep(pause)
                except SellingApiException as exc:
                    errors[type(exc).__name__] += 1
                    time.sleep(pause)
            return None

        def loop() -> None:
            after = sandbox.now() - timedelta(minutes=5)
            while not stop.is_set():
                page = retrying(orders.get_orders, MarketplaceIds=[MARKETPLACE], MaxResultsPerPage=100,
                                LastUpdatedAfter=after.isoformat().replace("+00:00", "Z"))
                if page is None:
                    return
                found = page.payload.get("Orders") or []
                for order in found:
                    oid = order["AmazonOrderId"]
                    if oid in read:
                        continue
                    if retrying(orders.get_order_items, oid) is None:
                        return
                    read.add(oid)
                if found:
                    after = max(after, max(datetime.fromisoformat(o["LastUpdateDate"].replace("Z", "+00:00"))
                                           for o in found))
                else:
                    time.sleep(pause * 60)

        worker = threading.Thread(target=loop, name="naive-sp-api", daemon=True)
        worker.start()
        try:
            drive(sandbox, run, args, lambda: len(read), None, console)
        finally:
            stop.set()
            worker.join(30)
    if errors:
        console.print(f"  [naive sp-api] errors other than 429: {dict(errors)}")
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=6000.0, help="orders arriving per sandbox-hour")
    parser.add_argument("--hours", type=float, default=2.0, help="sandbox-hours of arrivals")
    parser.add_argument("--after-minutes", type=float, default=20.0, help="sandbox-minutes measured after them")
    parser.add_argument("--time-scale", type=float, default=20.0, help="sandbox seconds per real second (10-30)")
    parser.add_argument("--csv", type=Path, help="write orders arrived and taken per sandbox-minute here")
    parser.add_argument("--skip-naive", action="store_true", help="run erpsync only")
    parser.add_argument("--data-dir", type=Path, help="where erpsync's installation (SQLite files) lives while it "
                        "runs (default: the system's temporary directory)")
    parser.add_argument("--keep-logs", type=Path, help="copy erpsync's web.log and worker.log into this directory")
    args = parser.parse_args(argv)

    console = Console(stderr=True)
    real = (args.hours * 60 + args.after_minutes) * 60 / args.time_scale
    console.print(f"{args.rate:g} orders per sandbox-hour for {args.hours:g} sandbox-hours, then "
                  f"{args.after_minutes:g} sandbox-minutes without arrivals, at {args.time_scale:g}x: "
                  f"about {real / 60:.1f} real minutes per run")
    runs = [run_erpsync(args, console)]
    if not args.skip_naive:
        runs.append(run_naive(args, console))

    end = args.hours * 60
    table = Table(title=f"Order intake at {args.rate:g} orders/sandbox-hour for {args.hours:g} h "
                        f"(time scale {args.time_scale:g})")
    for column in ("run", "steady orders/h", "of its limit", "whole period orders/h", "arrived", "taken at end",
                   "missing", "429s", "calls served"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for run in runs:
        steady = run.rate(STEADY_FROM.total_seconds() / 60, end)
        whole = run.rate(0, end)
        _minute, arrived, taken = run.samples[-1]
        table.add_row(run.name, f"{steady:,.0f}", f"{steady / run.limit_per_hour:.0%} of {run.limit_per_hour:,.0f}",
                      f"{whole:,.0f}", f"{arrived:,}", f"{taken:,}", f"{arrived - taken:,}",
                      f"{sum(run.throttled.values())}",
                      ", ".join(f"{op} {n}" for op, n in sorted(run.served.items()) if op != "getAccessToken"))
    Console(width=200).print(table)
    stalls = {run.name: _stall(run) for run in runs}
    for name, stall in stalls.items():
        print(f"{name}: longest sandbox-time without an order taken while orders were waiting: {stall:.1f} min")
    if args.csv:
        write_csv(args.csv, runs, args)
        print(f"wrote {args.csv}")
    return 0


SERIES = {"erpsync": "erpsync", "naive sp-api": "naive"}


def write_csv(path: Path, runs: list[Run], args) -> None:
    """The format ``benchmarks/plots.py`` reads (docs/benchmarks.md): ``series, sandbox_hours, orders_in_sage``,
    cumulative, one row per sample: each run (``erpsync``, ``naive``: orders it took), ``arrived`` (orders placed
    on Amazon, from the erpsync run) and ``limit`` (what the plans allow, erpsync's limit from 0)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["series", "sandbox_hours", "orders_in_sage"])
        for run in runs:
            writer.writerows([SERIES.get(run.name, run.name), f"{minute / 60:.4f}", taken]
                             for minute, _arrived, taken in run.samples)
        first = runs[0]
        writer.writerows(["arrived", f"{minute / 60:.4f}", arrived] for minute, arrived, _taken in first.samples)
        end = first.samples[-1][0] / 60
        writer.writerows(["limit", f"{hours:.4f}", round(first.limit_per_hour * hours)] for hours in (0.0, end))


def _stall(run: Run) -> float:
    """The longest stretch of sandbox minutes in which nothing was taken although orders were waiting."""
    longest, since = 0.0, None
    for (minute, arrived, taken), (_prev_minute, _a, prev_taken) in zip(run.samples[1:], run.samples):
        if taken == prev_taken and arrived > taken:
            since = _prev_minute if since is None else since
            longest = max(longest, minute - since)
        else:
            since = None
    return longest


if __name__ == "__main__":
    sys.exit(main())
