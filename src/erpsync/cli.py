"""The ``erpsync`` command line (typer). Thin: each command parses, calls the library and prints."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

import erpsync
from erpsync import config as config_mod
from erpsync.commands import dlq, orders, sage500, sandbox
from erpsync.commands import settlements as settlements_commands
from erpsync.commands import inventory as inventory_commands
from erpsync.commands.check import check
from erpsync.commands.demo import demo
from erpsync.commands.web import web
from erpsync.commands.worker import worker
from erpsync.commands import pii, users
from erpsync.commands import notifications as notifications_commands
from erpsync.commands.run import run
from erpsync.errors import ConfigError

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Amazon Seller Central <-> Sage 500 integration middleware.")
app.add_typer(sage500.app, name="sage500", help="The Sage 500 side: replica database, schema.")
app.add_typer(dlq.app, name="dlq", help="Dead letters: list, show, replay, discard.")
app.add_typer(sandbox.app, name="sandbox", help="The SP-API simulator.")
app.add_typer(orders.app, name="orders", help="Amazon orders: preview a translation, sync.")
app.add_typer(settlements_commands.app, name="settlements", help="Settlement reports into the Sage GL: sync, import.")
app.add_typer(users.app, name="users", help="Dashboard users: add, list, remove.")
app.add_typer(pii.app, name="pii", help="Buyer data retention: purge.")
app.add_typer(inventory_commands.inventory_app, name="inventory", help="Stock from Sage to Amazon.")
app.add_typer(inventory_commands.prices_app, name="prices", help="Prices from Sage to Amazon.")
app.add_typer(inventory_commands.reconcile_app, name="reconcile", help="Compare Sage with Amazon.")
app.add_typer(notifications_commands.app, name="notifications",
              help="Amazon notifications: subscribe to what erpsync consumes.")
app.command()(check)
app.command()(worker)
app.command()(web)
app.command()(demo)
app.command()(run)

console = Console()
err = Console(stderr=True)

ConfigOption = typer.Option(None, "--config", "-c", help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")


def _version(value: bool) -> None:
    if value:
        print(f"erpsync {erpsync.__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    pass


@app.command()
def init(path: Optional[Path] = typer.Option(None, "--config", "-c", help="Where to write (default ./erpsync.toml)"),
         force: bool = typer.Option(False, "--force", help="Overwrite an existing file.")) -> None:
    """Write a commented erpsync.toml whose defaults run everything on this machine."""
    try:
        file = config_mod.write_template(path, force=force)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1)
    console.print(f"wrote {file}  (secrets go in the environment or .erpsync/secrets.toml, never in this file)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
