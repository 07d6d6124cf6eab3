"""Acceptance 1 (no broker) and 3 (SIGTERM): a node without any broker trains and warns once;
SIGTERM checkpoints, flushes and exits 0 within 10 s; restarted, it resumes where it stopped."""

from __future__ import annotations

import json
import urllib.request

import pytest

from node.train.checkpoint import load_checkpoint
from tests.daemon.helpers import free_port, node, wait_until

pytestmark = pytest.mark.slow


def test_no_broker_warns_once_and_sigterm_checkpoints_exits_0_within_10s_and_resumes(tmp_path):
    dead_broker = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    # A short peer wait: after a restart the lone peer's progress tracker has been seen to report 0 of 1
    # peers for over a minute (the trainer then trains anyway after --peer-wait-timeout).
    args = ("--run-id", "lifecycle", "--max-epochs", "1000", "--broker", dead_broker, "--peer-wait-timeout", "20")
    with node(tmp_path / "node", *args) as peer:
        # Prepare: the node trains for a few epochs with no broker at all.
        assert wait_until(lambda: len(peer.records("epoch")) >= 3, 120), "no training without a broker"
        url = (peer.dir / "status.url").read_text().strip()
        with urllib.request.urlopen(url + "/status", timeout=5) as r:
            status = json.loads(r.read())
        assert status["daemon_stage"] == "running" and status["stage"] == "training" and status["telemetry_connected"] is False

        # Execute: SIGTERM.
        code, took = peer.terminate(timeout=30)
        print(f"SIGTERM -> exit {code} in {took:.2f} s")

        # Assert: exit 0 within 10 s, a final checkpoint at the epoch it stopped in, a clean stop record.
        assert code == 0 and took < 10.0, f"exit {code} after {took:.1f} s"
        stop = peer.records("stop")[-1]
        assert stop["requested"] is True
        state = load_checkpoint(peer.dir / "checkpoint.pt")
        assert state is not None and state["run_id"] == "lifecycle"
        stopped_epoch = stop["epoch"]
        assert stopped_epoch >= 3
    log = peer.log_path.read_text()
    assert log.count("no MQTT broker at") == 1, "the missing broker must be reported exactly once"
    assert "node stopping" in log and "node stopped" in log
    assert not (peer.dir / "status.url").exists()  # the endpoint was closed on the way out

    # Restarted with the same flags, the node resumes from its checkpoint: the step counter continues.
    with node(tmp_path / "node", *args) as again:
        assert wait_until(lambda: len(again.records("start")) == 2, 90), "restart never started"
        restart = again.records("start")[-1]
        assert restart["resumed"] is True and restart["epoch"] == stopped_epoch
        # The metrics file is appended to: the last epoch record is the first run's until the restart finishes one.
        assert wait_until(lambda: again.records("epoch")[-1]["new_epoch"] > stopped_epoch, 90), "no epoch after the restart"
        assert again.records("epoch")[-1]["epoch"] >= stopped_epoch
        code, took = again.terminate(timeout=30)
        assert code == 0 and took < 10.0
