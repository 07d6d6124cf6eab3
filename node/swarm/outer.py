"""The outer optimizer of DiLoCo-style training: pure math on tensors.

Each peer takes H local (inner) steps from the shared parameters ``g``, then the
swarm averages the pseudo-gradients ``delta = g - local`` (how far each peer
moved, sign flipped so it reads like a gradient). Every peer then applies the
same outer step to ``g`` with SGD and Nesterov momentum (Douillard et al. 2023,
"DiLoCo"; outer lr 0.7, momentum 0.9 there):

    m     <- momentum * m + delta
    g     <- g - lr * (delta + momentum * m)

which is ``torch.optim.SGD(nesterov=True, dampening=0)``. Peers that start from
identical ``g`` and ``m`` and apply the identical averaged ``delta`` stay
identical: the function is deterministic and has no other input.

    .venv/bin/python -m pytest tests/diloco/test_outer.py -q
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class OuterState:
    params: tuple[torch.Tensor, ...]  # the shared parameters g after the latest outer step
    momentum: tuple[torch.Tensor, ...]  # the Nesterov momentum buffers m (zeros before the first step)
    step: int = 0  # outer steps applied so far

    def to(self, device: torch.device | str) -> OuterState:
        """The same state on ``device`` (a checkpoint loads on the CPU; a peer may train on a GPU)."""
        return OuterState(tuple(p.to(device) for p in self.params), tuple(m.to(device) for m in self.momentum),
                          self.step)


def initial_state(params: Sequence[torch.Tensor]) -> OuterState:
    """The state before any outer step: ``params`` copied, momentum zero."""
    copied = tuple(p.detach().clone() for p in params)
    return OuterState(params=copied, momentum=tuple(torch.zeros_like(p) for p in copied))


def pseudo_gradient(shared: Sequence[torch.Tensor], local: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``shared - local`` per tensor: what H inner steps moved this peer, read as a gradient."""
    return [s.detach() - l.detach() for s, l in zip(shared, local, strict=True)]


def outer_step(state: OuterState, delta: Sequence[torch.Tensor], lr: float, momentum: float) -> OuterState:
    """One outer SGD step with Nesterov momentum on the averaged pseudo-gradient ``delta``.

    Returns a new state; the input tensors are not modified.
    """
    if lr <= 0:
        raise ValueError(f"outer learning rate must be positive, got {lr}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"outer momentum must be in [0, 1), got {momentum}")
    new_params, new_momentum = [], []
    for g, m, d in zip(state.params, state.momentum, delta, strict=True):
        d = d.to(g.dtype)
        m_next = m * momentum + d
        update = d + m_next * momentum if momentum > 0 else d
        new_params.append(g - lr * update)
        new_momentum.append(m_next)
    return OuterState(params=tuple(new_params), momentum=tuple(new_momentum), step=state.step + 1)
