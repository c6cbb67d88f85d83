"""`erpsync check`: the runtime's installation checks (:mod:`erpsync.runtime.health`) and the Sage 500 check,
printed; exit 1 when one fails.

The Sage check reads the target's schema (tables and columns, the staging columns erpsync writes, the Amazon
extension tables and, on a real site, the stored procedures it calls) and warns when a real site has no
``[sage500] timezone``, or one whose UTC offset now is not that of the database server's clock (``erpsync init``
writes "UTC", right only for a server kept on UTC). On first run with the embedded default (a replica in a SQLite
file that does not exist yet) this command — not the health check — creates and seeds the replica, so
``erpsync init && erpsync check`` needs no other step.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from erpsync import config as config_mod
from erpsync import logs
from erpsync.commands import config_errors
from erpsync.config import Settings
from erpsync.runtime.health import Check, run_checks, shown
from erpsync.sage500 import replica
from erpsync.sage500.clock import zone
from erpsync.sage500.engine import engine_from_settings, real_sage
from erpsync.sage500.gateway import Sage500Gateway

console = Console()


def check(config: Optional[Path] = typer.Option(None, "--config", "-c",
                                                help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")
          ) -> None:
    """Check the config, the state store, the queue backend, the Amazon endpoint and the Sage 500 schema."""
    logs.configure()
    file = config_mod.config_path(config)
    with config_errors():
        settings = config_mod.load(config)
    source = str(file) if file.exists() else f"{file} not found: built-in defaults"
    console.print(f"[green]ok[/green]    config       {source}")
    results = run_checks(settings, extra=[("sage500", check_sage500)])
    for result in results:
        mark = "[green]ok[/green]  " if result.ok else "[red]FAIL[/red]"
        console.print(f"{mark}  {result.name:<12} {escape(result.detail)}", highlight=False, soft_wrap=True)
        for line in result.info:
            console.print(f"        · {escape(line)}", highlight=False, soft_wrap=True)
        for warning in result.warnings:
            console.print(f"        [yellow]warning[/yellow]: {escape(warning)}", highlight=False, soft_wrap=True)
        for problem in result.problems:
            console.print(f"        - {escape(problem)}", highlight=False, soft_wrap=True)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def seed_embedded_replica(settings: Settings) -> str | None:
    """Create and seed the replica when it is the embedded default and its SQLite file does not exist yet."""
    sage = settings.sage500
    url = settings.resolve_url(sage.url)
    if sage.mode != "replica" or not url.startswith("sqlite:///") or Path(url[len("sqlite:///"):]).exists():
        return None
    engine = engine_from_settings(settings)
    try:
        report = replica.seed(engine, sage.company_id, tables=sage.tables)
    finally:
        engine.dispose()
    return f"created the replica and seeded company {sage.company_id} ({sum(report.rows.values())} rows)"


def check_sage500(settings: Settings) -> Check:
    """Reach the Sage database and report what its schema has and lacks."""
    sage = settings.sage500
    url = settings.resolve_url(sage.url)
    seeded = seed_embedded_replica(settings)
    real = real_sage(sage.mode, url)
    with Sage500Gateway.from_settings(settings) as gateway:
        report = gateway.schema_report()
        offset = gateway.server_utc_offset() if real else None
    problems = list(report.problems)
    if problems and sage.mode == "replica":
        problems.append("to add what is missing to the replica: erpsync sage500 replica create")
    info, warnings = [], []
    if real:
        for group in report.groups:
            info.append(f"{group.name}: {len(group.present)} present"
                        + (f" ({', '.join(group.present)})" if len(group.present) <= 4 and group.present else "")
                        + (f"; missing: {', '.join(group.missing)}" if group.missing else "; none missing"))
        warnings += _clock_warnings(sage, offset)
    detail = (f"{sage.mode} {shown(url)}: schema {'incomplete' if problems else 'complete'}; "
              f"Sage clock {sage.timezone}" + (f"; {seeded}" if seeded else ""))
    return Check("sage500", not problems, detail, problems, warnings, info)


def _clock_warnings(sage, offset: timedelta | None) -> list[str]:
    """A real site's clock: the zone not set, or set to one whose offset now is not the database server's."""
    server = f"; the database server's clock is at {_utc(offset)} now" if offset is not None else ""
    if "timezone" not in sage.model_fields_set:
        return [f"[sage500] timezone is not set: Sage's local times (TranDate, ship dates) are read as UTC{server}; "
                f"set it to the SQL Server's time zone, e.g. timezone = \"America/Chicago\""]
    configured = datetime.now(zone(sage.timezone)).utcoffset()
    if offset is not None and offset != configured:
        hours = abs(offset - configured).total_seconds() / 3600
        return [f"[sage500] timezone {sage.timezone!r} is at {_utc(configured)} now{server}: Sage's local times "
                f"(TranDate, ship dates) would be converted {hours:g} hours off; set it to the SQL Server's time "
                f"zone"]
    return []


def _utc(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
