"""`erpsync notifications subscribe`: route the notifications erpsync consumes (ORDER_CHANGE and the inventory and
listing types) to the SQS queue erpsync reads, with the Notifications API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import typer
from rich.console import Console

from erpsync import logs
from erpsync.amazon.client import AmazonClient
from erpsync.amazon.notifications import PAYLOAD_VERSIONS
from erpsync.commands import load_settings
from erpsync.errors import ErpsyncError

app = typer.Typer(no_args_is_help=True, help="Amazon notifications: subscribe.")
console = Console()
err = Console(stderr=True)


def queue_arn(queue_url: str, region: str) -> str:
    """The ARN of the SQS queue at ``queue_url`` (``…/<account>/<queue>``) in ``region``."""
    parts = [p for p in urlsplit(queue_url).path.split("/") if p]
    if len(parts) != 2 or not parts[0].isdigit():
        raise ValueError(f"[amazon.notifications] sqs_queue_url {queue_url!r} does not end in /<account>/<queue>; "
                         f"give the queue's ARN with --sqs-arn")
    return f"arn:aws:sqs:{region}:{parts[0]}:{parts[1]}"


@app.command()
def subscribe(sqs_arn: Optional[str] = typer.Option(
                  None, "--sqs-arn", help="The queue's ARN (default: from \\[amazon.notifications] sqs_queue_url and "
                                          "sqs_region)."),
              types: Optional[list[str]] = typer.Option(
                  None, "--type", help=f"Only this type (repeatable; default: {', '.join(PAYLOAD_VERSIONS)})."),
              name: str = typer.Option("erpsync", "--name", help="The destination's name, when it is created."),
              as_json: bool = typer.Option(False, "--json", help="Print JSON."),
              config: Optional[Path] = typer.Option(None, "--config", "-c",
                                                    help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")
              ) -> None:
    """Create the SQS destination (or reuse it) and subscribe the seller to each type erpsync consumes, with the
    payload version it reads; subscriptions already there are kept."""
    logs.configure()
    settings = load_settings(config)
    notifications = settings.amazon.notifications
    try:
        arn = sqs_arn or (queue_arn(notifications.sqs_queue_url, notifications.sqs_region)
                          if notifications.sqs_queue_url else None)
        if arn is None:
            raise ValueError("no queue: give --sqs-arn, or set [amazon.notifications] sqs_queue_url")
        with AmazonClient(settings) as amazon:
            results = amazon.notifications.subscribe(arn, name=name, types=types or tuple(PAYLOAD_VERSIONS))
    except (ValueError, ErpsyncError) as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps({"sqs_arn": arn, "subscriptions": results}, indent=2))
    else:
        for r in results:
            console.print(f"{r['type']:<36} {r['outcome']:<9} {r['subscription_id']} (payload {r['payload_version']})"
                          + (f"\n  {r['message']}" if r.get("message") else ""), highlight=False, markup=False)
    if any(r["outcome"] == "elsewhere" for r in results):
        raise typer.Exit(1)
