"""``hivenet node``: run one peer.

    hivenet node start --run-id demo                       # first peer of a new swarm
    hivenet node start --run-id demo --initial-peers ADDR  # join through any running peer
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from node.cli.common import graceful_signals, setup_logging, user_errors

app = typer.Typer(no_args_is_help=True, help="Run a node (one training peer).")


@app.command()
def start(
    run_id: Annotated[str, typer.Option(help="Training run to join; peers of other runs never average with this one.")] = "demo",
    initial_peers: Annotated[Optional[list[str]], typer.Option("--initial-peers", help="Multiaddr of a running peer (repeatable).")] = None,
    listen: Annotated[Optional[list[str]], typer.Option(help="Multiaddr to listen on (repeatable).")] = None,
    identity: Annotated[Optional[Path], typer.Option(help="p2p identity key file, created if missing; keeps the peer id across restarts.")] = None,
    expected_peers: Annotated[int, typer.Option(help="Wait until this many peers of the run are visible before training.")] = 1,
    peer_wait_timeout: Annotated[float, typer.Option(help="Seconds to wait for --expected-peers.")] = 120.0,
    target_batch_size: Annotated[int, typer.Option(help="Samples the swarm accumulates per collaborative epoch.")] = 128,
    batch_size: Annotated[int, typer.Option(help="Samples per local step.")] = 16,
    max_epochs: Annotated[int, typer.Option(help="Stop after this many collaborative epochs.")] = 60,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 4e-3,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    threads: Annotated[int, typer.Option(help="torch CPU threads for this peer.")] = 1,
    n_layer: Annotated[int, typer.Option(help="Transformer blocks.")] = 4,
    n_embd: Annotated[int, typer.Option(help="Model width.")] = 256,
    block_size: Annotated[int, typer.Option(help="Context length in bytes.")] = 128,
    matchmaking_time: Annotated[float, typer.Option(help="Seconds to gather an averaging group.")] = 4.0,
    averaging_timeout: Annotated[float, typer.Option(help="Seconds before an all-reduce round is abandoned.")] = 30.0,
    eval_every: Annotated[int, typer.Option(help="Evaluate held-out loss every N epochs (0: only at start and end).")] = 10,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint file; resumed from when present.")] = None,
    shard_store: Annotated[Optional[Path], typer.Option(help="Train on the shards vetted for the run in this store.")] = None,
    fresh: Annotated[bool, typer.Option(help="Ignore (never delete) an existing checkpoint.")] = False,
    metrics: Annotated[Optional[Path], typer.Option(help="Append JSON-lines metrics here.")] = None,
    log_file: Annotated[Optional[Path], typer.Option(help="Write logs here instead of stderr.")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG | INFO | WARNING")] = "INFO",
    progress: Annotated[bool, typer.Option(help="Show a live progress line.")] = True,
) -> None:
    """Run one training peer in the foreground until --max-epochs or Ctrl-C (checkpoints on both)."""
    setup_logging(log_level, str(log_file) if log_file else None)
    with user_errors():
        from node.swarm.config import SwarmConfig
        from node.train.config import TrainConfig
        from node.train.model import GPTConfig
        from node.train.trainer import Trainer

        swarm = SwarmConfig(
            run_id=run_id, listen=tuple(listen or ("/ip4/127.0.0.1/tcp/0",)), initial_peers=tuple(initial_peers or ()),
            identity_path=identity, expected_peers=expected_peers, peer_wait_timeout=peer_wait_timeout,
            target_batch_size=target_batch_size, matchmaking_time=matchmaking_time, averaging_timeout=averaging_timeout,
        )
        train = TrainConfig(
            model=GPTConfig(n_layer=n_layer, n_embd=n_embd, block_size=block_size), batch_size=batch_size, lr=lr,
            max_epochs=max_epochs, device=device, threads=threads, eval_every=eval_every,
            checkpoint_path=checkpoint, metrics_path=metrics, fresh=fresh, shard_store=shard_store,
        )
        if progress:
            from node.cli.progress import PeerProgress

            display = PeerProgress()
            trainer = Trainer(swarm, train, on_status=display.update)
            with display, graceful_signals(trainer.request_stop):
                trainer.run()
        else:
            trainer = Trainer(swarm, train)
            with graceful_signals(trainer.request_stop):
                trainer.run()
