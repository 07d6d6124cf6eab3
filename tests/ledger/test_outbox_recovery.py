"""Crash and outage recovery of the outbox against anvil (the chain outlives the client)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from node.ledger.chain import Chain
from node.ledger.client import LedgerClient
from node.ledger.config import DeployConfig, LedgerConfig
from node.ledger.deployment import Deployment
from protocol.errors import ChainUnavailable

from .conftest import anvil_process, free_port

pytestmark = [pytest.mark.chain, pytest.mark.process]

ROOT = Path(__file__).resolve().parents[2]


def _setup(url: str, tmp_path: Path) -> tuple[LedgerClient, Path, Path, Path]:
    config = LedgerConfig(rpc_url=url, outbox_path=tmp_path / "outbox.sqlite", retry_attempts=2,
                          retry_initial_backoff_s=0.05)
    account = Account.create()
    Chain.connect(config).faucet(account.address, 10**20)
    client = LedgerClient.open(config, account)
    deployment = client.deploy(DeployConfig(challenge_window_s=60))
    deployment.save(tmp_path / "deployment.json")
    key_file = tmp_path / "key"
    key_file.write_text(account.key.hex())
    return client, config.outbox_path, tmp_path / "deployment.json", key_file  # type: ignore[return-value]


def _crash(url: str, outbox: Path, deployment: Path, key_file: Path, root: bytes) -> None:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("crash_client.py")), url, str(outbox), str(deployment),
         str(key_file), "1", root.hex(), "100"],
        cwd=ROOT, capture_output=True, timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


@pytest.mark.parametrize("mempool_lost", [False, True], ids=["mined-before-restart", "dropped-before-restart"])
def test_sigkill_after_send_reconciles_to_exactly_one_tx(tmp_path: Path, mempool_lost: bool) -> None:
    with anvil_process() as url:
        client, outbox, deployment, key_file = _setup(url, tmp_path)
        w3 = client.chain.w3
        nonce_before = w3.eth.get_transaction_count(client.address)
        client.close()
        root = b"\x42" * 32
        if mempool_lost:
            w3.provider.make_request("evm_setAutomine", [False])
        _crash(url, outbox, deployment, key_file, root)
        if mempool_lost:
            w3.provider.make_request("anvil_dropAllTransactions", [])
            w3.provider.make_request("evm_setAutomine", [True])
            assert w3.eth.get_transaction_count(client.address, "pending") == nonce_before

        config = LedgerConfig(rpc_url=url, outbox_path=outbox)
        restarted = LedgerClient.open(config, client.account, Deployment.load(deployment))

        (row,) = [r for r in restarted.outbox.all() if r.key.startswith("post-epoch:1:")]
        assert row.status == "mined"
        assert w3.eth.get_transaction_count(client.address) == nonce_before + 1
        assert w3.eth.get_transaction(row.tx_hash)["nonce"] == nonce_before
        assert restarted.epoch_record(1)["root"] == root
        assert len(restarted.events("ContributionLedger", "EpochPosted")) == 1
        again = restarted.post_epoch(1, root, 100)
        assert again.tx_hash == row.tx_hash
        assert w3.eth.get_transaction_count(client.address) == nonce_before + 1
        restarted.close()


def test_chain_down_raises_named_error_and_keeps_intent(tmp_path: Path) -> None:
    port = free_port()
    with anvil_process(port) as url:
        client, outbox, deployment, _ = _setup(url, tmp_path)
        state = client.chain.w3.provider.make_request("anvil_dumpState", [])["result"]
    root = b"\x17" * 32
    with pytest.raises(ChainUnavailable, match="no answer"):
        client.post_epoch(1, root, 5)
    (row,) = [r for r in client.outbox.pending() if r.key.startswith("post-epoch:1:")]
    assert row.status == "new"
    client.close()

    with anvil_process(port) as url:
        Chain.connect(LedgerConfig(rpc_url=url)).w3.provider.make_request("anvil_loadState", [state])
        restarted = LedgerClient.open(LedgerConfig(rpc_url=url, outbox_path=outbox), client.account,
                                      Deployment.load(deployment))
        assert restarted.epoch_record(1)["root"] == root
        assert restarted.outbox.pending() == []
        restarted.close()
