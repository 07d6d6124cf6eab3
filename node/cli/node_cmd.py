"""Placeholder while the group is being built."""

import typer

app = typer.Typer(no_args_is_help=True)
