"""`erpsync demo`: the whole integration on this machine, with nothing to configure.

Everything lives in ``.erpsync/demo/`` under the current directory, recreated on each run: a seeded Sage 500
replica (SQLite), the state store and the queues (SQLite). In this process: the SP-API sandbox (time-scaled, its
usage plans enforced), erpsync's web app receiving the sandbox's ORDER_CHANGE webhooks, huey workers and the
schedule. The seller's catalogue is listed on Amazon out of stock at old prices; erpsync's inventory and price sync
(``inventory_scan``, JSON_LISTINGS_FEED) publishes Sage's availability and price sheet; the sandbox places N orders
on those listings; erpsync writes them to Sage; the replica's warehouse ships them (some partially, some in two
packages); erpsync confirms every package on Amazon; Amazon closes a settlement and erpsync posts it to Sage's GL
(``sync_settlements``); a summary follows.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from erpsync import logs
from erpsync.config import (AmazonSettings, InventorySettings, OrderSettings, QueueSettings, RateLimitSettings,
                            Sage500Settings, SandboxSettings, Secrets, Settings, StateSettings)
from erpsync.runtime.jobs import Runtime, load_job_modules
from erpsync.runtime.schedule import Scheduler
from erpsync.runtime.store import FEED_OPEN
from erpsync.sage500 import replica, warehouse
from erpsync.sage500 import schema as s
from erpsync.sage500.engine import make_engine
from erpsync.sage500.gateway import Sage500Gateway, SalesOrder
from erpsync.sandbox.server import start as start_sandbox
from erpsync.web.app import Server, create_app

TIME_SCALE = 60.0  # sandbox seconds per real second: Amazon's usage plans hold, 60 times faster
SETTLED = ("written", "skipped", "failed")  # an order is imported once its journal says one of these
TIMEOUT = 120.0  # real seconds each phase may take before the demo reports what it has
MARKETPLACE = "ATVPDKIKX0DER"
OLD_PRICE = Decimal("1.10")  # the listings' prices before the sync: 10 % above Sage's price sheet
SETTLEMENT_JOBS = ("sync_settlements", "import_settlement", "post_settlement")


@dataclass(frozen=True)
class Summary:
    orders_generated: int
    written_to_sage: int
    fba_skipped: int
    shipped: int
    packages_shipped: int
    confirmed: int
    packages_confirmed: int
    dead_letters: int
    sage_database: str
    seconds: float  # the whole run
    import_seconds: float  # orders placed -> every order settled in Sage
    fulfil_seconds: float  # first shipment -> every package confirmed on Amazon
    listings_updated: int = 0  # SKUs whose Sage quantity and price Amazon acknowledged in a feed's report
    listings_sent: int = 0  # SKUs the sync sent
    listing_feeds: int = 0  # JSON_LISTINGS_FEEDs processed (DONE)
    settlement_id: str | None = None
    settlement_orders: int = 0  # Amazon orders with amounts in the settlement
    settlement_deposit: str | None = None  # the payout (total-amount), a decimal string
    settlement_currency: str | None = None
    settlement_posted: bool = False  # posted to the replica's GL
    settlement_balanced: bool = False  # every GL batch sums to zero and the deposit account got the payout
    gl_batches: int = 0
    gl_lines: int = 0
    listings_seconds: float = 0.0  # the sync: scan -> every feed processed and acknowledged
    settlement_seconds: float = 0.0  # settlement closed -> posted to the GL

    @property
    def complete(self) -> bool:
        """Every phase reached its end: no dead letter, every SKU and shipment on Amazon, the settlement in the GL."""
        return not self.dead_letters and self.confirmed >= self.shipped and self.listings_sent > 0 \
            and self.listings_updated == self.listings_sent and self.settlement_posted and self.settlement_balanced


def demo_settings(directory: Path, sandbox_url: str, token: str, *, time_scale: float = TIME_SCALE,
                  rate_limits: bool = True) -> Settings:
    return Settings(
        base_dir=directory,
        state=StateSettings(url="sqlite:///state.db"),
        queue=QueueSettings(url="sqlite:///queue.db", workers=3, backoff_base_seconds=0.2, backoff_max_seconds=2.0,
                            recover_after_seconds=30.0),
        amazon=AmazonSettings(sandbox_url=sandbox_url,
                              rate_limit=RateLimitSettings(enabled=rate_limits, store_url="sqlite:///ratelimit.db")),
        sage500=Sage500Settings(url="sqlite:///sage500.db"),
        orders=OrderSettings(sync_interval_seconds=2, shipment_scan_seconds=1),
        inventory=InventorySettings(feed_poll_seconds=10),  # getFeed every 10 Amazon seconds (1/6 s at time scale 60)
        sandbox=SandboxSettings(time_scale=time_scale),
        secrets=Secrets(webhook_token=token),
    )


def run_demo(count: int, directory: Path, progress: Progress, *, seed: int = 7, time_scale: float = TIME_SCALE,
             rate_limits: bool = True, web_port: int = 0, then: Callable[..., None] | None = None) -> Summary:
    """Run the cycle; ``time_scale`` and ``rate_limits`` False are for the throughput benchmark. ``then(summary,
    runtime, app, server, sandbox_url, gateway)`` runs before everything stops (``--serve``)."""
    started = time.monotonic()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    token = secrets.token_urlsafe(24)
    with start_sandbox(time_scale=time_scale, seed=seed) as sandbox:
        settings = demo_settings(directory, sandbox.url, token, time_scale=time_scale, rate_limits=rate_limits)
        sage_url = settings.resolve_url(settings.sage500.url)
        engine = make_engine(sage_url)
        seeding = progress.add_task("Seeding the Sage 500 replica", total=len(replica.SEEDED_TABLES))
        replica.seed(engine, progress=lambda _table, _rows: progress.advance(seeding))
        load_job_modules()
        runtime = Runtime(settings)
        app = create_app(runtime)
        web = Server(app, port=web_port).start()
        consumers = runtime.start_consumer(poll_seconds=0.05)
        scheduler = Scheduler(runtime, tick_seconds=0.2).start()
        try:
            control = httpx.Client(base_url=f"{sandbox.url}/_sandbox", timeout=30)
            control.put("/notifications/sinks", json={
                "webhook_url": f"{web.url}/notifications",
                "webhook_headers": {settings.amazon.notifications.webhook_header: token}}).raise_for_status()
            gateway = Sage500Gateway(engine)
            listings = sync_listings(runtime, control, gateway, progress)
            levels = gateway.stock_levels(["MAIN"])
            stocked = sorted(item for item, qty in levels.items() if qty >= 60)
            placed = time.monotonic()
            ids = control.post("/orders", json={
                "count": count, "skus": stocked, "status": "UNSHIPPED", "seed": seed, "afn_share": 0.1,
                "multi_line_share": 0.35, "multi_quantity_share": 0.3, "promotion_share": 0.3, "gift_share": 0.15,
                "international_share": 0.15, "business_share": 0.1}).json()["orderIds"]
            store = runtime.store

            importing = progress.add_task("Orders into Sage", total=len(ids))
            _wait(progress, importing, lambda: sum(_status(store, o) in SETTLED for o in ids))
            written = [o for o in ids if _status(store, o) == "written"]
            imported = time.monotonic()

            shipping = progress.add_task("Shipped by the Sage warehouse", total=len(written))
            packages, shipped = 0, []
            for number, oid in enumerate(written):
                try:
                    packages += ship(engine, gateway.order_by_amazon_id(oid), number)
                    shipped.append(oid)
                except warehouse.WarehouseError:  # out of stock in one bin: the order stays open in Sage
                    pass
                progress.advance(shipping)

            confirming = progress.add_task("Confirmed on Amazon", total=packages)
            _wait(progress, confirming, lambda: len(control.get("/shipments").json()["shipments"]))
            _wait(progress, None, lambda: sum(_status(store, o) == "confirmed" for o in shipped),
                  total=len(shipped))
            confirmations = control.get("/shipments").json()["shipments"]
            fulfilled = time.monotonic()
            settlement = settle(runtime, control, engine, progress)
            summary = Summary(
                orders_generated=len(ids), written_to_sage=gateway_count(gateway, ids),
                fba_skipped=sum(_status(store, o) == "skipped" for o in ids), shipped=len(shipped),
                packages_shipped=packages,
                confirmed=sum(_status(store, o) == "confirmed" for o in ids),
                packages_confirmed=len(confirmations),
                dead_letters=len(store.dead_letters.list("open", limit=100_000)), sage_database=sage_url,
                seconds=round(time.monotonic() - started, 1), import_seconds=round(imported - placed, 2),
                fulfil_seconds=round(fulfilled - imported, 2), **listings, **settlement)
            if then is not None:
                then(summary, runtime, app, web, sandbox.url, gateway)
            return summary
        finally:
            scheduler.stop()
            consumers.stop()
            web.stop()
            runtime.close()
            engine.dispose()


def sync_listings(runtime: Runtime, control: httpx.Client, gateway: Sage500Gateway, progress: Progress
                  ) -> dict[str, int | float]:
    """Stock and prices to Amazon, as the worker sends them. The seller's catalogue (every Sage item with a price)
    is listed on Amazon beforehand, out of stock and at old prices (a feed's PATCH changes existing listings only);
    then ``inventory_scan`` reads Sage's availability and price sheet and queues JSON_LISTINGS_FEEDs, which the
    workers submit and follow until Amazon's processing report acknowledges each SKU. The orders come afterwards,
    at the prices and within the quantities Sage published."""
    prices = gateway.prices("USD", "MAIN")
    control.put("/listings", json=[{"sku": item, "price": str((price * OLD_PRICE).quantize(Decimal("0.01"))),
                                    "quantity": 0} for item, price in sorted(prices.items())]).raise_for_status()
    started = time.monotonic()
    outcome = runtime.run("inventory_scan", {}, key="inventory_scan:demo")
    counts = outcome.value if outcome.status == "done" else {"messages": 0, "feeds": []}
    batches = set(counts["feeds"])
    listings = runtime.store.listings

    def feeds() -> list:
        return [f for f in listings.feeds(limit=10_000) if f.id in batches]

    def acknowledged() -> int:
        return sum(1 for state in listings.states(MARKETPLACE).values() if state.acked and state.sent is None)

    task = progress.add_task("Listings updated on Amazon", total=counts["messages"])
    _wait(progress, task, acknowledged, finished=lambda: all(f.status not in FEED_OPEN for f in feeds()))
    return {"listings_sent": counts["messages"], "listings_updated": acknowledged(),
            "listing_feeds": sum(f.status == "DONE" for f in feeds()),
            "listings_seconds": round(time.monotonic() - started, 2)}


def settle(runtime: Runtime, control: httpx.Client, engine, progress: Progress) -> dict[str, object]:
    """Amazon closes a settlement period (the sandbox's control call: the demo's orders, their fees and the
    period's charges); ``sync_settlements`` lists it, the workers import it and post it to Sage's GL. Read back
    from the replica: its batches, their lines, and whether each batch balances and the deposit account got the
    payout."""
    closed = control.post("/settlements", json={})
    closed.raise_for_status()
    sid, started = closed.json()["settlementId"], time.monotonic()
    store = runtime.store
    runtime.enqueue("sync_settlements", key="sync_settlements")

    def posted() -> int:
        record = store.settlement_get(sid)
        return int(record is not None and record.status == "posted")

    task = progress.add_task("Settlement posted to the Sage GL", total=1)
    _wait(progress, task, posted, finished=lambda: any(
        d.job in SETTLEMENT_JOBS for d in store.dead_letters.list("open", limit=1000)))
    record = store.settlement_get(sid)
    found: dict[str, object] = {"settlement_id": sid, "settlement_seconds": round(time.monotonic() - started, 2),
                                "settlement_orders": len({r["order_id"] for r in store.settlement_rows_of(sid)
                                                          if r["order_id"]})}
    if record is None or record.status != "posted":
        return found
    deposit_account = runtime.settings.mapping.settlement.deposit
    keys = sorted((record.batches or {}).values())
    t, a = s.tglTransaction, s.tglAccount
    with engine.connect() as conn:
        lines = conn.execute(select(t.c.BatchKey, a.c.GLAcctNo, t.c.PostAmt)
                             .join(a, a.c.GLAcctKey == t.c.GLAcctKey).where(t.c.BatchKey.in_(keys))).all()
    total = Decimal(record.total_amount)
    sums = {key: sum((Decimal(str(line.PostAmt)) for line in lines if line.BatchKey == key), Decimal(0))
            for key in keys}
    deposited = sum((Decimal(str(line.PostAmt)) for line in lines if line.GLAcctNo == deposit_account), Decimal(0))
    return {**found, "settlement_deposit": str(total), "settlement_currency": record.currency,
            "settlement_posted": True, "settlement_balanced": bool(keys) and not any(sums.values())
            and deposited == total, "gl_batches": len(keys), "gl_lines": len(lines)}


def _status(store, order_id: str) -> str | None:
    entry = store.journal_get(order_id)
    return entry.status if entry else None


def _wait(progress: Progress, task, done, *, total: int | None = None,
          finished: Callable[[], bool] | None = None) -> None:
    """Poll ``done()`` (a count) until it reaches the task's total, ``finished()`` says nothing more will come (a
    refusal, a dead letter), or the phase times out."""
    goal = total if task is None else progress.tasks[task].total
    deadline = time.monotonic() + TIMEOUT
    while True:
        count = done()
        if task is not None:
            progress.update(task, completed=count)
        if count >= goal or time.monotonic() > deadline or (finished is not None and finished()):
            return
        time.sleep(0.1)


def gateway_count(gateway: Sage500Gateway, ids: list[str]) -> int:
    return sum(gateway.order_by_amazon_id(o) is not None for o in ids)


def ship(engine, order: SalesOrder, number: int) -> int:
    """Pick, pack and commit ``order`` in the replica's warehouse; returns the packages shipped. Every third order
    goes out in two shipments (a partial shipment first), every third but one in one shipment of two packages."""
    lines = {line.SOLineKey: line.QtyOrd for line in order.lines}
    keys = list(lines)
    tracking = (f"1Z{order.SOKey:06d}{n:02d}{i:08d}" for n in range(1, 10) for i in (1, 2, 3))
    units = sum(lines.values(), Decimal(0))
    if number % 3 == 0 and units > 1:  # partial: half now, the rest later
        first = _half(lines)
        rest = {k: q - first.get(k, Decimal(0)) for k, q in lines.items() if q - first.get(k, Decimal(0)) > 0}
        shipments = [[first], [rest]]
    elif number % 3 == 1 and units > 1:  # one shipment, two packages
        first = _half(lines)
        rest = {k: q - first.get(k, Decimal(0)) for k, q in lines.items() if q - first.get(k, Decimal(0)) > 0}
        shipments = [[first, rest]]
    else:
        shipments = [[{k: lines[k] for k in keys}]]
    for packages in shipments:
        ship_key = warehouse.ship_order(engine, order.SOKey, [
            {"lines": contents, "tracking_no": next(tracking)} for contents in packages])
        warehouse.commit_shipment(engine, ship_key)
    return sum(len(packages) for packages in shipments)


def _half(lines: dict[int, Decimal]) -> dict[int, Decimal]:
    """About half of the units: whole lines first, then part of one line."""
    goal = sum(lines.values(), Decimal(0)) // 2
    half: dict[int, Decimal] = {}
    for key, qty in lines.items():
        take = min(qty, goal - sum(half.values(), Decimal(0)))
        if take <= 0:
            break
        half[key] = take
    return half


def print_summary(console: Console, summary: Summary) -> None:
    table = Table(title="erpsync demo", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    feeds = f"{summary.listings_updated} of {summary.listings_sent} SKUs ({summary.listing_feeds} feed" \
        f"{'s' if summary.listing_feeds != 1 else ''})"
    settlement = "not posted" if not summary.settlement_posted else \
        f"{summary.settlement_id} ({summary.settlement_deposit} {summary.settlement_currency})"
    batches = f"{summary.gl_batches} batch{'es' if summary.gl_batches != 1 else ''}, {summary.gl_lines} lines"
    balanced = f"{'yes' if summary.settlement_balanced else 'no'} ({batches})"
    rows = [("Sage stock and prices on Amazon", feeds),
            ("Amazon orders generated", summary.orders_generated), ("written to Sage", summary.written_to_sage),
            ("FBA orders skipped (orders.afn = skip)", summary.fba_skipped),
            ("shipped by the Sage warehouse", f"{summary.shipped} ({summary.packages_shipped} packages)"),
            ("confirmed on Amazon", f"{summary.confirmed} ({summary.packages_confirmed} packages)"),
            ("settlement posted to the Sage GL", settlement),
            ("orders in the settlement", summary.settlement_orders), ("GL balanced to the deposit", balanced),
            ("dead letters", summary.dead_letters), ("seconds", summary.seconds)]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    console.print(f"Sage 500 replica: {summary.sage_database.removeprefix('sqlite:///')}", highlight=False,
                  soft_wrap=True)


def _serving(progress: Progress) -> Callable[..., None]:
    """What ``--serve`` does once the cycle is over: the summary, then the demo page and login until Ctrl-C."""
    from erpsync.commands import demo_serve

    def then(summary, runtime, app, web, sandbox_url, gateway) -> None:
        progress.stop()
        print_summary(Console(), summary)
        demo_serve.serve(Console(), runtime, app, web.url, sandbox_url, gateway, ship)

    return then


def demo(count: int = typer.Option(25, "--orders", "-n", min=1, max=1000, help="How many Amazon orders."),
         as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
         seed: int = typer.Option(7, help="Seed of the sandbox's order generator."),
         serve: bool = typer.Option(False, "--serve", help="Keep the sandbox, workers and dashboard running after "
                                                           "the cycle, with a demo login and a page of buttons."),
         port: int = typer.Option(8765, "--port", "-p", min=0, max=65535,
                                  help="Port of the dashboard with --serve (0: a free one).")) -> None:
    """Run stock and price sync, the order-to-fulfillment cycle and a settlement against the built-in sandbox and a
    Sage 500 replica (.erpsync/demo/)."""
    logs.configure(level="ERROR")
    err = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=as_json) as progress:
        summary = run_demo(count, Path.cwd() / ".erpsync" / "demo", progress, seed=seed,
                           web_port=port if serve else 0, then=_serving(progress) if serve else None)
    if serve:
        return
    if as_json:
        print(json.dumps({**asdict(summary), "sage_database": summary.sage_database.removeprefix("sqlite:///")},
                         indent=2))
    else:
        print_summary(Console(), summary)
    if not summary.complete:
        raise typer.Exit(1)
