"""How peers combine their work: one ``Synchronizer`` per training mode (``node.train.synchronizer``)."""

from __future__ import annotations

from node.hooks import NO_HOOKS, Hooks
from node.swarm.config import SwarmConfig
from node.train.config import TrainConfig
from node.train.synchronizer import Synchronizer
from protocol.errors import ConfigError

MODES = ("sync", "diloco")


def make_synchronizer(swarm: SwarmConfig, train: TrainConfig, hooks: Hooks = NO_HOOKS) -> Synchronizer:
    """The synchronizer of ``train.mode``; ConfigError for an unknown mode or settings the mode refuses."""
    if train.mode == "sync":
        from node.sync.gradient import GradientSync

        return GradientSync(swarm, train, hooks)
    if train.mode == "diloco":
        from node.sync.diloco import DilocoSync

        return DilocoSync(swarm, train, hooks)
    raise ConfigError(f"train.mode must be one of {', '.join(MODES)}, not {train.mode!r}")
