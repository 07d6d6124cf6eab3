"""Collaborative optimization: hivemind.Optimizer, configured and instrumented.

``CollaborativeOptimizer`` adds one thing to hivemind's optimizer: it records
how each round went (group size, whether gradients were really averaged), so
the node can report rounds honestly instead of trusting a silent fallback to
local gradients.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import hivemind
import torch

from node.swarm.config import SwarmConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundResult:
    epoch: int  # the collaborative epoch whose gradients this round averaged
    group_size: int  # peers in the all-reduce group (1 when the peer proceeded alone)
    averaged: bool  # False when hivemind fell back to this peer's local gradients


class CollaborativeOptimizer(hivemind.Optimizer):
    """hivemind.Optimizer that remembers the outcome of its last gradient-averaging round."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.last_round: RoundResult | None = None
        super().__init__(*args, **kwargs)

    def _update_global_epoch(self, grad_scaler: Any) -> None:
        # Until the averaging below proves otherwise, this epoch's update used local gradients only
        # (hivemind skips the averaging call entirely when it sees no other peer).
        self.last_round = RoundResult(epoch=self.local_epoch, group_size=1, averaged=False)
        super()._update_global_epoch(grad_scaler)

    def _average_gradients_and_load_into_optimizer(self, maybe_step_control: Any) -> None:
        # Same flow as hivemind's, plus recording the group: hivemind only logs it.
        epoch = self.local_epoch
        if maybe_step_control is None:
            log.info("epoch %d: no other peers; proceeding with local gradients", epoch)
            self._load_local_gradients_into_optimizer()
            return
        try:
            group_info = maybe_step_control.result(self.averaging_timeout)
            self._load_averaged_gradients_into_optimizer_()
        except BaseException as e:  # hivemind's contract: any failure falls back to local gradients
            if isinstance(e, KeyboardInterrupt):
                raise
            log.warning("epoch %d: averaging gradients failed (%r); proceeding with local gradients", epoch, e)
            self.last_round = RoundResult(epoch=epoch, group_size=1, averaged=False)
            self._load_local_gradients_into_optimizer()
            return
        log.info("epoch %d: averaged gradients with %d peers", epoch, len(group_info))
        self.last_round = RoundResult(epoch=epoch, group_size=len(group_info), averaged=True)


def make_optimizer(
    dht: hivemind.DHT,
    cfg: SwarmConfig,
    params: Iterable[torch.nn.Parameter],
    optimizer: Callable[[Any], torch.optim.Optimizer],
    scheduler: Callable[[torch.optim.Optimizer], Any] | None,
    batch_size_per_step: int,
) -> CollaborativeOptimizer:
    """The run's collaborative optimizer, with the settings that make separate processes really average."""
    return CollaborativeOptimizer(
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
        tracker_opts=dict(metadata_expiration=20.0),
        verbose=False,
    )


def samples_in_swarm(opt: hivemind.Optimizer) -> int:
    """Samples the whole swarm has accumulated toward the current epoch, as the tracker sees it."""
    return int(opt.tracker.global_progress.samples_accumulated)


def peers_in_swarm(opt: hivemind.Optimizer) -> int:
    return int(opt.tracker.global_progress.num_peers)
