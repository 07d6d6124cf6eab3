"""End to end: 3 trainer processes sign receipts, 1 validator checks every one (p = 1) on anvil,
2 data contributors' shards are paid for; balances after claims equal the policy's output.

This is also the tolerance calibration on real swarm receipts (hivemind's background state
averaging included): the largest relative sketch error of an honest receipt is reported and
must stay below the tolerance over at least 50 checked receipts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from node.testnet.network import Testnet, TestnetConfig
from node.testnet.peers import free_port
from node.train.model import GPTConfig
from node.validation.checker import DEFAULT_TOL
from node.validation.service import ServiceConfig, ValidationService, make_keystore
from node.validator import ValidatorConfig
from protocol.scoring import ProportionalPolicy

RUN = "receipts-e2e"
EPOCHS = 18
TARGET = 96
EMISSION = 1000 * 10**18


@pytest.mark.slow
@pytest.mark.timeout(540)
def test_three_trainers_one_validator_two_contributors_on_anvil(tmp_path: Path) -> None:
    run_dir = tmp_path / "net"
    accounts = {i: make_keystore(run_dir / f"peer{i}" / "node.key") for i in range(3)}
    snap = run_dir / "snapshots"
    peer_args = {i: ("--keystore", str(run_dir / f"peer{i}" / "node.key"), "--password-file",
                     str(run_dir / f"peer{i}" / "node.pass"), "--snapshot-dir", str(snap)) for i in range(3)}
    cfg = TestnetConfig(run_dir=run_dir, peers=3, run_id=RUN, contributors=2, epochs=EPOCHS, n_layer=2, n_embd=64,
                        target_batch_size=TARGET, batch_size=16, device="cpu", peer_args=peer_args, broker="")
    net = Testnet(cfg)
    svc: ValidationService | None = None
    try:
        net.start()
        owner_accounts = [Account.create().address.lower() for _ in net.shards]
        owners = {s["shard_id"]: owner_accounts[i] for i, s in enumerate(net.shards) if s["shard_id"]}
        roles = {**{a: "peer" for a in accounts.values()}, **{a: "data" for a in owner_accounts}}
        vcfg = ValidatorConfig(RUN, GPTConfig(n_layer=2, n_embd=64), snap, run_dir / "validation",
                               shard_store=net.shard_store, owners=owners, target_batch_size=TARGET, emission=EMISSION)
        svc = ValidationService(ServiceConfig(RUN, net.bootstrap, validators=1, validator=vcfg, chain="anvil",
                                              anvil_port=free_port(), roles=roles))
        svc.start()
        assert net.wait_finished(timeout=420), "trainers did not finish"
        out = svc.finish()
    finally:
        try:
            if svc is not None:
                svc.close()
        finally:
            net.stop()
    (run_dir / "validation.json").write_text(json.dumps(out, indent=1, default=str))
    print("figures:", json.dumps({k: out[k] for k in ("receipts", "receipts_checked", "receipts_rejected",
                                                     "sketch_error_max_accepted", "epochs_settled", "finalized_epoch")}))
    assert not out["validator_errors"]
    assert out["receipts_checked"] >= 50, out["receipts_checked"]
    assert out["receipts_rejected"] == 0, out["receipts_rejected_detail"]
    assert out["sketch_error_max_accepted"] < DEFAULT_TOL
    main = svc.validators[0]
    # balances after claims equal the policy's output, replayed here from the verified credits
    cumulative: dict[str, int] = {}
    carry = 0
    policy = ProportionalPolicy(7000)
    for s in main.book.settled:
        split = policy.split(EMISSION + carry, s.compute, s.data)
        carry = split.carry
        for a, v in split.rewards.items():
            cumulative[a] = cumulative.get(a, 0) + v
    assert {a: int(r["tokens"]) for a, r in out["rewards"].items() if int(r["tokens"])} == cumulative
    assert all(int(out["rewards"][a]["tokens"]) > 0 for a in accounts.values())
    assert all(int(out["rewards"][a]["tokens"]) > 0 for a in owners.values())
    assert sum(cumulative.values()) + carry == EMISSION * len(main.book.settled)
    assert out["finalized_epoch"] == main.book.settled[-1].ledger_epoch
