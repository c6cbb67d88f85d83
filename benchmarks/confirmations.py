"""Benchmark P5: shipment confirmations against Amazon's confirmShipment usage plan (2 requests/s, burst 10).

    .venv/bin/python benchmarks/confirmations.py [--orders 400] [--time-scale 10] [--csv docs/p5_confirmations.csv]

Many orders are written to the SQLite Sage replica (loaded fast: the sandbox runs 500 times faster and erpsync's
limiter is off), then shipped in the replica's warehouse while no worker runs (as ``erpsync demo`` ships them: some
partially, some in two packages). Then the sandbox runs at ``--time-scale`` (sandbox seconds per real second) and
erpsync's limiter is on: the workers' ``scan_shipments`` queues one ``confirm_shipment`` per package and they go out
under the plan. Measured on the sandbox's clock: the confirmations accepted per sandbox second in steady state
(after the first ``--warmup`` sandbox seconds, which the burst of 10 serves) against the plan's 2/s (target >= 95%),
and the 429 answers to confirmShipment (target 0 in steady state). The CSV has one row per accepted confirmation:
``sandbox_seconds`` since the confirmations began, ``confirmed`` so far. On a shared 2-core machine the figures
move with the load.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Rig  # noqa: E402

PLAN_RATE, PLAN_BURST = 2.0, 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=10.0, help="sandbox seconds left out as the burst")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args(argv)

    from erpsync import logs
    from erpsync.commands.demo import ship
    from erpsync.sage500 import warehouse

    logs.configure(level="CRITICAL")
    with tempfile.TemporaryDirectory(prefix="erpsync-p5-") as tmp, \
            Rig(Path(tmp), time_scale=500.0, seed=args.seed, rate_limits=False) as rig:
        rig.start_web()
        ids = rig.generate(args.orders, seed=args.seed)
        with rig.workers():
            rig.wait(lambda: rig.settled(ids, ("written",)) == len(ids), 900, "every order written")
            rig.wait(rig.idle, 120, "no job left pending")
        packages = 0
        for number, oid in enumerate(ids):
            try:
                packages += ship(rig.engine, rig.gateway.order_by_amazon_id(oid), number)
            except warehouse.WarehouseError:  # out of stock in a bin: that order stays open
                pass
        print(f"{len(ids)} orders in Sage, {packages} packages shipped in the replica's warehouse")

        rig.rescale(args.time_scale)
        rig.configure("amazon.rate_limit", enabled=True)
        world = rig.world
        began = world.clock.seconds()
        already = len(world.shipments)
        real_began = time.monotonic()
        with rig.workers():
            rig.wait(lambda: len(world.shipments) - already >= packages, 60 + 3 * packages / args.time_scale,
                     "every package confirmed")
        real = time.monotonic() - real_began
        with world.lock:
            accepted = world.shipments[already:]
            times = sorted((s.received_at - world.clock.start).total_seconds() - began for s in accepted)
            repeated = len(accepted) - len({(s.order_id, s.package_reference_id) for s in accepted})
        throttled = [at - began for at, operation in rig.throttled if operation == "confirmShipment" and at >= began]

    steady_from = times[0] + args.warmup
    steady = [t for t in times if t >= steady_from]
    window = times[-1] - steady_from
    rate = (len(steady) - 1) / window if len(steady) > 1 and window > 0 else float("nan")
    steady_429 = sum(1 for t in throttled if steady_from <= t <= times[-1])
    print(f"P5 confirmShipment at time scale {args.time_scale:g}: {len(times)} confirmations in "
          f"{times[-1] - times[0]:.0f} sandbox-s ({real:.1f} real s); steady state ({len(steady)} after the first "
          f"{args.warmup:g} sandbox-s): {rate:.3f}/s = {100 * rate / PLAN_RATE:.1f}% of the plan's {PLAN_RATE:g}/s; "
          f"429s: {len(throttled)} in all, {steady_429} in steady state; {repeated} package(s) confirmed twice")
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["sandbox_seconds", "confirmed"])
            writer.writerows((round(t, 3), n) for n, t in enumerate(times, 1))
        print(f"wrote {args.csv}")
    return 0 if rate >= 0.95 * PLAN_RATE and steady_429 == 0 and not repeated else 1


if __name__ == "__main__":
    sys.exit(main())
