"""``hivenet rewards show|claim`` with nothing but the keystore, the RPC URL, the run id and a peer of the run
(no deployment file): the run's signed manifest, fetched from the DHT, names the chain and the ledger; the
token is read from the ledger. Against anvil with in-process DHT peers:

- a manifest naming the ledger: show reports and claim pays exactly the account's leaf;
- a forged tree is still refused before any transaction;
- a manifest naming no chain, an RPC of another chain, and a deployment file naming another ledger than the
  manifest are each one ``error:`` line naming the fix, with nothing sent or written.

    .venv/bin/python -m pytest tests/rewards/test_claim_by_run_id.py -q
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from node.cli.app import _register_groups, app
from node.identity import KeystoreConfig, NodeIdentity, save_keystore
from node.ledger.chain import Chain
from node.ledger.client import LedgerClient
from node.ledger.config import DeployConfig, LedgerConfig
from node.ledger.outbox import Outbox
from node.swarm.manifests import publish_manifest
from protocol.rewards_publication import RewardsPublication
from protocol.rewards_tree import RewardsTree
from protocol.run_manifest import parse_signed_manifest
from tests.ledger.conftest import anvil_process
from tests.rewards.swarm import RUN, dht_swarm, forged_bytes, publishers
from tests.run.conftest import create, make_keystore

pytestmark = [pytest.mark.swarm, pytest.mark.chain]

WINDOW = 10
CLAIMER_AMOUNT, OTHER_AMOUNT = 40 * 10**18, 60 * 10**18
ANVIL_CHAIN_ID = 31337
runner = CliRunner()
_register_groups()


@dataclass
class Setup:
    url: str
    home: Path
    keystore: Path
    password: Path
    claimer: str
    ledger: str
    deployment: Path
    publication: RewardsPublication
    peer: str
    dht: object
    honest: object
    forger: object
    reader: LedgerClient

    def hivenet(self, *args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    def network(self, run_id: str = RUN) -> list[str]:
        return ["--run-id", run_id, "--initial-peers", self.peer, "--rpc-url", self.url, "--manifest-timeout", "20"]

    def claim(self, *extra: str, run_id: str = RUN):
        return self.hivenet("rewards", "claim", *self.network(run_id), "--keystore", str(self.keystore),
                            "--password-file", str(self.password), *extra)

    def publish_run(self, run_id: str, *settings: str) -> None:
        """The run's manifest, signed by its creator, in the DHT."""
        directory = self.home / run_id
        directory.mkdir()
        path = create(directory, make_keystore(directory), *settings, run_id=run_id)
        signed = parse_signed_manifest(path.read_bytes())
        assert publish_manifest(self.dht, run_id, signed.creator, signed.to_json(), ttl=600, timeout=15)

    @property
    def outbox(self) -> Path:
        return self.keystore.with_name(self.keystore.name + ".outbox.sqlite")

    def nothing_happened(self) -> bool:
        return (self.reader.token_balance(self.claimer) == 0 and self.reader.claimed(self.claimer) == 0
                and not self.outbox.exists())


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("claimer")
    with anvil_process() as url, dht_swarm(2) as dhts, publishers(dhts) as (honest, forger):
        chain = Chain.connect(LedgerConfig(rpc_url=url))
        admin_account = Account.create()
        chain.faucet(admin_account.address, 10**20)
        admin = LedgerClient(chain, admin_account, Outbox(None))
        deployment = admin.deploy(DeployConfig(challenge_window_s=WINDOW))
        other = admin.deploy_contract("ContributionLedger", ["Other", "OTH", WINDOW, admin.address, 1, 2**128 - 1], tag="other")
        other_path = home / "other-deployment.json"
        deployment.__class__(**{**deployment.__dict__, "ledger": str(other.address)}).save(other_path)

        identity = NodeIdentity.generate()
        keystore, password = home / "node.key", home / "pw"
        save_keystore(identity, keystore, "s3cret", KeystoreConfig(scrypt_n=2**12))
        password.write_text("s3cret\n")
        chain.faucet(identity.address, 10**19)

        tree = RewardsTree.build({identity.address: CLAIMER_AMOUNT, Account.create().address: OTHER_AMOUNT})
        admin.mint(admin.address, tree.total)
        admin.fund(tree.total)
        admin.post_epoch(1, tree.root, tree.total)
        chain.advance_time(WINDOW + 1)
        admin.finalize_epoch(1)
        setup = Setup(url, home, keystore, password, identity.address.lower(), deployment.ledger, other_path,
                      RewardsPublication(RUN, 1, tree), str(dhts[0].get_visible_maddrs()[0]), dhts[1], honest,
                      forger, admin)
        setup.publish_run(RUN, "--chain-id", str(ANVIL_CHAIN_ID), "--ledger", deployment.ledger)
        yield setup
        admin.close()


def test_a_manifest_naming_no_chain_is_refused(setup: Setup) -> None:
    setup.publish_run("no-chain-run")
    result = setup.claim(run_id="no-chain-run")
    assert result.exit_code == 2, result.output
    assert errors(result.output) == ["error: run no-chain-run names no ledger; pass --deployment"]
    assert setup.nothing_happened()


def test_an_rpc_of_another_chain_is_refused_naming_both(setup: Setup) -> None:
    setup.publish_run("other-chain-run", "--chain-id", "8453", "--ledger", setup.ledger)
    result = setup.claim(run_id="other-chain-run")
    assert result.exit_code == 2, result.output
    lines = errors(result.output)
    assert len(lines) == 1 and f"is chain {ANVIL_CHAIN_ID}" in lines[0] and "names chain 8453" in lines[0], lines
    assert setup.nothing_happened()


def test_a_deployment_file_naming_another_ledger_than_the_manifest_is_refused(setup: Setup) -> None:
    result = setup.claim("--deployment", str(setup.deployment))
    assert result.exit_code == 2, result.output
    lines = errors(result.output)
    other = json.loads(setup.deployment.read_text())["ledger"]
    assert len(lines) == 1 and other.lower() in lines[0].lower() and setup.ledger.lower() in lines[0].lower(), lines
    assert setup.nothing_happened()


def test_a_forged_tree_is_still_refused(setup: Setup) -> None:
    pub = setup.publication
    setup.forger.publish_raw(1, forged_bytes(pub, "leaves"), pub.root)
    result = setup.claim()
    assert result.exit_code == 2, result.output
    lines = errors(result.output)
    assert len(lines) == 1 and "wrong leaves" in lines[0], result.output
    assert setup.nothing_happened()


def test_show_and_claim_with_only_keystore_rpc_and_run_id_pay_the_exact_amount(setup: Setup) -> None:
    setup.honest.publish(setup.publication)

    shown = setup.hivenet("rewards", "show", *setup.network(), "--account", setup.claimer, "--json")
    assert shown.exit_code == 0, shown.output
    before = json.loads(shown.stdout)
    assert (before["cumulative"], before["claimable"], before["claimed"]) == (str(CLAIMER_AMOUNT),) * 2 + ("0",)
    assert before["ledger"].lower() == setup.ledger.lower()

    claimed = setup.claim()
    assert claimed.exit_code == 0, claimed.output
    assert setup.reader.token_balance(setup.claimer) == CLAIMER_AMOUNT
    assert setup.reader.claimed(setup.claimer) == CLAIMER_AMOUNT
    after = json.loads(setup.hivenet("rewards", "show", *setup.network(), "--account", setup.claimer,
                                     "--json").stdout)
    assert (after["claimed"], after["claimable"]) == (str(CLAIMER_AMOUNT), "0")
