"""The deployment a claimer needs, from nothing but a run's ledger address and chain id (its manifest's).

    deployment = ledger_deployment(Chain.connect(LedgerConfig(rpc_url=url)), chain_id, ledger)

The RPC must be the chain the run names; the ledger must have code there; the reward token is the one the
ledger itself names (``ContributionLedger.token()``), so nothing but the chain is trusted for it.
"""

from __future__ import annotations

from web3 import Web3
from web3.exceptions import Web3Exception

from node.ledger.artifacts import load_artifact
from node.ledger.chain import Chain
from node.ledger.deployment import Deployment
from protocol.errors import DeploymentError


def ledger_deployment(chain: Chain, chain_id: int, ledger: str, named_by: str = "the run") -> Deployment:
    """A claim-only Deployment of ``ledger`` on ``chain``; DeploymentError when the chain is another one, or
    no ledger answers there. ``named_by`` says who named the ledger, for the errors."""
    actual = chain.chain_id()
    if actual != chain_id:
        raise DeploymentError(f"the RPC at {chain.where} is chain {actual}, but {named_by} names chain {chain_id}; "
                              "pass --rpc-url of the run's chain")
    address = Web3.to_checksum_address(ledger)
    code = chain.call("get code", lambda: chain.w3.eth.get_code(address))
    if len(code) == 0:
        raise DeploymentError(f"no contract at ledger {ledger} on chain {actual}, which {named_by} names; "
                              "check --rpc-url, or pass --deployment")
    handle = chain.w3.eth.contract(address=address, abi=load_artifact("ContributionLedger").abi)
    try:
        token = str(chain.call("ContributionLedger.token", handle.functions.token().call))
    except Exception as e:
        if not _not_a_ledger(e):
            raise
        raise DeploymentError(f"the contract at {ledger} on chain {actual} is not a ContributionLedger "
                              f"({type(e).__name__}); check the run's manifest, or pass --deployment") from None
    return Deployment.for_ledger(actual, ledger, token)


def _not_a_ledger(exc: Exception) -> bool:
    """Whether reading ``token()`` failed because the contract has no such function: a revert (anvil's web3
    errors; the embedded chain's eth-tester ``TransactionFailed``) or an answer that does not decode."""
    return isinstance(exc, (Web3Exception, ValueError)) or "revert" in str(exc).lower()
