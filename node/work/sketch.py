"""Gradient sketches: what a receipt claims about an epoch's work, and how a validator recomputes it.

The sketch is a count-sketch (a sparse Johnson-Lindenstrauss projection) of the mean
local gradient over a peer's steps in one epoch: every parameter coordinate ``i`` (in
``model.parameters()`` order, flattened) gets a bucket ``h(i)`` in ``[0, SKETCH_DIM)`` and a
sign ``s(i)``, drawn from torch's CPU generator seeded by (run, epoch, peer), and
``sketch[b] = sum_{h(i)=b} s(i) * g_i`` (accumulated in float64). It costs O(n) per step
and 12 bytes per parameter of memory once per epoch, where a dense 128 x n Gaussian would
not fit. It is linear, so the sketch of the mean gradient is the mean of the per-step
sketches. Seeds differ per peer and epoch, so a sketch cannot be copied between them.

``recompute_sketch`` is the validator's side of the computation the trainer's recorder
(``node.work.recorder``) does step by step: the same sketcher over the same gradients.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

import torch

from protocol.receipts import SKETCH_DIM, Receipt

_SEED_DOMAIN = b"hivenet/sketch/v1"
Batch = tuple[torch.Tensor, torch.Tensor]  # inputs and targets of one local step


def sketch_seed(run_id: str, epoch: int, peer_id: str) -> int:
    h = hashlib.sha256(_SEED_DOMAIN)
    for part in (run_id.encode(), peer_id.encode()):
        h.update(struct.pack(">I", len(part)) + part)
    h.update(struct.pack(">Q", epoch))
    return int.from_bytes(h.digest()[:8], "big") >> 1


class CountSketch:
    """A seeded projection of n-vectors to ``dim`` floats (see the module docstring)."""

    def __init__(self, n: int, dim: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.dim = dim
        self.bucket = torch.randint(0, dim, (n,), generator=gen)
        self.sign = torch.randint(0, 2, (n,), generator=gen).to(torch.float64).mul_(2).sub_(1)

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        return torch.zeros(self.dim, dtype=torch.float64).index_add_(0, self.bucket, flat.detach().to(torch.float64) * self.sign)


def receipt_sketcher(model: torch.nn.Module, run_id: str, epoch: int, peer_id: str) -> CountSketch:
    """The sketcher of one peer's epoch over ``model``'s parameters."""
    n = sum(p.numel() for p in model.parameters())
    return CountSketch(n, SKETCH_DIM, sketch_seed(run_id, epoch, peer_id))


def flat_grad(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([
        (p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1).cpu() for p in model.parameters()
    ])


def params_hash(model: torch.nn.Module) -> bytes:
    """SHA-256 over the parameters' float bytes, in ``parameters()`` order."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()


def recompute_sketch(model: torch.nn.Module, receipt: Receipt, batch_at: Callable[[int], Batch]) -> tuple[float, ...]:
    """The receipt's steps through ``model`` (its epoch-start parameters), sketched.

    ``batch_at(step)`` is the batch the assignment gave the receipt's peer for that step; ``model(x, y)``
    returns ``(logits, loss)``.
    """
    sketcher = receipt_sketcher(model, receipt.run_id, receipt.epoch, receipt.peer_id)
    total = torch.zeros(SKETCH_DIM, dtype=torch.float64)
    model.train()
    for step in range(receipt.steps):
        x, y = batch_at(step)
        model.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        total += sketcher(flat_grad(model))
    model.zero_grad(set_to_none=True)
    return tuple((total / receipt.steps).tolist())
