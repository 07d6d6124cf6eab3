"""A real trainer node serves its epoch-start snapshots: a validator-like DHT node of the test's own finds
them in the DHT, fetches one over P2P and gets parameters that hash to the receipt's ``params_hash``, without
reading the trainer's folder; the trainer's store keeps only its last epochs (``--snapshot-keep-epochs``); SIGTERM still exits 0 within 10 s."""

from __future__ import annotations

import pytest

from node.train.model import GPTConfig, build_model
from node.work.sketch import params_hash
from node.work.snapshot_fetch import NetworkSnapshotSource
from node.work.snapshot_store import SnapshotStore
from tests.daemon.helpers import keystore_args, node, receipt_observer, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.swarm, pytest.mark.process]
RUN = "snapnode"
KEEP = 4  # epochs: the fetch below has about this many epochs before the snapshot is pruned


def test_a_trainer_serves_the_snapshot_its_receipt_names_and_keeps_only_its_last_epochs(tmp_path) -> None:
    _, keys = keystore_args(tmp_path / "keys")
    snapshots = tmp_path / "node" / "snapshots"
    args = ["--run-id", RUN, "--max-epochs", "1000", "--broker", "", "--peer-wait-timeout", "20", *keys,
            "--snapshot-dir", str(snapshots), "--snapshot-keep-epochs", str(KEEP)]
    with receipt_observer(RUN) as (board, maddrs), node(tmp_path / "node", *args, "--initial-peers", maddrs[0]) as peer:
        assert wait_until(lambda: board.fetch(KEEP + 1), 180), f"no receipt of epoch {KEEP + 1}; see {peer.log_path}"
        receipt = board.fetch(KEEP + 1)[0].receipt
        source = NetworkSnapshotSource(board.dht, RUN, tmp_path / "validator")
        try:
            model = build_model(GPTConfig(n_layer=2, n_embd=64), seed=0)
            assert source.load(model, receipt.params_hash, receipt.epoch) is None, source.reports
            assert params_hash(model) == receipt.params_hash
            assert source.reports[-1].served_by == peer.records("start")[-1]["peer"]
        finally:
            source.close()
        held = SnapshotStore(snapshots).digests()
        assert 1 <= len(held) <= KEEP  # epochs KEEP or more behind the newest were pruned
        code, took = peer.terminate(timeout=30)  # serving must not slow the stop down
        assert code == 0 and took < 10.0, f"exit {code} after {took:.1f} s"
