"""`erpsync dlq ...` commands (thin: parse arguments, call the library, print)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from erpsync import config as config_mod
from erpsync import logs
from erpsync.commands import config_errors
from erpsync.errors import ErpsyncError
from erpsync.runtime import deadletter, jobs
from erpsync.runtime.store import DeadLetter, Store

app = typer.Typer(no_args_is_help=True, help="Dead letters: list, show, replay, discard.")
console = Console()
err = Console(stderr=True)

ConfigOption = typer.Option(None, "--config", "-c", help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")
JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _store(config: Optional[Path]) -> tuple[config_mod.Settings, Store]:
    logs.configure()
    with config_errors():
        settings = config_mod.load(config)
        return settings, Store.open(settings)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]{exc}[/red]")
    return typer.Exit(1)


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


@app.command("list")
def list_(status: str = typer.Option("open", help="open, replayed, discarded or all"),
          job: Optional[str] = typer.Option(None, help="Only this job."),
          limit: int = typer.Option(200, min=1), as_json: bool = JsonOption,
          config: Optional[Path] = ConfigOption) -> None:
    """List dead letters, newest first (without their payloads, which may hold buyer data: dlq show ID has it)."""
    _, store = _store(config)
    letters = store.dead_letters.list(None if status == "all" else status, job=job, limit=limit)
    if as_json:
        _print_json([{name: value for name, value in d.as_dict().items() if name != "payload"} for d in letters])
        return
    if not letters:
        console.print(f"no {'' if status == 'all' else status + ' '}dead letters")
        return
    table = Table("id")
    for name in ("job", "error", "status", "tries"):
        table.add_column(name, no_wrap=True)
    table.add_column("last failed (UTC)")
    table.add_column("message", ratio=1)
    for d in letters:
        message = d.message if len(d.message) <= 160 else d.message[:159] + "…"
        table.add_row(str(d.id), d.job, d.error_code, d.status, str(d.attempts),
                      d.last_failed_at.strftime("%Y-%m-%d %H:%M"), message)
    console.print(table)


def _show(d: DeadLetter) -> None:
    table = Table(show_header=False, box=None)
    for name, value in d.as_dict().items():
        if name != "payload" and value is not None:
            table.add_row(f"[bold]{name}[/bold]", str(value))
    console.print(table)
    console.print("[bold]payload[/bold]")
    console.print_json(json.dumps(d.payload))


@app.command()
def show(dead_letter_id: int = typer.Argument(..., metavar="ID"), as_json: bool = JsonOption,
         config: Optional[Path] = ConfigOption) -> None:
    """Show one dead letter with its payload."""
    _, store = _store(config)
    dead = store.dead_letters.get(dead_letter_id)
    if dead is None:
        raise _fail(deadletter.DeadLetterError(f"dead letter {dead_letter_id} does not exist"))
    _print_json(dead.as_dict()) if as_json else _show(dead)


@app.command()
def replay(dead_letter_id: int = typer.Argument(..., metavar="ID"),
           now: bool = typer.Option(False, "--now", help="Run the job in this process instead of queueing it."),
           as_json: bool = JsonOption, config: Optional[Path] = ConfigOption) -> None:
    """Run a dead letter's job again with the current code and mapping."""
    settings, store = _store(config)
    try:
        jobs.load_job_modules(settings.queue.job_modules)
        runtime = jobs.Runtime(settings, config_path=config_mod.config_path(config), store=store)
        result = deadletter.replay(runtime, dead_letter_id, now=now)
    except (deadletter.DeadLetterError, ErpsyncError) as exc:
        raise _fail(exc)
    outcome = result.outcome
    if as_json:
        _print_json({"dead_letter": result.dead_letter.as_dict(), "queued": result.queued,
                     "outcome": asdict(outcome) if outcome else None})
        return
    dead = result.dead_letter
    if outcome is None:
        console.print(f"dead letter {dead.id} replayed: job {dead.job} queued on {dead.queue}; "
                      f"a worker runs it (erpsync worker)")
    elif outcome.status == "done":
        console.print(f"dead letter {dead.id} replayed: job {dead.job} [green]succeeded[/green]")
    elif outcome.status == "retry":
        console.print(f"dead letter {dead.id} replayed: job {dead.job} failed for now ({outcome.error}); "
                      f"retry queued in {outcome.delay:.1f}s")
    else:
        console.print(f"dead letter {dead.id} replayed: job {dead.job} [red]failed again[/red] "
                      f"({outcome.error}): dead letter {outcome.dead_letter_id}")
        raise typer.Exit(1)


@app.command()
def discard(dead_letter_id: int = typer.Argument(..., metavar="ID"), as_json: bool = JsonOption,
            config: Optional[Path] = ConfigOption) -> None:
    """Close a dead letter without running it."""
    _, store = _store(config)
    try:
        dead = deadletter.discard(store, dead_letter_id)
    except deadletter.DeadLetterError as exc:
        raise _fail(exc)
    _print_json(dead.as_dict()) if as_json else console.print(f"dead letter {dead.id} discarded")
