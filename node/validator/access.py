"""A validator daemon's way to its chain, checked before the daemon writes anything.

    access = open_chain_access(ChainSettings(rpc_url, deployment_file, keystore, password_file))

Every mistake a user can make here (no RPC URL, a chain that does not answer, no or a wrong deployment
file, no keystore, an account the ledger does not know as a validator or that has no gas) raises one
HivenetError that names the fix, before the validator's home, outbox or journal exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.identity import load_keystore
from node.ledger.chain import Chain
from node.ledger.client import VALIDATOR_ROLE, LedgerClient
from node.ledger.config import LedgerConfig
from node.ledger.deployment import Deployment
from node.ledger.outbox import Outbox
from protocol.errors import ChainUnavailable, ConfigError

log = logging.getLogger(__name__)

CONNECT_ATTEMPTS = 3  # a chain that does not answer three tries in a row at start is a configuration error


@dataclass(frozen=True)
class ChainSettings:
    rpc_url: str | None  # None: the embedded chain, which a validator daemon cannot use
    deployment: Path | None
    keystore: Path | None
    password_file: Path | None


@dataclass(frozen=True)
class ChainAccess:
    chain: Chain
    account: Any  # eth_account LocalAccount
    deployment: Deployment
    challenge_window_s: int  # the ledger's own, read from the contract

    @property
    def address(self) -> str:
        return str(self.account.address)


def _password(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise ConfigError(f"cannot read the password file {path} ({e.strerror}); fix --validator-password-file") from None
    return lines[0] if lines else ""


def open_chain_access(s: ChainSettings) -> ChainAccess:
    """Unlocks the account, reaches the chain, checks the deployment and the account's role; writes nothing."""
    if s.rpc_url is None:
        raise ConfigError("a validator reaches its chain by JSON-RPC: set --rpc-url ([ledger] rpc_url), e.g. "
                          "http://127.0.0.1:8545 for a local anvil (the embedded chain lives only inside `hivenet testnet`)")
    if s.deployment is None:
        raise ConfigError("set --deployment ([ledger] deployment) to the file `hivenet ledger deploy` wrote")
    deployment = Deployment.load(s.deployment)
    if s.keystore is None:
        raise ConfigError("set --validator-keystore ([validator] keystore): the account that posts roots "
                          "(create one with `hivenet keys new`)")
    identity = load_keystore(s.keystore, _password(s.password_file))
    chain = Chain.connect(LedgerConfig(rpc_url=s.rpc_url, retry_attempts=CONNECT_ATTEMPTS))
    try:
        chain.chain_id()
    except ChainUnavailable:
        raise ChainUnavailable(f"no chain answers at {s.rpc_url}; start it (anvil, a node) or fix --rpc-url "
                               "([ledger] rpc_url), then start the validator again") from None
    probe = LedgerClient(chain, identity.account, Outbox(None))  # in memory: a probe sends nothing
    try:
        probe.attach(deployment)
        window = int(probe._read("ContributionLedger", "challengeWindow"))
        address = identity.account.address
        # Settling posts roots and watching posts disputes: both need the role and gas.
        if not probe._read("ContributionLedger", "hasRole", VALIDATOR_ROLE, address):
            raise ConfigError(f"account {address} is not a validator of the ledger at {deployment.ledger}; "
                              "the deployer must grant it VALIDATOR_ROLE first")
        balance = chain.call("balance", lambda: chain.w3.eth.get_balance(address))
        if balance == 0:
            raise ConfigError(f"account {address} has no gas on chain {deployment.chain_id}; fund it first")
    finally:
        probe.close()
    return ChainAccess(chain, identity.account, deployment, window)
