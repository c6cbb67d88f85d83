"""`erpsync web`: the web app — ORDER_CHANGE webhook receiver, ``/health``, ``/metrics`` — served by uvicorn on the
``[web]`` host and port until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Optional

import typer
import uvicorn
from rich.console import Console

from erpsync import config as config_mod
from erpsync import logs
from erpsync.commands import config_errors
from erpsync.runtime import jobs
from erpsync.runtime.access import Access
from erpsync.web.app import create_app

console = Console()
err = Console(stderr=True)


def web(host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default: \\[web] host)."),
        port: Optional[int] = typer.Option(None, "--port", "-p", min=1, max=65535,
                                           help="Port to listen on (default: \\[web] port)."),
        config: Optional[Path] = typer.Option(None, "--config", "-c",
                                              help="Config file (default: $ERPSYNC_CONFIG or ./erpsync.toml)")
        ) -> None:
    """Serve the dashboard, its API, the ORDER_CHANGE webhook receiver, /health and /metrics (the cloud side, with
    --queue amazon workers)."""
    logs.configure()
    with config_errors():
        settings = config_mod.load(config)
        jobs.load_job_modules(settings.queue.job_modules)  # a notification queues import_order by name
        runtime = jobs.Runtime(settings, config_path=config_mod.config_path(config))
    host = host or settings.web.host
    port = port or settings.web.port
    if settings.secrets.webhook_token is None:
        err.print("[yellow]no webhook token configured (ERPSYNC_WEBHOOK_TOKEN): POST /notifications answers 503[/]",
                  soft_wrap=True)
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host=host, port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    console.print(f"erpsync web on http://{host}:{port}: POST /notifications, GET /health, GET /metrics, the "
                  f"dashboard at / and its API (/openapi.json); Ctrl-C stops", highlight=False, soft_wrap=True)
    if not Access(runtime.store).users() and settings.secrets.api_token is None:
        err.print("[yellow]no dashboard users and no API token: add a user with erpsync users add NAME[/]",
                  soft_wrap=True)
    def _terminate(_signum, _frame):
        raise KeyboardInterrupt

    # uvicorn stops gracefully on SIGINT or SIGTERM, then raises the signal again: both end here as an interrupt
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        runtime.close()
    console.print("web stopped")
