"""``hivenet keys|ledger|rewards`` end to end against anvil, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from node.ledger.chain import Chain
from node.ledger.client import LedgerClient
from node.ledger.config import LedgerConfig
from node.ledger.deployment import Deployment
from node.ledger.outbox import Outbox
from node.ledger.rewards_file import EpochRewards
from protocol.rewards_tree import RewardsTree

pytestmark = [pytest.mark.chain, pytest.mark.process]

ROOT = Path(__file__).resolve().parents[2]


def hivenet(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "node.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_keys_deploy_status_and_claim(tmp_path: Path, anvil_url: str) -> None:
    keystore, pw, dep = tmp_path / "node.key", tmp_path / "pw", tmp_path / "deployment.json"
    pw.write_text("s3cret\n")
    (tmp_path / "bad").write_text("nope\n")
    created = json.loads(hivenet("keys", "new", "--keystore", str(keystore), "--password-file", str(pw), "--json").stdout)
    shown = json.loads(hivenet("keys", "show", "--keystore", str(keystore), "--json").stdout)
    assert shown["address"] == created["address"] and shown["peer_id"].startswith("12D3KooW")
    address = hivenet("keys", "export-address", "--keystore", str(keystore)).stdout.strip()
    assert address == created["address"]

    wrong = hivenet("ledger", "deploy", "--rpc", anvil_url, "--keystore", str(keystore), "--password-file",
                    str(tmp_path / "bad"), "--deployment", str(dep), ok=False)
    assert wrong.returncode == 2 and "wrong password" in wrong.stderr and not dep.exists()

    hivenet("ledger", "deploy", "--rpc", anvil_url, "--keystore", str(keystore), "--password-file", str(pw),
            "--deployment", str(dep), "--challenge-window", "10", "--dev-fund", "--root-quorum", "1",
            "--max-epoch-increase", "1000")
    deployment = Deployment.load(dep)

    # A validator (here the deployer, through the library) settles one epoch for two peers.
    from node.identity import load_keystore

    chain = Chain.connect(LedgerConfig(rpc_url=anvil_url))
    admin = LedgerClient(chain, load_keystore(keystore, "s3cret").account, Outbox(None), deployment)
    assert (admin.root_quorum(), admin.max_epoch_increase()) == (1, 1000)
    peer = Account.create().address
    admin.mint(admin.address, 100)
    admin.fund(100)
    tree = RewardsTree.build({peer: 40, address: 2})
    admin.post_epoch(1, tree.root, tree.total)
    chain.advance_time(11)
    admin.finalize_epoch(1)
    admin.close()
    EpochRewards(1, tree).save(tmp_path / "epoch-1.json")

    status = json.loads(hivenet("ledger", "status", "--rpc", anvil_url, "--deployment", str(dep), "--json").stdout)
    assert status["final_epoch"] == 1 and status["funded"] == "100" and status["claimed"] == "0"
    common = ["--rpc", anvil_url, "--deployment", str(dep), "--rewards", str(tmp_path / "epoch-1.json")]
    before = json.loads(hivenet("rewards", "show", *common, "--address", peer, "--json").stdout)
    assert before["claimable"] == "40" and before["file_is_final"] is True

    hivenet("rewards", "claim", *common, "--for", peer, "--keystore", str(keystore), "--password-file", str(pw))
    after = json.loads(hivenet("rewards", "show", *common, "--address", peer, "--json").stdout)
    assert after["claimed"] == "40" and after["claimable"] == "0"
    again = hivenet("rewards", "claim", *common, "--for", peer, "--keystore", str(keystore), "--password-file",
                    str(pw), "--outbox", str(tmp_path / "other-outbox.sqlite"), ok=False)
    assert again.returncode == 2 and "ContributionLedgerNothingToClaim" in again.stderr
