"""Benchmark: stock for a 100,000-SKU catalogue from Sage to Amazon through JSON_LISTINGS_FEED.

    .venv/bin/python benchmarks/inventory_feed.py [--skus 100000] [--changed 0.01] [--time-scale 200] [--no-submit]

A SQLite Sage replica gets ``--skus`` items (one bin and one price each); the sandbox (``erpsync sandbox`` in a
process of its own on 127.0.0.1, so the RSS printed is erpsync's) gets one listing per SKU. Measured:

1. the first scan — every SKU new: delta computation (Sage reads + comparison with the state store), recording it
   (desired and in-flight values, the feeds' messages), peak RSS;
2. the feeds sent by the real jobs (createFeedDocument, upload, createFeed, getFeed, the processing report read per
   message) until every SKU is acknowledged: createFeed calls and time (sandbox time runs ``--time-scale`` faster);
3. a second scan after ``--changed`` of the items changed stock in Sage: delta time and messages;
4. what a per-SKU patchListingsItem loop would need under its usage plan (5 requests/s, burst 5).

Targets: ≤ 5 createFeed calls, delta < 5 s, RSS < 500 MB. Stops by itself; leaves nothing behind.
"""

from __future__ import annotations

import argparse
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import insert, select, update

from erpsync import config, logs
from erpsync.flows import inventory
from erpsync.runtime.jobs import Context, Runtime, load_job_modules
from erpsync.sage500 import replica, schema
from erpsync.sage500.engine import make_engine
from erpsync.sandbox.core import USAGE_PLANS
from erpsync.sandbox.world import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN

US = "ATVPDKIKX0DER"


@contextmanager
def sandbox_process(base: Path, time_scale: float) -> Iterator[str]:
    """``erpsync sandbox`` in a process of its own on a free 127.0.0.1 port (so RSS here is erpsync's alone)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([str(Path(sys.executable).parent / "erpsync"), "sandbox", "--port", str(port),
                                "--time-scale", str(time_scale), "--seed", "3"], cwd=base,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/_sandbox/state", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sandbox_feeds(url: str) -> list[dict]:
    """The feeds the sandbox received (getFeeds through the SP-API, as the seller)."""
    token = httpx.post(f"{url}/auth/o2/token", data={
        "grant_type": "refresh_token", "refresh_token": DEFAULT_REFRESH_TOKEN, "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET}).json()["access_token"]
    return httpx.get(f"{url}/feeds/2021-06-30/feeds", params={"feedTypes": "JSON_LISTINGS_FEED", "pageSize": 100},
                     headers={"x-amz-access-token": token}, timeout=30).json()["feeds"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def build_sage(url: str, count: int) -> list[str]:
    """A replica with ``count`` stocked, priced items of its own (the seeded company supplies warehouses and bins)."""
    engine = make_engine(url)
    replica.seed(engine, items=1)
    with engine.begin() as conn:
        item, desc, stock, price = schema.timItem, schema.timItemDescription, schema.timWhseBinInvt, \
            schema.timPriceSheet
        first = conn.execute(select(item.c.ItemKey).order_by(item.c.ItemKey.desc())).scalar() + 1
        unit = conn.execute(select(item.c.StockUnitMeasKey)).scalar()
        main = conn.execute(select(schema.timWarehouse.c.WhseKey).where(schema.timWarehouse.c.WhseID == "MAIN")) \
            .scalar()
        bin_key = conn.execute(select(schema.timWhseBin.c.WhseBinKey).where(
            schema.timWhseBin.c.WhseKey == main, schema.timWhseBin.c.ExclFromAvail == 0)).scalar()
        rng = random.Random(7)
        ids = [f"BENCH-{n:06d}" for n in range(count)]
        for start_at in range(0, count, 10_000):
            chunk = list(enumerate(ids[start_at:start_at + 10_000], first + start_at))
            conn.execute(insert(item), [dict(ItemKey=k, CompanyID="SOA", ItemID=i, ItemType=5, Status=1,
                                             StockUnitMeasKey=unit) for k, i in chunk])
            conn.execute(insert(desc), [dict(ItemKey=k, LanguageID=1033, ShortDesc=f"Bench item {i}")
                                        for k, i in chunk])
            conn.execute(insert(stock), [dict(WhseBinKey=bin_key, ItemKey=k, QtyOnHand=Decimal(rng.randint(0, 500)),
                                              PendQtyDecrease=Decimal(0)) for k, _i in chunk])
            conn.execute(insert(price), [dict(ItemKey=k, WhseKey=main, CurrID="USD",
                                              EffectiveDate=replica.s.sage_time().replace(year=2020),
                                              ListPrice=Decimal(rng.randint(5, 300)) + Decimal("0.99"))
                                         for k, _i in chunk])
    engine.dispose()
    return ids


def change_stock(url: str, ids: list[str], share: float) -> int:
    engine = make_engine(url)
    chosen = random.Random(11).sample(ids, int(len(ids) * share))
    item, stock = schema.timItem, schema.timWhseBinInvt
    with engine.begin() as conn:
        keys = [r.ItemKey for r in conn.execute(select(item.c.ItemKey).where(item.c.ItemID.in_(chosen)))]
        conn.execute(update(stock).where(stock.c.ItemKey.in_(keys)).values(QtyOnHand=stock.c.QtyOnHand + 1))
    engine.dispose()
    return len(chosen)


def scan(ctx: Context) -> tuple[list, float]:
    began = time.perf_counter()
    plans = inventory.scan_plans(ctx, fields=("quantity", "price"))
    return plans, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--time-scale", type=float, default=200.0)
    parser.add_argument("--no-submit", action="store_true", help="measure the scans only")
    parser.add_argument("--stuck-minutes", type=float, default=1440.0,
                        help="[inventory] feed_stuck_minutes: the sandbox checks 25,000 messages in real seconds, "
                             "which a high --time-scale turns into hours of Amazon time")
    args = parser.parse_args()
    logs.configure("WARNING")
    load_job_modules()
    with tempfile.TemporaryDirectory(prefix="erpsync-bench-") as directory:
        base = Path(directory)
        sage_url = f"sqlite:///{base / 'sage500.db'}"
        began = time.perf_counter()
        ids = build_sage(sage_url, args.skus)
        print(f"Sage replica with {len(ids):,} items built in {time.perf_counter() - began:.1f} s")
        with sandbox_process(base, args.time_scale) as url:
            listings = [{"sku": sku, "price": "1.00", "quantity": 0} for sku in ids]
            for first in range(0, len(listings), 10_000):
                httpx.put(f"{url}/_sandbox/listings", json=listings[first:first + 10_000], timeout=120) \
                    .raise_for_status()
            del listings
            (base / "erpsync.toml").write_text(
                f'[sage500]\nurl = "{sage_url}"\n[amazon]\nsandbox_url = "{url}"\n'
                f'[sandbox]\ntime_scale = {args.time_scale}\n'
                f'[inventory]\nfeed_poll_seconds = 30\ninclude = ["BENCH-*"]\n'
                f'feed_stuck_minutes = {args.stuck_minutes}\n'
                f'[queue]\nbackoff_base_seconds = 0.05\nbackoff_max_seconds = 1.0\n')
            settings = config.load(base / "erpsync.toml")
            runtime = Runtime(settings)
            try:
                ctx = Context(runtime, "inventory_scan", "benchmark", 1)
                rss_before = rss_mb()
                plans, delta = scan(ctx)
                messages = sum(len(p.sends) for p in plans)
                began = time.perf_counter()
                counts = inventory.queue_plans(ctx, plans)
                recorded = time.perf_counter() - began
                print(f"first scan: {messages:,} SKUs to send; delta computation {delta:.2f} s, recording "
                      f"{recorded:.2f} s, {len(counts['feeds'])} feed(s) queued; peak RSS {rss_mb():.0f} MB "
                      f"(before the scan {rss_before:.0f} MB; the sandbox runs in its own process)")
                if not args.no_submit:
                    began = time.perf_counter()
                    with runtime.start_consumer(workers=2, poll_seconds=0.1):
                        while any(f.status in ("queued", "IN_QUEUE", "IN_PROGRESS")
                                  for f in runtime.store.listings.feeds()):
                            time.sleep(0.5)
                    took = time.perf_counter() - began
                    feeds = runtime.store.listings.feeds(messages=True)
                    acked = sum(1 for s in runtime.store.listings.states(US).values() if s.acked)
                    create_feed = len(sandbox_feeds(url))
                    print(f"feeds: {create_feed} createFeed call(s) "
                          f"({', '.join(f'{f.status} {len(f.messages):,}' for f in reversed(feeds))}); "
                          f"{acked:,} SKUs acknowledged in {took:.1f} s real "
                          f"({took * args.time_scale / 60:.0f} min of Amazon time at this sandbox's pace)")
                changed = change_stock(sage_url, ids, args.changed)
                plans, delta = scan(ctx)
                print(f"second scan after {changed:,} stock changes in Sage: {sum(len(p.sends) for p in plans):,} "
                      f"SKUs to send, delta computation {delta:.2f} s; peak RSS {rss_mb():.0f} MB")
            finally:
                runtime.close()
    rate, burst = USAGE_PLANS["patchListingsItem"]
    loop = max(args.skus - burst, 0) / rate
    print(f"a per-SKU patchListingsItem loop at {rate:g} req/s (burst {burst}) would need {loop:,.0f} s "
          f"= {loop / 3600:.1f} h for {args.skus:,} SKUs; getListingsItem to read them back likewise "
          f"({max(args.skus - USAGE_PLANS['getListingsItem'][1], 0) / USAGE_PLANS['getListingsItem'][0] / 3600:.1f} h)")


if __name__ == "__main__":
    main()
