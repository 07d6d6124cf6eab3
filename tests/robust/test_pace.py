"""Who counts as a straggler (node.swarm.pace): only a peer far slower than the others' median."""

from node.swarm.pace import STRAGGLER_FACTOR, is_straggler


def test_a_peer_ten_times_slower_is_a_straggler():
    assert is_straggler(10.0, [100.0, 95.0, 110.0])


def test_peers_of_one_pace_are_not_stragglers_even_with_machine_noise():
    # a shared machine: one peer gets half the CPU of the others
    assert not is_straggler(50.0, [100.0, 100.0, 100.0])
    assert not is_straggler(100.0, [100.0, 50.0, 100.0])


def test_the_threshold_is_the_factor_times_the_median():
    others = [30.0, 90.0, 1000.0]  # median 90: one very fast peer does not make everyone a straggler
    assert not is_straggler(90.0 / STRAGGLER_FACTOR + 0.01, others)
    assert is_straggler(90.0 / STRAGGLER_FACTOR - 0.01, others)


def test_unknown_paces_make_nobody_a_straggler():
    assert not is_straggler(1.0, [])  # alone
    assert not is_straggler(0.0, [100.0])  # own pace not measured yet
    assert not is_straggler(1.0, [0.0, 0.0])  # the others' not measured yet


def test_one_peer_claiming_a_huge_pace_makes_nobody_a_straggler():
    assert not is_straggler(100.0, [100.0, 1e30])  # the lower median: the honest peer's pace
    assert not is_straggler(100.0, [100.0, 90.0, float("inf")])
    assert not is_straggler(100.0, [float("nan"), float("inf")])
