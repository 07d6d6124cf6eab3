"""What both synchronizers do the same way: join the DHT, meet the run's peers of this model at the barriers."""

from __future__ import annotations

from typing import Any

from node.hooks import NO_HOOKS, Hooks
from node.swarm import models
from node.swarm.config import SwarmConfig
from node.swarm.dht import peer_id_of, start_dht, visible_maddrs
from node.train.config import TrainConfig
from node.train.synchronizer import Joined, SyncContext, Synchronizer


class SwarmSync(Synchronizer):
    """A synchronizer on a hivemind DHT; subclasses build their averagers in ``prepare``."""

    def __init__(self, swarm: SwarmConfig, train: TrainConfig, hooks: Hooks = NO_HOOKS) -> None:
        self.swarm, self.cfg, self.hooks = swarm, train, hooks
        self.ctx: SyncContext | None = None
        self.dht: Any = None
        self.fingerprint = ""  # the model's (node.swarm.models): barriers count only peers of the same model

    def open(self, ctx: SyncContext) -> Joined:
        self.ctx = ctx
        self.dht = start_dht(self.swarm)
        return Joined(self.dht, peer_id_of(self.dht), visible_maddrs(self.dht))

    def wait_for_peers(self) -> None:
        models.wait_for_peers(self.dht, self.swarm.run_id, self.fingerprint, "start", self.swarm.expected_peers,
                              self.swarm.peer_wait_timeout)

    def end_barrier(self, timeout: float) -> None:
        models.wait_for_peers(self.dht, self.swarm.run_id, self.fingerprint, "end", self.swarm.expected_peers, timeout)
