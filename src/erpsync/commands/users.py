"""`erpsync users add|list|remove`: the people who may log in to the dashboard (argon2id password hashes in the
state store)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from erpsync import logs
from erpsync.commands import load_settings
from erpsync.runtime.access import Access, AccessError
from erpsync.runtime.store import Store

app = typer.Typer(no_args_is_help=True, help="Dashboard users: add, list, remove.")
console = Console()
err = Console(stderr=True)

ConfigOption = typer.Option(None, "--config", "-c", help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")


def _access(config: Optional[Path]) -> Access:
    logs.configure()
    return Access(Store.open(load_settings(config)))


@app.command()
def add(username: str = typer.Argument(..., metavar="NAME"),
        password_stdin: bool = typer.Option(False, "--password-stdin",
                                            help="Read the password from the first line of standard input."),
        replace: bool = typer.Option(False, "--replace", help="Set a new password for an existing user (logs "
                                                              "out their sessions)."),
        config: Optional[Path] = ConfigOption) -> None:
    """Add a user (asks for the password twice, or reads it from stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"password for {username}", hide_input=True, confirmation_prompt=True)
    access = _access(config)
    try:
        access.add_user(username, password, replace=replace)
    except AccessError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1)
    console.print(f"user {username} {'updated' if replace else 'added'}: log in at the dashboard (erpsync web)")


@app.command("list")
def list_(config: Optional[Path] = ConfigOption) -> None:
    """List the users."""
    users = _access(config).users()
    if not users:
        console.print("no users: add one with erpsync users add NAME")
    for name, created in users:
        console.print(f"{name}  (added {created:%Y-%m-%d %H:%M} UTC)", highlight=False)


@app.command()
def remove(username: str = typer.Argument(..., metavar="NAME"), config: Optional[Path] = ConfigOption) -> None:
    """Remove a user and end their sessions."""
    if not _access(config).remove_user(username):
        err.print(f"[red]user {username} does not exist[/red]")
        raise typer.Exit(1)
    console.print(f"user {username} removed")
