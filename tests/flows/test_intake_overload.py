"""Intake at peak (issue 8, item 1): the sync window hands over and records its position page by page, so a window
longer than the plan's burst completes; under backlog getOrder goes to the newest notified orders the window has not
reached; under sustained overload intake never stops. Amazon's usage plans are enforced by the time-scaled sandbox
(calls counted on the sandbox's side, in its token buckets)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import func, select

from erpsync import errors
from erpsync.amazon import ratelimit
from erpsync.flows import orders as orders_flow
from erpsync.flows.binder import apply_key
from erpsync.flows.intake import import_key
from erpsync.flows.orders import (
    CURSOR,
    POSITION,
    READ,
    READER_KEY,
    SKIPPED,
    SYNC_KEY,
    intake_lag,
)
from erpsync.sage500 import schema
from erpsync.sandbox.server import RunningSandbox, start
from erpsync.web.app import start as start_web
from tests.flows.conftest import API_TOKEN, TIME_SCALE
from tests.flows.test_errors import captured_events

BACKLOG = 3000  # orders the window alone reads
N = 1000  # orders of the notified backlog
FAST = 600.0  # sandbox seconds per real second for the backlog tests: Amazon's plans, 600 times faster


class CountedCalls:
    """Calls that reached the sandbox's token buckets, per operation: served, and answered 429."""

    def __init__(self, sandbox: RunningSandbox):
        self.served: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        throttler, bucket_of = sandbox.world.throttler, sandbox.world.throttler.bucket
        counted = self

        class Bucket:
            def __init__(self, operation, bucket):
                self.operation, self.bucket = operation, bucket

            def try_take(self) -> bool:
                taken = self.bucket.try_take()
                (counted.served if taken else counted.throttled)[self.operation] += 1
                return taken

            def __getattr__(self, name):
                return getattr(self.bucket, name)

        throttler.bucket = lambda seller, operation: Bucket(operation, bucket_of(seller, operation))


def in_sage(pipeline) -> int:
    x = schema.tsoSalesOrderExt_AMZ
    with pipeline.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(x)).scalar_one()


def one_line_orders(pipeline, count: int) -> list[str]:
    """``count`` single-line MFN orders, in batches the control API takes (the Sage writes stay cheap)."""
    ids: list[str] = []
    skus = pipeline.stocked_skus()
    while len(ids) < count:
        ids += pipeline.generate(min(1000, count - len(ids)), skus=skus, multi_line_share=0, quantity=1,
                                 international_share=0)
    return ids


@pytest.fixture
def sandbox(request) -> Iterator[RunningSandbox]:
    """The sandbox at the time scale a test names (``parametrize("sandbox", [scale], indirect=True)``)."""
    running = start(time_scale=getattr(request, "param", TIME_SCALE))
    yield running
    running.stop()


def test_a_3000_order_backlog_drains_with_one_search_call_per_page(pipeline):
    """Every notification missed: the window alone reads 3,000 orders, 30 pages, past the burst of 20 (at 60 times
    Amazon's speed a page every 3 s). Today's window read every page before handing anything over and restarted
    from page 1 after each throttled page. The amazon side only: every order handed over to its apply_order."""
    calls = CountedCalls(pipeline.sandbox)
    ids = one_line_orders(pipeline, BACKLOG)
    pipeline.sandbox.world.advance(180)  # searchOrders shows orders two minutes after their last update
    with captured_events() as events, pipeline.workers(queues=("amazon",), threads=2):
        assert pipeline.runtime.enqueue("sync_window", key=SYNC_KEY)
        pipeline.wait(lambda: pipeline.runtime.store.job_keys_count("sage500") == BACKLOG, timeout=300,
                      what="3000 orders handed over")
        pipeline.wait(lambda: pipeline.runtime.store.job_keys_count("amazon") == 0, timeout=60,
                      what="the window to end")
    pages = [e for e in events if e["event"] == "orders.page"]
    # 30 pages of 100, then (the window was behind) the next window from where it ended: nothing more
    assert [e["orders"] for e in pages] == [100] * 30 + [0]
    assert calls.served["searchOrders"] == len(pages) and calls.throttled["searchOrders"] == 0
    assert calls.served["getOrder"] == 0
    assert {pipeline.journal(o) for o in ids} == {"writing"}
    store = pipeline.runtime.store
    assert store.position(POSITION).get("token") is None  # the window completed
    assert store.cursor(CURSOR, initial=pipeline.sandbox.world.now()).last_value is not None
    assert store.dead_letters.list() == []


def test_a_throttled_window_goes_on_at_its_recorded_page(make_pipeline, monkeypatch):
    """A plan of one searchOrders call every 714 sandbox-seconds (12 real seconds at 60 times): every page after the first meets an empty
    bucket, so each run of the window reads one page and waits in the schedule. It must go on at the next page
    (today's window restarted at page 1 on every run and never got past page 2)."""
    plan = {"searchOrders": (0.0014, 2)}  # a page every 714 sandbox-seconds, 12 real seconds; our burst: 1 page
    monkeypatch.setitem(ratelimit.USAGE_PLANS, "searchOrders", plan["searchOrders"])
    pipeline = make_pipeline()
    pipeline.sandbox.world.throttler.plans.update(plan)
    calls = CountedCalls(pipeline.sandbox)
    ids = one_line_orders(pipeline, 250)
    pipeline.sandbox.world.advance(180)
    store = pipeline.runtime.store
    with captured_events() as events, pipeline.workers(queues=("amazon",)):
        assert pipeline.runtime.enqueue("sync_window", key=SYNC_KEY)
        pipeline.wait(lambda: store.job_keys_count("sage500") == 250, timeout=180, what="250 orders handed over")
    pages = [e["orders"] for e in events if e["event"] == "orders.page"]
    assert pages[:3] == [100, 100, 50]  # each page once, in order
    throttled_runs = [e for e in events if e["event"] == "job.retry" and e["job"] == "sync_window"]
    assert len(throttled_runs) >= 2 and {e["error_code"] for e in throttled_runs} == {"rate_limited"}
    assert calls.served["searchOrders"] == len(pages) and calls.throttled["searchOrders"] == 0
    assert {pipeline.journal(o) for o in ids} == {"writing"}


@pytest.mark.parametrize("sandbox", [FAST], indirect=True)
def test_a_notified_backlog_is_read_newest_first_by_getorder_and_oldest_first_by_pages(make_pipeline):
    """1,000 orders notified at once: the window's pages and the newest-first reader share them, each order read
    once; searchOrders calls equal its pages; nothing is throttled by Amazon."""
    pipeline = make_pipeline(sandbox={"time_scale": FAST}, queue={"workers": 4})
    server = start_web(pipeline.runtime)
    try:
        pipeline.webhook_to(f"{server.url}/notifications")
        calls = CountedCalls(pipeline.sandbox)
        with captured_events() as events:
            ids = one_line_orders(pipeline, N)
            pipeline.wait(lambda: len(pipeline.runtime.store.job_keys_pending(limit=5000)) >= N, timeout=300,
                          what=f"{N} notifications queued")
            with pipeline.workers(threads=4):
                pipeline.wait(lambda: in_sage(pipeline) == N, timeout=900, what=f"{N} orders in Sage")
                assert pipeline.runtime.drain(60), pipeline.describe()
    finally:
        pipeline.control("PUT", "notifications/sinks", json={})
        server.stop()
    paged = sum(e["queued"] for e in events if e["event"] == "orders.page")
    read = [e for e in events if e["event"] == "orders.notified_read"]
    by_reader = sum(e["queued"] for e in read)
    pages = sum(1 for e in events if e["event"] == "orders.page")
    assert paged > 0 and by_reader > 0, f"pages handed over {paged}, the reader {by_reader}"
    # every order handed over (a few twice: once Pending, then Unshipped, a newer state), each written once
    assert N <= paged + by_reader <= N + N // 100
    assert calls.served["searchOrders"] == pages and calls.throttled["searchOrders"] == 0
    # getOrder went only to orders no page had delivered (a page and the reader may race for a few)
    assert by_reader <= calls.served["getOrder"] <= by_reader + 20 and calls.throttled["getOrder"] == 0
    assert {pipeline.journal(o) for o in ids} == {"written"}
    assert pipeline.runtime.store.notified_summary()[0] == 0
    assert pipeline.runtime.store.dead_letters.list() == []


@pytest.mark.parametrize("sandbox", [30.0], indirect=True)
def test_under_sustained_overload_intake_never_stops(make_pipeline, monkeypatch):
    """Orders keep arriving above what Amazon lets erpsync read, for 40 sandbox-minutes: every 10 sandbox-minutes
    more of them are in Sage, none is throttled by Amazon, and once arrivals stop the backlog drains. A seller with a
    tenth of the default plans (the same searchOrders/getOrder ratio) keeps the test small: 382 orders a
    sandbox-hour can be read, 720 arrive. Today's intake stops: under backlog it leaves every notified order to a
    window that restarts at page 1 whenever a page is throttled."""
    small = {"searchOrders": (0.00056, 2), "getOrder": (0.05, 3)}
    for operation, plan in small.items():  # Amazon's plan for this seller, and erpsync's copy of it
        monkeypatch.setitem(ratelimit.USAGE_PLANS, operation, plan)
    pipeline = make_pipeline(sandbox={"time_scale": 30.0})
    world = pipeline.sandbox.world
    world.throttler.plans.update(small)
    server = start_web(pipeline.runtime)
    calls = CountedCalls(pipeline.sandbox)
    stop = threading.Event()
    skus = pipeline.stocked_skus()
    arrived: list[str] = []

    def arrive() -> None:  # 12 orders a sandbox-minute, however fast the sandbox can make them
        while not stop.is_set():
            due = int((world.now() - start_at).total_seconds() / 5) - len(arrived)
            if due > 0:
                arrived.extend(pipeline.generate(due, skus=skus, multi_line_share=0, quantity=1))
            else:
                stop.wait(0.1)

    start_at = world.now()
    arrivals = threading.Thread(target=arrive, name="arrivals", daemon=True)
    progress: list[int] = []
    try:
        pipeline.webhook_to(f"{server.url}/notifications")
        with pipeline.workers():
            arrivals.start()
            for interval in range(1, 5):  # 4 intervals of 10 sandbox-minutes
                due = start_at + timedelta(minutes=10 * interval)
                pipeline.wait(lambda: world.now() >= due, timeout=120, what=f"sandbox time {due}")
                progress.append(in_sage(pipeline))
            stop.set()
            arrivals.join(30)
            pipeline.wait(lambda: in_sage(pipeline) == len(arrived), timeout=300,
                          what=f"the backlog of {len(arrived)} orders to drain")
    finally:
        stop.set()
        pipeline.control("PUT", "notifications/sinks", json={})
        server.stop()
    assert all(later > earlier for earlier, later in zip([0, *progress], progress)), progress
    assert len(arrived) > progress[-1] + 50, "arrivals did not exceed what intake can read"
    assert calls.throttled["searchOrders"] == calls.throttled["getOrder"] == 0
    assert {pipeline.journal(o) for o in arrived} == {"written"}
    assert pipeline.runtime.store.dead_letters.list() == []


def test_intake_lag_is_the_age_of_the_oldest_order_not_yet_decided_in_sage(pipeline):
    store, now = pipeline.runtime.store, datetime.now(timezone.utc)
    assert intake_lag(store, now) == timedelta(0)  # nothing waits
    store.notified_add("111-0000000-0000001", "Unshipped")  # notified, not read yet
    assert timedelta(0) < intake_lag(store, now + timedelta(minutes=5)) <= timedelta(minutes=5)
    reached = now - timedelta(hours=2)  # a window in progress, its pages up to two hours ago
    store.position_set(POSITION, {"after": (reached - timedelta(hours=1)).isoformat(), "token": "t",
                                  "reached": reached.isoformat()})
    assert intake_lag(store, now) == timedelta(hours=2)
    server = start_web(pipeline.runtime)
    try:
        metrics = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"}).text
    finally:
        server.stop()
    [line] = [m for m in metrics.splitlines() if m.startswith("erpsync_order_intake_lag_seconds ")]
    assert float(line.split()[1]) >= 7200
    store.position_set(POSITION, {"late_seconds": 0.0})  # the window completed
    [notified] = store.notified_newest()
    assert store.notified_remove(notified)
    assert intake_lag(store, now) == timedelta(0)


def test_a_notified_order_whose_apply_order_is_in_flight_is_not_left_behind(pipeline):
    """A notification deferred under backlog while the order's apply_order is in flight: the reader passes over
    it, and once the apply_order has ended the order is settled and forgotten. Before, nothing came back for it:
    it stayed notified and the intake lag never returned to zero."""
    [oid] = pipeline.generate(1)
    runtime, store = pipeline.runtime, pipeline.runtime.store
    with captured_events() as events:
        with pipeline.workers(queues=("amazon",)):  # no sage500 worker: the apply_order stays in flight
            runtime.enqueue("import_order", import_key(oid, "Unshipped"), amazon_order_id=oid, status="Unshipped",
                            read=True)
            pipeline.wait(lambda: store.job_key_get(apply_key(oid)) is not None, what="the order handed over")
            store.notified_add(oid, "Unshipped")  # its notification, deferred under backlog meanwhile
            runtime.enqueue("read_notified", READER_KEY)
            pipeline.wait(lambda: any(e["event"] == "orders.notified_read" and e["deferred"] for e in events),
                          what="the reader to pass over the busy order")
        assert store.notified_summary()[0] == 1
        with pipeline.workers():
            pipeline.wait(lambda: store.notified_summary()[0] == 0, timeout=60,
                          what="the notified order to be settled and forgotten")
            assert runtime.drain(30), pipeline.describe()
    assert pipeline.journal(oid) == "written" and pipeline.sage_rows(oid) == (1, 1)
    assert intake_lag(store, datetime.now(timezone.utc)) == timedelta(0)


def test_the_window_jumps_over_what_the_reader_read_and_sweeps_it_once_caught_up(pipeline):
    """Where the window's pages enter a run of orders the newest-first reader has read, the window goes on from the
    run's end instead of paging orders read already; once caught up it sweeps the range it jumped over, which finds
    the orders in it that no notification announced (here: all of them — the reader's run is made up)."""
    ids = one_line_orders(pipeline, 250)
    pipeline.sandbox.world.advance(180)
    updated = sorted(datetime.fromisoformat(pipeline.amazon_order(o)["lastUpdatedTime"].replace("Z", "+00:00"))
                     for o in ids)
    lo, hi = updated[40], updated[200]
    assert lo < updated[99] < hi, "the orders' times do not spread over the pages"
    store = pipeline.runtime.store
    store.position_set(READ, {"below": None, "done": [[lo.isoformat(), hi.isoformat()]], "current": None})
    with captured_events() as events, pipeline.workers(queues=("amazon",)):
        assert pipeline.runtime.enqueue("sync_window", key=SYNC_KEY)
        pipeline.wait(lambda: store.job_keys_count("sage500") == 250, timeout=120, what="250 orders handed over")
        pipeline.wait(lambda: store.job_keys_count("amazon") == 0, timeout=60, what="the window to end")
    [jump] = [e for e in events if e["event"] == "orders.window" and e.get("jumped_from")]
    assert datetime.fromisoformat(jump["jumped_from"]) >= lo and jump["end"] == hi.isoformat()
    pages = [e for e in events if e["event"] == "orders.page"]
    swept = sum(e["queued"] for e in pages if e.get("sweep"))
    assert swept > 0 and sum(e["queued"] for e in pages) == 250
    assert store.position(SKIPPED)["ranges"] == []
    assert {pipeline.journal(o) for o in ids} == {"writing"}


def test_a_5xx_on_one_order_does_not_spend_the_readers_budget_once_it_has_read_others(make_pipeline, monkeypatch):
    """The reader serves many orders: Amazon answering 5xx to one of them, after others were read in the same run,
    is that order's problem, not the reader's. Before, each such run spent one of the reader's retries, and under
    R3's 5 % of 5xx the reader itself became a dead letter (read_notified/amazon_unavailable)."""
    pipeline = make_pipeline(queue={"max_retries": 1})
    ids = pipeline.generate(6)
    store = pipeline.runtime.store
    for oid in ids:
        store.notified_add(oid, "Unshipped")
    real, calls = orders_flow._read_one, Counter()

    def every_second_call_fails(ctx, binder, oid, **kw):
        calls["getOrder"] += 1
        if calls["getOrder"] % 2 == 0:
            raise errors.AmazonUnavailable(f"getOrder {oid}: 503 from Amazon", record=oid)
        return real(ctx, binder, oid, **kw)

    monkeypatch.setattr(orders_flow, "_read_one", every_second_call_fails)
    with pipeline.workers(queues=("amazon",)):
        assert pipeline.runtime.enqueue("read_notified", READER_KEY)
        pipeline.wait(lambda: store.notified_summary()[0] == 0 or store.dead_letters.list(), timeout=60,
                      what="every notified order read")
    assert store.dead_letters.list() == []
    assert {pipeline.journal(o) for o in ids} == {"writing"}
