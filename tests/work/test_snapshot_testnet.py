"""A testnet whose validator fetches every snapshot from the trainers over P2P instead of the shared folder
(``ServiceConfig(snapshots="network")``): every receipt is recomputed from fetched snapshots and accepted."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from node.testnet import validation
from node.testnet.network import Testnet, TestnetConfig

pytestmark = [pytest.mark.swarm, pytest.mark.process, pytest.mark.slow]

RUN = "snapshots-net"
EPOCHS = 6


@pytest.mark.timeout(420)
def test_the_validator_recomputes_every_receipt_from_snapshots_fetched_over_p2p(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # The testnet builds its validators' ServiceConfig itself; the option is switched on where it is built.
    monkeypatch.setattr(validation, "ServiceConfig", functools.partial(validation.ServiceConfig, snapshots="network"))
    cfg = TestnetConfig(run_dir=tmp_path / "net", peers=2, run_id=RUN, contributors=0, epochs=EPOCHS, n_layer=2,
                        n_embd=64, target_batch_size=64, batch_size=16, device="cpu", broker="", validators=1,
                        extra_args=("--snapshot-keep-epochs", "4"))
    net = Testnet(cfg)
    try:
        net.start()
        assert net.wait_finished(timeout=300), "trainers did not finish"
    finally:
        net.stop()
    summary = net.write_summary()
    out = net.validation_result
    assert not summary["failed_peers"] and not out["validator_errors"]
    assert summary["receipts_rejected"] == 0, out["receipts_rejected_detail"]
    assert out["receipts_checked"] == out["receipts"] >= EPOCHS  # p = 1: every receipt recomputed
    fetched = list((cfg.run_dir / "validation" / "validator0" / "snapshots").glob("*.pt"))
    assert fetched, "the validator fetched no snapshot over the network"
    # The trainers' shared store kept its last 4 epochs (one snapshot per trainer and epoch: honest peers'
    # parameters differ by float noise of state averaging).
    epochs = {int(p.read_text()) for p in (cfg.run_dir / "snapshots").glob("*.epoch")}
    assert epochs == set(range(EPOCHS - 4, EPOCHS)), epochs
