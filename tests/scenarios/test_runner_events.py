"""Runner events on stand-in peers (no swarm): partition/heal stop and continue the whole process group,
a peer turning Byzantine restarts with the attack flag, kill/restart are recorded on the timeline."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from node.testnet.peers import PeerProcess
from node.testnet.runner import RunnerConfig, ScenarioRun
from node.testnet.scenario import parse_scenario
from tests.waiting import wait_until

pytestmark = [pytest.mark.process]

SCENARIO = """name = "events"
[network]
peers = 2
validators = 0
data_contributors = 0
broker = "off"
[[events]]
action = "partition"
peer = 1
at = 0
[[events]]
action = "heal"
peer = 1
at = 1
[[events]]
action = "byzantine"
peer = 0
attack = "label-flip"
at = 2
"""


class StandIn(PeerProcess):
    """A `sleep` with a child in its own process group, like a peer and its DHT/p2pd children."""

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60; wait"], start_new_session=True)
        self.starts += 1
        self.killed = False


def _group(pgid: int) -> list[str]:
    """The state letter of every process in the group."""
    out = subprocess.run(["ps", "-o", "stat=", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
    return [s[0] for s in out]


def _states(pgid: int) -> set[str]:
    return set(_group(pgid))


def test_partition_heal_and_turning_byzantine(tmp_path: Path) -> None:
    s = parse_scenario(SCENARIO, "e.toml")
    run = ScenarioRun(s, RunnerConfig(tmp_path / "run", report=False, stop_timeout_s=1.0), log=lambda m: None)
    run.net.started_at = time.time()
    run.net.peers = [StandIn(index=i, dir=tmp_path / f"peer{i}", args=["--run-id", "x"]) for i in range(2)]
    try:
        for p in run.net.peers:
            p.start()
        # Each group is up once its shell and both sleeps are there, all asleep.
        assert wait_until(lambda: all(_group(p.proc.pid) == ["S"] * 3 for p in run.net.peers), 10)
        partition, heal, byzantine = s.events
        run._apply(partition)
        assert wait_until(lambda: _states(run.net.peers[1].proc.pid) == {"T"}, 10)  # every process of the group is stopped
        assert _states(run.net.peers[0].proc.pid) == {"S"}
        run._apply(heal)
        assert wait_until(lambda: _states(run.net.peers[1].proc.pid) == {"S"}, 10)
        first = run.net.peers[0].proc.pid
        run._apply(byzantine)
        peer0 = run.net.peers[0]
        assert peer0.starts == 2 and peer0.proc.pid != first and peer0.alive()
        assert peer0.args[-2:] == ["--attack", "label-flip"] and run.byzantine == {0}
        assert [(e["action"], e["peer"], e["line"]) for e in run.timeline] == [
            ("partition", 1, 7), ("heal", 1, 11), ("byzantine", 0, 15)]
    finally:
        for p in run.net.peers:
            p.kill_group()


@pytest.mark.broker
def test_broker_outage_frees_the_port_and_the_broker_comes_back_on_it(tmp_path: Path) -> None:
    import socket

    from node.testnet.peers import free_port
    from node.testnet.runner import BrokerProcess

    def listening(port: int) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    broker = BrokerProcess(free_port(), tmp_path / "broker.log")
    try:
        broker.start()
        assert listening(broker.port)
        broker.stop()
        assert not listening(broker.port)
        broker.start()  # same port, at once
        assert listening(broker.port) and broker.url == f"mqtt://127.0.0.1:{broker.port}"
    finally:
        broker.stop()
