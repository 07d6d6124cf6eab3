"""Every shipped scenario passes its own expectations (CI-sized files), run as a user runs it, and leaves a
report; a scenario with an impossible expectation exits 1 and says what was measured against what bound.

Acceptance 2 is asserted on top of the files' own expectations: the poisoned and the duplicate shard fail
vetting and no trainer ever trained on them; the Byzantine peer's receipts are all rejected, it earns
nothing, and the honest peers' loss stays within the bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from node.records import FinalRecord, StartRecord, read_records
from node.testnet.charts import CHARTS

pytestmark = [pytest.mark.slow, pytest.mark.swarm, pytest.mark.chain, pytest.mark.broker, pytest.mark.process]

SCENARIOS = Path(__file__).resolve().parents[2] / "node" / "testnet" / "scenarios"


def run(path: Path, run_dir: Path, timeout: float) -> tuple[subprocess.CompletedProcess[str], dict]:
    result = subprocess.run([sys.executable, "-m", "node.cli", "testnet", "run", str(path), "--run-dir", str(run_dir),
                             "--json"], capture_output=True, text=True, timeout=timeout)
    out = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    return result, out


@pytest.mark.parametrize("name", ["happy", "churn", "byzantine", "poisoned-shard", "chain-outage"])
def test_shipped_scenario_passes_its_own_expectations(name, tmp_path):
    run_dir = tmp_path / name
    result, out = run(SCENARIOS / f"{name}.toml", run_dir, timeout=480)
    print(f"\n{name}:", *out.get("messages", []), sep="\n  ")
    assert result.returncode == 0 and out["passed"], (out, result.stderr[-3000:])
    assert all(m.startswith("ok: ") for m in out["messages"])
    assert (run_dir / "report.html").exists() and len(list((run_dir / "charts").glob("*.png"))) == len(CHARTS)
    summary = json.loads((run_dir / "summary.json").read_text())
    timeline = json.loads((run_dir / "timeline.json").read_text())["events"]
    trained_on = {sid for p in run_dir.glob("peer*") for r in read_records(p / "metrics.jsonl")
                  if isinstance(r, StartRecord) for sid in r.shards}

    if name == "poisoned-shard":
        bad = [s for s in summary["shards"] if s["contributor"] in (2, 3)]
        assert [s["verdict"] for s in bad] == ["fail", "fail"] and all(s["content_id"] for s in bad)
        assert not {s["content_id"] for s in bad} & trained_on
        assert {s["shard_id"] for s in summary["shards"] if s["passed"]} == trained_on
    if name == "byzantine":
        accounts = json.loads((run_dir / "accounts.json").read_text())
        attacker = accounts["accounts"]["peer3"]
        assert accounts["receipts"][attacker]["accepted"] == 0 and accounts["receipts"][attacker]["rejected"] >= 1
        assert int(summary["rewards"][attacker]["tokens"]) == 0
        honest = [summary["val_loss_end_per_peer"][f"peer{i}"] for i in range(3)]
        print(f"  honest final loss {honest}, start {summary['val_loss_start']:.3f}")
        assert max(honest) < summary["val_loss_start"] - 0.5
    if name == "churn":
        assert [e["action"] for e in timeline] == ["kill", "restart", "partition", "heal"]
        records = read_records(run_dir / "peer2" / "metrics.jsonl")
        starts = [i for i, r in enumerate(records) if isinstance(r, StartRecord)]
        assert len(starts) == 2 and any(isinstance(r, FinalRecord) for r in records[starts[1]:])  # restarted, finished
    if name == "chain-outage":
        assert [e["action"] for e in timeline] == ["chain_stop", "broker_stop", "broker_start", "chain_start"]
        assert summary["epochs_settled"] >= 1 and not summary["validator_errors"]


def test_an_impossible_expectation_fails_the_run_with_a_clear_message(tmp_path):
    scenario = tmp_path / "impossible.toml"
    scenario.write_text("""name = "impossible"
timeout_s = 240
[network]
peers = 1
validators = 0
data_contributors = 0
broker = "off"
epochs = 2

[[expect]]
check = "final_loss"
max = 0.01
""")
    result, out = run(scenario, tmp_path / "run", timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert out["passed"] is False
    [message] = out["messages"]
    assert message.startswith(f"FAIL: {scenario}:10: swarm final validation loss = ") and message.endswith(", expected <= 0.01")
    assert json.loads((tmp_path / "run" / "result.json").read_text())["passed"] is False
