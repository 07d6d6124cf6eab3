"""Byzantine behaviours and faults for testing robust averaging; testnet and tests only.

``Faults`` is the ``node.hooks.Hooks`` a testnet peer runs with: it carries the attack, the slowdown, the send
delay and the round dumps into the trainer and the optimizer as a value.

A production node never builds these: only the testnet's peer entry point
(``node.cli.testnet_peer``, which ``hivenet testnet up --byzantine K --attack NAME``
runs its peers through) turns fault options into ``Faults``; ``hivenet node start``
has no such flag and no environment switch.

An attack sees what an honest peer would send (its own gradients, optionally a
reference such as the honest mean in a simulation) and returns what it sends
instead; label flipping changes the data instead of the gradients.

    attack = make_attack("sign-flip")
    sent = attack.corrupt([g])          # [-1000 * g]
"""

from __future__ import annotations

import time
from abc import ABC
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from node.hooks import GradientTransform, Hooks
from protocol.errors import ConfigError



class Attack(ABC):
    """What a Byzantine peer does instead of the honest thing; honest by default."""

    name: str = "honest"

    def corrupt(self, grads: Sequence[torch.Tensor], reference: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """The tensors to send instead of ``grads``; ``reference`` is the best estimate of the honest
        aggregate the attacker has (a simulation may pass the true honest mean; a swarm peer has only its own)."""
        return [g.clone() for g in grads]

    def corrupt_labels(self, y: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Targets to train on instead of ``y`` (integer class ids in [0, num_classes))."""
        return y


@dataclass
class SignFlip(Attack):
    scale: float = -1000.0  # the gradient, reversed and blown up
    name: str = "sign-flip"

    def corrupt(self, grads, reference=None):  # type: ignore[no-untyped-def]
        return [g * self.scale for g in grads]


@dataclass
class GaussianNoise(Attack):
    sigma: float = 100.0  # sends pure noise of this standard deviation instead of a gradient
    seed: int = 0
    name: str = "gaussian"
    _gen: torch.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._gen = torch.Generator().manual_seed(self.seed)

    def corrupt(self, grads, reference=None):  # type: ignore[no-untyped-def]
        return [torch.randn(g.shape, generator=self._gen, dtype=g.dtype) * self.sigma for g in grads]


@dataclass
class LabelFlip(Attack):
    """Trains honestly on reversed labels (class c becomes num_classes - 1 - c)."""

    name: str = "label-flip"

    def corrupt_labels(self, y: torch.Tensor, num_classes: int) -> torch.Tensor:
        return (num_classes - 1) - y


@dataclass
class InnerProductManipulation(Attack):
    """Xie, Koyejo, Gupta 2019: send -eps times the honest mean, so the aggregate's inner product with the
    true gradient shrinks while the attackers sit close to the honest cluster (hard to filter)."""

    eps: float = 0.1
    name: str = "ipm"

    def corrupt(self, grads, reference=None):  # type: ignore[no-untyped-def]
        base = grads if reference is None else reference
        return [-self.eps * g for g in base]


@dataclass
class ConstantDirection(Attack):
    """Always sends the same large vector, whatever the data says: a fixed random direction
    (seeded, so every attacker agrees on it) with coordinates of magnitude about ``value``.
    Not all-ones: adding one constant to every logit changes no softmax, so it would be harmless."""

    value: float = 100.0
    seed: int = 1234
    name: str = "constant"

    def corrupt(self, grads, reference=None):  # type: ignore[no-untyped-def]
        gen = torch.Generator().manual_seed(self.seed)
        return [torch.randn(g.shape, generator=gen, dtype=g.dtype) * self.value for g in grads]


@dataclass
class StaleGradients(Attack):
    """Sends its honest gradient from ``delay`` rounds ago (the oldest one it has while warming up)."""

    delay: int = 20
    name: str = "stale"
    _past: deque = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._past = deque(maxlen=self.delay + 1)

    def corrupt(self, grads, reference=None):  # type: ignore[no-untyped-def]
        self._past.append([g.clone() for g in grads])
        return [g.clone() for g in self._past[0]]


ATTACKS = {
    "sign-flip": SignFlip,
    "gaussian": GaussianNoise,
    "label-flip": LabelFlip,
    "ipm": InnerProductManipulation,
    "constant": ConstantDirection,
    "stale": StaleGradients,
}


def make_attack(name: str) -> Attack:
    try:
        return ATTACKS[name]()  # type: ignore[abstract]
    except KeyError:
        raise ConfigError(f"unknown attack {name!r}; choose one of {', '.join(ATTACKS)}") from None


@dataclass
class Slowdown:
    """A straggler: after each local step's compute, sleep so the compute takes ``factor`` times as long."""

    factor: float = 10.0

    def after_step(self, seconds: float) -> None:
        if self.factor > 1:
            time.sleep(seconds * (self.factor - 1))


@dataclass
class Faults(Hooks):
    """Everything a testnet peer may do wrong or record, as the ``Hooks`` its trainer and optimizer are given;
    all off by default."""

    attack: Attack | None = None  # Byzantine behaviour (gradients and/or labels)
    slowdown: Slowdown | None = None  # a straggler
    send_delay: float = 0.0  # seconds between this peer's streams to successive reducers (stretches a round for kill tests)
    round_dump_dir: Path | None = None  # write each round's sent and received tensors here (tests inspect them)

    # -- training --------------------------------------------------------------------------------------------

    def transform_labels(self, y: torch.Tensor, num_classes: int) -> torch.Tensor:
        return y if self.attack is None else self.attack.corrupt_labels(y, num_classes)

    def after_local_step(self, compute_s: float) -> None:
        if self.slowdown is not None:
            self.slowdown.after_step(compute_s)

    # -- averaging -------------------------------------------------------------------------------------------

    def gradient_transform(self) -> GradientTransform | None:
        attack = self.attack
        return None if attack is None or type(attack).corrupt is Attack.corrupt else attack.corrupt

    def stream_spacing_s(self) -> float:
        return self.send_delay

    def on_send_start(self) -> None:
        """With a send delay and dumps (kill tests), each round's start of sending is marked by a file
        ``sending-<unix time>`` beside the dumps, so a test can kill this peer at a chosen moment of the round."""
        if self.send_delay > 0 and self.round_dump_dir is not None:
            self.round_dump_dir.mkdir(parents=True, exist_ok=True)
            (self.round_dump_dir / f"sending-{time.time():.3f}").touch()

    def on_round(self, name: str, record: dict[str, Any]) -> None:
        """``record`` saved as ``<round_dump_dir>/<name>.pt``: written aside, then renamed, so a reader polling the
        directory (or a SIGKILL mid-write) never sees half a file."""
        if self.round_dump_dir is None:
            return
        self.round_dump_dir.mkdir(parents=True, exist_ok=True)
        partial_path = self.round_dump_dir / f"{name}.pt.part"
        torch.save(record, partial_path)
        partial_path.replace(self.round_dump_dir / f"{name}.pt")
