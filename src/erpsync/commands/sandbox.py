"""`erpsync sandbox ...` commands (thin: parse arguments, call the library, print)."""

import typer

app = typer.Typer(no_args_is_help=True, help="sandbox commands")
