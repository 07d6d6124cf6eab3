"""Held-out loss and parameter digests: what every peer reports about the model it holds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import torch

from node.train.model import GPT


@torch.no_grad()
def evaluate(model: GPT, batches: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> float:
    """Mean held-out loss in nats per byte."""
    was_training = model.training
    model.eval()
    total = sum(float(model(x.to(device), y.to(device))[1]) for x, y in batches)  # type: ignore[arg-type]
    model.train(was_training)
    return total / len(batches)


def param_digest(tensors: Iterable[torch.Tensor]) -> str:
    """A short SHA-256 over the tensors' exact bytes: equal digests mean bit-identical parameters."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
