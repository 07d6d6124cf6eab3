"""Gradient sketches and the per-epoch work record a trainer signs (see ``protocol.receipts``).

The sketch is a count-sketch (a sparse Johnson-Lindenstrauss projection) of the mean
local gradient over a peer's steps in one epoch: every parameter coordinate ``i`` (in
``model.parameters()`` order, flattened) gets a bucket ``h(i)`` in ``[0, SKETCH_DIM)`` and a
sign ``s(i)``, drawn from torch's CPU generator seeded by (run, epoch, peer), and
``sketch[b] = sum_{h(i)=b} s(i) * g_i`` (accumulated in float64). It costs O(n) per step
and 12 bytes per parameter of memory once per epoch, where a dense 128 x n Gaussian would
not fit. It is linear, so the sketch of the mean gradient is the mean of the per-step
sketches. Seeds differ per peer and epoch, so a sketch cannot be copied between them.

``WorkRecorder`` is the trainer's hook: ``on_step`` after each backward, ``on_epoch_end``
at each collaborative epoch boundary, which signs the receipt and publishes it (only for an
epoch whose round took this peer's gradients: a missed or discarded round earns nothing), and
``flush`` before the trainer leaves the DHT. A receipt the DHT does not accept (refused,
timed out) stays pending: it is tried again at every epoch end and by ``flush``; what is
still pending then goes to a spool file next to the checkpoint, and the next start
publishes it (``node.swarm.receipt_spool``). The epoch in progress at a stop gets no
receipt: its gradients never reached an average, and the restarted peer redoes it.
``recompute_sketch`` is the validator's side of the same computation (same code path).
Parameters at the start of each epoch are written to ``snapshot_dir/<params_hash>.pt``
(content-addressed, so identical parameters of several peers are stored once): the
validator loads the snapshot a receipt names, checks its hash, and recomputes from it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from node.train.data import Corpus, assigned_batch
from protocol.receipts import (
    SKETCH_DIM, CorpusLayout, Receipt, SignedReceipt, batches_commitment, shard_samples,
)
from protocol.types import Epoch, PeerId, RunId

if TYPE_CHECKING:
    from node.swarm.receipt_spool import ReceiptSpool

log = logging.getLogger(__name__)
_SEED_DOMAIN = b"hivenet/sketch/v1"
# Seconds the trainer's stop gives pending receipts before it leaves the DHT; SIGTERM-to-exit must stay under 10 s.
STOP_FLUSH_S = 2.0


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


def save_snapshot(model: torch.nn.Module, directory: Path) -> bytes:
    """Writes the parameters to ``directory/<hash>.pt`` unless that file exists; returns the hash."""
    digest = params_hash(model)
    path = directory / f"{digest.hex()}.pt"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save([p.detach().cpu().clone() for p in model.parameters()], tmp)
        os.replace(tmp, path)
    return digest


def load_snapshot(model: torch.nn.Module, directory: Path, digest: bytes) -> bool:
    """Loads the snapshot ``digest`` into ``model``; False when it is missing or does not hash to its name."""
    path = directory / f"{digest.hex()}.pt"
    if not path.exists():
        return False
    tensors = torch.load(path, weights_only=True)
    params = list(model.parameters())
    if len(tensors) != len(params) or any(t.shape != p.shape for t, p in zip(tensors, params)):
        return False
    with torch.no_grad():
        for p, t in zip(params, tensors):
            p.copy_(t)
    return params_hash(model) == digest


def shard_layout(store_root: Path, run_id: str, corpus: Corpus) -> CorpusLayout:
    """Where each vetted shard starts in ``corpus.train`` (built by ``vetted_corpus`` from the same store)."""
    from node.data.store import ShardStore, StoreConfig
    from node.data.vetted import training_bytes, vetted_shards

    store = ShardStore(StoreConfig(store_root))
    starts, offset = [], 0
    for shard in vetted_shards(store, run_id):
        starts.append((str(shard.shard_id), offset))
        offset += len(training_bytes(store, [shard])) + 2  # shards are joined by b"\n\n"
    if offset - 2 != len(corpus.train):
        raise ValueError("the shard store changed since the corpus was built; restart the node")
    return CorpusLayout(tuple(starts))


def recompute_sketch(model: torch.nn.Module, corpus: Corpus, receipt: Receipt, block_size: int) -> tuple[float, ...]:
    """The validator's recomputation: the receipt's assigned batches through ``model``, sketched."""
    n = sum(p.numel() for p in model.parameters())
    sketcher = CountSketch(n, SKETCH_DIM, sketch_seed(receipt.run_id, receipt.epoch, receipt.peer_id))
    total = torch.zeros(SKETCH_DIM, dtype=torch.float64)
    model.train()
    for step in range(receipt.steps):
        x, y = assigned_batch(corpus, receipt.run_id, receipt.epoch, receipt.peer_id, step, receipt.batch_size, block_size)
        model.zero_grad(set_to_none=True)
        _, loss = model(x, y)  # type: ignore[misc]
        loss.backward()
        total += sketcher(flat_grad(model))
    model.zero_grad(set_to_none=True)
    return tuple((total / receipt.steps).tolist())


@dataclass(frozen=True)
class WorkConfig:
    run_id: str
    peer_id: str
    batch_size: int
    n_samples: int  # windows in the training corpus (the assignment's sample space)
    layout: CorpusLayout  # vetted shards of the corpus, for data credit
    snapshot_dir: Path | None  # where epoch-start parameters go (None: nowhere; receipts cannot be checked)
    publish_timeout_s: float = 5.0  # one DHT store of a receipt; a hung DHT must stall neither training nor the stop


def _identity(signed: SignedReceipt) -> bytes:
    return signed.receipt.digest() + signed.signature  # what validators deduplicate on


class WorkRecorder:
    """Accumulates one epoch's sketch and, at its end, signs and publishes the receipt.

    A receipt is only made for an epoch whose steps were recorded from step 0 on without
    gaps (a peer that resumed mid-epoch skips that epoch's receipt). ``publish(receipt,
    timeout_s)`` returns whether the DHT accepted it; a receipt it did not accept stays in
    ``pending`` (and in ``spool``, when there is one) until a later try succeeds.
    """

    def __init__(self, cfg: WorkConfig, sign: Callable[[Receipt], SignedReceipt], account: str,
                 publish: Callable[[SignedReceipt, float], bool], spool: ReceiptSpool | None = None) -> None:
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
        n = sum(p.numel() for p in model.parameters())
        self._epoch, self._steps, self._broken = epoch, 0, False
        self._sketcher = CountSketch(n, SKETCH_DIM, sketch_seed(self.cfg.run_id, epoch, self.cfg.peer_id))
        self._sum = torch.zeros(SKETCH_DIM, dtype=torch.float64)
        snap = self.cfg.snapshot_dir
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


def make_recorder(dht: object, run_id: str, peer_id: str, batch_size: int, block_size: int, corpus: Corpus,
                  shard_store: Path | None, keystore: Path | None, password_file: Path | None,
                  snapshot_dir: Path | None, checkpoint: Path | None = None) -> WorkRecorder | None:
    """The trainer's recorder: installs the receipt validators on ``dht`` always, records work only with a keystore.

    With a ``checkpoint`` path, unpublished receipts are spooled next to it; those a previous run left
    there are published now (and, if the DHT does not take them yet, at each epoch end and the stop).
    """
    from node.identity import load_keystore
    from node.swarm.receipt_spool import ReceiptSpool, spool_path
    from node.swarm.receipts import ReceiptBoard, sign_receipt

    board = ReceiptBoard(dht, run_id)  # type: ignore[arg-type]
    if keystore is None:
        return None
    password = password_file.read_text().strip() if password_file is not None else ""
    account = load_keystore(keystore, password).account
    layout = shard_layout(shard_store, run_id, corpus) if shard_store is not None else CorpusLayout()
    cfg = WorkConfig(run_id=run_id, peer_id=peer_id, batch_size=batch_size, n_samples=corpus.n_train_samples(block_size),
                     layout=layout, snapshot_dir=snapshot_dir)
    spool = ReceiptSpool(spool_path(checkpoint), run_id) if checkpoint is not None else None
    recorder = WorkRecorder(cfg, lambda r: sign_receipt(account, r), account.address,
                            lambda s, timeout: board.publish(s, timeout=timeout), spool)
    if recorder.pending:
        log.info("publishing %d receipt(s) a previous run of this node could not publish", len(recorder.pending))
        recorder.flush(cfg.publish_timeout_s)
    return recorder
