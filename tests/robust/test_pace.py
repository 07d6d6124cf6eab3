"""Who counts as a straggler (node.swarm.pace): only a peer far slower than the others' median."""

from types import SimpleNamespace

from node.swarm.pace import STRAGGLER_FACTOR, is_straggler, trusted_records


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


def _record(epoch, client=False):  # type: ignore[no-untyped-def]
    """A DHT record of a peer's progress, as ``dht.get`` returns it (only ``.value`` is read)."""
    value = dict(peer_id=b"p", epoch=epoch, samples_accumulated=8, samples_per_second=10.0, time=0.0, client_mode=client)
    return SimpleNamespace(value=value)


def test_one_peer_claiming_a_far_epoch_does_not_move_the_swarms_epoch():
    records = {"a": _record(5), "b": _record(5), "c": _record(5), "liar": _record(10**9)}
    assert set(trusted_records(records)) == {"a", "b", "c"}
    records = {"a": _record(5), "b": _record(5), "liar": _record(10**9)}
    assert set(trusted_records(records)) == {"a", "b"}


def test_the_swarm_moving_on_without_a_peer_is_still_seen():
    behind = {"a": _record(6), "b": _record(6), "me": _record(5)}  # a round this peer missed
    assert trusted_records(behind) == behind
    half = {"a": _record(6), "b": _record(6), "c": _record(5), "me": _record(5)}  # half the swarm stepped
    assert trusted_records(half) == half


def test_clients_empty_and_bad_records_are_kept_and_do_not_count():
    records = {"a": _record(5), "b": _record(5), "client": _record(10**9, client=True), "gone": SimpleNamespace(value=None),
               "bad": SimpleNamespace(value={"epoch": "x"}), "c": _record(7)}
    assert set(trusted_records(records)) == {"a", "b", "client", "gone", "bad"}  # c alone ahead: set aside
    assert trusted_records(None) is None
    two = {"a": _record(5), "b": _record(9)}  # two training peers: no majority to go by
    assert trusted_records(two) == two
