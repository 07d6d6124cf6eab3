"""The run's collaborative optimizer: hivemind's Optimizer with hivenet's averaging, configured in one place.

``make_optimizer`` builds a ``CollaborativeOptimizer`` (``node.swarm.hivemind_ext.optimizer``: hivemind's
optimizer carrying out ``node.swarm.policy``) whose gradient averager reduces robustly
(``node.swarm.hivemind_ext.robust_allreduce``) with the settings that make separate processes really average.

    .venv/bin/python -m pytest tests/robust/test_step_pace.py -q
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import hivemind
import torch

from node.hooks import NO_HOOKS, Hooks
from node.swarm.config import SwarmConfig
from node.swarm.hivemind_ext.optimizer import CollaborativeOptimizer
from node.swarm.hivemind_ext.robust_allreduce import RobustGradientAverager
from node.swarm.momentum import WorkerMomentum
from node.swarm.policy import RoundResult
from node.swarm.robust import make_aggregator

__all__ = ["CollaborativeOptimizer", "RoundResult", "make_optimizer", "peers_in_swarm", "samples_in_swarm"]


def make_optimizer(
    dht: hivemind.DHT,
    cfg: SwarmConfig,
    params: Iterable[torch.nn.Parameter],
    optimizer: Callable[[Any], torch.optim.Optimizer],
    scheduler: Callable[[torch.optim.Optimizer], Any] | None,
    batch_size_per_step: int,
    hooks: Hooks = NO_HOOKS,
) -> CollaborativeOptimizer:
    """The run's collaborative optimizer, with the settings that make separate processes really average.

    Gradients are reduced with ``cfg.aggregator`` (robust by default), after ``cfg.worker_momentum`` shapes what
    this peer sends; ``hooks`` (no-ops on a real node) may change what it sends and when, and see each round.
    """
    aggregator = make_aggregator(cfg.aggregator, tau=cfg.clip_tau, iterations=cfg.clip_iterations,
                                 trim_fraction=cfg.trim_fraction)
    momentum = WorkerMomentum(cfg.worker_momentum) if cfg.worker_momentum > 0 else None
    factory = partial(RobustGradientAverager, aggregator=aggregator, hooks=hooks, transform=momentum,
                      min_group_size=cfg.min_group_size)
    return CollaborativeOptimizer(
        grad_averager_factory=factory,
        agreement_timeout=cfg.agreement_timeout if cfg.agreement_timeout > 0 else None,
        hooks=hooks,
        dht=dht,
        run_id=cfg.run_id,
        params=params,
        optimizer=optimizer,
        scheduler=scheduler,
        batch_size_per_step=batch_size_per_step,
        target_batch_size=cfg.target_batch_size,
        matchmaking_time=cfg.matchmaking_time,
        averaging_timeout=cfg.averaging_timeout,
        load_state_timeout=cfg.load_state_timeout,
        average_state_every=cfg.average_state_every,
        # Parameters are averaged in the background so a slow peer does not stall the others' steps.
        delay_state_averaging=True,
        # Progress records of a dead peer expire after this, so survivors stop counting its samples.
        # Every peer refreshes its view of the swarm's progress at least every 2 s (hivemind's default is 10 s, and a
        # slow start makes its first estimates far too long: a straggler then missed the first round).
        tracker_opts=dict(metadata_expiration=20.0, max_refresh_period=2.0),
        verbose=False,
    )


def samples_in_swarm(opt: hivemind.Optimizer) -> int:
    """Samples the whole swarm has accumulated toward the current epoch, as the tracker sees it."""
    return int(opt.tracker.global_progress.samples_accumulated)


def peers_in_swarm(opt: hivemind.Optimizer) -> int:
    return int(opt.tracker.global_progress.num_peers)
