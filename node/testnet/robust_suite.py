"""Robustness suite: many simulated workers on scikit-learn's digits, attacked by omniscient workers.

Testnet and benchmarks only (``bench/robust_suite.py`` prints the figures). Each step every honest worker
computes a gradient of its own shard, applies worker momentum, and sends it; the hostile workers see every
honest vector (the strongest threat model: they know the data's spread and the aggregator's rule) and send
what their attack computes; one aggregator combines the sent rows and SGD applies the result. No network:
this isolates the rule from the transport.

Splits: ``iid`` (shuffled) or ``skewed`` (each honest worker holds about two classes: the training set sorted
by label, cut into two shards per honest worker, shards dealt at random). The clean figure is the plain mean
over the honest workers alone, with no hostile worker at all: what the honest majority would reach by itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from node.swarm.config import SwarmConfig
from node.swarm.robust import Aggregator, MeanAggregator, make_aggregator

# attack(honest rows [h, d], hostile count f, aggregator) -> hostile rows [f, d]
SuiteAttack = Callable[[torch.Tensor, int, Aggregator], torch.Tensor]


@dataclass(frozen=True)
class SuiteConfig:
    workers: int = 10
    byzantine: int = 3
    split: str = "iid"  # iid | skewed
    model: str = "softmax"  # softmax | mlp (64-64-10)
    steps: int = 150
    batch: int = 32  # per worker per step
    lr: float = 0.5
    momentum: float = 0.9  # honest workers' momentum before aggregation (0: raw gradients)
    seed: int = 0


_DIGITS: tuple[torch.Tensor, torch.Tensor] | None = None


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    global _DIGITS
    if _DIGITS is None:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        _DIGITS = torch.tensor(X, dtype=torch.float32) / 16.0, torch.tensor(y, dtype=torch.long)
    return _DIGITS


def _shards(cfg: SuiteConfig, honest: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor, torch.Tensor]:
    X, y = _digits()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.seed))
    X, y = X[order], y[order]
    Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]
    if cfg.split == "iid":
        return list(zip(Xtr.chunk(honest), ytr.chunk(honest))), Xte, yte
    if cfg.split != "skewed":
        raise ValueError(f"unknown split {cfg.split!r}")
    by_label = ytr.argsort(stable=True)
    pieces = by_label.chunk(2 * honest)
    deal = torch.randperm(2 * honest, generator=torch.Generator().manual_seed(cfg.seed + 7))
    shards = []
    for w in range(honest):
        idx = torch.cat([pieces[int(deal[2 * w])], pieces[int(deal[2 * w + 1])]])
        shards.append((Xtr[idx], ytr[idx]))
    return shards, Xte, yte


def _sizes(model: str) -> int:
    return 64 * 10 + 10 if model == "softmax" else 64 * 64 + 64 + 64 * 10 + 10


def _logits(params: torch.Tensor, X: torch.Tensor, model: str) -> torch.Tensor:
    if model == "softmax":
        W, b = params[:640].view(64, 10), params[640:]
        return X @ W + b
    W1, b1 = params[:4096].view(64, 64), params[4096:4160]
    W2, b2 = params[4160:4800].view(64, 10), params[4800:]
    return torch.relu(X @ W1 + b1) @ W2 + b2


def _grads(params: torch.Tensor, X: torch.Tensor, y: torch.Tensor, model: str) -> torch.Tensor:
    """Per-worker cross-entropy gradients: X [k, b, 64], y [k, b] -> [k, d]."""
    p = params.detach().expand(X.shape[0], -1).clone().requires_grad_(True)
    logits = torch.stack([_logits(p[i], X[i], model) for i in range(X.shape[0])])
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum") / y.shape[1]
    (g,) = torch.autograd.grad(loss, p)
    return g


def _init(cfg: SuiteConfig) -> torch.Tensor:
    if cfg.model == "softmax":
        return torch.zeros(_sizes("softmax"))
    gen = torch.Generator().manual_seed(cfg.seed + 3)
    W1 = torch.randn(64, 64, generator=gen) * math.sqrt(2 / 64)
    W2 = torch.randn(64, 10, generator=gen) * math.sqrt(1 / 64)
    return torch.cat([W1.flatten(), torch.zeros(64), W2.flatten(), torch.zeros(10)])


def run(aggregator: Aggregator, attack: SuiteAttack | None, cfg: SuiteConfig) -> float:
    """Test accuracy (0..1) after ``cfg.steps`` steps; ``attack`` None: the honest workers alone."""
    bad = cfg.byzantine if attack is not None else 0
    honest = cfg.workers - cfg.byzantine
    shards, Xte, yte = _shards(cfg, honest)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    params = _init(cfg)
    momenta = torch.zeros(honest, params.numel())
    weights = torch.ones(honest + bad)
    if hasattr(aggregator, "reset"):
        aggregator.reset()
    for _ in range(cfg.steps):
        idx = [torch.randint(len(sy), (cfg.batch,), generator=gen) for _, sy in shards]
        X = torch.stack([sx[i] for (sx, _), i in zip(shards, idx)])
        y = torch.stack([sy[i] for (_, sy), i in zip(shards, idx)])
        grads = _grads(params, X, y, cfg.model)
        momenta = cfg.momentum * momenta + (1 - cfg.momentum) * grads if cfg.momentum > 0 else grads
        sent = momenta if not bad else torch.cat([attack(momenta, bad, aggregator), momenta])  # type: ignore[misc]
        params = params - cfg.lr * aggregator.aggregate(sent, weights)
    return float((_logits(params, Xte, cfg.model).argmax(dim=1) == yte).float().mean())


# -- attacks --------------------------------------------------------------------------------------------------


def _rows(v: torch.Tensor, f: int) -> torch.Tensor:
    return v.unsqueeze(0).expand(f, -1).clone()


def alie(z: float) -> SuiteAttack:
    """A Little Is Enough (Baruch et al. 2019): mean - z * std per coordinate, inside the honest spread."""
    return lambda H, f, agg: _rows(H.mean(0) - z * H.std(0), f)


def ipm(eps: float) -> SuiteAttack:
    """Inner-product manipulation (Xie et al. 2019): -eps times the honest mean."""
    return lambda H, f, agg: _rows(-eps * H.mean(0), f)


def _largest_gamma(ok: Callable[[float], bool], high: float = 50.0, rounds: int = 20) -> float:
    lo, hi = 0.0, high
    if ok(hi):
        return hi
    for _ in range(rounds):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def min_max(H: torch.Tensor, f: int, agg: Aggregator) -> torch.Tensor:
    """Shejwalkar & Houmansadr 2021: mean + gamma * p (p: minus the unit std), gamma as large as keeps the
    farthest distance to an honest vector within the honest vectors' own largest pairwise distance."""
    mu, p = H.mean(0), -H.std(0) / H.std(0).norm().clamp_min(1e-12)
    bound = torch.cdist(H, H).max()

    def ok(g: float) -> bool:
        return bool((H - (mu + g * p)).norm(dim=1).max() <= bound)

    return _rows(mu + _largest_gamma(ok, high=float(bound) * 4 + 1e-6) * p, f)


def min_sum(H: torch.Tensor, f: int, agg: Aggregator) -> torch.Tensor:
    """Shejwalkar & Houmansadr 2021: as Min-Max, bounding the sum of squared distances to the honest vectors
    by the largest such sum of an honest vector."""
    mu, p = H.mean(0), -H.std(0) / H.std(0).norm().clamp_min(1e-12)
    bound = (torch.cdist(H, H) ** 2).sum(1).max()

    def ok(g: float) -> bool:
        return bool(((H - (mu + g * p)) ** 2).sum() <= bound)

    return _rows(mu + _largest_gamma(ok, high=float(bound.sqrt()) * 4 + 1e-6) * p, f)


def mimic(H: torch.Tensor, f: int, agg: Aggregator) -> torch.Tensor:
    """Karimireddy, He & Jaggi 2022: every hostile worker copies one honest worker (the first), so on skewed
    data its classes weigh f + 1 times as much."""
    return _rows(H[0], f)


def inside_radius(H: torch.Tensor, f: int, agg: Aggregator) -> torch.Tensor:
    """Adapted to the rule: the attacker computes the aggregator's own start point and radius (as the rule
    would from the honest rows plus its own) and sits just inside the radius, opposite the honest mean.
    For rules without a radius it takes the honest spread: the median distance of honest rows to the start."""
    start, radius = _start_and_radius(agg, H, f)
    mu = H.mean(0)
    return _rows(start - 0.99 * radius * mu / mu.norm().clamp_min(1e-12), f)


def _start_and_radius(agg: Aggregator, H: torch.Tensor, f: int) -> tuple[torch.Tensor, float]:
    probe = getattr(agg, "start_and_radius", None)
    if probe is not None:
        return probe(H, f)
    start = H.median(dim=0).values
    return start, float((H - start).norm(dim=1).median())


def attacks() -> dict[str, SuiteAttack]:
    return {
        "alie-0.5": alie(0.5), "alie-1": alie(1.0), "alie-1.5": alie(1.5),
        "ipm-0.1": ipm(0.1), "ipm-10": ipm(10.0),
        "min-max": min_max, "min-sum": min_sum, "mimic": mimic, "inside-radius": inside_radius,
    }


def default_aggregator() -> Aggregator:
    """The aggregator a node builds from the default swarm configuration."""
    cfg = SwarmConfig(run_id="robust-suite")
    return make_aggregator(cfg.aggregator, tau=cfg.clip_tau, iterations=cfg.clip_iterations,
                           trim_fraction=cfg.trim_fraction)


def clean(cfg: SuiteConfig) -> float:
    return run(MeanAggregator(), None, cfg)
