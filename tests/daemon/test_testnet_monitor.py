"""Acceptance 2 and 4 (healthy): on a 3-peer testnet with its default in-process broker, the monitor's
data layer sees every peer within 5 s of its start, and `hivenet doctor` reports all green."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from node.records import StartRecord
from node.peer_key import peer_id_from_key_file
from node.telemetry.config import parse_broker_url
from node.testnet.network import Testnet
from tests.daemon.helpers import collector, deployed_chain, wait_until
from tests.integration.swarm_helpers import tiny_testnet

pytestmark = [pytest.mark.slow, pytest.mark.swarm, pytest.mark.chain, pytest.mark.broker, pytest.mark.process]


def test_monitor_sees_every_peer_within_5s_and_doctor_is_all_green(tmp_path):
    with deployed_chain(tmp_path) as (rpc_url, deployment):
        net = Testnet(tiny_testnet(tmp_path / "run", peers=3, epochs=6, run_id="monitor-test", contributors=0))
        launched: dict[int, float] = {}
        starter = threading.Thread(target=net.start, daemon=True)
        starter.start()
        try:
            assert wait_until(lambda: bool(net.broker_url), 30), "the testnet did not start its broker"
            with collector(parse_broker_url(net.broker_url), "monitor-test") as seen:
                # Record when each peer process is launched, then when the monitor first hears of it.
                def record_launches() -> bool:
                    for i in range(len(net.peers)):
                        launched.setdefault(i, time.time())
                    return len(launched) >= 3

                wait_until(record_launches, 120, poll=0.02)
                starter.join(120)
                assert len(launched) == 3 and not starter.is_alive()
                assert wait_until(lambda: len(seen.peers()) == 3, 60), f"monitor saw {len(seen.peers())} of 3 peers"

                lags = []
                for row in seen.peers():
                    node_start = row.status.get("started_at") or row.first_seen
                    lags.append(row.first_seen - node_start)
                index = {peer_id_from_key_file(p.dir / "identity.key"): p.index for p in net.peers}
                print("monitor lag after each node's start (s):", [round(x, 2) for x in lags],
                      "after its process launch (s):", [round(r.first_seen - launched[index[r.peer_id]], 2) for r in seen.peers()])
                assert all(lag < 5.0 for lag in lags), lags
                # Seen well before each trainer's own "start" record (DHT up, model evaluated).
                starts = {r.peer: r.t for recs in net.metrics().values() for r in recs if isinstance(r, StartRecord)}
                for row in seen.peers():
                    if row.peer_id in starts:
                        assert row.first_seen < starts[row.peer_id] + 5.0

                # The table's columns come through: stage, epoch, loss once training.
                assert wait_until(lambda: all(r.stage == "training" and r.get("loss") is not None for r in seen.peers()), 120)

                # Doctor against the live testnet: bootstrap, broker, chain and contracts all green.
                out = subprocess.run(
                    [sys.executable, "-m", "node.cli", "doctor", "--json", "--initial-peers", net.bootstrap,
                     "--broker", net.broker_url, "--rpc-url", rpc_url, "--deployment", str(deployment),
                     "--checkpoint", str(tmp_path / "ck.pt")],
                    capture_output=True, text=True, timeout=120, cwd=tmp_path)
                doc = json.loads(out.stdout)
                failed = [c for c in doc["checks"] if not c["ok"]]
                assert out.returncode == 0 and not failed, failed
                names = {c["name"] for c in doc["checks"]}
                assert names >= {"python", "torch", "hivemind", "listen addresses", "bootstrap peers", "p2pd",
                                 "bootstrap handshake", "chain", "contracts", "broker", "disk space"}
                assert net.wait_finished(timeout=180), "testnet did not finish"
                # Each peer's last will or final status says it stopped.
                assert wait_until(lambda: all(r.get("daemon_stage") in ("stopped", "offline") for r in seen.peers()), 15), \
                    [(r.peer_id[-6:], r.get("daemon_stage"), r.stage, round(time.time() - r.last_seen, 1)) for r in seen.peers()]
        finally:
            starter.join(120)
            net.stop()
    assert not net.failed_peers()
