"""Acceptance 1 (no broker) and 3 (SIGTERM): a node without any broker trains and warns once;
SIGTERM checkpoints, flushes its receipts and exits 0 within 10 s; restarted, it resumes where it
stopped and publishes the receipts its spool holds.

The node signs receipts (a throwaway keystore) and joins through a DHT node of the test's own,
which reads receipts as a validator does and outlives the node. A trainer node has no ledger
outbox to flush (node/daemon.py says why); the receipt flush's failure paths (refused, hung DHT,
spool) are unit-tested in test_receipt_flush.py.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from node.work.spool import ReceiptSpool, spool_path
from node.train.checkpoint import load_checkpoint
from tests.daemon.helpers import free_port, keystore_args, node, receipt_observer, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.swarm]
RUN = "lifecycle"


def test_no_broker_warns_once_and_sigterm_checkpoints_flushes_receipts_exits_0_within_10s_and_resumes(tmp_path):
    dead_broker = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    account, keys = keystore_args(tmp_path / "keys")
    # A short peer wait: after a restart the lone peer's progress tracker has been seen to report 0 of 1
    # peers for over a minute (the trainer then trains anyway after --peer-wait-timeout).
    args = ["--run-id", RUN, "--max-epochs", "1000", "--broker", dead_broker, "--peer-wait-timeout", "20", *keys]
    spool = spool_path(tmp_path / "node" / "checkpoint.pt")
    with receipt_observer(RUN) as (validator, maddrs), node(tmp_path / "node", *args, "--initial-peers", maddrs[0]) as peer:
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
        assert state is not None and state["run_id"] == RUN
        stopped_epoch = stop["epoch"]
        assert stopped_epoch >= 3
        # Receipts: every completed epoch's, the last one included, is in the DHT the node left, signed by its
        # account; the epoch in progress has none (its gradients never reached an average); nothing pending.
        me = peer.records("start")[-1]["peer"]
        for epoch in range(stopped_epoch):
            mine = [s.receipt for s in validator.fetch(epoch) if s.receipt.peer_id == me]
            assert len(mine) == 1 and mine[0].account == account and mine[0].epoch == epoch, f"epoch {epoch}: {mine}"
        assert [s for s in validator.fetch(stopped_epoch) if s.receipt.peer_id == me] == []
        last = validator.fetch(stopped_epoch - 1)[0]
        assert not spool.exists()
    log = peer.log_path.read_text()
    assert log.count("no MQTT broker at") == 1, "the missing broker must be reported exactly once"
    assert "node stopping" in log and "node stopped" in log
    assert "not accepted by the DHT" not in log
    assert not (peer.dir / "status.url").exists()  # the endpoint was closed on the way out

    # A receipt whose publish had failed before the stop waits in the spool (here: the last one, put there by
    # the test) and reaches a validator that never saw it once the node is back; the step counter continues.
    ReceiptSpool(spool, RUN).save([last])
    with receipt_observer(RUN) as (fresh, maddrs), node(tmp_path / "node", *args, "--initial-peers", maddrs[0]) as again:
        assert wait_until(lambda: len(again.records("start")) == 2, 90), "restart never started"
        restart = again.records("start")[-1]
        assert restart["resumed"] is True and restart["epoch"] == stopped_epoch
        assert wait_until(lambda: len(fresh.fetch(stopped_epoch - 1)) == 1, 30), "the spooled receipt was not published"
        republished = fresh.fetch(stopped_epoch - 1)[0]
        assert (republished.receipt.digest(), republished.signature) == (last.receipt.digest(), last.signature)
        assert wait_until(lambda: not spool.exists(), 10), "the spool outlived its publication"
        # The metrics file is appended to: the last epoch record is the first run's until the restart finishes one.
        assert wait_until(lambda: again.records("epoch")[-1]["new_epoch"] > stopped_epoch, 90), "no epoch after the restart"
        assert again.records("epoch")[-1]["epoch"] >= stopped_epoch
        assert wait_until(lambda: len(fresh.fetch(stopped_epoch)) == 1, 10), "no receipt for the restart's first epoch"
        code, took = again.terminate(timeout=30)
        print(f"restarted: SIGTERM -> exit {code} in {took:.2f} s")
        assert code == 0 and took < 10.0
