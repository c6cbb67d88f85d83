"""`erpsync settlements ...` commands (thin: parse arguments, call the library, print)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, TextIO

import typer
from rich.console import Console
from rich.table import Table

from erpsync import errors, logs
from erpsync.commands import config_errors, load_settings
from erpsync.config import Settings
from erpsync.flows import settlements as flow

app = typer.Typer(no_args_is_help=True, help="settlements commands")
console = Console()
err = Console(stderr=True, soft_wrap=True)  # a reason stays one line, whole

ConfigOption = typer.Option(None, "--config", "-c", help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")


@contextmanager
def _open(file: Path) -> Iterator[TextIO]:
    """The file as text lines, gunzipped when it is GZIP (by its magic bytes, whatever its name)."""
    with file.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    handle = gzip.open(file, "rt", encoding="utf-8-sig", newline="") if gzipped \
        else file.open(encoding="utf-8-sig", newline="")
    with handle:
        yield handle


def _periods(settings: Settings, categorised: flow.Categorised):
    """Sage's fiscal periods when its database answers; otherwise calendar months (said on stderr)."""
    from erpsync.sage500.gateway import Sage500Gateway

    url = settings.sage500.url
    database = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if database is None or (database if database.is_absolute() else settings.base_dir / database).exists():
        try:
            with Sage500Gateway.from_settings(settings) as gateway:
                return flow.sage_periods(gateway, categorised)
        except errors.ErpsyncError as exc:
            err.print(f"note: Sage fiscal periods unavailable ({exc}); calendar months shown", markup=False)
    return flow.calendar_month


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., help="A V2 settlement flat file (tab-separated, optionally gzipped)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the journal; post nothing, record nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the journal as JSON."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Post one settlement report file to the Sage GL (once per settlement-id and fiscal period)."""
    logs.configure(level="WARNING" if as_json else "INFO")  # on stderr: stdout holds the journal
    settings = load_settings(config)
    posted: dict[str, int] | None = None
    try:
        with config_errors(), _open(file) as lines:
            if dry_run:
                categorised, _ = flow.read(lines, settings, source=str(file))
                built = flow.journal(categorised, _periods(settings, categorised), settings)
            else:
                from erpsync.runtime.store import Store
                from erpsync.sage500.gateway import Sage500Gateway

                store = Store.open(settings)
                try:
                    categorised, skipped = flow.read(lines, settings, source=str(file), store=store)
                    if categorised is None:
                        console.print(f"{skipped}; nothing to do", markup=False)
                        return
                    with Sage500Gateway.from_settings(settings) as gateway:
                        built, posted = flow.post(gateway, categorised, settings, store)
                finally:
                    store.close()
    except OSError as exc:
        err.print(f"{file}: cannot read: {exc}", markup=False)
        raise typer.Exit(1)
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        err.print(f"{file}: not a UTF-8 settlement flat file: {exc}", markup=False)
        raise typer.Exit(1)
    except errors.ErpsyncError as exc:
        err.print(f"{file}: rejected: {exc}", markup=False)
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(flow.as_json(built), indent=2))
        return
    _print(built, posted)


def _print(built: flow.Journal, posted: dict[str, int] | None) -> None:
    s = built.summary
    console.print(f"settlement {s.settlement_id}  {s.start:%Y-%m-%d} → {s.end:%Y-%m-%d}  deposit "
                  f"{s.deposit_date:%Y-%m-%d}  total-amount {s.total_amount} {s.currency}" if s.deposit_date else
                  f"settlement {s.settlement_id}  total-amount {s.total_amount} {s.currency}", markup=False)
    for batch in built.batches:
        label = batch.period.label
        table = Table(title=f"period {label} (batch dated {batch.date.isoformat()})"
                      + (f", BatchKey {posted[label]}" if posted else ""))
        for column in ("account", "debit", "credit", "memo"):
            table.add_column(column, justify="right" if column in ("debit", "credit") else "left")
        for line in batch.lines:
            shown = flow.json_line(batch, line, named=False)
            table.add_row(shown["account"], shown["debit"], shown["credit"], shown["memo"])
        console.print(table)
    console.print(f"balanced: {'yes' if built.balanced else 'NO'}"
                  + ("  (dry run: nothing posted)" if posted is None else "  posted"), markup=False)


@app.command()
def sync(
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds to wait for the imports and postings."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Find new settlement reports on Amazon, import and post each one here and now (as workers would)."""
    logs.configure()
    from erpsync.config import config_path
    from erpsync.runtime.jobs import Runtime, load_job_modules

    settings = load_settings(config)
    with config_errors():
        load_job_modules(settings.queue.job_modules)
        runtime = Runtime(settings, config_path=config_path(config))
    try:
        before = {d.id for job in flow.JOBS for d in runtime.store.dead_letters.list("open", job=job)}
        runtime.enqueue("sync_settlements", key="sync_settlements")
        with runtime.start_consumer(workers=1, poll_seconds=0.1):
            finished = runtime.drain(timeout)
        dead = [d for job in flow.JOBS for d in runtime.store.dead_letters.list("open", job=job)
                if d.id not in before]
        for record in runtime.store.settlement_list(limit=20):
            console.print(f"settlement {record.settlement_id}: {record.status} {record.total_amount} "
                          f"{record.currency} {record.batches or ''}", markup=False)
        for letter in dead:
            err.print(f"dead letter {letter.id} ({letter.job}): {letter.message}", markup=False)
    finally:
        runtime.close()
    if not finished:
        err.print(f"settlement jobs still running after {timeout:g} s; workers will finish them", markup=False)
        raise typer.Exit(1)
    if dead:
        raise typer.Exit(1)
