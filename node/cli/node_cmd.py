"""``hivenet node``: run one peer.

    hivenet node start --run-id demo                       # first peer of a new swarm
    hivenet node start --run-id demo --initial-peers ADDR  # join through any running peer
    hivenet node start --config hivenet.toml               # settings from `hivenet init`'s file

Settings merge in this order: defaults < config file < HIVENET_<SECTION>_<KEY> < flags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from node.cli.common import graceful_signals, user_errors
from node.config import BY_DOTTED
from node.hooks import NO_HOOKS

app = typer.Typer(no_args_is_help=True, help="Run a node (one training peer).")


def _h(dotted: str) -> str:
    """Flag help from the config key (one source of text and defaults), naming the key."""
    key = BY_DOTTED[dotted]
    default = "unset" if key.default is None else key.default
    return f"{key.comment} [config {dotted}; default: {default}]"


@app.command()
def start(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Option(help="TOML config file (see `hivenet init`); default: $HIVENET_CONFIG.")] = None,
    run_id: Annotated[Optional[str], typer.Option(help=_h("swarm.run_id"))] = None,
    initial_peers: Annotated[Optional[list[str]], typer.Option("--initial-peers", help=_h("swarm.initial_peers") + " (repeatable)")] = None,
    listen: Annotated[Optional[list[str]], typer.Option(help=_h("swarm.listen") + " (repeatable)")] = None,
    identity: Annotated[Optional[Path], typer.Option(help=_h("swarm.identity"))] = None,
    expected_peers: Annotated[Optional[int], typer.Option(help=_h("swarm.expected_peers"))] = None,
    peer_wait_timeout: Annotated[Optional[float], typer.Option(help=_h("swarm.peer_wait_timeout"))] = None,
    target_batch_size: Annotated[Optional[int], typer.Option(help=_h("swarm.target_batch_size"))] = None,
    batch_size: Annotated[Optional[int], typer.Option(help=_h("train.batch_size"))] = None,
    max_epochs: Annotated[Optional[int], typer.Option(help=_h("train.max_epochs"))] = None,
    lr: Annotated[Optional[float], typer.Option(help=_h("train.lr"))] = None,
    device: Annotated[Optional[str], typer.Option(help=_h("train.device"))] = None,
    threads: Annotated[Optional[int], typer.Option(help=_h("train.threads"))] = None,
    n_layer: Annotated[Optional[int], typer.Option(help=_h("train.n_layer"))] = None,
    n_embd: Annotated[Optional[int], typer.Option(help=_h("train.n_embd"))] = None,
    block_size: Annotated[Optional[int], typer.Option(help=_h("train.block_size"))] = None,
    matchmaking_time: Annotated[Optional[float], typer.Option(help=_h("swarm.matchmaking_time"))] = None,
    averaging_timeout: Annotated[Optional[float], typer.Option(help=_h("swarm.averaging_timeout"))] = None,
    eval_every: Annotated[Optional[int], typer.Option(help=_h("train.eval_every"))] = None,
    mode: Annotated[Optional[str], typer.Option(help=_h("train.mode"))] = None,
    inner_steps: Annotated[Optional[int], typer.Option(help=_h("train.inner_steps"))] = None,
    outer_lr: Annotated[Optional[float], typer.Option(help=_h("train.outer_lr"))] = None,
    outer_momentum: Annotated[Optional[float], typer.Option(help=_h("train.outer_momentum"))] = None,
    overlap: Annotated[Optional[bool], typer.Option("--overlap/--no-overlap", help=_h("train.overlap"))] = None,
    compression: Annotated[Optional[str], typer.Option(help=_h("train.compression"))] = None,
    error_feedback: Annotated[Optional[bool], typer.Option("--error-feedback/--no-error-feedback", help=_h("train.error_feedback"))] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help=_h("train.checkpoint"))] = None,
    shard_store: Annotated[Optional[Path], typer.Option(help=_h("train.shard_store"))] = None,
    fresh: Annotated[Optional[bool], typer.Option("--fresh/--no-fresh", help=_h("train.fresh"))] = None,
    metrics: Annotated[Optional[Path], typer.Option(help=_h("train.metrics"))] = None,
    broker: Annotated[Optional[str], typer.Option(help=_h("telemetry.broker"))] = None,
    status_listen: Annotated[Optional[str], typer.Option(help=_h("status.listen"))] = None,
    status_url_file: Annotated[Optional[Path], typer.Option(help=_h("status.url_file"))] = None,
    log_file: Annotated[Optional[Path], typer.Option(help=_h("log.file"))] = None,
    log_level: Annotated[Optional[str], typer.Option(help=_h("log.level"))] = None,
    log_json: Annotated[Optional[bool], typer.Option("--log-json/--no-log-json", help=_h("log.json"))] = None,
    keystore: Annotated[Optional[Path], typer.Option(help=_h("receipts.keystore"))] = None,
    password_file: Annotated[Optional[Path], typer.Option(help=_h("receipts.password_file"))] = None,
    snapshot_dir: Annotated[Optional[Path], typer.Option(help=_h("receipts.snapshot_dir"))] = None,
    progress: Annotated[bool, typer.Option(help="Show a live progress line (off with --log-json).")] = True,
    aggregator: Annotated[Optional[str], typer.Option(help="How gradients are combined: centered-clip (default, robust) | trimmed-mean | median | mean.")] = None,
    worker_momentum: Annotated[Optional[float], typer.Option(help="Send momentum b*m+(1-b)*g instead of the gradient (0: off); helps robust aggregators.")] = None,
    min_group_size: Annotated[Optional[int], typer.Option(help="Smallest gradient-averaging group (3+ so robust rules have an honest majority to find).")] = None,
) -> None:
    """Run one training peer in the foreground until --max-epochs or Ctrl-C (checkpoints on both).

    The first SIGINT/SIGTERM stops gracefully (checkpoint, flush, leave; exit 0); a second one forces.
    """
    flags = {
        "swarm.run_id": run_id, "swarm.initial_peers": initial_peers, "swarm.listen": listen, "swarm.identity": identity,
        "swarm.expected_peers": expected_peers, "swarm.peer_wait_timeout": peer_wait_timeout,
        "swarm.target_batch_size": target_batch_size, "swarm.matchmaking_time": matchmaking_time,
        "swarm.averaging_timeout": averaging_timeout, "train.batch_size": batch_size, "train.max_epochs": max_epochs,
        "train.lr": lr, "train.device": device, "train.threads": threads, "train.n_layer": n_layer, "train.n_embd": n_embd,
        "train.block_size": block_size, "train.eval_every": eval_every, "train.mode": mode,
        "train.inner_steps": inner_steps, "train.outer_lr": outer_lr, "train.outer_momentum": outer_momentum,
        "train.overlap": overlap, "train.compression": compression, "train.error_feedback": error_feedback, "train.checkpoint": checkpoint,
        "train.shard_store": shard_store, "train.fresh": fresh, "train.metrics": metrics, "telemetry.broker": broker,
        "status.listen": status_listen, "status.url_file": status_url_file, "log.file": log_file,
        "log.level": log_level.upper() if log_level else None, "log.json": log_json,
        "receipts.keystore": keystore, "receipts.password_file": password_file, "receipts.snapshot_dir": snapshot_dir,
    }
    with user_errors():
        from node.config import config_path, load_config
        from node.daemon import Daemon
        from node.logfmt import setup_logging

        cfg = load_config(config_path(config, os.environ), os.environ, flags)
        cfg = _with_averaging(cfg, aggregator, worker_momentum, min_group_size)
        hooks = ctx.obj.get("hooks", NO_HOOKS) if isinstance(ctx.obj, dict) else NO_HOOKS
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


def _with_averaging(cfg, aggregator: str | None, worker_momentum: float | None,  # type: ignore[no-untyped-def]
                    min_group_size: int | None):
    """Apply the robust-averaging flags to the swarm config (validated by building the aggregator once)."""
    from dataclasses import replace

    from node.swarm.robust import make_aggregator
    from protocol.errors import ConfigError

    changes: dict[str, object] = {}
    if aggregator is not None:
        make_aggregator(aggregator)
        changes["aggregator"] = aggregator
    if worker_momentum is not None:
        if not 0 <= worker_momentum < 1:
            raise ConfigError(f"--worker-momentum must be in [0, 1), not {worker_momentum}")
        changes["worker_momentum"] = worker_momentum
    if min_group_size is not None:
        if min_group_size < 2:
            raise ConfigError(f"--min-group-size must be at least 2, not {min_group_size}")
        changes["min_group_size"] = min_group_size
    return replace(cfg, swarm=replace(cfg.swarm, **changes)) if changes else cfg
