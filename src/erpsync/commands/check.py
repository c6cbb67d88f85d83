"""`erpsync check`: the installation checks of :mod:`erpsync.runtime.health`, printed; exit 1 when one fails."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from erpsync import config as config_mod
from erpsync import logs
from erpsync.commands import config_errors
from erpsync.runtime.health import run_checks

console = Console()


def check(config: Optional[Path] = typer.Option(None, "--config", "-c",
                                                help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")
          ) -> None:
    """Check the config, the state store, the queue backend, the Sage 500 schema and the Amazon endpoint."""
    logs.configure()
    file = config_mod.config_path(config)
    with config_errors():
        settings = config_mod.load(config)
    source = str(file) if file.exists() else f"{file} not found: built-in defaults"
    console.print(f"[green]ok[/green]    config       {source}")
    results = run_checks(settings)
    for result in results:
        mark = "[green]ok[/green]  " if result.ok else "[red]FAIL[/red]"
        console.print(f"{mark}  {result.name:<12} {result.detail}", highlight=False, soft_wrap=True)
        for problem in result.problems:
            console.print(f"        - {problem}", highlight=False, soft_wrap=True)
    if not all(r.ok for r in results):
        raise typer.Exit(1)
