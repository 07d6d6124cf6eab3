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
at each collaborative epoch boundary, which signs the receipt and publishes it.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from node.train.data import Corpus, assigned_batch
from protocol.receipts import (
    SKETCH_DIM, CorpusLayout, Receipt, SignedReceipt, batches_commitment, shard_samples,
)
from protocol.types import Epoch, PeerId, RunId

log = logging.getLogger(__name__)
_SEED_DOMAIN = b"hivenet/sketch/v1"


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


class WorkRecorder:
    """Accumulates one epoch's sketch and, at its end, signs and publishes the receipt.

    A receipt is only made for an epoch whose steps were recorded from step 0 on without
    gaps (a peer that resumed mid-epoch skips that epoch's receipt).
    """

    def __init__(self, cfg: WorkConfig, sign: Callable[[Receipt], SignedReceipt], account: str,
                 publish: Callable[[SignedReceipt], bool]) -> None:
        self.cfg, self.sign, self.account, self.publish = cfg, sign, account.lower(), publish
        self._epoch: int | None = None
        self._steps = 0
        self._broken = False
        self._sum: torch.Tensor | None = None
        self._sketcher: CountSketch | None = None
        self._params_hash = b""
        self.published: list[SignedReceipt] = []

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

    def on_epoch_end(self, epoch: int) -> SignedReceipt | None:
        """Signs and publishes the receipt of ``epoch`` (the epoch that just ended), if complete."""
        if epoch != self._epoch or self._broken or self._steps == 0 or self._sum is None:
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
        ok = self.publish(signed)
        log.info("epoch %d: receipt for %d steps %s", epoch, self._steps, "published" if ok else "NOT accepted by the DHT")
        self.published.append(signed)
        self._epoch = None
        return signed


def make_recorder(dht: object, run_id: str, peer_id: str, batch_size: int, block_size: int, corpus: Corpus,
                  shard_store: Path | None, keystore: Path | None, password_file: Path | None,
                  snapshot_dir: Path | None) -> WorkRecorder | None:
    """The trainer's recorder: installs the receipt validators on ``dht`` always, records work only with a keystore."""
    from node.identity import load_keystore
    from node.swarm.receipts import ReceiptBoard, sign_receipt

    board = ReceiptBoard(dht, run_id)  # type: ignore[arg-type]
    if keystore is None:
        return None
    password = password_file.read_text().strip() if password_file is not None else ""
    account = load_keystore(keystore, password).account
    layout = shard_layout(shard_store, run_id, corpus) if shard_store is not None else CorpusLayout()
    cfg = WorkConfig(run_id=run_id, peer_id=peer_id, batch_size=batch_size, n_samples=corpus.n_train_samples(block_size),
                     layout=layout, snapshot_dir=snapshot_dir)
    return WorkRecorder(cfg, lambda r: sign_receipt(account, r), account.address, board.publish)
