"""End to end: `hivenet validator start` as its own process settles a real swarm's epochs on anvil, and a
restart mid-run resumes from its home without settling any epoch twice.

anvil with the contracts deployed by an admin; two trainer processes (the testnet's, with no validator of its
own) signing receipts, each keeping its own snapshots; the validator daemon joins their DHT through the
bootstrap peer and fetches every snapshot it checks from them over P2P (no folder shared with it), is stopped by SIGTERM after two settled epochs (exit 0), started again, and settles the rest. Each ledger
epoch is posted exactly once, with the root the validator's journal holds, and every receipt checks out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from node.cli.validator_cmd import fetch_validator_status
from node.ledger.chain import Chain
from node.ledger.client import LedgerClient
from node.ledger.config import DeployConfig, LedgerConfig
from node.ledger.outbox import Outbox
from node.telemetry.http import read_url_file
from node.testnet.network import Testnet, TestnetConfig
from node.testnet.validation import make_keystore
from tests.ledger.conftest import anvil_process
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.swarm, pytest.mark.chain, pytest.mark.process]

RUN = "validator-daemon-e2e"
EPOCHS = 10
PEERS = 2


class ValidatorProcess:
    """`hivenet validator start` in its own process group (its DHT's p2pd is a child)."""

    def __init__(self, args: list[str], home: Path) -> None:
        self.args, self.home = args, home
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url_file(self) -> Path:
        return self.home.parent / "validator-status.url"

    def start(self) -> None:
        self.starts += 1
        out = open(self.home.parent / f"validator-{self.starts}.out", "wb")
        cmd = [sys.executable, "-m", "node.cli", "validator", "start", *self.args,
               "--status-url-file", str(self.url_file), "--log-file", str(self.home.parent / f"validator-{self.starts}.log")]
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        out.close()

    def journal(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.home / "journal.json").read_text()))
        except (OSError, ValueError):
            return {"settled": [], "next_epoch": 0}

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, the exit status (None if it hung), and no process of its group left behind."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        return code

    def output(self, tail: int | None = 3000) -> str:
        """The validator's logs (each cut to its last ``tail`` characters for failure messages; None: whole)."""
        logs = [p.read_text(errors="replace") for p in sorted(self.home.parent.glob("validator-*.log"))]
        return "\n".join(text[-tail:] if tail else text for text in logs)


@pytest.mark.timeout(300)
def test_validator_daemon_settles_on_anvil_and_resumes_after_a_restart(tmp_path: Path) -> None:
    with anvil_process() as rpc:
        chain = Chain.connect(LedgerConfig(rpc_url=rpc))
        admin = LedgerClient(chain, Account.create(), Outbox(None))
        chain.faucet(admin.address, 10**20)
        deployment = admin.deploy(DeployConfig(challenge_window_s=3600))
        deployment.save(tmp_path / "deployment.json")
        admin.mint(admin.address, 100 * 1000 * 10**18)
        admin.fund(100 * 1000 * 10**18)
        validator_key = tmp_path / "validator" / "v.key"
        address = make_keystore(validator_key)
        chain.faucet(address, 10**20)
        admin.grant_validator(address)

        run_dir = tmp_path / "net"
        peer_args = {}  # each trainer keeps its own snapshots: the validator fetches them over P2P (no shared disk)
        for i in range(PEERS):
            make_keystore(run_dir / f"peer{i}" / "node.key")
            peer_args[i] = ("--keystore", str(run_dir / f"peer{i}" / "node.key"), "--password-file",
                            str(run_dir / f"peer{i}" / "node.pass"), "--snapshot-dir",
                            str(run_dir / f"peer{i}" / "snapshots"))
        net = Testnet(TestnetConfig(run_dir=run_dir, peers=PEERS, run_id=RUN, contributors=0, epochs=EPOCHS, n_layer=2,
                                    n_embd=64, target_batch_size=64, batch_size=16, device="cpu", broker="",
                                    peer_args=peer_args))
        home = tmp_path / "validator" / "home"
        validator: ValidatorProcess | None = None
        try:
            net.start()
            validator = ValidatorProcess([
                "--run-id", RUN, "--initial-peers", net.bootstrap, "--rpc-url", rpc,
                "--deployment", str(tmp_path / "deployment.json"), "--validator-keystore", str(validator_key),
                "--validator-password-file", str(validator_key.with_suffix(".pass")),
                "--validator-home", str(home),
                "--n-layer", "2", "--n-embd", "64", "--target-batch-size", "64", "--broker", "",
                "--status-listen", "127.0.0.1:0", "--validator-poll-interval", "0.5"], home)
            validator.start()
            assert wait_until(lambda: len(validator.journal()["settled"]) >= 2, timeout=150, poll=0.5), validator.output()
            doc = fetch_validator_status(read_url_file(validator.url_file))
            assert doc["role"] == "validator" and doc["daemon_stage"] == "running" and doc["chain_reachable"] is True
            assert validator.stop() == 0, validator.output()
            assert not validator.url_file.exists()  # a clean stop removes its endpoint's URL
            resumed_at = validator.journal()["next_epoch"]
            assert 2 <= resumed_at < EPOCHS - 1, "the restart did not happen mid-run"

            validator.start()
            assert net.wait_finished(timeout=200), "trainers did not finish"
            assert wait_until(lambda: validator.journal()["next_epoch"] >= EPOCHS - 1, timeout=60, poll=0.5), \
                validator.output()
            assert validator.stop() == 0, validator.output()
        finally:
            if validator is not None and validator.proc is not None and validator.proc.poll() is None:
                validator.stop()
            net.stop()
        assert not net.failed_peers()
        assert f"resuming at epoch {resumed_at}" in validator.output(tail=None)
        assert "rewards tree" in validator.output(tail=None) and "published" in validator.output(tail=None)

        journal = validator.journal()
        posted = [e["epoch"] for e in admin.events("ContributionLedger", "EpochPosted")]
        assert posted == list(range(1, EPOCHS)), posted  # every epoch but the last (no later receipts), once
        assert [s["epoch"] for s in journal["settled"]] == list(range(EPOCHS - 1))
        assert [admin.epoch_record(s["ledger_epoch"])["root"].hex() for s in journal["settled"]] == \
               [s["root"][2:] for s in journal["settled"]]
        assert all(s["receipts"] >= 1 and s["rejected"] == 0 and s["checked"] == s["receipts"] for s in journal["settled"])
        admin.close()
