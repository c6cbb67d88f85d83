"""`erpsync worker`: huey consumers for the chosen queues, in this process, until Ctrl-C or SIGTERM."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from erpsync import config as config_mod
from erpsync import logs
from erpsync.commands import config_errors
from erpsync.errors import ConfigError
from erpsync.flows import intake
from erpsync.flows.jobs import QUEUES, registered
from erpsync.runtime import jobs
from erpsync.runtime.schedule import Scheduler

console = Console()


def worker(queue: str = typer.Option("all", "--queue", "-q", help=f"{', '.join(QUEUES)} or all"),
           workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1,
                                                 help="Worker threads per queue (default: [queue] workers)."),
           schedule: bool = typer.Option(True, "--schedule/--no-schedule",
                                         help="Queue the periodic jobs (sync_window, scan_shipments) and re-queue "
                                              "jobs lost with a killed worker."),
           config: Optional[Path] = typer.Option(None, "--config", "-c",
                                                 help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")
           ) -> None:
    """Run queue workers until Ctrl-C. An on-premises agent next to SQL Server runs --queue sage500."""
    logs.configure()
    stop = jobs.stop_on_signals()
    queues = QUEUES if queue == "all" else (queue,)
    with config_errors():
        if queue != "all" and queue not in QUEUES:
            raise ConfigError(f"--queue {queue!r}: choose {', '.join(QUEUES)} or all")
        settings = config_mod.load(config)
        modules = jobs.load_job_modules(settings.queue.job_modules)
        runtime = jobs.Runtime(settings, config_path=config_mod.config_path(config))
    consumers = runtime.start_consumer(queues, workers=workers)
    scheduler = Scheduler(runtime).start() if schedule else None
    if settings.amazon.notifications.sqs_queue_url and "amazon" in queues:
        intake.consume_sqs(runtime, stop)
    console.print(f"worker running queues {', '.join(queues)} with {workers or settings.queue.workers} "
                  f"thread(s) each; jobs: {', '.join(sorted(registered())) or 'none'} "
                  f"(from {', '.join(modules) or 'no modules yet'}); Ctrl-C stops", highlight=False, soft_wrap=True)
    try:
        consumers.run_until(stop)
    finally:
        stop.set()  # the SQS consumer too
        if scheduler is not None:
            scheduler.stop()
        runtime.close()
    console.print("worker stopped")
