"""Many simulated workers in one process, training softmax regression on scikit-learn's digits.

Each step every worker computes a gradient on its own shard, applies worker
momentum, and sends it; Byzantine workers send what their attack says instead;
one aggregator combines the sent vectors and SGD applies the result. No
network: this isolates the aggregation rule from the transport.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sklearn.datasets import load_digits

from node.swarm.robust import Aggregator, MeanAggregator
from node.testnet.attacks import Attack


@dataclass(frozen=True)
class SimConfig:
    workers: int = 10
    byzantine: int = 3  # the first this many workers attack
    steps: int = 200
    batch: int = 32  # per worker per step
    lr: float = 0.5
    momentum: float = 0.9  # worker momentum, applied before aggregation
    seed: int = 0


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32) / 16.0
    y = torch.tensor(y, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    X, y = X[order], y[order]
    return X[:1400], y[:1400], X[1400:], y[1400:]


def _grads(params: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy gradients of softmax regression for a batch of workers: X [k, b, 64], y [k, b] -> [k, 650]."""
    W, b = params[: 64 * 10].view(64, 10), params[64 * 10:]
    probs = torch.softmax(X @ W + b, dim=-1)
    dlogits = (probs - torch.nn.functional.one_hot(y, 10).float()) / y.shape[1]
    return torch.cat([(X.transpose(1, 2) @ dlogits).flatten(1), dlogits.sum(dim=1)], dim=1)


def accuracy(params: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> float:
    W, b = params[: 64 * 10].view(64, 10), params[64 * 10:]
    return float(((X @ W + b).argmax(dim=1) == y).float().mean())


def simulate(aggregator: Aggregator = MeanAggregator(), attack: Attack | None = None, cfg: SimConfig = SimConfig()) -> float:
    """Test accuracy after training with ``cfg.byzantine`` workers running ``attack`` (none: all honest)."""
    Xtr, ytr, Xte, yte = _data(cfg.seed)
    shards = list(zip(Xtr.chunk(cfg.workers), ytr.chunk(cfg.workers)))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    params = torch.zeros(64 * 10 + 10)
    momenta = torch.zeros(cfg.workers, params.numel())
    bad = cfg.byzantine if attack is not None else 0
    weights = torch.ones(cfg.workers)
    for _ in range(cfg.steps):
        idx = torch.randint(len(shards[0][1]), (cfg.workers, cfg.batch), generator=gen)
        X = torch.stack([sx[i] for (sx, _), i in zip(shards, idx)])
        y = torch.stack([sy[i] for (_, sy), i in zip(shards, idx)])
        if bad:
            assert attack is not None
            y[:bad] = attack.corrupt_labels(y[:bad], 10)
        grads = _grads(params, X, y)
        momenta = cfg.momentum * momenta + (1 - cfg.momentum) * grads
        sent = momenta.clone()
        if bad:
            assert attack is not None
            honest_mean = momenta[bad:].mean(dim=0)
            for i in range(bad):
                sent[i] = attack.corrupt([momenta[i]], reference=[honest_mean])[0]
        params = params - cfg.lr * aggregator.aggregate(sent, weights)
    return accuracy(params, Xte, yte)
