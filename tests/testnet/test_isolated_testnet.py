"""Acceptance of the namespaced testnet: every role on a machine of its own, nothing shared but the network.

3 trainers, 2 data contributors, 1 validator, anvil and mosquitto, each in its own network namespace and
home (``node.testnet.isolated``), each running only the documented commands. Training averages every
round with all 3 trainers; the validator fetches the run's shards and every snapshot it checks over P2P,
checks every receipt and settles every epoch on anvil; each account claims from its own namespace with
its keystore, the RPC URL and the run id; every balance equals the reward policy replayed over the
verified credits, to the token. No role's command line or environment names a path of another's home.

    .venv/bin/python -m pytest tests/testnet/test_isolated_testnet.py -q     # root (CI runs as root)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from node.testnet.isolated import IsolatedConfig, tag_for
from node.testnet.isolated_run import run_isolated
from node.testnet.netns import NetnsError, namespaces, require_netns

pytestmark = [pytest.mark.slow, pytest.mark.swarm, pytest.mark.chain, pytest.mark.broker, pytest.mark.process]

try:
    require_netns()
    REASON = ""
except NetnsError as e:
    REASON = str(e)

EPOCHS = 5
TRAINERS = 3


def names_a_path_of(text: str, home: str) -> bool:
    return re.search(re.escape(home) + r"(?![\w.-])", text) is not None


@pytest.mark.skipif(bool(REASON), reason=REASON or "-")
@pytest.mark.timeout(900)
def test_every_role_on_its_own_machine_trains_settles_and_claims_exactly(tmp_path: Path) -> None:
    cfg = IsolatedConfig(run_dir=tmp_path / "iso", run_id="isolated-e2e", trainers=TRAINERS, contributors=2, epochs=EPOCHS)
    summary = run_isolated(cfg, timeout_s=780)
    print("figures:", json.dumps({k: summary[k] for k in ("elapsed_s", "epochs_settled", "receipts", "receipts_checked",
                                                           "receipts_rejected", "balances", "carry")}))
    # every round averaged by all three trainers, every epoch
    assert summary["rounds"] == {f"trainer{i}": [TRAINERS] * EPOCHS for i in range(TRAINERS)}, summary["rounds"]
    # every epoch settled, every receipt recomputed from snapshots fetched over P2P, none rejected
    assert summary["epochs_settled"] == EPOCHS
    assert summary["receipts"] >= TRAINERS * EPOCHS and summary["receipts_checked"] == summary["receipts"]
    assert summary["receipts_rejected"] == 0
    # each of the five accounts paid exactly what the policy says, by its own claim
    assert set(summary["balances"]) == {"trainer0", "trainer1", "trainer2", "contributor0", "contributor1"}
    assert summary["balances"] == summary["expected_tokens"], (summary["balances"], summary["expected_tokens"])
    assert all(int(v) > 0 for v in summary["balances"].values())
    assert sum(int(v) for v in summary["balances"].values()) + int(summary["carry"]) == 1000 * 10**18 * EPOCHS
    assert all(int(c["claimable"]) == 0 and int(c["claimed"]) == int(summary["balances"][n])
               for n, c in summary["claims"].items())
    # nothing named another role's home: command lines and environments, as recorded when each command ran
    entries = [json.loads(line) for line in (cfg.run_dir / "commands.jsonl").read_text().splitlines()]
    homes = {e["role"]: e["home"] for e in entries}
    assert len(homes) == 3 + 2 + TRAINERS + 1  # chain, broker, operator; contributors; trainers; validator
    for e in entries:
        said = " ".join(e["argv"]) + " " + " ".join(f"{k}={v}" for k, v in e["env"].items())
        others = [role for role, home in homes.items() if role != e["role"] and names_a_path_of(said, home)]
        assert not others, f"{e['role']} ran {e['argv']} naming the home of {others}"
    # and nothing is left of the namespaces
    assert not [n for n in namespaces() if n.startswith(f"hvn-{tag_for(cfg.run_dir)}-")]


def test_the_home_check_tells_a_home_from_a_longer_name() -> None:
    assert names_a_path_of("--store /r/trainer1/shards", "/r/trainer1")
    assert names_a_path_of("HOME=/r/trainer1", "/r/trainer1")
    assert not names_a_path_of("--store /r/trainer10/shards", "/r/trainer1")
    assert not names_a_path_of("--store /r/trainer1.bak", "/r/trainer1")
