"""Where a node's averaging bytes and compute utilization show up: /status, /metrics and summary.json."""

import dataclasses

from node.records import EpochRecord, FinalRecord, RoundRecord, StartRecord
from node.telemetry.http import NodeMetrics
from node.telemetry.state import NodeState
from node.testnet.metrics import summarize
from node.train.loop import PeerStatus


def test_status_and_prometheus_carry_bytes_and_utilization():
    state = NodeState("run-acc", "QmPeer")
    status = dataclasses.replace(PeerStatus(), stage="training", bytes_sent=1234, bytes_received=5678, utilization=0.93)
    state.on_trainer_status(dataclasses.asdict(status))
    doc = state.status()
    assert (doc["averaging_bytes_sent"], doc["averaging_bytes_received"], doc["utilization"]) == (1234, 5678, 0.93)
    text = NodeMetrics(state).render().decode()
    assert 'hivenet_averaging_bytes_sent{peer_id="QmPeer",run_id="run-acc"} 1234.0' in text
    assert 'hivenet_compute_utilization{peer_id="QmPeer",run_id="run-acc"} 0.93' in text


def test_summary_counts_diloco_rounds_and_reports_bytes_per_peer():
    def start() -> StartRecord:
        return StartRecord(t=0.0, peer="p", epoch=0, val_loss=5.5, resumed=False, device="cpu", params=1, shards=[],
                           train_bytes=1, maddrs=[], model="m")

    def peer(bytes_sent, applied):  # type: ignore[no-untyped-def]
        return [
            start(),
            *[RoundRecord(t=1.0, peer="p", round=r, applied=r in applied, reason="", group_size=2, outer_steps=r)
              for r in range(3)],
            EpochRecord(t=2.0, peer="p", epoch=2, new_epoch=3, local_steps=1, samples=1, loss=3.0, val_loss=None,
                        elapsed_s=1.0, param_sketch=[]),
            FinalRecord(t=3.0, peer="p", epoch=3, val_loss=2.0, bytes_sent=bytes_sent, bytes_received=bytes_sent + 1,
                        utilization=0.9),
        ]

    summary = summarize({"peer0": peer(100, {0, 2}), "peer1": peer(200, {0, 2})}, wall_s=10.0, train_s=9.0)
    assert summary["rounds"] == 2 and summary["peers_per_round"] == [2, 2]
    assert summary["averaging_bytes_sent_per_peer"] == {"peer0": 100, "peer1": 200}
    assert summary["averaging_bytes_received_per_peer"] == {"peer0": 101, "peer1": 201}
    assert summary["utilization_per_peer"] == {"peer0": 0.9, "peer1": 0.9}
    sync = summarize({"peer0": [start(), FinalRecord(t=1.0, peer="p", epoch=1, val_loss=3.0)]}, 1.0, 1.0)
    assert "averaging_bytes_sent_per_peer" not in sync  # sync mode does not count bytes (yet): no made-up zeros
    assert sync["val_loss_start"] == 5.5 and sync["val_loss_end"] == 3.0
