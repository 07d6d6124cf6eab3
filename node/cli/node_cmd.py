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

if TYPE_CHECKING:
    from node.config import NodeConfig

app = typer.Typer(no_args_is_help=True, help="Run a node (one training peer).")


@app.command()
@key_options()
def start(
    flags: dict[str, Any],
    config: Annotated[Optional[Path], typer.Option(help="TOML config file (see `hivenet init`); default: $HIVENET_CONFIG.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a live progress line (off with --log-json).")] = True,
    # Testing faults: hidden, and refused outside `hivenet testnet up` (see node.testnet.attacks). Not
    # configuration keys: they stay out of the file, the environment and the docs.
    attack: Annotated[Optional[str], typer.Option(hidden=True)] = None,
    slowdown: Annotated[Optional[float], typer.Option(hidden=True)] = None,
    send_delay: Annotated[Optional[float], typer.Option(hidden=True)] = None,
    dump_rounds: Annotated[Optional[Path], typer.Option(hidden=True)] = None,
) -> None:
    """Run one training peer in the foreground until --max-epochs or Ctrl-C (checkpoints on both).

    The first SIGINT/SIGTERM stops gracefully (checkpoint, flush, leave; exit 0); a second one forces.
    Every setting below is also a key of the config file and a HIVENET_<SECTION>_<KEY> variable.
    """
    with user_errors():
        from node.config import config_path, load_config

        cfg = load_config(config_path(config, os.environ), os.environ, flags)
        _install_testing_faults(attack, slowdown, send_delay, dump_rounds)
        run_node(cfg, progress)


def run_node(cfg: NodeConfig, progress: bool) -> None:
    """Set up logging and run the daemon in the foreground with graceful signal handling."""
    from node.daemon import Daemon
    from node.logfmt import setup_logging

    setup_logging(cfg.log.level, str(cfg.log.file) if cfg.log.file else None, cfg.log.json)
    if progress and not cfg.log.json:
        from node.cli.progress import PeerProgress

        display = PeerProgress()
        daemon = Daemon(cfg, on_status=display.update)
        with display, graceful_signals(daemon.request_stop):
            daemon.run()
    else:
        daemon = Daemon(cfg)
        with graceful_signals(daemon.request_stop):
            daemon.run()


# --- Testing faults (testnet peers only), kept apart from configuration until hooks replace them. ---

def _install_testing_faults(attack: str | None, slowdown: float | None, send_delay: float | None,
                            dump_rounds: Path | None) -> None:
    """Testnet peers only: make this process's trainer misbehave as asked (ConfigError anywhere else)."""
    if attack is None and slowdown is None and send_delay is None and dump_rounds is None:
        return
    from node.testnet.attacks import Faults, Slowdown, make_attack, require_testnet
    from node.train.trainer import Trainer

    require_testnet(dict(os.environ), "--attack/--slowdown/--send-delay/--dump-rounds")
    Trainer.faults = Faults(
        attack=make_attack(attack) if attack else None, slowdown=Slowdown(slowdown) if slowdown else None,
        send_delay=send_delay or 0.0, round_dump_dir=dump_rounds,
    )
