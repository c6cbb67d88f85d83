"""Benchmark: how fast createFeed answers a large JSON_LISTINGS_FEED, and how long other requests wait meanwhile.

    .venv/bin/python benchmarks/sandbox_large_feed.py [--messages 25000]

A sandbox with one listing per message receives a feed of quantity PATCH messages; createFeed answers while a
background thread checks the document. Sandbox time is advanced past the feed's processing time at once, so the feed
ends as soon as its check is done (the ticker then applies it under the world's lock). Meanwhile a second client calls
getFeed in a loop. Printed: createFeed's duration, when the check and the feed ended, how long the apply held the
lock, and the getFeed answers during the run. Targets 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from decimal import Decimal

import httpx

from erpsync.sandbox import feeds, listings_feed
from erpsync.sandbox.server import start
from erpsync.sandbox.world import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, Listing

JSON_TYPE = "application/json; charset=UTF-8"


def token(url: str) -> str:
    return httpx.post(f"{url}/auth/o2/token", data={
        "grant_type": "refresh_token", "refresh_token": DEFAULT_REFRESH_TOKEN, "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET}).json()["access_token"]


def timed(step, spent: dict[str, float]):
    """``step`` wrapped to record the end time and the duration of its last run in ``spent``."""
    def run(*args, **kwargs):
        began = time.perf_counter()
        try:
            return step(*args, **kwargs)
        finally:
            spent[step.__name__], spent[f"{step.__name__} ended"] = time.perf_counter() - began, time.perf_counter()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=25_000)
    args = parser.parse_args()
    spent: dict[str, float] = {}
    listings_feed.check = timed(listings_feed.check, spent)  # feeds.py looks both up at call time
    listings_feed.apply = timed(listings_feed.apply, spent)
    with start(seed=1) as sandbox:
        world = sandbox.world
        plans = world.throttler.plans
        plans.update({name: (rate, 1_000_000) for name, (rate, _) in plans.items()})
        for n in range(args.messages):
            world.listings[f"SKU-{n}"] = Listing(sku=f"SKU-{n}", asin="B000000000", title="Item",
                                                 price=Decimal("9.99"), quantity=5)
        feed = {"header": {"sellerId": world.seller_id, "version": "2.0"}, "messages": [
            {"messageId": n + 1, "sku": f"SKU-{n}", "operationType": "PATCH", "productType": "PRODUCT",
             "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
                          "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 7}]}]}
            for n in range(args.messages)]}
        headers = {"x-amz-access-token": token(sandbox.url)}
        with httpx.Client(base_url=sandbox.url, headers=headers, timeout=120) as api:
            document = api.post("/feeds/2021-06-30/documents", json={"contentType": JSON_TYPE}).json()
            httpx.put(document["url"], content=json.dumps(feed), headers={"Content-Type": JSON_TYPE}, timeout=60)
            waits: list[float] = []
            stop = threading.Event()

            def poll() -> None:
                with httpx.Client(base_url=sandbox.url, headers=headers, timeout=120) as other:
                    while not stop.is_set():
                        began = time.perf_counter()
                        other.get("/feeds/2021-06-30/feeds/1")  # a cheap 404 that needs the world's lock
                        waits.append(time.perf_counter() - began)
                        time.sleep(0.01)

            poller = threading.Thread(target=poll)
            poller.start()
            began = time.perf_counter()
            feed_id = api.post("/feeds/2021-06-30/feeds", json={
                "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": ["ATVPDKIKX0DER"],
                "inputFeedDocumentId": document["feedDocumentId"]}).json()["feedId"]
            created = time.perf_counter() - began
            world.advance(feeds.QUEUE_SECONDS + feeds.PROCESSING_SECONDS + 1)
            while (status := api.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()["processingStatus"]) in (
                    "IN_QUEUE", "IN_PROGRESS"):
                time.sleep(0.05)
            ended = time.perf_counter() - began
            stop.set()
            poller.join()
    waits.sort()
    print(f"messages {args.messages}: createFeed answered in {created:.3f} s; checked in the background in "
          f"{spent['check']:.2f} s (done {spent['check ended'] - began:.2f} s after createFeed); applied under the "
          f"lock in {spent['apply']:.2f} s; {status} {ended:.2f} s after createFeed")
    print(f"getFeed while it ran: {len(waits)} calls, median {statistics.median(waits) * 1000:.0f} ms, "
          f"slowest {waits[-1] * 1000:.0f} ms, 3 slowest {[round(w * 1000) for w in waits[-3:]]} ms, "
          f"over 100 ms: {sum(w > 0.1 for w in waits)}")


if __name__ == "__main__":
    main()
