"""Benchmark P2: backlog drain, notification -> Sage latency, and erpsync's own CPU per order (rate limits off,
SQLite Sage replica, the sandbox in a process of its own).

    .venv/bin/python benchmarks/backlog_latency.py [--backlog 2000] [--rate 20] [--seconds 30] [--profile 200]
                                                  [--csv docs/p2_latency.csv]

(a) backlog: ``--backlog`` orders wait on Amazon (no notification reaches erpsync), then erpsync starts (huey
    consumers, 3 threads per queue, and the schedule in this process): its sync window reads them in searchOrders
    pages and hands each to apply_order. Printed: orders per second into Sage, from the start until the journal says
    every order is written (target >= 200/s).
(b) latency: orders placed at a steady ``--rate`` per second for ``--seconds``, each announced by an ORDER_CHANGE
    webhook: from the notification's arrival (inbox ``received_at``) to the order's Sage commit (the journal's
    ``written`` time), p50/p99 (target p99 < 1 s), over the orders whose notification arrived before the sync
    window wrote them (the others are counted); and order placed -> Sage commit, for every order. The CSV has one
    row per order: ``placed_to_commit_seconds, notification_to_commit_seconds`` (empty: the window came first).
(c) CPU: this process (erpsync: web app, workers, schedule; plus this script's polling, one query every 0.2 s)
    and the sandbox process, from /proc, for (a) and (b), per order; then ``--profile`` orders imported one after
    the other in this thread (the same jobs through huey's real storage, no consumer threads) under cProfile: where
    erpsync's time goes, by area and by function.

The sandbox runs ``--time-scale`` times faster (default 2000: its searchOrders and getOrder plans do not bind; its
LWA tokens then live 1.8 real seconds and the client takes a new one on Amazon's 403). On a shared 2-core machine
the figures move with the load.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import os
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Rig  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
AREAS = (("erpsync.sage500", "Sage gateway (SQLAlchemy statements, replica)"), ("erpsync.amazon", "SP-API client"),
         ("erpsync.runtime", "runtime (state store, queues)"), ("erpsync.flows", "flows"),
         ("erpsync.mapping", "mapping"), ("sqlalchemy", "SQLAlchemy"), ("huey", "huey"), ("httpx", "httpx"),
         ("httpcore", "httpx"), ("pydantic", "pydantic"), ("structlog", "logging"), ("logging", "logging"),
         ("sqlite3", "sqlite3"), ("json", "json"))


def cpu(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one when ``pid`` is None)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class CpuMeter:
    def __init__(self, rig: Rig):
        self.pid = rig.sandbox_proc.pid
        self.start = (cpu(), cpu(self.pid))

    def read(self) -> tuple[float, float]:
        return cpu() - self.start[0], cpu(self.pid) - self.start[1]


def backlog(rig: Rig, count: int, seed: int) -> dict:
    ids = rig.generate(count, seed=seed)
    started = time.monotonic()
    meter = CpuMeter(rig)
    with rig.workers():
        rig.wait(lambda: rig.settled(ids, ("written",)) == len(ids), 1800, "the backlog written")
        seconds = time.monotonic() - started
        ours, sandbox = meter.read()
        rig.wait(rig.idle, 120, "no job left pending")
    return {"orders": len(ids), "seconds": seconds, "rate": len(ids) / seconds, "cpu": ours, "sandbox_cpu": sandbox}


def latency(rig: Rig, rate: float, seconds: float, seed: int) -> dict:
    from sqlalchemy import func, select

    from erpsync.runtime.store import inbox, order_journal

    rig.configure("orders", sync_interval_seconds=3600)  # only the webhook: the window would race it
    rig.start_web()
    ids: list[str] = []
    with rig.workers():
        meter = CpuMeter(rig)
        started = time.monotonic()
        placed: dict[str, datetime] = {}
        while time.monotonic() - started < seconds:
            batch = rig.generate(max(1, round(rate / 5)), seed=seed * 1_000_000 + len(ids))
            placed.update(dict.fromkeys(batch, datetime.now(UTC)))
            ids += batch
            time.sleep(max(0.0, started + len(ids) / rate - time.monotonic()))
        placing = time.monotonic() - started
        rig.wait(lambda: rig.settled(ids, ("written",)) == len(ids), 600, "every streamed order written")
        rig.wait(lambda: arrivals(rig, ids) == len(ids), 120, "a notification of every order")
        ours, sandbox = meter.read()
        rig.wait(rig.idle, 120, "no job left pending")
    with rig.runtime.store.reader.connect() as conn:
        arrived = dict(conn.execute(select(inbox.c.amazon_order_id, func.min(inbox.c.received_at))
                                    .where(inbox.c.amazon_order_id.in_(ids)).group_by(inbox.c.amazon_order_id)).all())
        written = dict(conn.execute(select(order_journal.c.amazon_order_id, order_journal.c.updated_at)
                                    .where(order_journal.c.amazon_order_id.in_(ids))).all())
    # the notification's arrival -> the Sage commit; an order the sync window wrote before its notification
    # arrived (the webhook lagging behind) has no such latency and is counted apart
    rows = [(o, (written[o] - placed[o]).total_seconds(),
             (written[o] - arrived[o]).total_seconds() if arrived[o] <= written[o] else None) for o in ids]
    delays = sorted(d for _o, _e, d in rows if d is not None)
    ends = sorted(e for _o, e, _d in rows)
    return {"orders": len(ids), "placed_rate": len(ids) / placing, "rows": rows, "p50": percentile(delays, 50),
            "p99": percentile(delays, 99), "max": delays[-1], "e2e_p50": percentile(ends, 50),
            "e2e_p99": percentile(ends, 99), "cpu": ours, "sandbox_cpu": sandbox,
            "window_first": len(ids) - len(delays)}


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if p < 100 or not values else values[-1]


def arrivals(rig: Rig, ids: list[str]) -> int:
    from sqlalchemy import distinct, func, select

    from erpsync.runtime.store import inbox

    with rig.runtime.store.reader.connect() as conn:
        return conn.execute(select(func.count(distinct(inbox.c.amazon_order_id)))
                            .where(inbox.c.amazon_order_id.in_(ids))).scalar()


def profile(rig: Rig, count: int, seed: int) -> tuple[float, pstats.Stats]:
    """``count`` orders imported one after the other in this thread, under cProfile."""
    from benchmarks.fuzz import run_queued

    rig.control("PUT", "notifications/sinks", json={})  # nothing arrives but what this thread runs
    ids = rig.generate(count, seed=seed + 7)
    profiler = cProfile.Profile()
    began = cpu()
    profiler.enable()
    for oid in ids:
        rig.runtime.submit("import_order", {"amazon_order_id": oid, "read": True}, key=f"profile:{oid}")
        run_queued(rig)
    profiler.disable()
    used = cpu() - began
    written = rig.settled(ids, ("written",))
    if written != len(ids):
        raise SystemExit(f"profile: only {written} of {len(ids)} orders written; {rig.describe()}")
    return used / len(ids), pstats.Stats(profiler)


def areas(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time (tottime) summed by area of the code."""
    totals: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        path = filename.replace(os.sep, ".")
        if filename == "~":  # a built-in: named by what it is a method of
            area = ("sqlite3 (C: the replica, the state store, the queue)" if "sqlite3" in name else
                    "sockets and waits (C)" if any(w in name for w in ("socket", "select", "poll", "recv", "send",
                                                                        "acquire", "sleep")) else "other built-ins")
        else:
            area = next((label for module, label in AREAS if f".{module}." in path or path.startswith(module)),
                        "other Python (stdlib …)")
        totals[area] = totals.get(area, 0.0) + tottime
    return sorted(totals.items(), key=lambda item: -item[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--profile", type=int, default=200)
    parser.add_argument("--time-scale", type=float, default=2000.0)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args(argv)

    from erpsync import logs

    logs.configure(level="CRITICAL")
    ok = True
    a = None
    sections = {"orders": {"sync_interval_seconds": 1, "shipment_scan_seconds": 3600}}
    if args.backlog:
        with tempfile.TemporaryDirectory(prefix="erpsync-p2a-") as tmp, \
                Rig(Path(tmp), time_scale=args.time_scale, seed=args.seed, rate_limits=False, sandbox_process=True,
                    sections=sections) as rig:
            a = backlog(rig, args.backlog, args.seed)
    if a:
        print(f"P2a backlog: {a['orders']} orders into Sage in {a['seconds']:.1f} s = {a['rate']:.1f} orders/s "
              f"(target >= 200); CPU erpsync {a['cpu']:.1f} s = {1000 * a['cpu'] / a['orders']:.1f} ms/order, "
              f"sandbox {a['sandbox_cpu']:.1f} s = {1000 * a['sandbox_cpu'] / a['orders']:.1f} ms/order")
        ok &= a["rate"] >= 200

    with tempfile.TemporaryDirectory(prefix="erpsync-p2b-") as tmp, \
            Rig(Path(tmp), time_scale=args.time_scale, seed=args.seed + 1, rate_limits=False, sandbox_process=True,
                sections=sections) as rig:
        b = latency(rig, args.rate, args.seconds, args.seed)
        per_order, stats = profile(rig, args.profile, args.seed) if args.profile else (None, None)
    print(f"P2b latency: {b['orders']} orders at {b['placed_rate']:.1f}/s, notification -> Sage commit p50 "
          f"{1000 * b['p50']:.0f} ms, p99 {1000 * b['p99']:.0f} ms, max {1000 * b['max']:.0f} ms (target p99 < 1 s; "
          f"{b['window_first']} orders written by the sync window before their notification arrived are not in "
          f"these); order placed -> Sage commit p50 {1000 * b['e2e_p50']:.0f} ms, p99 {1000 * b['e2e_p99']:.0f} ms; "
          f"CPU erpsync {b['cpu']:.1f} s = "
          f"{1000 * b['cpu'] / b['orders']:.1f} ms/order, sandbox {b['sandbox_cpu']:.1f} s = "
          f"{1000 * b['sandbox_cpu'] / b['orders']:.1f} ms/order")
    ok &= b["p99"] < 1.0
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["placed_to_commit_seconds", "notification_to_commit_seconds"])
            writer.writerows([round(e, 4), "" if d is None else round(d, 4)] for _o, e, d in b["rows"])
        print(f"wrote {args.csv}")
    if stats is not None:
        total = sum(t for _area, t in areas(stats))
        print(f"P2c profile: {args.profile} orders one after the other in one thread: {1000 * per_order:.1f} ms "
              f"CPU per order under the profiler (erpsync only; the sandbox in its own process). Own time "
              f"(wall clock, as cProfile counts it) by area:")
        for area, seconds in areas(stats):
            print(f"  {100 * seconds / total:5.1f}%  {area}")
        print("Top functions by cumulative time:")
        stats.sort_stats("cumulative").print_stats(r"erpsync", 25)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
