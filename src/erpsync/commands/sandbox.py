"""`erpsync sandbox ...`: serve the SP-API simulator, and drive a running one through its /_sandbox/ API.

    erpsync sandbox --port 8766 --time-scale 60              # serve until Ctrl-C
    erpsync sandbox orders --url http://127.0.0.1:8766 -n 50  # generate orders in a running sandbox
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Optional

import httpx
import typer
from rich.console import Console

from erpsync.commands import load_settings

app = typer.Typer(invoke_without_command=True, help="The SP-API simulator: serve it, or control a running one.")
console = Console()
err = Console(stderr=True)

UrlOption = typer.Option("http://127.0.0.1:8766", "--url", envvar="ERPSYNC_SANDBOX_URL",
                         help="A running sandbox (default $ERPSYNC_SANDBOX_URL or http://127.0.0.1:8766).")


@app.callback()
def serve(
    ctx: typer.Context,
    host: Optional[str] = typer.Option(None, "--host", help="Interface (default: config sandbox.host, 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port (default: config sandbox.port; 0 = a free port)."),
    time_scale: Optional[float] = typer.Option(None, "--time-scale", help="Sandbox time runs X times faster: "
                                               "rates × X, token and URL lifetimes ÷ X."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the generators (default: config sandbox.seed)."),
    sqs_queue_url: Optional[str] = typer.Option(None, "--sqs-queue-url", help="Publish ORDER_CHANGE to this queue."),
    sqs_endpoint: Optional[str] = typer.Option(None, "--sqs-endpoint", help="SQS endpoint (e.g. a moto server) of "
                                               "--sqs-queue-url and of the queues named by createDestination."),
    webhook: Optional[str] = typer.Option(None, "--webhook", help="POST ORDER_CHANGE envelopes to this URL."),
    webhook_header: list[str] = typer.Option([], "--webhook-header", help="NAME:VALUE sent with each webhook "
                                             "POST (repeatable)."),
    senders: int = typer.Option(6, "--notification-senders", min=1, max=64,
                                help="Deliveries in flight at once per sink (--sqs-queue-url, --webhook)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Config file."),
) -> None:
    """Serve the sandbox in the foreground until Ctrl-C (when no subcommand is given)."""
    if ctx.invoked_subcommand is not None:
        return
    from erpsync.sandbox.notifications import SqsSink, WebhookSink
    from erpsync.sandbox.server import start

    defaults = load_settings(config).sandbox
    headers = {}
    for item in webhook_header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            err.print(f"[red]--webhook-header {item!r} must be NAME:VALUE[/red]")
            raise typer.Exit(2)
        headers[name.strip()] = value.strip()
    running = start(host or defaults.host, defaults.port if port is None else port,
                    time_scale=time_scale or defaults.time_scale, seed=defaults.seed if seed is None else seed,
                    sqs_endpoint_url=sqs_endpoint)
    if sqs_queue_url:
        running.world.notification_sinks.append(SqsSink(sqs_queue_url, sqs_endpoint, senders=senders))
    if webhook:
        running.world.notification_sinks.append(WebhookSink(webhook, headers, senders=senders))
    console.print(f"SP-API sandbox on [bold]{running.url}[/bold]  (time × {running.world.clock.time_scale:g}, "
                  f"seller {running.world.seller_id}); control API: {running.url}/_sandbox/docs  — Ctrl-C stops")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


def _call(method: str, url: str, path: str, body: Any = None) -> Any:
    try:
        response = httpx.request(method, f"{url.rstrip('/')}/_sandbox{path}", json=body, timeout=60)
    except httpx.HTTPError as exc:
        err.print(f"[red]no sandbox at {url}: {exc}[/red]  (start one with `erpsync sandbox --port N`)")
        raise typer.Exit(1)
    if response.status_code >= 400:
        err.print(f"[red]{response.status_code}[/red] {response.text}")
        raise typer.Exit(1)
    return response.json()


def _show(data: Any) -> None:
    console.print_json(json.dumps(data))


@app.command()
def orders(
    url: str = UrlOption,
    count: int = typer.Option(10, "--count", "-n", help="How many orders."),
    skus: Optional[str] = typer.Option(None, "--skus", help="Comma-separated SKUs known to Sage."),
    sage_url: Optional[str] = typer.Option(None, "--sage-url", help="Take SKUs from timItem of this database."),
    unknown_sku_share: float = typer.Option(0.0, "--unknown-sku-share", help="Share of lines with SKUs unknown "
                                            "to Sage (0..1)."),
    unshipped: bool = typer.Option(False, "--unshipped", help="Create them Unshipped instead of Pending."),
    pending_seconds: float = typer.Option(60.0, "--pending-seconds", help="Pending -> Unshipped after (sandbox s)."),
    afn_share: float = typer.Option(0.15, "--afn-share", help="Share of FBA orders."),
    marketplace: str = typer.Option("ATVPDKIKX0DER", "--marketplace", help="Marketplace id."),
) -> None:
    """Generate orders with a realistic mix."""
    body = {"count": count, "unknown_sku_share": unknown_sku_share, "afn_share": afn_share,
            "marketplace_id": marketplace, "status": "UNSHIPPED" if unshipped else "PENDING",
            "pending_seconds": pending_seconds}
    if skus:
        body["skus"] = [s.strip() for s in skus.split(",") if s.strip()]
    if sage_url:
        body["sage_url"] = sage_url
    ids = _call("POST", url, "/orders", body)["orderIds"]
    for order_id in ids:
        console.print(order_id)
    console.print(f"{len(ids)} orders generated", style="green")


@app.command()
def cancel(order_id: str, url: str = UrlOption,
           reason: str = typer.Option("Buyer canceled", "--reason"),
           buyer_request: bool = typer.Option(False, "--buyer-request", help="Only a buyer's request to cancel.")):
    """Cancel an order (nothing shipped yet), or record the buyer's request to cancel it."""
    _show(_call("POST", url, f"/orders/{order_id}/cancel", {"reason": reason, "buyer_request": buyer_request}))


@app.command()
def refund(order_id: str, url: str = UrlOption):
    """Refund the shipped items of an order (money goes to the settlement ledger)."""
    _show(_call("POST", url, f"/orders/{order_id}/refund", {}))


@app.command()
def advance(seconds: float, url: str = UrlOption):
    """Move sandbox time forward (pending orders, token expiry, feed processing, settlements follow)."""
    _show(_call("POST", url, "/time/advance", {"seconds": seconds}))


@app.command()
def faults(settings: list[str] = typer.Argument(None, help="NAME=VALUE, e.g. error_rate=0.1 stuck_feeds=true"),
           url: str = UrlOption, reset: bool = typer.Option(False, "--reset", help="Switch every fault off.")):
    """Show or switch fault injection (no arguments: show)."""
    if reset:
        _show(_call("DELETE", url, "/faults"))
        return
    if not settings:
        _show(_call("GET", url, "/faults"))
        return
    patch: dict[str, Any] = {}
    for item in settings:
        name, sep, value = item.partition("=")
        if not sep:
            err.print(f"[red]{item!r} must be NAME=VALUE[/red]")
            raise typer.Exit(2)
        if name == "operations":
            patch[name] = [v for v in value.split(",") if v]
        else:
            try:
                patch[name] = json.loads(value)
            except ValueError:
                patch[name] = value
    _show(_call("PATCH", url, "/faults", patch))


@app.command()
def state(url: str = UrlOption):
    """Sandbox time, order counts by status, faults."""
    _show(_call("GET", url, "/state"))


@app.command()
def shipments(url: str = UrlOption, order_id: Optional[str] = typer.Option(None, "--order")):
    """The shipment confirmations the sandbox received."""
    _show(_call("GET", url, "/shipments" + (f"?orderId={order_id}" if order_id else "")))


@app.command()
def listings(url: str = UrlOption):
    """Listing quantities and prices as the sandbox holds them."""
    _show(_call("GET", url, "/listings"))
