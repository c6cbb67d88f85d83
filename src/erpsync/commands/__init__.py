"""The CLI's sub-commands (thin: parse arguments, call the library, print)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from erpsync import config
from erpsync.config import Settings
from erpsync.errors import ConfigError


@contextmanager
def config_errors() -> Iterator[None]:
    """A configuration error inside the block is printed (its text verbatim: it may hold `[mapping]`) and the
    command exits 2."""
    try:
        yield
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]configuration error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)


def load_settings(path: str | os.PathLike | None) -> Settings:
    """The settings of ``--config PATH`` (or the default lookup); a configuration error exits 2."""
    with config_errors():
        return config.load(path)
