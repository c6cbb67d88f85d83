"""`erpsync pii purge`: redact buyer data past its retention from the state store now (workers also run it on
their schedule)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from erpsync import logs
from erpsync.commands import load_settings
from erpsync.runtime import pii
from erpsync.runtime.store import Store

app = typer.Typer(no_args_is_help=True, help="Buyer data retention: purge.")
console = Console()


@app.command()
def purge(days: Optional[float] = typer.Option(None, "--days", min=0,
                                               help="Retention in days (default: [pii] retention_days, 30)."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON."),
          config: Optional[Path] = typer.Option(None, "--config", "-c",
                                                help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")
          ) -> None:
    """Redact buyer names, addresses, phones and e-mails kept past the retention (Sage is not touched)."""
    logs.configure()
    settings = load_settings(config)
    store = Store.open(settings)
    try:
        report = pii.purge(store, timedelta(days=settings.pii.retention_days if days is None else days))
    finally:
        store.close()
    if as_json:
        print(json.dumps({"cutoff": report.cutoff.isoformat(), "orders": report.orders, **report.counts}))
        return
    console.print(f"purged buyer data older than {report.cutoff:%Y-%m-%d %H:%M} UTC ({report.orders} order(s) "
                  f"past retention): " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in report.counts.items()),
                  highlight=False, soft_wrap=True)
