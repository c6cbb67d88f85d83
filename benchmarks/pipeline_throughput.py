"""Benchmark: orders per second through the whole order-to-fulfillment pipeline, into the SQLite Sage replica.

    .venv/bin/python benchmarks/pipeline_throughput.py [--orders 300] [--time-scale 500] [--runs 1]

Runs the demo's cycle (``erpsync.commands.demo.run_demo``) with erpsync's own rate limiter off
(``amazon.rate_limit.enabled = false``) and the sandbox time-scaled 500 times, so that its usage plans do not bind
(getOrder 250/s, confirmShipment 1000/s) while its LWA tokens still live 7 real seconds (at 10 000 times they live
0.36 s and often expire in flight: Amazon answers 403 Unauthorized, the client takes a new token and sends the call
once more, so higher scales work too). The sandbox places N orders and posts ORDER_CHANGE webhooks to erpsync's web
app; huey workers (SqliteHuey, 3 threads per queue) import them (getOrder, or searchOrders pages under backlog) and
hand them to apply_order, which writes them to the replica; the replica's warehouse ships them; scan_shipments and
confirm_shipment confirm every package on the sandbox. Printed: orders per second into Sage (placed -> settled in
Sage) and through fulfilment (first shipment -> every package confirmed; this includes the warehouse picking and
committing each shipment in the replica, one order after the other, while erpsync scans and confirms alongside),
with the whole run's time. On a shared 2-core machine the figures move with the load. Everything is in-process on
127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import Progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--time-scale", type=float, default=500.0)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()

    from erpsync import logs
    from erpsync.commands.demo import run_demo

    logs.configure(level="ERROR")
    into_sage, fulfilled = [], []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp, Progress(console=Console(stderr=True), transient=True) as bar:
            summary = run_demo(args.orders, Path(tmp) / "demo", bar, seed=run, time_scale=args.time_scale,
                               rate_limits=False)
        into_sage.append(summary.written_to_sage / summary.import_seconds)
        fulfilled.append(summary.shipped / summary.fulfil_seconds)
        print(f"run {run}: {summary.orders_generated} orders, {summary.written_to_sage} written to Sage in "
              f"{summary.import_seconds:.2f} s ({into_sage[-1]:.1f} orders/s); {summary.shipped} shipped and "
              f"{summary.packages_confirmed} packages confirmed in {summary.fulfil_seconds:.2f} s "
              f"({fulfilled[-1]:.1f} orders/s); {summary.dead_letters} dead letters; whole run {summary.seconds} s")
    print(f"pipeline throughput (rate limits off, SQLite replica): {statistics.median(into_sage):.1f} orders/s into "
          f"Sage, {statistics.median(fulfilled):.1f} orders/s shipped and confirmed on Amazon (median of "
          f"{args.runs} run{'s' if args.runs > 1 else ''})")


if __name__ == "__main__":
    main()
