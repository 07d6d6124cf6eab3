"""The testnet's validators with ``publish_rewards``: the settled trees are on the network, and the one
fetched for the final epoch matches the root finalized on chain (receipts of simulated peers, one DHT).

    .venv/bin/python -m pytest tests/rewards/test_testnet_rewards.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hivemind.utils.crypto import RSAPrivateKey

from node.swarm.rewards_board import RewardsBoard, RewardsPeer
from node.testnet.validation import ServiceConfig, ValidationService
from node.train.data import demo_corpus
from node.validator.service import ValidatorConfig
from node.work.board import install_receipt_validator, receipt_board
from protocol.receipts import CorpusLayout
from protocol.rewards_publication import check_final
from tests.receipts.sim import RUN, TINY, make_peers, simulate
from tests.rewards.swarm import dht_swarm

pytestmark = [pytest.mark.swarm]

EPOCHS = 2


def test_published_trees_of_a_testnet_validator_match_the_chain(tmp_path: Path) -> None:
    receipts = simulate(make_peers(["honest", "honest"]), epochs=EPOCHS, steps=2, snapshot_dir=tmp_path / "snap",
                        corpus=demo_corpus(), layout=CorpusLayout())
    with dht_swarm(1) as (boot,):
        install_receipt_validator(boot, RUN)
        receipts_board = receipt_board(boot, RUN)
        for epoch, signed in receipts.items():
            for i, s in enumerate(signed):  # one subkey per simulated peer, as each peer has its own
                assert receipts_board.publish(s, subkey=f"sim-peer-{i}".encode())
        vcfg = ValidatorConfig(RUN, TINY, tmp_path / "snap", tmp_path / "out", target_batch_size=64, poll_s=0.2)
        service = ValidationService(ServiceConfig(RUN, str(boot.get_visible_maddrs()[0]), 1, vcfg,
                                                  publish_rewards=True))
        try:
            service.start()
            summary = service.finish(timeout_s=120)
            main = service.validators[0]
            final_epoch, final_root, _ = main.client.finalized()
            claimer = RewardsPeer(RewardsBoard(boot, RUN, private_key=RSAPrivateKey()), serve=False)
            try:
                fetched = claimer.fetch(final_epoch, lambda p: check_final(p, final_epoch, final_root, RUN), timeout=60)
            finally:
                claimer.close()
        finally:
            service.close()

    assert summary["epochs_settled"] == EPOCHS and final_epoch == EPOCHS and not summary["validator_errors"]
    assert sorted(summary["rewards_trees"]) == [str(e + 1) for e in range(EPOCHS)]
    assert fetched.content_id == summary["rewards_trees"][str(final_epoch)] and fetched.root == final_root
    relayed = {a: int(r["tokens"]) for a, r in summary["rewards"].items() if int(r["tokens"])}
    assert relayed == dict(fetched.tree.amounts)  # what the testnet paid is what the published tree says
