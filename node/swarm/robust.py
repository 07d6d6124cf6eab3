"""Robust aggregation: the math each reducer applies to the parts its group sent it.

Pure functions on torch tensors, no I/O and no hivemind. Every function takes
``stacked`` — one row per sender, ``stacked[i]`` is sender i's tensor (any
shape after the first dimension) — and returns one tensor of the row shape.

- ``mean``: hivemind's rule (weighted average); one sender scaled by -1000 ruins it.
- ``coordinate_median`` and ``trimmed_mean``: per coordinate, ignore the extremes.
- ``centered_clip`` (Karimireddy, He, Jaggi 2021, "Learning from History for
  Byzantine Robust Optimization"): start from a robust center, then repeatedly
  move it by the average of each sender's difference clipped to norm ``tau``.
  A sender, however large its vector, moves the result by at most ``tau / n``
  per iteration. A sender farther from the start than ``reject_beyond``
  (default 10) median distances is left out altogether: even clipped, a x-1000
  sign-flipper pulls every round the same way. The threshold is far on
  purpose: at a few median distances, honest senders of a churning swarm
  (a peer back from a partition or a restart sends gradients of stale
  parameters) were left out often enough to hurt the run; subtle attackers
  within the threshold are still clipped (figures: docs/results).

``Aggregator`` is the swappable policy the all-reduce calls; ``make_aggregator``
builds one from a config name. Weights are never trusted as sent: see
``clamp_weights``.

    .venv/bin/python -m pytest tests/robust/test_robust_math.py -q
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from protocol.errors import ConfigError

log = logging.getLogger(__name__)

AGGREGATORS = ("centered-clip", "trimmed-mean", "median", "mean")
REJECT_BEYOND: float | None = 10.0  # centered_clip: leave out senders this many median distances away (None: off)


def clamp_weights(weights: torch.Tensor) -> torch.Tensor:
    """Self-reported weights -> shares that sum to 1, none above 1/n.

    A peer reports its weight (samples accumulated) itself, so a liar could claim
    a huge weight. Shares that sum to 1 with none above 1/n of the n contributing
    senders must all equal 1/n: every sender with a positive weight gets 1/n,
    senders with weight 0 (hivemind's tag-along peers) get 0. When nobody
    reported a positive weight, everyone counts equally.
    """
    positive = (weights > 0).to(torch.float64)
    if positive.sum() == 0:
        positive = torch.ones_like(positive)
    return (positive / positive.sum()).to(torch.float32)


def _contributing(stacked: torch.Tensor, weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows with a positive share and their shares (uniform when ``weights`` is None)."""
    n = stacked.shape[0]
    shares = clamp_weights(torch.ones(n) if weights is None else weights.to(torch.float32))
    keep = shares > 0
    if bool(keep.all()):  # the usual case: no copy of the part
        return stacked, shares
    return stacked[keep], shares[keep] / shares[keep].sum()


def mean(stacked: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted average of the rows (weights normalized to sum to 1; uniform when None)."""
    if weights is None:
        return stacked.mean(dim=0)
    w = weights.to(stacked.dtype) / weights.sum()
    return torch.tensordot(w, stacked, dims=1)


def coordinate_median(stacked: torch.Tensor) -> torch.Tensor:
    """Per coordinate, the middle value (the mean of the two middle values for an even count)."""
    n = stacked.shape[0]
    if n in (3, 4):  # the middle one or two: what is left without the extremes (a sort is ~50x a mean here)
        return _without_extremes(stacked)
    if n <= 2:
        return stacked.mean(dim=0)
    ordered = _sorted_rows(stacked)
    if n % 2 == 1:
        return ordered[n // 2].clone()
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def trimmed_mean(stacked: torch.Tensor, trim: int) -> torch.Tensor:
    """Per coordinate, drop the ``trim`` smallest and ``trim`` largest values and average the rest."""
    n = stacked.shape[0]
    if trim < 0 or 2 * trim >= n:
        raise ValueError(f"cannot trim {trim} from each side of {n} values")
    if trim == 0:
        return stacked.mean(dim=0)
    if trim == 1:
        return _without_extremes(stacked)
    return _sorted_rows(stacked)[trim:n - trim].mean(dim=0)


SORT_NETWORK_MAX = 10  # up to this many senders, sort by elementwise min/max (torch's sort along senders is slower)


def _sorted_rows(stacked: torch.Tensor) -> torch.Tensor:
    """``stacked.sort(dim=0).values``: for a few senders by odd-even transposition (n(n-1) elementwise passes)."""
    n = stacked.shape[0]
    if n > SORT_NETWORK_MAX:
        return stacked.sort(dim=0).values
    rows = list(stacked.unbind(0))
    for round_ in range(n):
        for i in range(round_ % 2, n - 1, 2):
            rows[i], rows[i + 1] = torch.minimum(rows[i], rows[i + 1]), torch.maximum(rows[i], rows[i + 1])
    return torch.stack(rows)


def _without_extremes(stacked: torch.Tensor) -> torch.Tensor:
    """Per coordinate, the mean of the values other than one smallest and one largest (three passes, no sort)."""
    rows = stacked.unbind(0)
    total, low, high = rows[0] + rows[1], torch.minimum(rows[0], rows[1]), torch.maximum(rows[0], rows[1])
    for row in rows[2:]:  # elementwise over whole rows, in place: reductions along the sender axis are slower
        total.add_(row)
        torch.minimum(low, row, out=low)
        torch.maximum(high, row, out=high)
    return total.sub_(low).sub_(high).div_(len(rows) - 2)


def _row_norms(diff: torch.Tensor) -> torch.Tensor:
    return diff.reshape(diff.shape[0], -1).norm(dim=1)


def centered_clip(
    stacked: torch.Tensor,
    weights: torch.Tensor | None = None,
    tau: float | None = None,
    iterations: int = 3,
    center: torch.Tensor | None = None,
    reject_beyond: float | None = REJECT_BEYOND,
    on_reject: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    radius_scale: float = 1.0,
) -> torch.Tensor:
    """CenteredClip: ``v <- v + sum_i w_i * clip_tau(x_i - v)`` repeated ``iterations`` times.

    ``center`` is the starting point (the paper uses the previous aggregate);
    by default the coordinate-wise median, which a minority cannot drag far.
    ``tau`` is the clipping radius; None picks it from the data: the median of
    the senders' distances to the start, so that it scales with the gradients
    (a fixed tau is either too small for early gradients or too large for late
    ones) and a minority of far senders cannot inflate it.
    ``reject_beyond``: senders farther from the start than this many times the
    median distance get no weight (None: every sender is clipped, none left out);
    ``on_reject(left_out, distances / median)`` (per sender) is told when that happens.
    """
    if stacked.shape[0] == 1:
        return stacked[0].clone()
    n = stacked.shape[0]
    w = np.full(n, 1.0 / n) if weights is None else (weights / weights.sum()).to(torch.float64).numpy()
    v0 = coordinate_median(stacked) if center is None else center.to(stacked.dtype).clone()
    # Every iterate is v = a @ X + b * v0, so the distances ||x_i - v|| follow from the senders' Gram matrix and
    # their products with v0 (n x n numbers, in float64 numpy: torch's per-call overhead on tensors this small
    # cost more than the passes over the part): two passes over the part and one to build the result, where
    # iterating on the vectors themselves costs three passes per iteration.
    X = stacked.reshape(n, -1)
    start = v0.reshape(-1)
    gram = (X @ X.T).to(torch.float64).numpy()
    along = (X @ start).to(torch.float64).numpy()
    start_sq = float(start @ start)
    diag = gram.diagonal()
    a, b = np.zeros(n), 1.0

    def norm_sq(a: np.ndarray, b: float) -> float:  # ||a @ X + b * v0||^2
        return float(a @ gram @ a) + 2 * b * float(a @ along) + b * b * start_sq

    def distances_to(a: np.ndarray, b: float) -> np.ndarray:
        cross = gram @ a + b * along  # x_i . v
        return np.sqrt(np.maximum(diag - 2 * cross + norm_sq(a, b), 0.0))

    distances = distances_to(a, b)
    spread = float(np.sort(distances)[(n - 1) // 2])  # the lower middle for an even count, as torch's median
    if reject_beyond is not None and spread > 0:
        kept = np.where(distances <= reject_beyond * spread, w, 0.0)
        left_out = kept < w
        if bool(left_out.any()) and float(kept.sum()) > 0:
            w = kept / kept.sum()
            if on_reject is not None:
                on_reject(torch.from_numpy(left_out), torch.from_numpy(distances / spread).to(torch.float32))
    radius = spread * radius_scale if tau is None else float(tau)
    for _ in range(iterations):
        norms = distances_to(a, b)
        # min(1, tau / ||d||), written so that a zero distance (or radius) never divides by zero
        scale = np.where(norms > radius, radius / np.maximum(norms, 1e-30), 1.0)
        c = w * scale  # step = sum_i c_i (x_i - v)
        total = float(c.sum())
        step_a, step_b = c - total * a, -total * b
        a, b = a + step_a, b + step_b
        if math.sqrt(max(norm_sq(step_a, step_b), 0.0)) <= 1e-12 * (1.0 + math.sqrt(max(norm_sq(a, b), 0.0))):
            break
    # b * v0 + a @ X in one pass
    return torch.addmv(start, X.T, torch.from_numpy(a).to(stacked.dtype), beta=b).reshape(stacked.shape[1:])


class Aggregator(ABC):
    """How a reducer combines the senders' versions of one tensor part."""

    name: str = ""

    @abstractmethod
    def aggregate(self, stacked: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``stacked[i]`` is sender i's part, ``weights[i]`` its self-reported weight; returns the combined part."""


@dataclass(frozen=True)
class MeanAggregator(Aggregator):
    """hivemind's weighted mean, with weights clamped (for comparison: not robust)."""

    name: str = "mean"

    def aggregate(self, stacked: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        rows, shares = _contributing(stacked, weights)
        return mean(rows, shares)


@dataclass(frozen=True)
class MedianAggregator(Aggregator):
    name: str = "median"

    def aggregate(self, stacked: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        rows, _ = _contributing(stacked, weights)
        return coordinate_median(rows)


@dataclass(frozen=True)
class TrimmedMeanAggregator(Aggregator):
    """Trims ``ceil(trim_fraction * n)`` values from each side, as many as keeps at least one."""

    trim_fraction: float = 0.3  # a fraction, not a count: groups change size between rounds; >= the attackers' share
    name: str = "trimmed-mean"

    def aggregate(self, stacked: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        rows, _ = _contributing(stacked, weights)
        n = rows.shape[0]
        return trimmed_mean(rows, trim_count(self.trim_fraction, n))


_CAPPED_TRIMS: set[tuple[float, int]] = set()


def trim_count(fraction: float, n: int) -> int:
    """Values cut from each side: ``ceil(fraction * n)``, capped so that at least two values stay averaged
    (from four senders up; below, the middle one or two are all a robust rule can keep). Uncapped, 0.3 of 7
    cuts 3 per side and the trimmed mean is the median, which on heterogeneous data is biased with no attack
    at all; a cap is logged (once per group size) since it tolerates fewer attackers than ``fraction`` says."""
    wanted = math.ceil(fraction * n)
    most = (n - 2) // 2 if n >= 4 else (n - 1) // 2
    if wanted > most and (fraction, n) not in _CAPPED_TRIMS:
        _CAPPED_TRIMS.add((fraction, n))
        log.warning("trimmed mean: %.2f of %d senders would cut %d per side; cutting %d so that %d stay averaged",
                    fraction, n, wanted, most, n - 2 * most)
    return min(wanted, most)


@dataclass(frozen=True)
class CenteredClipAggregator(Aggregator):
    tau: float | None = None  # clipping radius; None: the median distance of the senders to the start point
    iterations: int = 3  # clipping iterations; 1-3 suffice from a median start (each costs one pass over the part)
    reject_beyond: float | None = REJECT_BEYOND  # leave out senders this many median distances away (None: none)
    mix_share: float = 0.0  # > 0: nearest-neighbour mixing first, assuming at most this share of senders hostile
    bucket: int = 1  # > 1: average shuffled buckets of this many senders first
    radius_scale: float = 1.0  # with tau None: the radius is this times the median distance to the start
    name: str = "centered-clip"

    def aggregate(self, stacked: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        rows, shares = _contributing(stacked, weights)
        if self.mix_share > 0:
            rows = nearest_neighbour_mix(rows, math.floor(self.mix_share * rows.shape[0]))
        if self.bucket > 1 and rows.shape[0] > 2:
            rows = bucket_means(rows, self.bucket)
            shares = torch.full((rows.shape[0],), 1.0 / rows.shape[0])
        return centered_clip(rows, shares, tau=self.tau, iterations=self.iterations, reject_beyond=self.reject_beyond,
                             on_reject=_log_left_out, radius_scale=self.radius_scale)


def _log_left_out(left_out: torch.Tensor, distances: torch.Tensor) -> None:
    log.info("centered-clip left out sender(s) %s of %d; distances to the start in median distances: %s",
             left_out.nonzero().flatten().tolist(), len(distances), [float(f"{d:.3g}") for d in distances])


def make_aggregator(name: str, tau: float | None = None, iterations: int = 3, trim_fraction: float = 0.3) -> Aggregator:
    """The aggregator called ``name`` (one of ``AGGREGATORS``); ConfigError for anything else."""
    if name == "centered-clip":
        if iterations < 1 or (tau is not None and tau <= 0):
            raise ConfigError(f"centered-clip needs iterations >= 1 and tau > 0, got {iterations} and {tau}")
        return CenteredClipAggregator(tau=tau, iterations=iterations)
    if name == "trimmed-mean":
        if not 0 <= trim_fraction < 0.5:
            raise ConfigError(f"trim fraction must be in [0, 0.5), got {trim_fraction}")
        return TrimmedMeanAggregator(trim_fraction=trim_fraction)
    if name == "median":
        return MedianAggregator()
    if name == "mean":
        return MeanAggregator()
    raise ConfigError(f"unknown aggregator {name!r}; choose one of {', '.join(AGGREGATORS)}")


def nearest_neighbour_mix(stacked: torch.Tensor, hostile: int) -> torch.Tensor:
    """Allouah et al. 2023: each row replaced by the mean of its ``n - hostile`` nearest rows (itself included),
    so a hostile row's pull is shared with honest neighbours before the robust rule runs."""
    n = stacked.shape[0]
    keep = max(1, n - hostile)
    if keep >= n:
        return stacked.mean(dim=0, keepdim=True).expand_as(stacked).clone()
    flat = stacked.reshape(n, -1)
    nearest = torch.cdist(flat, flat).topk(keep, dim=1, largest=False).indices
    return flat[nearest].mean(dim=1).reshape(stacked.shape)


def bucket_means(stacked: torch.Tensor, size: int) -> torch.Tensor:
    """Karimireddy, He & Jaggi 2022: rows shuffled (global torch RNG: unknown to a sender when it sends) and
    averaged in buckets of ``size``, which shrinks the honest rows' spread on heterogeneous data."""
    n = stacked.shape[0]
    if size <= 1 or n <= 2:
        return stacked
    order = torch.randperm(n)
    return torch.stack([stacked[order[i:i + size]].mean(dim=0) for i in range(0, n, size)])
