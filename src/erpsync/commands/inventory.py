"""`erpsync inventory sync`, `erpsync prices sync|approve`, `erpsync reconcile inventory` (thin: parse arguments,
call the flows, print)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from erpsync import logs, mapping
from erpsync.amazon.translate import json_number
from erpsync.commands import config_errors, load_settings
from erpsync.errors import ErpsyncError
from erpsync.runtime.jobs import Context, Runtime, load_job_modules
from erpsync.runtime.store import FEED_OPEN

inventory_app = typer.Typer(no_args_is_help=True, help="Stock from Sage to Amazon.")
prices_app = typer.Typer(no_args_is_help=True, help="Prices from Sage to Amazon.")
reconcile_app = typer.Typer(no_args_is_help=True, help="Compare Sage with Amazon.")
console = Console()
err = Console(stderr=True, soft_wrap=True)

ConfigOption = typer.Option(None, "--config", "-c", help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")
JsonOption = typer.Option(False, "--json", help="Print JSON instead of tables.")
DryRunOption = typer.Option(False, "--dry-run", help="Print the messages that would be sent, per SKU; send nothing.")
WaitOption = typer.Option(False, "--wait", help="Run the feeds here until Amazon has processed them "
                                               "(otherwise the workers send them).")
TimeoutOption = typer.Option(3600.0, "--timeout", help="With --wait: give up after this many seconds.")


def _runtime(config: Optional[Path]) -> Runtime:
    logs.configure()
    settings = load_settings(config)
    load_job_modules(settings.queue.job_modules)
    with config_errors():
        return Runtime(settings, config_path=config)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=json_number))


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]{escape(str(exc))}[/red]")
    return typer.Exit(1)


def _sync(config: Optional[Path], fields: list[str] | None, *, dry_run: bool, full: bool, as_json: bool,
          wait: bool, timeout: float) -> None:
    from erpsync.flows import inventory

    runtime = _runtime(config)
    try:
        with config_errors():
            with _working("Reading Sage and comparing with what Amazon acknowledged", quiet=as_json):
                if dry_run:
                    ctx = Context(runtime, "inventory_scan", "cli:dry-run", 1)
                    chosen = tuple(fields) if fields else mapping.LISTING_FIELDS
                    plans = inventory.scan_plans(ctx, full=full, fields=chosen)
                else:
                    outcome = runtime.run("inventory_scan", {"full": full, "fields": fields},
                                          key="inventory_scan:cli")
            if dry_run:
                _show_plans(runtime, plans, as_json)
                return
        if outcome.status != "done":
            raise _fail(ErpsyncError(f"the scan did not finish ({outcome.status}): {outcome.error}"))
        counts = outcome.value
        if wait and counts["feeds"]:
            _wait_for_feeds(runtime, counts["feeds"], timeout, quiet=as_json)
        feeds = [runtime.store.listings.feed(batch) for batch in counts["feeds"]]
        result = {**counts, "feeds": [{"batch": f.id, "feed_id": f.feed_id, "status": f.status,
                                       "messages": len(f.messages), "summary": f.summary, "flagged": f.flagged}
                                      for f in feeds if f is not None]}
        if as_json:
            _print_json(result)
            return
        console.print(f"{counts['skus']} SKUs compared, {counts['messages']} to send in {len(feeds)} feed(s), "
                      f"{counts['held']} price(s) held for review")
        for feed in result["feeds"]:
            console.print(f"  feed batch {feed['batch']}: {feed['messages']} messages, {feed['status']}"
                          + (f" (Amazon feed {feed['feed_id']})" if feed["feed_id"] else ""))
    finally:
        runtime.close()


@contextmanager
def _working(what: str, *, quiet: bool) -> Iterator[None]:
    """A progress bar of unknown length on stderr while ``what`` runs (a 100,000-item catalogue takes seconds)."""
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, disable=quiet, transient=True) as progress:
        progress.add_task(what, total=None)
        yield


def _show_plans(runtime: Runtime, plans, as_json: bool) -> None:
    from erpsync.flows import inventory

    data = {p.marketplace_id: {"messages": inventory.proposed_messages(runtime.settings, p),
                               "held": {sku: held for sku, held in p.held.items() if held},
                               "excluded": p.excluded} for p in plans}
    if as_json:
        _print_json({"dry_run": True, "marketplaces": data})
        return
    for marketplace_id, found in data.items():
        table = Table("SKU", "Sage item", "quantity", "price", "attributes", title=f"would send to {marketplace_id}")
        for proposed in found["messages"]:
            values = proposed["values"]
            table.add_row(proposed["sku"], proposed["item_id"], str(values.get("quantity", "")),
                          str(values.get("price", "")),
                          ", ".join(f"{name}={text!r}" for name, text
                                    in sorted((values.get("attributes") or {}).items())))
        console.print(table)
        for sku, held in found["held"].items():
            console.print(f"[yellow]held[/yellow] {escape(held['reason'])}")
        console.print(f"{len(found['messages'])} message(s); {len(found['excluded'])} Sage item(s) not published")


def _wait_for_feeds(runtime: Runtime, batches: list[int], timeout: float, *, quiet: bool) -> None:
    """Run in-process workers until the feeds are processed (progress bar), or ``timeout``."""
    deadline = time.monotonic() + timeout
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with runtime.start_consumer(workers=2, poll_seconds=0.2), \
            Progress(*columns, console=err, disable=quiet, transient=True) as progress:
        task = progress.add_task("Feeds processed by Amazon", total=len(batches))
        while True:
            ours = set(batches)
            done = sum(1 for f in runtime.store.listings.feeds(limit=10_000) if f.id in ours
                       and f.status not in FEED_OPEN)
            progress.update(task, completed=done)
            if done == len(batches) or time.monotonic() > deadline:
                return
            time.sleep(0.2)


@inventory_app.command("sync")
def inventory_sync(dry_run: bool = DryRunOption,
                   full: bool = typer.Option(False, "--full", help="Send every SKU, changed or not."),
                   as_json: bool = JsonOption, wait: bool = WaitOption, timeout: float = TimeoutOption,
                   config: Optional[Path] = ConfigOption) -> None:
    """Send Sage's available quantities (and mapped attributes) that Amazon has not acknowledged yet."""
    _sync(config, ["quantity", "attributes"], dry_run=dry_run, full=full, as_json=as_json, wait=wait,
          timeout=timeout)


@prices_app.command("sync")
def prices_sync(dry_run: bool = DryRunOption,
                full: bool = typer.Option(False, "--full", help="Send every price, changed or not."),
                as_json: bool = JsonOption, wait: bool = WaitOption, timeout: float = TimeoutOption,
                config: Optional[Path] = ConfigOption) -> None:
    """Send Sage's prices (price sheet, markup, rounding) that Amazon has not acknowledged yet; a change over
    [prices] guard_percent is held for review."""
    _sync(config, ["price"], dry_run=dry_run, full=full, as_json=as_json, wait=wait, timeout=timeout)


@prices_app.command("approve")
def prices_approve(sku: str, marketplace: Optional[str] = typer.Option(None, help="Marketplace id (default: all)."),
                   config: Optional[Path] = ConfigOption) -> None:
    """Approve a price the guard holds: the next sync sends it."""
    runtime = _runtime(config)
    try:
        from erpsync.flows import prices

        approved = prices.approve(Context(runtime, "prices_approve", "cli:approve", 1), sku,
                                  [marketplace] if marketplace else None)
        if not approved:
            raise _fail(ErpsyncError(f"no price is held for SKU {sku!r}; `erpsync prices sync --dry-run` shows "
                                     f"the held ones"))
        for mp, held in approved.items():
            console.print(f"{sku} ({mp}): {held['price']} approved; the next `erpsync prices sync` sends it")
    finally:
        runtime.close()


@reconcile_app.command("inventory")
def reconcile_inventory(as_json: bool = JsonOption,
                        fix: bool = typer.Option(False, "--fix", help="Push Sage's values for the differences."),
                        timeout: float = typer.Option(3600.0, "--timeout", help="Give up waiting for Amazon's "
                                                      "listings report after this many seconds."),
                        config: Optional[Path] = ConfigOption) -> None:
    """Compare Sage's availability with Amazon's quantities (all-listings report, FBA inventory); each difference
    with its likely cause and age. --fix sends Sage's values for the unexplained ones."""
    from erpsync.flows import reconcile

    runtime = _runtime(config)
    try:
        ctx = Context(runtime, "reconcile_inventory", "cli:reconcile", 1)
        with config_errors(), _working("Reading Sage; Amazon prepares the all-listings report", quiet=as_json):
            try:
                results = reconcile.run_inline(ctx, fix=fix, timeout=timeout)
            except ErpsyncError as exc:
                raise _fail(exc) from None
        if as_json:
            _print_json(results)
            return
        for result in results:
            table = Table("SKU", "Sage", "Amazon", "channel", "likely cause", "age",
                          title=f"{result['marketplace_id']}: {len(result['differences'])} difference(s) "
                                f"of {result['compared']} SKUs")
            for d in result["differences"]:
                table.add_row(d["sku"], str(d["sage"]), str(d["amazon"]), d["channel"], d["cause"], d["age"] or "")
            console.print(table)
            if result.get("fixed"):
                console.print(f"--fix: {len(result['fixed'])} SKU(s) sent in feed batch(es) {result['feeds']}")
    finally:
        runtime.close()
