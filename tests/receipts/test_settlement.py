"""Settlement on a chain (embedded and anvil): roots posted, claims pay the policy's output exactly
once, and a wrong root is disputed by a second validator and never becomes final."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from node.hooks import Hooks
from node.ledger import contract_errors as ce
from node.ledger.client import LedgerClient
from node.ledger.config import DeployConfig
from node.ledger.rewards_file import EpochRewards
from tests.ledger.conftest import WINDOW
from tests.receipts.sim import make_peers, simulate, small_corpus
from tests.receipts.test_validator import EMISSION, OWNERS, validator

EPOCHS = 3


class OverpayMe(Hooks):
    """A dishonest settling validator: the root it posts pays itself one extra epoch's emission."""

    def rewards_to_post(self, cumulative: dict[str, int], me: str) -> dict[str, int]:
        return {**cumulative, me: cumulative.get(me, 0) + EMISSION}


def _receipts(tmp_path: Path):
    corpus, layout = small_corpus()
    peers = make_peers(["honest", "honest", "honest", "fake-sketch"])
    return peers, simulate(peers, epochs=EPOCHS, steps=2, snapshot_dir=tmp_path / "snap", corpus=corpus, layout=layout)


def test_claims_pay_the_policy_output_exactly_once(tmp_path: Path, admin: LedgerClient,
                                                   new_client: Callable[..., LedgerClient]) -> None:
    peers, receipts = _receipts(tmp_path)
    admin.mint(admin.address, EPOCHS * EMISSION)
    admin.fund(EPOCHS * EMISSION)
    v = validator(tmp_path, receipts, client=admin, challenge_window_s=WINDOW)
    v.poll(ahead=10)
    settled = v.settle_ready(final=True)
    assert admin.latest_epoch() == EPOCHS and v.posted == [1, 2, 3]
    admin.chain.advance_time(WINDOW + 1)
    assert v.finalize_due() == [1, 2, 3]
    assert admin.finalized()[0] == EPOCHS

    rewards = EpochRewards.load(tmp_path / "out" / f"rewards-{EPOCHS}.json")  # what `hivenet rewards claim` reads
    assert rewards.tree.root == settled[-1].root
    relayer = new_client(admin.deployment)
    for account, amount in rewards.tree.amounts.items():
        relayer.claim(account, amount, rewards.tree.proof(account))
    expected = settled[-1].cumulative
    assert {a: admin.token_balance(a) for a in expected} == expected
    assert admin.token_balance(peers[-1].account.address) == 0  # the fake-sketch peer
    assert sum(expected.values()) + settled[-1].carry == EPOCHS * EMISSION
    for owner in OWNERS.values():  # data contributors are paid too
        assert admin.token_balance(owner) > 0
    some = peers[0].account.address.lower()
    relayer.claim(some, expected[some], rewards.tree.proof(some))  # the same intent again: the outbox sends nothing
    with pytest.raises(ce.ContributionLedgerNothingToClaim):  # a fresh sender reaches the contract, which pays nothing
        new_client(admin.deployment).claim(some, expected[some], rewards.tree.proof(some))
    assert admin.token_balance(some) == expected[some]


def test_a_wrong_root_is_disputed_and_never_final(tmp_path: Path, admin: LedgerClient,
                                                  new_client: Callable[..., LedgerClient]) -> None:
    """Acceptance 5: validator A overpays itself; validator B recomputes, disputes within the window."""
    _, receipts = _receipts(tmp_path)
    watcher_client = new_client(admin.deployment)
    admin.grant_validator(watcher_client.address)
    admin.mint(admin.address, EPOCHS * EMISSION)
    admin.fund(EPOCHS * EMISSION)
    snap = tmp_path / "snap"
    bad = validator(tmp_path / "a", receipts, client=admin, snap=snap, challenge_window_s=WINDOW, hooks=OverpayMe())
    watcher = validator(tmp_path / "b", receipts, client=watcher_client, snap=snap, challenge_window_s=WINDOW, mode="watch")
    for v in (bad, watcher):
        v.poll(ahead=10)
    bad.process(0)
    record = admin.epoch_record(1)
    assert record["posted_at"] > 0
    s = watcher.process(0)  # recomputes the same verdicts, finds another root, disputes
    assert watcher.disputed == [1]
    assert admin.epoch_record(1)["disputed"] and admin.epoch_record(1)["root"] != s.root
    admin.chain.advance_time(WINDOW + 1)
    with pytest.raises(ce.ContributionLedgerEpochDisputed):
        admin.finalize_epoch(1)
    assert bad.finalize_due() == []
    assert admin.finalized()[0] == 0
    assert [d["epoch"] for d in admin.events("ContributionLedger", "EpochDisputed")] == [1]


def test_a_second_settling_validator_votes_for_the_same_root(tmp_path: Path,
                                                            new_client: Callable[..., LedgerClient]) -> None:
    """With a quorum of two, one validator's post stays unfinalizable until the second posts the same root."""
    _, receipts = _receipts(tmp_path)
    admin = new_client()
    admin.deploy(DeployConfig(challenge_window_s=WINDOW, root_quorum=2))
    second_client = new_client(admin.deployment)
    admin.grant_validator(second_client.address)
    admin.mint(admin.address, EPOCHS * EMISSION)
    admin.fund(EPOCHS * EMISSION)
    snap = tmp_path / "snap"
    first = validator(tmp_path / "a", receipts, client=admin, snap=snap, challenge_window_s=WINDOW)
    second = validator(tmp_path / "b", receipts, client=second_client, snap=snap, challenge_window_s=WINDOW)
    first.poll(ahead=10)
    first.process(0)
    admin.chain.advance_time(WINDOW + 1)
    with pytest.raises(ce.ContributionLedgerQuorumNotReached):
        admin.finalize_epoch(1)
    second.poll(ahead=10)
    second.process(0)
    assert second.posted == [1]
    assert {v.lower() for v in admin.epoch_voters(1)} == {admin.address.lower(), second_client.address.lower()}
    admin.finalize_epoch(1)
    assert admin.finalized()[0] == 1
