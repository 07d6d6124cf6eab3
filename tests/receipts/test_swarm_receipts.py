"""End to end: ``hivenet testnet`` with 3 trainer processes signing receipts, 1 validator
checking every one (p = 1), settling on anvil, and 2 data contributors paid for their shards;
token balances after the relayed claims equal the policy's output exactly.

This is also the tolerance calibration on real swarm receipts (hivemind's background state
averaging included): the largest relative sketch error of an accepted receipt is printed
and must stay below the tolerance over at least 50 checked receipts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.testnet.network import Testnet, TestnetConfig
from node.validator.checker import DEFAULT_TOL
from protocol.scoring import ProportionalPolicy

pytestmark = [pytest.mark.swarm, pytest.mark.chain]

RUN = "receipts-e2e"
EPOCHS = 18
EMISSION = 1000 * 10**18  # ValidatorConfig's default emission per epoch


@pytest.mark.slow
@pytest.mark.timeout(540)
def test_three_trainers_one_validator_two_contributors_on_anvil(tmp_path: Path) -> None:
    cfg = TestnetConfig(run_dir=tmp_path / "net", peers=3, run_id=RUN, contributors=2, epochs=EPOCHS, n_layer=2,
                        n_embd=64, target_batch_size=96, batch_size=16, device="cpu", broker="", validators=1,
                        chain="anvil")
    net = Testnet(cfg)
    try:
        net.start()
        assert net.wait_finished(timeout=420), "trainers did not finish"
    finally:
        net.stop()
    summary = net.write_summary()
    out = net.validation_result
    print("figures:", json.dumps({k: out[k] for k in ("receipts", "receipts_checked", "receipts_rejected",
                                                     "sketch_error_max_accepted", "epochs_settled", "finalized_epoch")}))
    assert not summary["failed_peers"] and not out["validator_errors"]
    assert summary["receipts_rejected"] == 0, out["receipts_rejected_detail"]
    assert out["receipts_checked"] >= 50, out["receipts_checked"]
    assert out["sketch_error_max_accepted"] < DEFAULT_TOL
    cumulative: dict[str, int] = {}  # the policy's output, replayed from the verified credits
    carry = 0
    for s in out["settled"]:
        split = ProportionalPolicy(7000).split(EMISSION + carry, s["compute"], s["data"])
        carry = split.carry
        for a, v in split.rewards.items():
            cumulative[a] = cumulative.get(a, 0) + v
    rewards = summary["rewards"]
    assert {a: int(r["tokens"]) for a, r in rewards.items() if int(r["tokens"])} == cumulative
    roles = sorted(r["role"] for r in rewards.values())
    assert roles == ["data", "data", "peer", "peer", "peer"]
    assert all(int(r["tokens"]) > 0 and r["verified_samples"] > 0 for r in rewards.values())
    assert sum(cumulative.values()) + carry == EMISSION * out["epochs_settled"]
    assert out["finalized_epoch"] == out["epochs_settled"]
    for key in ("val_loss_start", "val_loss_end", "rounds", "peers_per_round", "wall_s"):
        assert key in summary
