"""README command 1's training part, as a user runs it: 3 peers on this machine, default model and schedule.

The walking skeleton's promise: the held-out loss falls from about ln(256) to at
most 2.5 nats per byte, and training takes at most 10 minutes on 2 CPU cores.

The demo trains on vetted shards, which vetting decontaminates (paragraphs sharing a 13-gram with the
held-out split are dropped), so the peak learning rate matters: the node's default 1e-3 reached 2.05-2.12
nats/byte after 60 epochs (413-545 s of training here) and 2.17-2.22 after 40, which the demo now trains;
4e-3 stalls near 3.3 on this data, and 2e-3 was at 2.91 after 20 epochs (2.38-2.56 at 1e-3). This is the
suite's longest test (~5-6 min).
"""

import json
import math
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.swarm, pytest.mark.chain, pytest.mark.broker, pytest.mark.process]

EPOCHS = 40  # as scripts/demo.sh


# The suite's ceiling (600 s) would cut the run off before it can report: training alone may take 600 s, and
# vetting the shards, the chain and the validator's last settlement come on top. The subprocess has 1200 s.
@pytest.mark.timeout(1260)
def test_three_peer_demo_learns_below_2_5_nats_per_byte_within_10_minutes(tmp_path):
    run_dir = tmp_path / "demo"
    result = subprocess.run(
        # The flags of scripts/demo.sh (README command 1), plus --json.
        [sys.executable, "-m", "node.cli", "testnet", "up", "--peers", "3", "--epochs", str(EPOCHS), "--receipt-p", "0.25",
         "--run-dir", str(run_dir), "--json"],
        capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == json.loads((run_dir / "summary.json").read_text())

    assert abs(summary["val_loss_start"] - math.log(256)) < 0.4
    assert summary["val_loss_end"] <= 2.5, summary
    assert summary["train_s"] <= 600, summary
    assert summary["rounds"] >= 0.85 * EPOCHS and summary["peers_per_round"].count(3) >= 0.9 * summary["rounds"], summary
    assert summary["failed_peers"] == []
