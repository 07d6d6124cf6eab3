"""Injection points where tests and the local testnet change what a node does; no-ops on a real node.

A production node always runs with ``Hooks()``: every method returns its input unchanged or does nothing.
The testnet (``node.testnet.attacks.Faults``) and tests pass a subclass down as a value (``Daemon(cfg, hooks=...)``,
``Trainer(..., hooks=...)``, ``make_optimizer(..., hooks=...)``, ``Validator(..., hooks=...)``), to make a peer
misbehave (wrong labels or gradients, slow compute, slow sends) or to record what it did (each round's
tensors). No flag, environment variable or class attribute of a production module turns one on.

This module imports nothing of hivenet, so every layer may take a ``Hooks``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

GradientTransform = Callable[[Sequence["torch.Tensor"]], list["torch.Tensor"]]


class Hooks:
    """Every injection point, each a no-op; override what a test needs."""

    # -- training (node.train) -------------------------------------------------------------

    def transform_labels(self, y: torch.Tensor, num_classes: int) -> torch.Tensor:
        """The targets this peer trains on instead of ``y`` (integer class ids)."""
        return y

    def after_local_step(self, compute_s: float) -> None:
        """Called after each local step's forward and backward (``compute_s`` seconds); may sleep."""

    # -- averaging (node.swarm) ------------------------------------------------------------

    def gradient_transform(self) -> GradientTransform | None:
        """What this peer sends instead of its gradients (after worker momentum); None sends them as they are."""
        return None

    def stream_spacing_s(self) -> float:
        """Seconds between this peer's sends to successive reducers of a round (0: all at once)."""
        return 0.0

    def on_send_start(self) -> None:
        """Called in the averager's process as a round's (delayed) sending begins."""

    def on_round(self, name: str, record: dict[str, Any]) -> None:
        """What this peer sent and got in a round and the verdict (``record``), as it happens."""

    # -- validation (node.validator) ---------------------------------------------------------

    def rewards_to_post(self, cumulative: dict[str, int], me: str) -> dict[str, int]:
        """The cumulative rewards a settling validator posts the root of, instead of ``cumulative``."""
        return cumulative


NO_HOOKS = Hooks()
