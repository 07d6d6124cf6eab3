"""Telemetry pieces in one process (fast): schema, peer ids without hivemind, the side-loop's
/status and /metrics endpoint, and the publisher against the in-process amqtt broker."""

from __future__ import annotations

import json
import math
import time
import urllib.request

import pytest

from node.peer_key import ensure_key_file, peer_id_from_key_file
from node.sideloop import SideLoop
from node.telemetry import schema
from node.telemetry.broker import EmbeddedBroker
from node.telemetry.config import BrokerAddress, HttpConfig, TelemetryConfig, parse_broker_url
from node.telemetry.http import StatusServer
from node.telemetry.publisher import TelemetryPublisher
from node.telemetry.state import DaemonStage, NodeState
from protocol.errors import ConfigError
from tests.daemon.helpers import collector, free_port, wait_until

PEER = "QmTestPeer0000000000000000000000000000000000000"


def test_payloads_carry_the_schema_version_and_round_trip():
    raw = schema.encode({"stage": "training", "loss": math.nan, "epoch": 3})
    msg = schema.parse(schema.status_topic("run1", PEER), raw)
    assert msg is not None and msg.kind == "status" and msg.peer_id == PEER and msg.run_id == "run1"
    assert msg.payload == {"v": schema.SCHEMA_VERSION, "stage": "training", "loss": None, "epoch": 3}
    assert schema.parse(schema.epoch_topic("run1", 4), schema.encode({"peer": PEER})).kind == "epoch"
    assert schema.parse("hivenet/run1/peers/x/status", json.dumps({"v": 99}).encode()) is None  # another version
    assert schema.parse("hivenet/run1/peers/x/status", b"not json") is None
    assert schema.parse("other/topic", schema.encode({})) is None


def test_broker_urls_are_checked():
    assert parse_broker_url("mqtt://broker.local") == BrokerAddress("broker.local", 1883)
    assert parse_broker_url("mqtt://127.0.0.1:1999").port == 1999
    for bad in ("tcp://x:1", "mqtt://", "127.0.0.1:1883"):
        with pytest.raises(ConfigError):
            parse_broker_url(bad)


def test_peer_id_of_a_key_file_matches_hivemind(tmp_path):
    from hivemind.p2p import PeerID

    path = tmp_path / "id.key"
    made = ensure_key_file(path)
    assert made == PeerID.from_identity(path.read_bytes()).to_base58()
    assert ensure_key_file(path) == made  # an existing file is read, never replaced
    from hivemind.p2p import P2P

    theirs = tmp_path / "hivemind.key"
    P2P.generate_identity(str(theirs))
    assert peer_id_from_key_file(theirs) == PeerID.from_identity(theirs.read_bytes()).to_base58()
    assert peer_id_from_key_file(tmp_path / "absent.key") is None


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.headers["Content-Type"], r.read()


def test_status_and_metrics_endpoint_serve_the_node_state(tmp_path):
    state = NodeState("run-http", PEER)
    url_file = tmp_path / "status.url"
    server = StatusServer(HttpConfig(listen=("127.0.0.1", 0), url_file=url_file), state)
    side = SideLoop(setup=server.start, teardown=server.close)
    side.start()
    try:
        side.call(state.set_stage, DaemonStage.RUNNING)
        side.call(state.on_trainer_status, {"stage": "training", "peer_id": PEER, "epoch": 4, "loss": 2.5,
                                            "val_loss": math.nan, "peers": 3, "samples_per_s": 120.0, "rounds": 2})
        url = url_file.read_text().strip()
        assert wait_until(lambda: json.loads(_get(url + "/status")[2])["epoch"] == 4, 5)
        code, ctype, body = _get(url + "/status")
        doc = json.loads(body)
        assert code == 200 and ctype == "application/json"
        assert doc["daemon_stage"] == "running" and doc["stage"] == "training" and doc["val_loss"] is None
        code, ctype, body = _get(url + "/metrics")
        text = body.decode()
        assert code == 200 and ctype.startswith("text/plain")
        assert f'hivenet_epoch{{peer_id="{PEER}",run_id="run-http"}} 4.0' in text
        assert 'hivenet_swarm_peers{peer_id="' in text and "hivenet_loss" in text
        assert f'hivenet_stage{{peer_id="{PEER}",run_id="run-http",stage="running"}} 1.0' in text
        with pytest.raises(urllib.error.HTTPError) as e:
            _get(url + "/nope")
        assert e.value.code == 404
    finally:
        assert side.stop(10)
    assert not url_file.exists()  # removed on stop


def test_a_taken_status_port_fails_the_start_with_the_address_and_the_fix(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        side = SideLoop(setup=StatusServer(HttpConfig(listen=("127.0.0.1", port), fallback_to_any_port=False), NodeState("r")).start)
        with pytest.raises(ConfigError, match=rf"127.0.0.1:{port}.*status.listen"):
            side.start()
        fallback = StatusServer(HttpConfig(listen=("127.0.0.1", port)), NodeState("r"))
        side = SideLoop(setup=fallback.start, teardown=fallback.close)
        side.start()  # the default port may move: a second node on one machine must still start
        assert fallback.url and not fallback.url.endswith(f":{port}")
        side.stop(10)


@pytest.mark.broker
def test_publisher_sends_status_metrics_and_epochs_and_reconnects_to_a_restarted_broker():
    port = free_port()
    broker = EmbeddedBroker(port=port)
    broker.start()
    state = NodeState("run-pub")
    cfg = TelemetryConfig(run_id="run-pub", broker=broker.address, status_interval_s=0.1, initial_backoff_s=0.1, max_backoff_s=0.5)
    publisher = TelemetryPublisher(cfg, state)
    side = SideLoop(services=[publisher.run], teardown=lambda: publisher.flush(3))
    side.start()
    try:
        with collector(broker.address, "run-pub") as seen:
            side.call(state.on_trainer_status, {"stage": "training", "peer_id": PEER, "epoch": 1})
            side.call(state.on_metrics, {"event": "epoch", "epoch": 1, "new_epoch": 2, "loss": 3.0})
            assert wait_until(lambda: any(r.stage == "training" for r in seen.peers()), 10)
            assert wait_until(lambda: any(t.endswith("/epochs/2") for _, t, _ in seen.received), 10)
            assert any(t.endswith(f"/peers/{PEER}/metrics") for _, t, _ in seen.received)
            broker.stop()
            assert wait_until(lambda: not state.telemetry_connected, 10)
            for epoch in range(3, 6):  # events while the broker is away wait in the queue
                side.call(state.on_metrics, {"event": "epoch", "epoch": epoch - 1, "new_epoch": epoch})
            broker = EmbeddedBroker(port=port)
            broker.start()
            back = time.time()
            assert wait_until(lambda: any(t.endswith("/epochs/5") and at >= back for at, t, _ in seen.received), 10)
            assert publisher.connections == 2
    finally:
        side.stop(10)
        broker.stop()
