"""The seam between the training loop and the swarm: how a peer's local steps become the run's updates.

The loop (``node.train.loop.Trainer``) owns the model, the batches, evaluation, checkpoints and the
records; a ``Synchronizer`` owns everything that involves other peers. ``node.sync`` has two:

- ``GradientSync`` (``train.mode = "sync"``): every local step's gradients accumulate toward the swarm's
  target batch; at the epoch boundary the swarm averages them and every peer applies the same update;
- ``DilocoSync`` (``train.mode = "diloco"``): ``inner_steps`` local optimizer steps, then the swarm
  averages how far everyone moved and applies one outer step.

The loop calls, in order::

    joined = sync.open(ctx)                      # DHT up: the peer has an id and addresses
    sync.prepare(model, resume, fingerprint)     # averagers and optimizers, from a checkpoint if any
    sync.wait_for_peers()                        # start barrier
    steps = sync.warm_up(first_step)             # the steps the start took (sync mode: one)
    while sync.epoch < max_epochs:
        ... forward, backward ...
        end = sync.step(model, step, compute_s)  # -> EpochEnd when this peer's epoch (or round) ended
        with sync.off_pace(): ... evaluate, checkpoint, record the epoch ...
    sync.finish(stopped)                         # let a round in flight land
    sync.end_barrier(); sync.close()
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Joined:
    """This peer on the network: its DHT (for receipts), its id and the addresses others can dial."""

    dht: Any
    peer_id: str
    maddrs: list[str]


@dataclass(frozen=True)
class EpochEnd:
    """What the swarm did when this peer's epoch (sync mode) or round (DiLoCo) ended."""

    epoch: int  # the epoch that ended
    new_epoch: int  # the epoch this peer trains next
    counted: bool  # this peer's work made the swarm's update (it earns a receipt)
    rounds: int  # rounds this peer has applied with the swarm so far
    fields: dict[str, Any] = field(default_factory=dict)  # mode-specific fields of the "epoch" record
    status: dict[str, Any] = field(default_factory=dict)  # mode-specific PeerStatus changes


@dataclass(frozen=True)
class SyncContext:
    """What a synchronizer may tell the loop's observers while it works."""

    emit: Callable[..., None]  # PeerStatus changes, e.g. emit(stage="loading-state")
    record: Callable[..., None]  # a metrics record (node.records), e.g. record(RoundRecord, round=3, applied=True, ...)
    stopping: Callable[[], bool]  # True once a stop was requested


class Synchronizer(ABC):
    """One way of combining the peers' local steps into the run's shared parameters."""

    mode: str = ""
    signs_receipts: bool = True  # whether this mode's epochs can be receipted and checked by validators

    @abstractmethod
    def check_resume(self, saved: dict[str, Any]) -> None:
        """Raise ConfigError when the checkpoint ``saved`` was written in another mode."""

    @abstractmethod
    def open(self, ctx: SyncContext) -> Joined:
        """Join the DHT."""

    @abstractmethod
    def prepare(self, model: torch.nn.Module, resume: dict[str, Any] | None, fingerprint: str, describe: str) -> None:
        """Build what averages (keyed by the run and the model's fingerprint), restoring ``resume``."""

    @property
    @abstractmethod
    def epoch(self) -> int:
        """The epoch (sync) or round (DiLoCo) this peer trains now: it picks the batches."""

    def start_fields(self) -> dict[str, Any]:
        """Mode-specific fields of the "start" record."""
        return {}

    @abstractmethod
    def wait_for_peers(self) -> None:
        """Start barrier: every expected peer of this model is there (PeersNotFound after the timeout)."""

    def warm_up(self, first_step: Callable[[], None]) -> int:
        """Whatever the mode needs before the loop; returns the local steps it took (via ``first_step``)."""
        return 0

    @abstractmethod
    def step(self, model: torch.nn.Module, step: int, compute_s: float) -> EpochEnd | None:
        """After the backward pass of local step ``step`` of this epoch (``compute_s`` seconds of forward and
        backward): optimizer work and averaging."""

    def live_status(self) -> dict[str, Any]:
        """PeerStatus changes after every local step."""
        return {}

    @contextmanager
    def off_pace(self) -> Iterator[None]:
        """Work at an epoch's end that is not this peer's step time (evaluation, checkpoint, receipt)."""
        yield

    @contextmanager
    def shared_view(self, model: torch.nn.Module) -> Iterator[None]:
        """``model`` holds the parameters every peer agrees on while inside (for evaluation)."""
        yield

    def shared_tensors(self, model: torch.nn.Module) -> list[torch.Tensor]:
        """The parameters every peer agrees on (their sketch goes into the epoch record)."""
        return list(model.parameters())

    @abstractmethod
    def checkpoint_state(self) -> dict[str, Any]:
        """What a checkpoint holds besides the model, to resume this mode."""

    def finish(self, model: torch.nn.Module, stopped: bool) -> None:
        """After the last step: let averaging in flight land (briefly when ``stopped``)."""

    def final_fields(self) -> dict[str, Any]:
        """Mode-specific fields of the "final" and "stop" records."""
        return {}

    @abstractmethod
    def end_barrier(self, timeout: float) -> None:
        """Wait for the others to finish their last round (PeersNotFound after ``timeout``)."""

    @abstractmethod
    def close(self) -> None:
        """Leave the swarm; safe to call after a failed ``open`` or ``prepare``."""
