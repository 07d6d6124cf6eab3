"""``hivenet rewards show|claim --run-id`` against anvil, with the tree fetched from in-process DHT peers.

The claimer holds only its keystore (and the deployment file): a genuine tree pays exactly the leaf; a forged
tree (wrong leaves, another root than the chain's, a tampered proof) is refused before any transaction, its
mismatch named, the balance unchanged and no outbox written.

    .venv/bin/python -m pytest tests/rewards/test_claim_network.py -q
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
from protocol.rewards_publication import RewardsPublication
from protocol.rewards_tree import RewardsTree
from tests.ledger.conftest import anvil_process
from tests.rewards.swarm import RUN, dht_swarm, forged_bytes, publishers

pytestmark = [pytest.mark.swarm, pytest.mark.chain]

WINDOW = 10  # challenge window of the test deployment, seconds of chain time
CLAIMER_AMOUNT, OTHER_AMOUNT = 40 * 10**18, 60 * 10**18
runner = CliRunner()
_register_groups()


@dataclass
class Setup:
    url: str
    deployment: Path
    keystore: Path
    password: Path
    claimer: str
    publication: RewardsPublication
    peer: str  # multiaddr to join the run's DHT through
    honest: object
    forger: object
    reader: LedgerClient

    def hivenet(self, *args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    def common(self) -> list[str]:
        return ["--run-id", RUN, "--initial-peers", self.peer, "--rpc-url", self.url, "--deployment", str(self.deployment)]

    def claim(self):
        return self.hivenet("rewards", "claim", *self.common(), "--keystore", str(self.keystore),
                            "--password-file", str(self.password))

    @property
    def outbox(self) -> Path:
        return self.keystore.with_name(self.keystore.name + ".outbox.sqlite")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("claimer")
    with anvil_process() as url, dht_swarm(2) as dhts, publishers(dhts) as (honest, forger):
        chain = Chain.connect(LedgerConfig(rpc_url=url))
        admin_account = Account.create()
        chain.faucet(admin_account.address, 10**20)
        admin = LedgerClient(chain, admin_account, Outbox(None))
        deployment = admin.deploy(DeployConfig(challenge_window_s=WINDOW))
        deployment_path = home / "deployment.json"
        deployment.save(deployment_path)

        identity = NodeIdentity.generate()
        keystore, password = home / "node.key", home / "pw"
        save_keystore(identity, keystore, "s3cret", KeystoreConfig(scrypt_n=2**12))
        password.write_text("s3cret\n")
        chain.faucet(identity.address, 10**19)  # the claimer pays its own gas

        tree = RewardsTree.build({identity.address: CLAIMER_AMOUNT, Account.create().address: OTHER_AMOUNT})
        admin.mint(admin.address, tree.total)
        admin.fund(tree.total)
        admin.post_epoch(1, tree.root, tree.total)
        chain.advance_time(WINDOW + 1)
        admin.finalize_epoch(1)
        assert admin.finalized()[1] == tree.root
        publication = RewardsPublication(RUN, 1, tree)
        yield Setup(url, deployment_path, keystore, password, identity.address.lower(), publication,
                    str(dhts[0].get_visible_maddrs()[0]), honest, forger, admin)
        admin.close()


@pytest.mark.parametrize("kind, named", [("leaves", "wrong leaves"), ("root", "root mismatch"),
                                         ("proof", "tampered proof")])
def test_a_forged_tree_is_refused_before_any_transaction(setup: Setup, kind: str, named: str) -> None:
    pub = setup.publication
    setup.forger.publish_raw(1, forged_bytes(pub, kind), pub.root)  # the only announcement of epoch 1 so far

    result = setup.claim()

    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and named in errors[0], result.output
    assert setup.reader.token_balance(setup.claimer) == 0 and setup.reader.claimed(setup.claimer) == 0
    assert not setup.outbox.exists(), "a refused claim must write no outbox"


def test_the_genuine_tree_is_shown_and_claimed_with_only_the_keystore(setup: Setup) -> None:
    setup.honest.publish(setup.publication)  # the forger's last announcement is still there

    shown = setup.hivenet("rewards", "show", *setup.common(), "--account", setup.claimer, "--json")
    assert shown.exit_code == 0, shown.output
    before = json.loads(shown.stdout)
    assert (before["cumulative"], before["claimable"], before["claimed"]) == (str(CLAIMER_AMOUNT),) * 2 + ("0",)
    assert before["tree_id"] == setup.publication.content_id and before["final_epoch"] == "1"

    claimed = setup.claim()
    assert claimed.exit_code == 0, claimed.output

    assert setup.reader.token_balance(setup.claimer) == CLAIMER_AMOUNT
    after = json.loads(setup.hivenet("rewards", "show", *setup.common(), "--account", setup.claimer, "--json").stdout)
    assert (after["claimed"], after["claimable"]) == (str(CLAIMER_AMOUNT), "0")
