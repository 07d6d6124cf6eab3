"""The per-epoch work record a trainer signs (see ``protocol.receipts``): ``WorkRecorder``.

``WorkRecorder`` is the trainer's hook: ``on_step`` after each backward sketches the step's
gradient (``node.work.sketch``), ``on_epoch_end`` at each collaborative epoch boundary signs
the receipt and publishes it (only for an epoch whose round took this peer's gradients: a
missed or discarded round earns nothing), and ``flush`` before the trainer leaves the DHT.
A receipt the DHT does not accept (refused, timed out) stays pending: it is tried again at
every epoch end and by ``flush``; what is still pending then goes to a spool file next to
the checkpoint (``node.work.spool``), and the next start publishes it. The epoch in
progress at a stop gets no receipt: its gradients never reached an average, and the
restarted peer redoes it. Parameters at the start of each epoch are written to
``snapshot_dir`` (``node.work.snapshots``), where validators recompute from them, or put into
``snapshots`` (a bounded store, maybe served to validators over P2P: ``node.work.snapshot_service``).

A trainer builds its recorder with ``open_recorder(RecorderConfig(...), publish)``; the
DHT's record validator is installed by the trainer itself (``node.work.board``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from node.identity import load_keystore
from node.work.layout import shard_layout
from node.work.sketch import CountSketch, flat_grad, params_hash, receipt_sketcher
from node.work.snapshot_store import SnapshotKeeper
from node.work.snapshots import save_snapshot
from node.work.spool import ReceiptSpool, spool_path
from node.work.wire import sign_receipt
from protocol.receipts import CorpusLayout, Receipt, SignedReceipt, batches_commitment, shard_samples
from protocol.types import Epoch, PeerId, RunId

log = logging.getLogger(__name__)
Publish = Callable[[SignedReceipt, float], bool]  # (receipt, timeout_s) -> whether the DHT accepted it


@dataclass(frozen=True)
class WorkConfig:
    run_id: str
    peer_id: str
    batch_size: int
    n_samples: int  # windows in the training corpus (the assignment's sample space)
    layout: CorpusLayout  # vetted shards of the corpus, for data credit
    snapshot_dir: Path | None  # where epoch-start parameters go (None: nowhere; receipts cannot be checked)
    publish_timeout_s: float = 5.0  # one DHT store of a receipt; a hung DHT must stall neither training nor the stop
    snapshots: SnapshotKeeper | None = None  # takes the epoch-start parameters instead of snapshot_dir (bounded, served)


def _identity(signed: SignedReceipt) -> bytes:
    return signed.receipt.digest() + signed.signature  # what validators deduplicate on


class WorkRecorder:
    """Accumulates one epoch's sketch and, at its end, signs and publishes the receipt.

    A receipt is only made for an epoch whose steps were recorded from step 0 on without
    gaps (a peer that resumed mid-epoch skips that epoch's receipt). ``publish(receipt,
    timeout_s)`` returns whether the DHT accepted it; a receipt it did not accept stays in
    ``pending`` (and in ``spool``, when there is one) until a later try succeeds. Constructing
    one reads the spool's receipts into ``pending``; it publishes nothing until asked.
    """

    def __init__(self, cfg: WorkConfig, sign: Callable[[Receipt], SignedReceipt], account: str,
                 publish: Publish, spool: ReceiptSpool | None = None) -> None:
        self.cfg, self.sign, self.account, self.publish = cfg, sign, account.lower(), publish
        self._epoch: int | None = None
        self._steps = 0
        self._broken = False
        self._sum: torch.Tensor | None = None
        self._sketcher: CountSketch | None = None
        self._params_hash = b""
        self.published: list[SignedReceipt] = []  # accepted by the DHT, oldest first
        self.spool = spool
        self.pending: list[SignedReceipt] = spool.load() if spool is not None else []  # signed, not accepted yet
        self._spooled = [_identity(s) for s in self.pending]  # what the spool file holds now

    def on_step(self, epoch: int, step: int, model: torch.nn.Module) -> None:
        """Call after ``loss.backward()`` of local step ``step`` whose batch was assigned for ``epoch``."""
        if epoch != self._epoch:
            self._begin(epoch, model)
        if step != self._steps:
            self._broken = True
        if self._broken:
            return
        assert self._sketcher is not None and self._sum is not None
        self._sum += self._sketcher(flat_grad(model))
        self._steps += 1

    def _begin(self, epoch: int, model: torch.nn.Module) -> None:
        self._epoch, self._steps, self._broken = epoch, 0, False
        self._sketcher = receipt_sketcher(model, self.cfg.run_id, epoch, self.cfg.peer_id)
        self._sum = torch.zeros(self._sketcher.dim, dtype=torch.float64)
        snap, keeper = self.cfg.snapshot_dir, self.cfg.snapshots
        if keeper is not None:
            self._params_hash = keeper.put(model, epoch)
        else:
            self._params_hash = save_snapshot(model, snap) if snap is not None else params_hash(model)

    def on_epoch_end(self, epoch: int, counted: bool = True) -> SignedReceipt | None:
        """Signs and publishes the receipt of ``epoch`` (the epoch that just ended), if complete and ``counted``:
        this peer's gradients entered the swarm's update of that epoch. A peer that missed the round, or whose
        round was discarded, claims nothing for the epoch: its work changed no shared parameter."""
        if not counted and epoch == self._epoch and self._steps > 0:
            log.info("epoch %d: no receipt: this peer's %d steps did not reach the swarm's update (round missed or "
                     "discarded)", epoch, self._steps)
        if not counted or epoch != self._epoch or self._broken or self._steps == 0 or self._sum is None:
            self._epoch = None
            return None
        c = self.cfg
        run, ep, peer = RunId(c.run_id), Epoch(epoch), PeerId(c.peer_id)
        receipt = Receipt(
            run_id=run, epoch=ep, peer_id=peer, account=self.account, steps=self._steps, batch_size=c.batch_size,
            samples=self._steps * c.batch_size, n_samples=c.n_samples,
            batches_hash=batches_commitment(run, ep, peer, self._steps, c.batch_size, c.n_samples),
            shard_samples=shard_samples(c.layout, run, ep, peer, self._steps, c.batch_size, c.n_samples),
            params_hash=self._params_hash, sketch=tuple((self._sum / self._steps).tolist()),
        )
        signed = self.sign(receipt)
        self._epoch = None
        # A pending receipt of the same epoch (made before a crash) is superseded: validators refuse two of one account.
        self.pending = [s for s in self.pending if s.receipt.epoch != epoch] + [signed]
        self.flush(self.cfg.publish_timeout_s)
        ok = all(s is not signed for s in self.pending)
        log.info("epoch %d: receipt for %d steps %s", epoch, receipt.steps,
                 "published" if ok else "NOT accepted by the DHT (kept; tried again at the next epoch end and at the stop)")
        return signed

    def flush(self, budget_s: float) -> int:
        """Publishes pending receipts, oldest first, for at most ``budget_s`` seconds (0: none), then makes
        the spool hold exactly those still pending. Returns how many are still pending."""
        deadline = time.monotonic() + budget_s
        still: list[SignedReceipt] = []
        for signed in self.pending:
            left = deadline - time.monotonic()
            if left > 0 and self.publish(signed, min(left, self.cfg.publish_timeout_s)):
                self.published.append(signed)
            else:
                still.append(signed)
        self.pending = still
        if self.spool is not None and [_identity(s) for s in still] != self._spooled:
            self.spool.save(still)
            self._spooled = [_identity(s) for s in still]
        if still:
            where = f"saved to {self.spool.path}, published at the next start" if self.spool is not None else \
                "kept in memory only (no checkpoint path, so no spool file)"
            log.warning("%d signed receipt(s) not accepted by the DHT yet (epochs %s); %s", len(still),
                        ", ".join(str(s.receipt.epoch) for s in still), where)
        return len(still)


@dataclass(frozen=True)
class RecorderConfig:
    """What a trainer's recorder is built from (``open_recorder``); the trainer fills it from its own config."""

    run_id: str
    peer_id: str  # this peer's p2p id: the assignment and the sketch seeds are drawn for it
    batch_size: int  # samples per local step
    n_samples: int  # windows in the training corpus (the assignment's sample space)
    train_bytes: int  # length of the corpus's training text: the shard layout must add up to it
    keystore: Path  # the Ethereum key that signs receipts (the account paid for them)
    password_file: Path | None = None  # the keystore's password (None: empty password)
    shard_store: Path | None = None  # the run's vetted shards (None: the demo corpus, no data credit)
    snapshot_dir: Path | None = None  # where epoch-start parameters go (None: receipts cannot be checked)
    checkpoint: Path | None = None  # unpublished receipts are spooled next to it (None: kept in memory only)


def open_recorder(cfg: RecorderConfig, publish: Publish, snapshots: SnapshotKeeper | None = None) -> WorkRecorder:
    """The trainer's recorder: unlocks the keystore, reads the spool, and publishes what a previous run of
    this node left there (what the DHT does not take yet is tried again at each epoch end and the stop).
    ``snapshots``, when given, takes the epoch-start parameters instead of ``cfg.snapshot_dir``."""
    password = cfg.password_file.read_text().strip() if cfg.password_file is not None else ""
    account = load_keystore(cfg.keystore, password).account
    layout = shard_layout(cfg.shard_store, cfg.run_id, cfg.train_bytes) if cfg.shard_store is not None else CorpusLayout()
    work = WorkConfig(run_id=cfg.run_id, peer_id=cfg.peer_id, batch_size=cfg.batch_size, n_samples=cfg.n_samples,
                      layout=layout, snapshot_dir=cfg.snapshot_dir, snapshots=snapshots)
    spool = ReceiptSpool(spool_path(cfg.checkpoint), cfg.run_id) if cfg.checkpoint is not None else None
    recorder = WorkRecorder(work, lambda r: sign_receipt(account, r), account.address, publish, spool)
    if recorder.pending:
        log.info("publishing %d receipt(s) a previous run of this node could not publish", len(recorder.pending))
        recorder.flush(work.publish_timeout_s)
    return recorder
