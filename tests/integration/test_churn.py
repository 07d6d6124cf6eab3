"""A peer killed with SIGKILL: the others go on; restarted, it resumes and rejoins the rounds."""

import time

import pytest

from node.records import StartRecord, read_records
from node.testnet.network import Testnet
from node.testnet.peers import wait_until
from tests.integration.swarm_helpers import epoch_records, tiny_testnet

pytestmark = [pytest.mark.slow, pytest.mark.swarm]


def _latest_epoch(net: Testnet, peer: str) -> int:
    rounds = epoch_records(net.metrics(), peer)
    return rounds[-1].new_epoch if rounds else 0


def test_killed_peer_does_not_stall_the_others_and_rejoins_after_restart(tmp_path):
    cfg = tiny_testnet(tmp_path / "run", peers=3, epochs=20, run_id="churn-test")
    with Testnet(cfg) as net:
        # Checkpoints are written every 5 epochs: by epoch 6 the victim has one to resume from.
        assert wait_until(lambda: _latest_epoch(net, "peer2") >= 6, timeout=240), "peers never reached epoch 6"
        victim = net.peers[2]
        victim.kill()
        killed_at, epoch_at_kill = time.time(), _latest_epoch(net, "peer0")

        # The survivors complete the next epoch within 60 s of the kill.
        assert wait_until(lambda: _latest_epoch(net, "peer0") > epoch_at_kill and
                          _latest_epoch(net, "peer1") > epoch_at_kill, timeout=60), "survivors stalled"
        survivors_next = [next(r for r in epoch_records(net.metrics(), p) if r.new_epoch > epoch_at_kill)
                          for p in ("peer0", "peer1")]
        assert all(r.t - killed_at <= 60 for r in survivors_next)

        # Restarted from its checkpoint, the peer loads the swarm's state and averages with everyone again.
        victim.start()
        assert wait_until(lambda: sum(isinstance(r, StartRecord) for r in read_records(victim.metrics_path)) == 2, 60)
        restart = [r for r in read_records(victim.metrics_path) if isinstance(r, StartRecord)][-1]
        assert restart.resumed is True and restart.epoch >= 5

        def rejoined() -> bool:
            after = [r for r in epoch_records(net.metrics(), "peer2") if r.t > restart.t]
            return any(r.averaged and r.group_size == 3 for r in after)

        assert wait_until(rejoined, timeout=150), "restarted peer never took part in a 3-peer round"
        rejoin_round = next(r for r in epoch_records(net.metrics(), "peer2") if r.t > restart.t and r.averaged)
        assert rejoin_round.epoch > epoch_at_kill  # it caught up rather than replaying old epochs
        assert net.wait_finished(timeout=240)
    assert net.failed_peers() == []
