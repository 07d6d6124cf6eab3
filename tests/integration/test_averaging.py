"""Peers in separate processes really average: identical parameters, rounds with everyone's samples."""

import pytest

from node.records import EpochRecord, FinalRecord, StartRecord
from node.testnet.network import Testnet
from tests.integration.swarm_helpers import epoch_records, max_param_difference, round_outcomes, tiny_testnet

pytestmark = [pytest.mark.slow, pytest.mark.swarm]


def test_three_peers_average_gradients_and_hold_identical_parameters(tmp_path):
    # Local steps must take longer than the progress tracker's refresh (~0.5-1 s), or each peer fills
    # the whole target batch before it hears of the others: a 2-layer, 256-wide model does (~0.3 s a step).
    cfg = tiny_testnet(tmp_path / "run", peers=3, epochs=4, run_id="avg-test", n_embd=256, batch_size=16,
                       target_batch_size=128)
    with Testnet(cfg) as net:
        assert net.wait_finished(timeout=240), "the 3-peer run did not finish 4 epochs within 240 s"
        metrics = net.metrics()
    assert net.failed_peers() == []

    # Every peer averaged with all three peers in at least 3 of the 4 rounds. A round whose all-reduce lost a
    # stream (on a loaded machine a partition can miss hivemind's chunk timeout) is discarded by every member
    # of its group (node.swarm.agreement): no peer applies it, so their parameters stay identical (asserted below).
    for peer in ("peer0", "peer1", "peer2"):
        rounds = epoch_records(metrics, peer)
        assert [r.epoch for r in rounds] == [0, 1, 2, 3]
        full = [r.epoch for r in rounds if r.averaged and r.group_size == 3]
        assert len(full) >= 3, (peer, round_outcomes(rounds))

    # A round's samples are the sum over peers (about the target batch), not one peer's.
    for epoch in range(1, 4):  # epoch 0 includes the start barrier's warm-up step
        per_peer = [next(r.samples for r in epoch_records(metrics, p) if r.epoch == epoch)
                    for p in ("peer0", "peer1", "peer2")]
        assert sum(per_peer) >= cfg.target_batch_size * 0.9, per_peer
        # No peer filled the epoch alone: its share of the epoch's samples. (Not a share of the target: when the
        # progress tracker lags, as seen after the first epoch on a loaded machine, every peer keeps stepping and
        # an epoch can hold 2-3x the target, 128 samples from each of the 3 peers.)
        assert max(per_peer) < 0.8 * sum(per_peer), per_peer

    # After the last collaborative step every peer holds the same parameters.
    paths = [tmp_path / "run" / f"peer{i}" / "checkpoint.pt" for i in range(3)]
    assert max_param_difference(paths) <= 1e-6
    finals = [next(r.val_loss for r in metrics[p] if isinstance(r, FinalRecord)) for p in metrics]
    starts = [next(r.val_loss for r in metrics[p] if isinstance(r, StartRecord)) for p in metrics]
    assert max(finals) - min(finals) <= 1e-5
    assert max(finals) < min(starts) - 0.3  # and they learned something together


def test_peers_of_different_runs_never_average_together(tmp_path):
    # Two peers share one DHT (b bootstraps through a) but train different runs; a runs long enough
    # to still be there for all of b's epochs, and is stopped once b is done.
    a = Testnet(tiny_testnet(tmp_path / "a", peers=1, epochs=1000, run_id="run-alpha", contributors=0))
    with a:
        b_cfg = tiny_testnet(tmp_path / "b", peers=1, epochs=3, run_id="run-beta", contributors=0,
                             extra_args=("--initial-peers", a.bootstrap))
        with Testnet(b_cfg) as b:
            assert b.wait_finished(240), "the peer of run-beta did not finish"
            assert b.failed_peers() == [] and a.peers[0].alive()
            metrics = {"a": a.metrics()["peer0"], "b": b.metrics()["peer0"]}
    for name in ("a", "b"):
        rounds = [r for r in metrics[name] if isinstance(r, EpochRecord)]
        assert len(rounds) >= 3
        assert all(not r.averaged and r.group_size == 1 for r in rounds), rounds
    paths = [tmp_path / "a" / "peer0" / "checkpoint.pt", tmp_path / "b" / "peer0" / "checkpoint.pt"]
    assert max_param_difference(paths) > 1e-3  # they started from different seeds and never mixed
