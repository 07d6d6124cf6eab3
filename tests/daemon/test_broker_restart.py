"""Acceptance 1: the MQTT broker (a real mosquitto) dies and comes back mid-run.

The node keeps training while the broker is gone, reconnects on its own, and publishes
again within 10 s of the broker's return.
"""

from __future__ import annotations

import time

import pytest

from tests.daemon.helpers import collector, mosquitto, node, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.swarm, pytest.mark.broker]


def _latest_steps(received: list, peer: str) -> int:
    statuses = [p for _, topic, p in received if topic.endswith(f"{peer}/status")]
    return statuses[-1].get("local_steps", 0) if statuses else 0


def test_node_trains_through_a_broker_restart_and_publishes_again_within_10s(tmp_path):
    with mosquitto(tmp_path) as broker, node(tmp_path / "node", "--run-id", "mqtt-restart", "--max-epochs", "1000",
                                             "--broker", f"mqtt://127.0.0.1:{broker.port}") as peer:
        with collector(broker.address, "mqtt-restart") as seen:
            # Prepare: the node trains and publishes.
            assert wait_until(lambda: any(r.stage == "training" for r in seen.peers()), 90), "node never published 'training'"
            assert wait_until(lambda: len(peer.records("epoch")) >= 1, 60), "node never finished an epoch"

            # Execute: kill the broker, let the node train without it, restart it on the same port.
            broker.kill()
            killed_at = time.time()
            epochs_at_kill = len(peer.records("epoch"))
            # The behaviour under test: an outage long enough for the node's reconnect backoff to reach its cap.
            time.sleep(6)
            assert peer.alive(), "the node died with its broker"
            assert wait_until(lambda: len(peer.records("epoch")) > epochs_at_kill, 60), "training stalled without the broker"
            broker.start()
            back_at = time.time()

            # Assert: fresh publications from the node arrive within 10 s of the broker's return.
            def published_since_return() -> bool:
                return any(t >= back_at and topic.startswith("hivenet/mqtt-restart/") for t, topic, _ in seen.received)

            assert wait_until(published_since_return, 10.0, poll=0.05), "no publication within 10 s of the broker's return"
            first = min(t for t, topic, _ in seen.received if t >= back_at)
            reconnect_s = first - back_at
            print(f"reconnect: first publication {reconnect_s:.2f} s after the broker came back "
                  f"(broker down {back_at - killed_at:.1f} s)")
            assert reconnect_s < 10.0
            # The published status keeps moving: training did not stop for the outage.
            steps_now = _latest_steps(seen.received, seen.peers()[0].peer_id)
            assert wait_until(lambda: _latest_steps(seen.received, seen.peers()[0].peer_id) != steps_now
                              or len(peer.records("epoch")) > epochs_at_kill + 1, 30)
            assert peer.alive()
        code, took = peer.terminate(timeout=20)
        assert code == 0, f"exit code {code}"
    log = peer.log_path.read_text()
    assert "lost the MQTT broker" in log and log.count("connected to mqtt://") >= 2
