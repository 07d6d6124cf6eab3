"""A ledger deployed with a quorum of two: one validator's root does not become final."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from node.ledger import contract_errors as ce
from node.ledger.client import LedgerClient
from node.ledger.config import DeployConfig
from protocol.rewards_tree import RewardsTree

from .conftest import WINDOW

E18 = 10**18


def test_second_validator_vote_makes_the_root_final(new_client: Callable[..., LedgerClient]) -> None:
    admin = new_client()
    admin.deploy(DeployConfig(challenge_window_s=WINDOW, root_quorum=2, max_epoch_increase=5 * E18))
    other = new_client(admin.deployment)
    admin.grant_validator(other.address)
    admin.mint(admin.address, 10 * E18)
    admin.fund(10 * E18)
    assert admin.root_quorum() == 2

    alice = "0x" + "a1" * 20
    too_much = RewardsTree.build({alice: 6 * E18})
    with pytest.raises(ce.ContributionLedgerEmissionCapExceeded) as capped:
        admin.post_epoch(1, too_much.root, too_much.total)
    assert capped.value.fields == {"epoch": 1, "cumulativeTotal": 6 * E18, "limit": 5 * E18}

    tree = RewardsTree.build({alice: 4 * E18})
    admin.post_epoch(1, tree.root, tree.total)
    admin.chain.advance_time(WINDOW + 1)
    with pytest.raises(ce.ContributionLedgerQuorumNotReached) as short:
        admin.finalize_epoch(1)
    assert short.value.fields == {"epoch": 1, "votes": 1, "quorum": 2}

    other.post_epoch(1, tree.root, tree.total)
    assert {v.lower() for v in admin.epoch_voters(1)} == {admin.address.lower(), other.address.lower()}
    admin.finalize_epoch(1)
    assert admin.finalized() == (1, tree.root, tree.total)
    other.claim(alice, 4 * E18, tree.proof(alice))
    assert admin.token_balance(alice) == 4 * E18
