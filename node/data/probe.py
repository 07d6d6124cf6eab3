"""Poisoning probe: does the current model find this shard's records unusually easy or hard?

The model is passed in as a loss function (``LossFn``: records -> mean nats per
byte each), so this module does not import the trainer. The probe scores a
deterministic sample of the shard and counts how many records fall outside
the central band of the loss distribution on vetted reference data; a shard
with too many outside the band is flagged for review (poisoned, mislabeled,
or just off-distribution), not rejected outright.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

LossFn = Callable[[Sequence[bytes]], Sequence[float]]


@dataclass(frozen=True)
class ProbeConfig:
    sample: int = 64  # records scored per shard: enough to see a 25% outlier share, cheap for a CPU model
    reference_sample: int = 256  # reference records scored to estimate the band
    band: tuple[float, float] = (0.02, 0.98)  # quantiles of reference losses that count as "normal"
    max_outside_frac: float = 0.25  # a clean sample has ~4% outside the band; above this, flag for review


def deterministic_sample(n: int, k: int, seed: bytes) -> list[int]:
    """``min(n, k)`` distinct indices of ``range(n)``, sorted, from SHA-256 of ``seed`` (same on every node)."""
    if k >= n:
        return list(range(n))
    keyed = sorted(range(n), key=lambda i: hashlib.sha256(seed + struct.pack(">Q", i)).digest())
    return sorted(keyed[:k])


@dataclass(frozen=True)
class ProbeResult:
    flagged: bool
    figures: dict[str, float]
    reason: str | None


def probe(sample: Sequence[bytes], reference: Sequence[bytes], loss_fn: LossFn, cfg: ProbeConfig) -> ProbeResult:
    """Compare the loss of ``sample`` records with the loss band of ``reference`` records."""
    sample = [r for r in sample if r]
    reference = [r for r in reference if r]
    if not sample or len(reference) < 10:
        return ProbeResult(False, {"sampled": float(len(sample)), "reference": float(len(reference))}, None)
    ref = np.asarray(loss_fn(reference), dtype=np.float64)
    got = np.asarray(loss_fn(sample), dtype=np.float64)
    if ref.shape != (len(reference),) or got.shape != (len(sample),) or not (np.isfinite(ref).all() and np.isfinite(got).all()):
        raise ValueError("loss_fn must return one finite loss per record")
    lo, hi = np.quantile(ref, cfg.band)
    outside = float(np.mean((got < lo) | (got > hi)))
    figures = {
        "sampled": float(len(sample)),
        "reference": float(len(reference)),
        "shard_median_loss": float(np.median(got)),
        "reference_median_loss": float(np.median(ref)),
        "band_low": float(lo),
        "band_high": float(hi),
        "outside_band_frac": outside,
    }
    if outside > cfg.max_outside_frac:
        return ProbeResult(
            True,
            figures,
            f"{outside:.0%} of sampled records have a loss outside the reference band "
            f"[{lo:.2f}, {hi:.2f}] nats/byte (limit {cfg.max_outside_frac:.0%}); median {np.median(got):.2f} "
            f"vs reference {np.median(ref):.2f}: review before training on it",
        )
    return ProbeResult(False, figures, None)


class ByteUnigramLoss:
    """A stand-in model: byte unigram frequencies of reference text, add-one smoothed.

    Used where no trained model is at hand (CLI vetting, tests); the trainer
    passes its real model's loss instead.
    """

    def __init__(self, reference: Sequence[bytes]) -> None:
        counts = np.ones(256, dtype=np.float64)
        for record in reference:
            counts += np.bincount(np.frombuffer(record, dtype=np.uint8), minlength=256)
        self._nll = -np.log(counts / counts.sum())

    def __call__(self, records: Sequence[bytes]) -> list[float]:
        out = []
        for record in records:
            if not record:
                out.append(math.nan)
                continue
            out.append(float(self._nll[np.frombuffer(record, dtype=np.uint8)].mean()))
        return out
