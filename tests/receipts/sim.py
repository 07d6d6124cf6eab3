"""In-process simulation of honest and cheating peers producing real receipts (no swarm).

Each simulated peer runs the trainer's own hook (``WorkRecorder``) over its assigned
batches from the epoch's parameters; between epochs the parameters take one SGD step, so
every epoch has new parameters and a new snapshot. Cheaters are built from the same code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from eth_account import Account
from eth_account.signers.local import LocalAccount

from node.train.data import Corpus, assigned_batch, demo_corpus
from node.train.model import GPTConfig, build_model
from node.work.recorder import WorkConfig, WorkRecorder
from node.work.wire import sign_receipt
from protocol.receipts import SKETCH_DIM, CorpusLayout, Receipt, SignedReceipt, batches_commitment, shard_samples

TINY = GPTConfig(n_layer=2, n_embd=64, n_head=4, block_size=64)
RUN = "sim"
BATCH = 4


def small_corpus() -> tuple[Corpus, CorpusLayout]:
    demo = demo_corpus()
    train = demo.train[:60_000]
    half = 30_000
    return Corpus(train=train, val=demo.val[:20_000]), CorpusLayout((("aa" * 32, 0), ("bb" * 32, half)))


def peer_id(i: int) -> str:
    rng = random.Random(i)
    return "QmSim" + "".join(rng.choice("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz") for _ in range(40))


@dataclass
class SimPeer:
    index: int
    account: LocalAccount
    behaviour: str = "honest"  # honest | inflate | fake-sketch

    @property
    def peer_id(self) -> str:
        return peer_id(self.index)

    def work(self, model: torch.nn.Module, corpus: Corpus, layout: CorpusLayout, epoch: int, steps: int,
             snapshot_dir: Path) -> SignedReceipt:
        cfg = WorkConfig(run_id=RUN, peer_id=self.peer_id, batch_size=BATCH, n_samples=corpus.n_train_samples(TINY.block_size),
                         layout=layout, snapshot_dir=snapshot_dir)
        signed: list[SignedReceipt] = []
        rec = WorkRecorder(cfg, lambda r: sign_receipt(self.account, r), self.account.address, lambda s, _timeout: signed.append(s) or True)
        for step in range(steps):
            x, y = assigned_batch(corpus, RUN, epoch, self.peer_id, step, BATCH, TINY.block_size)  # type: ignore[arg-type]
            model.zero_grad(set_to_none=True)
            model(x, y)[1].backward()
            rec.on_step(epoch, step, model)
        out = rec.on_epoch_end(epoch)
        assert out is not None
        return self._cheat(out.receipt, layout)

    def _cheat(self, r: Receipt, layout: CorpusLayout) -> SignedReceipt:
        if self.behaviour == "inflate":  # claims twice the steps it computed, commitments made consistent
            steps = 2 * r.steps
            r = replace(r, steps=steps, samples=steps * r.batch_size,
                        batches_hash=batches_commitment(r.run_id, r.epoch, r.peer_id, steps, r.batch_size, r.n_samples),
                        shard_samples=shard_samples(layout, r.run_id, r.epoch, r.peer_id, steps, r.batch_size, r.n_samples))
        elif self.behaviour == "fake-sketch":  # computed nothing: a plausible-looking random sketch
            g = random.Random(r.epoch * 1000 + self.index)
            scale = max(abs(v) for v in r.sketch)
            r = replace(r, sketch=tuple(g.gauss(0, scale) for _ in range(SKETCH_DIM)))
        return sign_receipt(self.account, r)


def make_peers(behaviours: list[str]) -> list[SimPeer]:
    return [SimPeer(i, Account.create(), b) for i, b in enumerate(behaviours)]


def simulate(peers: list[SimPeer], epochs: int, steps: int, snapshot_dir: Path, corpus: Corpus, layout: CorpusLayout,
             start_epoch: int = 0) -> dict[int, list[SignedReceipt]]:
    """Receipts per epoch; parameters move by one SGD step of the summed gradients between epochs."""
    torch.set_num_threads(1)
    model = build_model(TINY, seed=1)
    out: dict[int, list[SignedReceipt]] = {}
    for epoch in range(start_epoch, start_epoch + epochs):
        out[epoch] = [p.work(model, corpus, layout, epoch, steps, snapshot_dir) for p in peers]
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(epoch)) * 1e-3)
    return out
