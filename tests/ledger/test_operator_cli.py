"""`hivenet ledger fund|grant-validator|faucet` and `hivenet shard register` against anvil, as an operator and a
data contributor run them: balances, roles and registry records are read back from the chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from node.data.store import ShardStore, StoreConfig
from node.identity import load_keystore
from node.ledger.chain import Chain
from node.ledger.client import VALIDATOR_ROLE, LedgerClient
from node.ledger.config import LedgerConfig
from node.ledger.deployment import Deployment
from node.ledger.outbox import Outbox
from protocol.shards import RecordSchema
from tests.ledger.conftest import free_port

pytestmark = [pytest.mark.chain, pytest.mark.process]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = 10**18


def hivenet(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "node.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def refused(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    """One `error:` line naming the problem, exit status 2."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and all(w in lines[0] for w in words), proc.stderr[-3000:]


def new_keystore(tmp_path: Path, name: str) -> tuple[list[str], str]:
    """(the --keystore/--password-file arguments, the account) of a fresh keystore."""
    keystore, pw = tmp_path / f"{name}.key", tmp_path / f"{name}.pw"
    pw.write_text("s3cret\n")
    made = json.loads(hivenet("keys", "new", "--keystore", str(keystore), "--password-file", str(pw), "--json").stdout)
    return ["--keystore", str(keystore), "--password-file", str(pw)], made["address"]


def reader(url: str, deployment: Path) -> LedgerClient:
    return LedgerClient(Chain.connect(LedgerConfig(rpc_url=url)), Account.create(), Outbox(None), Deployment.load(deployment))


@pytest.fixture
def deployed(tmp_path: Path, anvil_url: str) -> tuple[list[str], str, Path]:
    """A deployment by a fresh admin keystore funded through `ledger faucet` (keystore args, admin, file)."""
    admin_args, admin = new_keystore(tmp_path, "admin")
    sent = json.loads(hivenet("ledger", "faucet", "--rpc-url", anvil_url, "--to", admin, "--eth", "100", "--json",
                              "--deployment", str(tmp_path / "none.json")).stdout)
    assert sent["sent_wei"] == str(100 * 10**18) and int(sent["balances"][admin]) == 100 * 10**18
    dep = tmp_path / "deployment.json"
    hivenet("ledger", "deploy", "--rpc", anvil_url, *admin_args, "--deployment", str(dep))
    return admin_args, admin, dep


def test_operator_funds_the_pool_and_grants_a_validator(tmp_path: Path, anvil_url: str, deployed) -> None:
    admin_args, admin, dep = deployed
    common = ["--rpc", anvil_url, "--deployment", str(dep)]
    out = json.loads(hivenet("ledger", "fund", "--amount", "1000.5", *common, *admin_args, "--json").stdout)
    pool = 1000 * TOKEN + TOKEN // 2
    assert out == {"funder": admin, "amount": str(pool), "funded": str(pool)}
    hivenet("ledger", "fund", "--amount", "0.5", *common, *admin_args)
    chain = reader(anvil_url, dep)
    assert chain.totals() == (pool + TOKEN // 2, 0)
    assert chain.token_balance(chain.deployment.ledger) == pool + TOKEN // 2 and chain.token_balance(admin) == 0

    other_args, other = new_keystore(tmp_path, "other")
    hivenet("ledger", "faucet", "--rpc", anvil_url, "--to", other, "--to", Account.create().address, "--eth", "0.25",
            "--deployment", str(dep))
    assert chain.chain.w3.eth.get_balance(other) == TOKEN // 4
    refused(hivenet("ledger", "fund", "--amount", "5", *common, *other_args, ok=False), "MINTER_ROLE", other)
    refused(hivenet("ledger", "fund", "--amount", "1e-19", *common, *admin_args, ok=False), "--amount", "18 decimals")
    refused(hivenet("ledger", "fund", "--amount", "5", "--rpc", f"http://127.0.0.1:{free_port()}", "--deployment",
                    str(dep), *admin_args, ok=False), "no answer")
    assert chain.totals() == (pool + TOKEN // 2, 0)  # nothing moved by the refused calls

    validator = Account.create().address
    granted = json.loads(hivenet("ledger", "grant-validator", "--address", validator, *common, *admin_args, "--json").stdout)
    assert all(granted["validators"][validator].values()) and len(granted["validators"][validator]) == 3
    for name in ("NodeRegistry", "ShardRegistry", "ContributionLedger"):
        assert chain.has_role(name, VALIDATOR_ROLE, validator)
    third = Account.create().address
    refused(hivenet("ledger", "grant-validator", "--address", third, *common, *other_args, ok=False),
            "AccessControlUnauthorizedAccount")
    refused(hivenet("ledger", "grant-validator", "--address", "0x1234", *common, *admin_args, ok=False), "not an address")
    assert not chain.has_role("ContributionLedger", VALIDATOR_ROLE, third)
    refused(hivenet("ledger", "faucet", "--rpc", anvil_url, "--to", "nope", ok=False), "--to 'nope' is not an address")
    chain.close()


def _shard(store: ShardStore, text: str, owner: str | None = None) -> str:
    records = [f"{text} paragraph {i}: the quick brown fox jumps over the lazy dog.".encode() for i in range(20)]
    return str(store.add_records(records, schema=RecordSchema(kind="text"), license="CC-BY-4.0", owner=owner).id)


def test_a_contributor_registers_its_shards_once(tmp_path: Path, anvil_url: str, deployed) -> None:
    admin_args, admin, dep = deployed
    common = ["--rpc", anvil_url, "--deployment", str(dep)]
    args, contributor = new_keystore(tmp_path, "contributor")
    store_dir = tmp_path / "shards"
    store = ShardStore(StoreConfig(store_dir))
    first, second = _shard(store, "alpha"), _shard(store, "beta", owner=contributor)
    register = ["shard", "register", *common, *args, "--store", str(store_dir)]

    refused(hivenet(*register, ok=False), "no ETH to pay gas", "ledger faucet --to")
    hivenet("ledger", "faucet", "--rpc", anvil_url, "--to", contributor)
    done = json.loads(hivenet(*register, "--json").stdout)
    assert done["owner"] == contributor
    assert {s["shard_id"]: s["status"] for s in done["shards"]} == {first: "registered", second: "registered"}
    chain = reader(anvil_url, dep)
    for sid in (first, second):
        record = chain.shard(bytes.fromhex(sid))
        assert record["owner"].lower() == contributor.lower() and record["license"] == "CC-BY-4.0"
    balance = chain.chain.w3.eth.get_balance(contributor)
    again = json.loads(hivenet(*register, first[:10], "--json").stdout)
    assert [(s["shard_id"], s["status"], s["tx_hash"]) for s in again["shards"]] == [(first, "already registered", None)]
    assert chain.chain.w3.eth.get_balance(contributor) == balance  # no transaction the second time

    # Someone else registered a shard first: the whole command is refused, naming that owner, and nothing is sent.
    squatter = LedgerClient(chain.chain, load_keystore(Path(admin_args[1]), "s3cret").account, Outbox(None),
                            Deployment.load(dep))
    taken, fresh = _shard(store, "gamma"), _shard(store, "delta")
    squatter.register_shard(bytes.fromhex(taken), "MIT")
    refused(hivenet(*register, ok=False), taken[:16], "registered on chain to", admin)
    assert int(chain.shard(bytes.fromhex(fresh))["owner"], 16) == 0
    # A manifest that credits another account is not registered to this one.
    foreign = _shard(store, "epsilon", owner=admin)
    refused(hivenet(*register, foreign[:12], ok=False), "manifest credits", admin)
    assert int(chain.shard(bytes.fromhex(foreign))["owner"], 16) == 0
    refused(hivenet(*register, "ffffffff", ok=False), "no shard matching")
    chain.close()
