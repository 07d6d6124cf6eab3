"""``hivenet init``: write a commented default configuration file.

    hivenet init                      # ./hivenet.toml
    hivenet node start --config hivenet.toml
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from node.cli.common import user_errors
from protocol.errors import ConfigError


def init(
    config: Annotated[Path, typer.Option(help="Where to write the file.")] = Path("hivenet.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented default node configuration (every key, its default and why)."""
    from node.config import default_toml

    with user_errors():
        if config.exists() and not force:
            raise ConfigError(f"{config} exists; edit it, or pass --force to replace it with the defaults")
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(default_toml())
    typer.echo(f"wrote {config}; start a node with: hivenet node start --config {config}")
