"""Sync mode: every peer's gradients are averaged at every collaborative epoch (hivemind's Optimizer).

Local steps accumulate gradients toward the swarm's target batch; when the swarm reaches it, the peers
average their gradients (robust reduce, ``node.swarm.robust``), check that they hold the same result
(``node.swarm.agreement``) and apply the same ClippedAdamW step, so every peer holds identical
parameters after every epoch. Parameters and optimizer state are averaged in the background every few
epochs, and a peer that falls behind loads the swarm's state (``node.swarm.collab``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import torch

from node.hooks import NO_HOOKS, Hooks
from node.swarm import models
from node.swarm.collab import CollaborativeOptimizer, make_optimizer, peers_in_swarm
from node.swarm.config import SwarmConfig
from node.train.config import TrainConfig
from node.train.evaluation import param_digest
from node.train.optim import ClippedAdamW
from node.sync.base import SwarmSync
from node.train.synchronizer import EpochEnd
from protocol.errors import ConfigError

log = logging.getLogger(__name__)

CATCH_UP_WAIT_S = 30.0  # at the start, how long to wait for the swarm's progress before deciding this peer is not behind
TRACKER_POLL_S = 0.2  # how often to look at the tracker's count while waiting for it
TRACKER_NOTE_S = 10.0  # while waiting for the tracker to count everyone, log how far it got this often


class GradientSync(SwarmSync):
    mode = "sync"

    def __init__(self, swarm: SwarmConfig, train: TrainConfig, hooks: Hooks = NO_HOOKS) -> None:
        super().__init__(swarm, train, hooks)
        self.opt: CollaborativeOptimizer | None = None
        self.describe = ""
        self._epoch_seen = 0  # the local epoch when the last step began
        self.rounds = 0  # rounds this peer averaged in

    def check_resume(self, saved: dict[str, Any]) -> None:
        if "optimizer" not in saved:
            raise ConfigError(f"checkpoint {self.cfg.checkpoint_path} was written in DiLoCo mode; "
                              "use another --checkpoint or --fresh for a sync-mode run")

    def prepare(self, model: torch.nn.Module, resume: dict[str, Any] | None, fingerprint: str, describe: str) -> None:
        self.fingerprint, self.describe = fingerprint, describe
        key = models.join(self.dht, self.swarm.run_id, fingerprint, describe)
        self.opt = self._make_optimizer(model, key)
        if resume is not None:
            self.opt.load_state_dict(resume["optimizer"])
            log.info("resumed from %s at epoch %d", self.cfg.checkpoint_path, self.opt.local_epoch)
        self._epoch_seen = self.opt.local_epoch

    def _make_optimizer(self, model: torch.nn.Module, key: str) -> CollaborativeOptimizer:
        cfg = self.cfg

        def lr_at(epoch: int) -> float:
            return min(1.0, (epoch + 1) / max(1, cfg.warmup_epochs))

        return make_optimizer(
            self.dht,
            replace(self.swarm, run_id=key),  # the run's and the model's: peers of other models never meet in a round
            params=model.parameters(),
            optimizer=lambda params: ClippedAdamW(params, cfg.max_grad_norm, lr=cfg.lr, betas=(0.9, 0.95),
                                                  weight_decay=cfg.weight_decay),
            scheduler=lambda o: torch.optim.lr_scheduler.LambdaLR(o, lr_at),
            batch_size_per_step=cfg.batch_size,
            hooks=self.hooks,
        )

    @property
    def epoch(self) -> int:
        return self.opt.local_epoch if self.opt is not None else 0

    def warm_up(self, first_step: Callable[[], None]) -> int:
        # The tracker publishes a peer only after it reported samples, so each peer takes one
        # local step, then waits until the tracker counts everyone; otherwise the first round is lonely.
        opt, ctx = self.opt, self.ctx
        assert opt is not None and ctx is not None
        first_step()
        if self._catch_up_if_behind():
            return 1  # a late joiner or a restarted peer: the others are already training, no need to wait for them
        started = time.monotonic()
        next_note = started + TRACKER_NOTE_S
        while peers_in_swarm(opt) < self.swarm.expected_peers and not ctx.stopping():
            now = time.monotonic()
            if now > started + self.swarm.peer_wait_timeout:
                log.warning("the progress tracker sees %d of %d peers; training anyway", peers_in_swarm(opt),
                            self.swarm.expected_peers)
                break
            if now > next_note:
                next_note = now + TRACKER_NOTE_S
                log.info("waiting for the progress tracker to see all peers: %d of %d (%s)", peers_in_swarm(opt),
                         self.swarm.expected_peers, opt.tracker.global_progress)
            time.sleep(TRACKER_POLL_S)
        self._epoch_seen = opt.local_epoch
        return 1

    def _catch_up_if_behind(self) -> bool:
        """True when this peer joins a swarm that is already training (a restart, a late join).

        Such a peer must not wait for the others at the start: a peer whose progress is behind (or
        reset by loading state) publishes none until it accumulates samples, so the tracker would never
        count it. It loads the swarm's state when the swarm is ahead (hivemind would do so only at a
        step taken after its tracker's first fetch) and trains on.
        """
        opt, ctx = self.opt, self.ctx
        assert opt is not None and ctx is not None
        opt.tracker.fetched_global_progress_this_epoch.wait(CATCH_UP_WAIT_S)
        if opt.tracker.global_epoch > opt.local_epoch:
            ctx.emit(stage="loading-state")
            log.info("the swarm is at epoch %d, this peer at %d: loading the current state from peers",
                     opt.tracker.global_epoch, opt.local_epoch)
            opt.load_state_from_peers()
            ctx.emit(stage="training", epoch=opt.local_epoch)
        self._epoch_seen = opt.local_epoch
        return opt.local_epoch > 0

    def step(self, model: torch.nn.Module, step: int, compute_s: float) -> EpochEnd | None:
        opt = self.opt
        assert opt is not None
        epoch = self._epoch_seen
        opt.step()
        opt.zero_grad()
        self._epoch_seen = opt.local_epoch
        if opt.local_epoch == epoch:
            return None
        # the swarm finished a collaborative epoch
        rnd = opt.last_round
        here = rnd if rnd is not None and rnd.epoch == epoch else None
        averaged = bool(here is not None and here.averaged)
        self.rounds += int(averaged)
        return EpochEnd(
            epoch=epoch, new_epoch=opt.local_epoch,
            # a receipt only when this peer's gradients made the swarm's update (or it is alone)
            counted=averaged or peers_in_swarm(opt) <= 1,
            rounds=self.rounds,
            fields=dict(group_size=here.group_size if here else None, averaged=here.averaged if here else None,
                        swarm_peers=peers_in_swarm(opt), param_digest=param_digest(model.parameters()),
                        agreement=here.agreement if here else None, disagreements=opt.disagreements,
                        round=here.round_id if here else None),
        )

    def live_status(self) -> dict[str, Any]:
        return {"peers": peers_in_swarm(self.opt)} if self.opt is not None else {}

    @contextmanager
    def off_pace(self) -> Iterator[None]:
        assert self.opt is not None
        with self.opt.off_pace():
            yield
            models.keep_fresh(self.dht, self.swarm.run_id, self.fingerprint, self.describe)

    def checkpoint_state(self) -> dict[str, Any]:
        return {"optimizer": self.opt.state_dict()} if self.opt is not None else {}

    def finish(self, model: torch.nn.Module, stopped: bool) -> None:
        if self.opt is not None:
            self.opt.state_averager.step(wait_for_delayed_updates=True)

    def close(self) -> None:
        try:
            if self.opt is not None:
                self.opt.shutdown()
        finally:
            if self.dht is not None:
                self.dht.shutdown()
