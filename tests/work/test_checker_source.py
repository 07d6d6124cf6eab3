"""The checker's snapshot source seam: a receipt whose snapshot cannot be had earns nothing, and the checker
keeps why (fast: simulated peers, no network)."""

from __future__ import annotations

from pathlib import Path

import torch

from node.validator.checker import CheckerConfig, ReceiptChecker
from node.work.snapshot_source import LocalSnapshotSource, SnapshotSource
from protocol.receipts import EpochRules, Reject
from protocol.types import Epoch, RunId
from tests.receipts.sim import RUN, TINY, make_peers, simulate, small_corpus


class CountingSource(SnapshotSource):
    """The folder's snapshots, except those listed as served by nobody; counts what it is asked."""

    def __init__(self, directory: Path, missing: set[bytes]) -> None:
        self.local, self.missing, self.asked = LocalSnapshotSource(directory), missing, []

    def load(self, model: torch.nn.Module, digest: bytes, epoch: int) -> str | None:
        self.asked.append(digest)
        if digest in self.missing:
            return f"snapshot {digest.hex()[:16]} not fetched within 1 s: no peer announced it in the DHT"
        return self.local.load(model, digest, epoch)


def _epoch(tmp_path: Path):
    corpus, layout = small_corpus()
    receipts = simulate(make_peers(["honest", "honest"]), epochs=1, steps=2, snapshot_dir=tmp_path / "snap",
                        corpus=corpus, layout=layout)[0]
    rules = EpochRules(RunId(RUN), Epoch(0), corpus.n_train_samples(TINY.block_size), max_samples=128, layout=layout)
    return corpus, receipts, rules


def test_receipts_whose_snapshot_nobody_serves_earn_nothing_and_say_why(tmp_path: Path) -> None:
    corpus, receipts, rules = _epoch(tmp_path)
    digest = receipts[0].receipt.params_hash
    source = CountingSource(tmp_path / "snap", missing={digest})
    checker = ReceiptChecker(CheckerConfig(model=TINY, snapshot_dir=tmp_path / "unused"), corpus, snapshots=source)
    verdicts = checker.check_epoch(receipts, rules, seed=b"\x00" * 32, p=1.0)
    assert [v.reason for v in verdicts] == [Reject.PARAMS_MISMATCH, Reject.PARAMS_MISMATCH]
    assert "no peer announced it" in checker.unavailable[digest]
    assert source.asked == [digest]  # asked once for the epoch, not once per receipt


def test_the_same_receipts_pass_when_the_source_has_the_snapshot(tmp_path: Path) -> None:
    corpus, receipts, rules = _epoch(tmp_path)
    source = CountingSource(tmp_path / "snap", missing=set())
    checker = ReceiptChecker(CheckerConfig(model=TINY, snapshot_dir=tmp_path / "unused"), corpus, snapshots=source)
    verdicts = checker.check_epoch(receipts, rules, seed=b"\x00" * 32, p=1.0)
    assert all(v.accepted and v.checked for v in verdicts)
    assert checker.unavailable == {}
