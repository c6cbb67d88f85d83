"""`erpsync run`: the one-machine shape in one process — queue workers for both queues, the schedule, the SQS
consumer when configured, and the web app (webhook, dashboard, /health, /metrics) — until Ctrl-C or SIGTERM."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from erpsync import config as config_mod
from erpsync import logs
from erpsync.commands import config_errors
from erpsync.flows import intake
from erpsync.flows.jobs import QUEUES
from erpsync.runtime import jobs
from erpsync.runtime.schedule import Scheduler
from erpsync.web.app import Server, create_app

console = Console()


def run(host: Optional[str] = typer.Option(None, "--host", help="Address the web app listens on (default: "
                                                                 "\\[web] host)."),
        port: Optional[int] = typer.Option(None, "--port", "-p", min=1, max=65535,
                                           help="Port of the web app (default: \\[web] port)."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1,
                                              help="Worker threads per queue (default: \\[queue] workers)."),
        config: Optional[Path] = typer.Option(None, "--config", "-c",
                                              help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")
        ) -> None:
    """Run everything on this machine: workers for both queues, the schedule and the web app."""
    logs.configure()
    stop = jobs.stop_on_signals()
    with config_errors():
        settings = config_mod.load(config)
        jobs.load_job_modules(settings.queue.job_modules)
        runtime = jobs.Runtime(settings, config_path=config_mod.config_path(config))
    host, port = host or settings.web.host, port or settings.web.port
    server = Server(create_app(runtime), host, port).start()
    consumers = runtime.start_consumer(QUEUES, workers=workers)
    scheduler = Scheduler(runtime).start()
    if settings.amazon.notifications.sqs_queue_url:
        intake.consume_sqs(runtime, stop)
    console.print(f"erpsync running: queues {', '.join(QUEUES)} with {workers or settings.queue.workers} "
                  f"thread(s) each, the schedule, and the web app on {server.url}; Ctrl-C stops",
                  highlight=False, soft_wrap=True)
    try:
        consumers.run_until(stop)
    finally:
        stop.set()
        scheduler.stop()
        server.stop()
        runtime.close()
    console.print("erpsync stopped")
