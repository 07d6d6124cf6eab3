"""What a peer sends instead of its raw gradients: worker momentum, and a chain of such transforms.

Pure functions of tensors; the gradient averager (``node.swarm.hivemind_ext.robust_allreduce``) applies
the chain to what it accumulated before each round.

    .venv/bin/python -m pytest tests/robust/test_robust_allreduce.py -q -k momentum
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from node.hooks import GradientTransform


class WorkerMomentum:
    """Send ``m <- beta * m + (1 - beta) * g`` instead of ``g`` (momentum before aggregation).

    Robust rules compare senders; momentum averages each honest sender's noise over
    ~1/(1-beta) rounds, so honest vectors cluster and outliers stand out
    (Karimireddy et al. 2021).
    """

    def __init__(self, beta: float) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"worker momentum must be in [0, 1), got {beta}")
        self.beta = beta
        self.buffers: list[torch.Tensor] | None = None

    def __call__(self, grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if self.buffers is None:
            self.buffers = [g.detach().clone() for g in grads]  # start at the first gradient, not at zero
        else:
            for m, g in zip(self.buffers, grads):
                m.mul_(self.beta).add_(g, alpha=1.0 - self.beta)
        return [m.clone() for m in self.buffers]


def chain(*transforms: GradientTransform | None) -> GradientTransform | None:
    """Apply ``transforms`` left to right (None entries skipped); None when there are none."""
    steps = [t for t in transforms if t is not None]
    if not steps:
        return None

    def apply(grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = list(grads)
        for step in steps:
            out = step(out)
        return out

    return apply
