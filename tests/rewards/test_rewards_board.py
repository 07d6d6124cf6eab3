"""Rewards trees over in-process DHTs and P2P streams: publish, fetch, verify; forgeries refused by name.

    .venv/bin/python -m pytest tests/rewards/test_rewards_board.py -q
"""

from __future__ import annotations

import pytest

from node.swarm.rewards_board import RewardsPeer
from protocol.rewards_publication import RewardsMismatch, RewardsPublication, RewardsUnavailable, check_final
from protocol.rewards_tree import RewardsTree
from tests.rewards.swarm import RUN, dht_swarm, forged_bytes, publishers

pytestmark = [pytest.mark.swarm]

WAIT = 60.0  # seconds: hard ceiling on every fetch below
ALICE, BOB = "0x" + "a1" * 20, "0x" + "b2" * 20


@pytest.fixture(scope="module")
def swarm():
    """Peers: 0 the honest validator, 1 a forger, 2 the claimer."""
    with dht_swarm(3) as dhts, publishers(dhts[:2]) as (honest, forger), publishers(dhts[2:], serve=False) as (claimer,):
        yield honest, forger, claimer


def _publication(epoch: int) -> RewardsPublication:
    return RewardsPublication(RUN, epoch, RewardsTree.build({ALICE: 40 * epoch, BOB: 60 * epoch}))


def _fetch(claimer: RewardsPeer, pub: RewardsPublication) -> RewardsPublication:
    """What the CLI does: fetch the epoch's tree and accept it only with the chain's epoch and root."""
    return claimer.fetch(pub.ledger_epoch, lambda p: check_final(p, pub.ledger_epoch, pub.root, RUN),
                         prefer_root=pub.root, timeout=WAIT)


def test_a_published_tree_is_fetched_and_verified_by_another_peer(swarm) -> None:
    honest, _, claimer = swarm
    pub = _publication(1)
    served_before = honest.board.served
    tree_id = honest.publish(pub)

    got = _fetch(claimer, pub)

    assert tree_id == pub.content_id and got.encode() == pub.encode()
    assert got.tree.amount(ALICE) == 40 and honest.board.served == served_before + 1


def test_bytes_off_the_announced_id_are_refused_and_the_tree_fetched_from_the_honest_peer(swarm) -> None:
    honest, forger, claimer = swarm
    pub = _publication(2)
    forger.publish_raw(2, forged_bytes(pub, "leaves"), pub.root, tree_id=pub.content_id)  # the honest id, other bytes
    honest.publish(pub)

    got = _fetch(claimer, pub)

    assert got.encode() == pub.encode()


@pytest.mark.parametrize("kind, named", [("leaves", "wrong leaves"), ("proof", "tampered proof"),
                                         ("root", "root mismatch"), ("id", "content id mismatch")])
def test_a_forged_tree_alone_is_refused_naming_the_mismatch_and_the_peer(swarm, kind: str, named: str) -> None:
    _, forger, claimer = swarm
    epoch = {"leaves": 3, "proof": 4, "root": 5, "id": 7}[kind]
    pub = _publication(epoch)
    if kind == "id":  # other bytes under the genuine tree's id
        forger.publish_raw(epoch, forged_bytes(pub, "leaves"), pub.root, tree_id=pub.content_id)
    else:
        forger.publish_raw(epoch, forged_bytes(pub, kind), pub.root)

    with pytest.raises(RewardsMismatch, match=named) as caught:
        _fetch(claimer, pub)

    assert forger.board.dht.peer_id.to_base58() in str(caught.value)


def test_a_genuine_tree_wins_over_a_forged_one_announced_with_the_same_root(swarm) -> None:
    honest, forger, claimer = swarm
    pub = _publication(6)
    forger.publish_raw(6, forged_bytes(pub, "proof"), pub.root)
    honest.publish(pub)

    assert _fetch(claimer, pub).encode() == pub.encode()


def test_an_epoch_nobody_announces_is_unavailable(swarm) -> None:
    _, _, claimer = swarm
    with pytest.raises(RewardsUnavailable, match="nobody announces"):
        _fetch(claimer, _publication(99))


def test_a_publisher_serves_only_its_newest_trees(swarm) -> None:
    honest, _, _ = swarm
    board = honest.board
    for epoch in range(100, 100 + board.cfg.keep + 2):
        board.hold(f"{epoch:064x}", b"x", epoch, bytes(32))
    assert len(board.trees) == board.cfg.keep and f"{100:064x}" not in board.trees
    assert set(board.records) == set(range(102, 100 + board.cfg.keep + 2))  # only what it still serves
