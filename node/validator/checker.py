"""The validator's receipt checks for one epoch: static checks on all, recomputation on a sample.

    checker = ReceiptChecker(CheckerConfig(model=GPTConfig(n_layer=2, n_embd=64), snapshot_dir=...), corpus)
    verdicts = checker.check_epoch(receipts, rules, seed=previous_root, p=1.0)

Order (every validator reaches the same verdicts from the same receipts):

1. signature, run, epoch, sample arithmetic, cap, dataset size, batch commitment and
   per-shard counts (``protocol.receipts.static_check``); duplicates by peer, account or
   sketch (``protocol.receipts.duplicates``);
2. parameters: the epoch's reference is the ``params_hash`` most receipts name; a receipt
   naming other parameters is accepted only if its snapshot exists, hashes to its name,
   and lies within ``param_tol`` (relative L2) of the reference (float noise of background
   state averaging), else ``PARAMS_MISMATCH``;
3. the spot check: each receipt is picked with probability ``p``, seeded by a public value
   (``protocol.receipts.is_selected``); a picked receipt is recomputed from its snapshot and
   its assigned batches and accepted when the relative sketch error is at most ``tol``.

Snapshots come from a ``node.work.snapshot_source.SnapshotSource``: the folder ``snapshot_dir`` by
default, or the network (``NetworkSnapshotSource``, passed as ``snapshots``). A snapshot that cannot be
had earns its receipts nothing (``PARAMS_MISMATCH``); why is kept in ``unavailable`` (params hash ->
reason) for the epoch last checked, and logged.

Unpicked receipts that pass 1 and 2 are accepted (the spot check deters by its odds and by
slashing past a threshold of rejections, see ``node.validator.settlement``).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from node.train.data import Corpus, assigned_batch
from node.train.model import GPT, GPTConfig, build_model
from node.work.sketch import recompute_sketch
from node.work.snapshot_source import LocalSnapshotSource, SnapshotSource
from node.work.wire import recover_signer
from protocol.receipts import (
    EpochRules, Reject, SignedReceipt, Verdict, duplicates, is_selected, sketch_error, static_check,
)

log = logging.getLogger(__name__)

# Honest receipts recompute from their own snapshot to float32 rounding of the sent sketch; a peer that
# claims more steps than it computed, or makes a sketch up, lands orders of magnitude higher. 1e-3 sits
# in the wide gap between the two (calibrated on real swarm receipts by tests/receipts/test_swarm_receipts.py).
DEFAULT_TOL = 1e-3
# Honest peers' epoch-start parameters differ by float noise, or by a fraction of one epoch's update when
# hivemind's delayed state averaging lands at different steps. 0.05 accepts honest peers up to about one
# epoch stale (their gradient still entered the average) and rejects parameters from elsewhere.
DEFAULT_PARAM_TOL = 0.05


@dataclass(frozen=True)
class CheckerConfig:
    model: GPTConfig  # the run's model (every peer and validator must agree)
    snapshot_dir: Path  # epoch-start parameter snapshots (see node.work.snapshots), unless a source is given
    tol: float = DEFAULT_TOL  # accepted relative L2 error between claimed and recomputed sketch
    param_tol: float = DEFAULT_PARAM_TOL  # accepted relative distance of a receipt's parameters to the epoch's reference
    threads: int = 1  # torch threads for recomputation


class ReceiptChecker:
    def __init__(self, cfg: CheckerConfig, corpus: Corpus, snapshots: SnapshotSource | None = None) -> None:
        self.cfg, self.corpus = cfg, corpus
        self.snapshots = snapshots if snapshots is not None else LocalSnapshotSource(cfg.snapshot_dir)
        self.unavailable: dict[bytes, str] = {}  # params hash -> why its snapshot could not be had (last epoch checked)
        self.model: GPT = build_model(cfg.model, seed=0)  # weights always come from a snapshot
        self.errors: list[float] = []  # relative sketch errors of every recomputation (for calibration)

    def _flat(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.model.parameters()])

    def _load(self, digest: bytes, epoch: int) -> bool:
        """Loads the snapshot into the model; a snapshot that failed once is not asked for again this epoch."""
        if digest in self.unavailable:
            return False
        reason = self.snapshots.load(self.model, digest, epoch)
        if reason is not None:
            self.unavailable[digest] = reason
            log.info("epoch %d: receipts naming parameters %s earn nothing: %s", epoch, digest.hex()[:16], reason)
        return reason is None

    def _params_ok(self, digest: bytes, reference: bytes, epoch: int, cache: dict[bytes, torch.Tensor | None]) -> bool:
        for d in sorted({digest, reference}):
            if d not in cache:
                cache[d] = self._flat().clone() if self._load(d, epoch) else None
        mine, ref = cache[digest], cache[reference]
        if mine is None or ref is None:
            return False
        return float((mine - ref).norm() / ref.norm().clamp_min(1e-30)) <= self.cfg.param_tol

    def check_epoch(self, receipts: Sequence[SignedReceipt], rules: EpochRules, seed: bytes, p: float) -> list[Verdict]:
        torch.set_num_threads(self.cfg.threads)
        self.unavailable = {}
        verdicts: list[Verdict | None] = [None] * len(receipts)
        for i, signed in enumerate(receipts):
            reason = static_check(signed, recover_signer(signed), rules)
            if reason is not None:
                verdicts[i] = Verdict(signed.receipt, accepted=False, checked=False, reason=reason)
        live = [i for i in range(len(receipts)) if verdicts[i] is None]
        for j in duplicates([receipts[i] for i in live]):
            i = live[j]
            verdicts[i] = Verdict(receipts[i].receipt, accepted=False, checked=False, reason=Reject.DUPLICATE)
        live = [i for i in live if verdicts[i] is None]
        if live:
            votes = Counter(receipts[i].receipt.params_hash for i in live)
            reference = min(votes, key=lambda d: (-votes[d], d))  # most named; ties by hash, so all validators agree
            cache: dict[bytes, torch.Tensor | None] = {}
            for i in live:
                r = receipts[i].receipt
                if not self._params_ok(r.params_hash, reference, r.epoch, cache):
                    verdicts[i] = Verdict(r, accepted=False, checked=False, reason=Reject.PARAMS_MISMATCH)
        for i in live:
            if verdicts[i] is not None:
                continue
            r = receipts[i].receipt
            if not is_selected(seed, r.digest(), p):
                verdicts[i] = Verdict(r, accepted=True, checked=False)
                continue
            verdicts[i] = self._recompute(receipts[i])
        out = [v for v in verdicts if v is not None]
        assert len(out) == len(receipts)
        return out

    def _recompute(self, signed: SignedReceipt) -> Verdict:
        r = signed.receipt
        if not self._load(r.params_hash, r.epoch):
            return Verdict(r, accepted=False, checked=True, reason=Reject.PARAMS_MISMATCH)
        block = self.cfg.model.block_size
        recomputed = recompute_sketch(self.model, r, lambda step: assigned_batch(
            self.corpus, r.run_id, r.epoch, r.peer_id, step, r.batch_size, block))
        error = sketch_error(r.sketch, recomputed)
        self.errors.append(error)
        ok = math.isfinite(error) and error <= self.cfg.tol
        if not ok:
            log.info("epoch %d: receipt of %s rejected, sketch error %.3g > %.3g", r.epoch, r.peer_id, error, self.cfg.tol)
        return Verdict(r, accepted=ok, checked=True, reason=None if ok else Reject.SKETCH_MISMATCH, error=error)
