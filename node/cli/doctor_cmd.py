"""``hivenet doctor``: check versions, p2p, bootstrap peers, chain, contracts, broker and disk.

    hivenet doctor --config hivenet.toml
    hivenet doctor --initial-peers /ip4/1.2.3.4/tcp/31337/p2p/Qm... --rpc-url http://127.0.0.1:8545 --json

Exit status 0 when every check passes, 1 otherwise; ``--json`` prints
``{"checks": [{"name", "ok", "detail", "fix"}, ...]}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from node.cli.common import user_errors
from node.config.options import key_options


# The node settings the checks look at, as flags generated from their key declarations.
CHECKED_KEYS = ("swarm.initial_peers", "swarm.listen", "ledger.rpc_url", "ledger.deployment", "telemetry.broker",
                "train.checkpoint", "train.shard_store")


@key_options(CHECKED_KEYS)
def doctor(
    flags: dict[str, Any],
    config: Annotated[Optional[Path], typer.Option(help="TOML config file of the node (default: $HIVENET_CONFIG).")] = None,
    p2p: Annotated[bool, typer.Option(help="Start a throwaway p2p daemon (and handshake the bootstrap peers).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"checks": [{"name", "ok", "detail", "fix"}]}.')] = False,
) -> None:
    """Check what a node needs and say how to fix each problem found."""
    with user_errors():
        from node.config import config_path, load_config
        from node.doctor import run_checks

        cfg = load_config(config_path(config, os.environ), os.environ, flags)
        checks = run_checks(cfg, p2p=p2p)
    if as_json:
        typer.echo(json.dumps({"checks": [c.as_dict() for c in checks]}))
    else:
        for c in checks:
            typer.secho(f"{'✓' if c.ok else '✗'} {c.name}: {c.detail}", fg="green" if c.ok else "red")
            if not c.ok:
                typer.echo(f"    fix: {c.fix}")
        bad = [c.name for c in checks if not c.ok]
        typer.echo("all checks passed" if not bad else f"{len(bad)} problem(s): {', '.join(bad)}")
    if any(not c.ok for c in checks):
        raise typer.Exit(1)
