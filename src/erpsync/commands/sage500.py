"""`erpsync sage500 ...` commands (thin: parse arguments, call the library, print)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from erpsync import config as config_mod
from erpsync.commands import load_settings
from erpsync.errors import ErpsyncError
from erpsync.sage500 import replica
from erpsync.sage500.engine import make_engine, real_sage

app = typer.Typer(no_args_is_help=True, help="The Sage 500 side: the replica database.")
replica_app = typer.Typer(no_args_is_help=True, help="The built-in Sage 500 replica (SQLite file or PostgreSQL).")
app.add_typer(replica_app, name="replica")

console = Console()
err = Console(stderr=True)

ConfigOption = typer.Option(None, "--config", "-c", help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")
UrlOption = typer.Option(None, "--url", help="Database URL of the replica (default: [sage500] url of the config)")


def _replica_url(settings: config_mod.Settings, url: Optional[str]) -> str:
    """The replica's URL, refused before any connection when the target is (or may be) a real Sage database:
    these commands create and drop Sage's tables and fill them with a made-up company."""
    target = settings.resolve_url(url or settings.sage500.url)
    reason = real_sage(settings.sage500.mode, target)
    if reason:
        message = (f"refused: {reason}. `erpsync sage500 replica` only builds the test replica (SQLite or "
                   f"PostgreSQL) and would write Sage's own tables; nothing was touched. For a replica use a config "
                   f'with [sage500] mode = "replica" and a sqlite:/// or postgresql:// URL.')
        err.print(f"[red]{escape(message)}[/red]", soft_wrap=True)
        raise typer.Exit(1)
    return target


@replica_app.command("create")
def create(config: Optional[Path] = ConfigOption, url: Optional[str] = UrlOption) -> None:
    """Create the replica's tables (those missing) and its surrogate-key counters."""
    settings = load_settings(config)
    target = _replica_url(settings, url)
    engine = make_engine(target)
    try:
        made = replica.create(engine, settings.sage500.tables)
    finally:
        engine.dispose()
    console.print(f"replica at {engine.url.render_as_string()}: created {len(made)} tables"
                  + (f" ({', '.join(made)})" if made else " (all were there)"))


@replica_app.command("seed")
def seed(config: Optional[Path] = ConfigOption, url: Optional[str] = UrlOption,
         items: int = typer.Option(500, "--items", min=1, help="How many items to create."),
         seed_value: int = typer.Option(7, "--seed", help="Random seed: the same seed makes the same company."),
         reset: bool = typer.Option(False, "--reset", help="Drop every Sage table first (destroys the replica).")
         ) -> None:
    """Create the replica if needed and seed a company (items, stock, prices, customers, GL accounts)."""
    settings = load_settings(config)
    target = _replica_url(settings, url)
    engine = make_engine(target)
    tables = settings.sage500.tables
    try:
        if reset:
            replica.drop(engine, tables)
        with Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("seeding", total=len(replica.SEEDED_TABLES))

            def advance(table: str, rows: int) -> None:
                progress.update(task, advance=1, description=table)

            report = replica.seed(engine, settings.sage500.company_id, items=items, seed=seed_value,
                                  tables=tables, progress=advance)
    except (ErpsyncError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    table = Table(title=f"Sage 500 replica, company {report.company_id} ({engine.url.render_as_string()})")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in report.rows.items():
        table.add_row(name, str(rows))
    console.print(table)
