"""A DiLoCo peer that missed a round's matchmaking learns from a mixed group how far behind it is."""

from node.swarm.policy import rounds_behind


def test_a_peer_behind_all_the_others_skips_to_their_round():
    assert rounds_behind(0, [0, 1, 1]) == 1
    assert rounds_behind(3, [3, 5, 5, 5]) == 2
    assert rounds_behind(0, [0, 1]) == 1  # two peers: the other one is the swarm


def test_peers_ahead_or_among_others_that_differ_stay():
    assert rounds_behind(1, [0, 1, 1]) == 0  # the one behind is another peer
    assert rounds_behind(1, [0, 1]) == 0
    assert rounds_behind(0, [0, 1, 2]) == 0  # the others do not agree on a round
    assert rounds_behind(0, [0, 0, 1, 1]) == 0  # another peer is on this peer's round


def test_one_member_reporting_a_far_off_round_moves_nobody():
    assert rounds_behind(4, [4, 4, 10**9]) == 0
    assert rounds_behind(4, [4, "5", "5"]) == 0  # malformed round labels count for nothing
    assert rounds_behind(4, [4, True, True]) == 0
