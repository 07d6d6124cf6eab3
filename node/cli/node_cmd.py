"""``hivenet node``: run one peer.

    hivenet node start --run-id demo                       # first peer of a new swarm
    hivenet node start --run-id demo --initial-peers ADDR  # join through any running peer
    hivenet node start --config hivenet.toml               # settings from `hivenet init`'s file

Settings merge in this order: defaults < config file < HIVENET_<SECTION>_<KEY> < flags. The flags are
generated from the key declarations (node.config.keys); docs/configuration.md lists them all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from node.cli.common import graceful_signals, user_errors
from node.config.options import key_options
from node.hooks import NO_HOOKS, Hooks

if TYPE_CHECKING:
    from node.config import NodeConfig

app = typer.Typer(no_args_is_help=True, help="Run a node (one training peer).")


@app.command()
@key_options()
def start(
    ctx: typer.Context,
    flags: dict[str, Any],
    config: Annotated[Optional[Path], typer.Option(help="TOML config file (see `hivenet init`); default: $HIVENET_CONFIG.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a live progress line (off with --log-json).")] = True,
) -> None:
    """Run one training peer in the foreground until --max-epochs or Ctrl-C (checkpoints on both).

    The first SIGINT/SIGTERM stops gracefully (checkpoint, flush, leave; exit 0); a second one forces.
    Every setting below is also a key of the config file and a HIVENET_<SECTION>_<KEY> variable.
    """
    with user_errors():
        from node.config import config_path, load_config

        cfg = load_config(config_path(config, os.environ), os.environ, flags)
        # Hooks (node.hooks) come only from a caller that invokes this command in-process with a context object:
        # the testnet's peer entry point (node.cli.testnet_peer). A user's command line cannot set them.
        hooks = ctx.obj.get("hooks", NO_HOOKS) if isinstance(ctx.obj, dict) else NO_HOOKS
        run_node(cfg, progress, hooks)


def run_node(cfg: NodeConfig, progress: bool, hooks: Hooks = NO_HOOKS) -> None:
    """Set up logging and run the daemon in the foreground with graceful signal handling."""
    from node.daemon import Daemon
    from node.logfmt import setup_logging

    setup_logging(cfg.log.level, str(cfg.log.file) if cfg.log.file else None, cfg.log.json)
    if progress and not cfg.log.json:
        from node.cli.progress import PeerProgress

        display = PeerProgress()
        daemon = Daemon(cfg, on_status=display.update, hooks=hooks)
        with display, graceful_signals(daemon.request_stop):
            daemon.run()
    else:
        daemon = Daemon(cfg, hooks=hooks)
        with graceful_signals(daemon.request_stop):
            daemon.run()
