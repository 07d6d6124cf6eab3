"""A claim-only deployment from a run's chain id and ledger address (``node.ledger.run_ledger``): the token is
the one the ledger names on chain, and a client on it reads and claims; another chain id, an address with no
code and a contract that is not a ledger are each refused, naming what to fix.

    .venv/bin/python -m pytest tests/rewards/test_run_ledger.py -q
"""

from __future__ import annotations

import json

import pytest

from node.ledger.client import LedgerClient
from node.ledger.deployment import Deployment
from node.ledger.run_ledger import ledger_deployment
from protocol.errors import DeploymentError
from tests.ledger.conftest import admin, anvil_url, chain, new_client  # noqa: F401  (fixtures)


def test_the_token_comes_from_the_ledger_and_a_client_reads_on_it(admin: LedgerClient, new_client) -> None:
    full = admin.deployment
    assert full is not None
    dep = ledger_deployment(admin.chain, full.chain_id, full.ledger.lower())
    assert dep.token.lower() == full.token.lower() and dep.ledger.lower() == full.ledger.lower()
    assert (dep.node_registry, dep.shard_registry) == ("", "")
    admin.mint(admin.address, 5)
    reader = new_client(dep)
    assert reader.token_balance(admin.address) == 5 and reader.finalized()[0] == 0


def test_another_chain_no_code_and_a_non_ledger_are_refused(admin: LedgerClient) -> None:
    full = admin.deployment
    assert full is not None
    actual = admin.chain.chain_id()
    with pytest.raises(DeploymentError, match=f"is chain {actual}, but the run names chain {actual + 1}"):
        ledger_deployment(admin.chain, actual + 1, full.ledger)
    with pytest.raises(DeploymentError, match="no contract at ledger 0x0000000000000000000000000000000000000001"):
        ledger_deployment(admin.chain, actual, "0x" + "00" * 19 + "01")
    with pytest.raises(DeploymentError, match="is not a ContributionLedger"):
        ledger_deployment(admin.chain, actual, full.node_registry)


def test_deployment_files_load_as_before(tmp_path, admin: LedgerClient) -> None:
    full = admin.deployment
    assert full is not None
    full.save(tmp_path / "d.json")
    assert Deployment.load(tmp_path / "d.json") == full
    assert set(json.loads((tmp_path / "d.json").read_text())) == {"version", *full.__dict__}
