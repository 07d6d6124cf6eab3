"""A DiLoCo peer that missed a round's matchmaking learns from a mixed group how far behind it is."""

from node.train.diloco import rounds_behind


def test_a_peer_one_round_behind_the_majority_skips_one():
    assert rounds_behind(0, [0, 1, 1]) == 1
    assert rounds_behind(3, [3, 5, 5, 5]) == 2


def test_peers_ahead_or_without_a_majority_round_stay():
    assert rounds_behind(1, [0, 1, 1]) == 0  # the one behind is another peer
    assert rounds_behind(0, [0, 1, 2]) == 0  # no round holds a majority
    assert rounds_behind(0, [0, 0, 1, 1]) == 0  # half is no majority


def test_one_member_reporting_a_far_off_round_moves_nobody():
    assert rounds_behind(4, [4, 4, 10**9]) == 0
    assert rounds_behind(4, [4, "5", True, None]) == 0  # malformed round labels count for nothing
