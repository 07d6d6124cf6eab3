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
from typing import Annotated, Optional

import typer

from node.cli.common import user_errors


def doctor(
    config: Annotated[Optional[Path], typer.Option(help="TOML config file of the node (default: $HIVENET_CONFIG).")] = None,
    initial_peers: Annotated[Optional[list[str]], typer.Option("--initial-peers", help="Bootstrap multiaddr to check (repeatable).")] = None,
    listen: Annotated[Optional[list[str]], typer.Option(help="Listen multiaddr to classify (repeatable).")] = None,
    rpc_url: Annotated[Optional[str], typer.Option(help='Chain JSON-RPC URL ("" for the embedded chain).')] = None,
    deployment: Annotated[Optional[Path], typer.Option(help="Deployment file whose contracts must be on the chain.")] = None,
    broker: Annotated[Optional[str], typer.Option(help='MQTT broker URL ("" when telemetry is off).')] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint path (for the disk check).")] = None,
    shard_store: Annotated[Optional[Path], typer.Option(help="Shard store (for the disk check).")] = None,
    p2p: Annotated[bool, typer.Option(help="Start a throwaway p2p daemon (and handshake the bootstrap peers).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"checks": [{"name", "ok", "detail", "fix"}]}.')] = False,
) -> None:
    """Check what a node needs and say how to fix each problem found."""
    flags = {"swarm.initial_peers": initial_peers, "swarm.listen": listen, "ledger.rpc_url": rpc_url,
             "ledger.deployment": deployment, "telemetry.broker": broker, "train.checkpoint": checkpoint,
             "train.shard_store": shard_store}
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
