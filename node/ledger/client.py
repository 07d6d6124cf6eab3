"""``LedgerClient``: the typed API through which hivenet touches a chain.

    client = LedgerClient.open(LedgerConfig(rpc_url="http://127.0.0.1:8545"), account)
    deployment = client.deploy(DeployConfig())
    client.post_epoch(1, tree.root, tree.total)

Every state change goes through the outbox (see sender.py) under an idempotency key;
calls that are naturally unique (post epoch N, claim up to X) derive their key from their
arguments, the others take a ``key`` (a fresh one by default). Reverts raise the exception
class of their Solidity error (``node.ledger.contract_errors``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import is_hex_address
from web3 import Web3
from web3.contract import Contract

from node.ledger.artifacts import load_artifact
from node.ledger.chain import Chain
from node.ledger.config import DeployConfig, LedgerConfig
from node.ledger.deployment import Deployment
from node.ledger.outbox import Outbox
from node.ledger.registries import RegistryCalls
from node.ledger.sender import Sent, TransactionSender
from protocol.errors import DeploymentError

VALIDATOR_ROLE = bytes.fromhex("21702c8af46127c7fa207f89d0b0a8441bb32959a0ac7df790e9ab1a25c98926")  # keccak("VALIDATOR_ROLE")


def _checksummed(args: Sequence[Any]) -> list[Any]:
    """Addresses in any letter case, as web3 accepts only checksummed ones."""
    return [Web3.to_checksum_address(a) if isinstance(a, str) and is_hex_address(a) else a for a in args]


def fresh_key(prefix: str) -> str:
    return f"{prefix}:{uuid.uuid4().hex}"


class LedgerClient(RegistryCalls):
    """One account's view of one deployment on one chain."""

    def __init__(self, chain: Chain, account: LocalAccount, outbox: Outbox, deployment: Deployment | None = None):
        self.chain = chain
        self.account = account
        self.outbox = outbox
        self.sender = TransactionSender(chain, account, outbox)
        self.deployment: Deployment | None = None
        if deployment is not None:
            self.attach(deployment)

    @classmethod
    def open(
        cls, config: LedgerConfig, account: LocalAccount, deployment: Deployment | None = None, chain: Chain | None = None
    ) -> LedgerClient:
        """Connects (or reuses ``chain``), opens the outbox and finishes what it left pending."""
        client = cls(chain or Chain.connect(config), account, Outbox(config.outbox_path), deployment)
        client.reconcile()
        return client

    @property
    def address(self) -> str:
        return str(self.account.address)

    def close(self) -> None:
        self.outbox.close()

    def reconcile(self) -> list[Sent]:
        return self.sender.reconcile()

    # -- deployment -------------------------------------------------------------------

    def deploy(self, config: DeployConfig = DeployConfig(), treasury: str | None = None, tag: str = "") -> Deployment:
        """Deploys the four contracts with this account as admin and validator.

        The ledger comes first: it creates the reward token (which settles claims in its
        per-account records, so it is fixed to that ledger), and the registries stake it.
        """
        me = self.address
        tag = tag or f"{self.chain.chain_id()}:{me}"
        ledger_args = [config.token_name, config.token_symbol, config.challenge_window_s, me, config.root_quorum,
                       config.max_epoch_increase]
        ledger = self._deploy("ContributionLedger", ledger_args, tag)
        ledger_handle = self.chain.w3.eth.contract(
            address=Web3.to_checksum_address(str(ledger.contract_address)), abi=load_artifact("ContributionLedger").abi
        )
        token = str(self.chain.call("ContributionLedger.token", ledger_handle.functions.token().call))
        nodes = self._deploy(
            "NodeRegistry",
            [token, config.min_stake, config.unbonding_delay_s, config.max_slash_bps, treasury or me, me],
            tag,
        )
        shards = self._deploy("ShardRegistry", [config.revoke_quorum, me], tag)
        deployment = Deployment(
            chain_id=self.chain.chain_id(),
            token=token,
            node_registry=str(nodes.contract_address),
            shard_registry=str(shards.contract_address),
            ledger=str(ledger.contract_address),
            deployer=me,
            block=ledger.block,
            compiler_version=load_artifact("ContributionLedger").compiler_version,
        )
        self.attach(deployment)
        self.grant_validator(me)
        return deployment

    def deploy_contract(self, name: str, args: Sequence[Any], tag: str) -> Contract:
        """Deploys one compiled contract (e.g. the benchmark baseline) and returns its handle."""
        sent = self._deploy(name, args, tag)
        address = Web3.to_checksum_address(str(sent.contract_address))
        return self.chain.w3.eth.contract(address=address, abi=load_artifact(name).abi)

    def _deploy(self, name: str, args: Sequence[Any], tag: str) -> Sent:
        artifact = load_artifact(name)
        factory = self.chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        data = factory.constructor(*args).data_in_transaction
        return self.sender.send(f"deploy:{name}:{tag}", None, data)

    def attach(self, deployment: Deployment) -> None:
        """Uses ``deployment``; checks that it belongs to this chain and that its code is there."""
        chain_id = self.chain.chain_id()
        if deployment.chain_id != chain_id:
            raise DeploymentError(f"deployment is for chain {deployment.chain_id}, but the node is chain {chain_id}")
        for name, address in (("ContributionLedger", deployment.ledger), ("RewardToken", deployment.token)):
            checksummed = Web3.to_checksum_address(address)
            code = self.chain.call("get code", lambda: self.chain.w3.eth.get_code(checksummed))
            if len(code) == 0:
                raise DeploymentError(f"no {name} code at {address} on chain {chain_id}; redeploy or fix the file")
        self.deployment = deployment

    def contract(self, name: str) -> Contract:
        deployment = self._deployment()
        address = {
            "RewardToken": deployment.token,
            "NodeRegistry": deployment.node_registry,
            "ShardRegistry": deployment.shard_registry,
            "ContributionLedger": deployment.ledger,
        }[name]
        return self.chain.w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name).abi)

    def _deployment(self) -> Deployment:
        if self.deployment is None:
            raise DeploymentError("no deployment attached; deploy or load a deployment file first")
        return self.deployment

    def _send(self, contract: str, fn: str, args: Sequence[Any], key: str) -> Sent:
        target = self.contract(contract)
        return self.sender.send(key, str(target.address), target.encode_abi(fn, args=_checksummed(args)))

    def _read(self, contract: str, fn: str, *args: Any) -> Any:
        function = getattr(self.contract(contract).functions, fn)(*_checksummed(args))
        return self.chain.call(f"{contract}.{fn}", function.call)

    def has_role(self, contract: str, role: bytes, account: str) -> bool:
        return bool(self._read(contract, "hasRole", role, account))

    def grant_validator(self, account: str) -> None:
        for name in ("NodeRegistry", "ShardRegistry", "ContributionLedger"):
            self._send(name, "grantRole", [VALIDATOR_ROLE, account], f"grant-validator:{name}:{account}")

    # -- token ------------------------------------------------------------------------

    def mint(self, to: str, amount: int, key: str | None = None) -> Sent:
        return self._send("RewardToken", "mint", [to, amount], key or fresh_key("mint"))

    def approve(self, spender: str, amount: int, key: str | None = None) -> Sent:
        return self._send("RewardToken", "approve", [spender, amount], key or fresh_key("approve"))

    def token_balance(self, account: str) -> int:
        return int(self._read("RewardToken", "balanceOf", account))

    # -- contribution ledger ----------------------------------------------------------

    def fund(self, amount: int, key: str | None = None) -> Sent:
        """Approves and moves ``amount`` tokens from this account into the reward pool."""
        key = key or fresh_key("fund")
        self.approve(self._deployment().ledger, amount, key=f"{key}:approve")
        return self._send("ContributionLedger", "fund", [amount], key)

    def post_epoch(self, epoch: int, root: bytes, cumulative_total: int) -> Sent:
        return self._send("ContributionLedger", "postEpoch", [epoch, root, cumulative_total], f"post-epoch:{epoch}:{root.hex()}")

    def dispute_epoch(self, epoch: int, reason: bytes) -> Sent:
        return self._send("ContributionLedger", "disputeEpoch", [epoch, reason], f"dispute-epoch:{epoch}:{self.address}")

    def finalize_epoch(self, epoch: int) -> Sent:
        record = self.epoch_record(epoch)
        return self._send("ContributionLedger", "finalizeEpoch", [epoch], f"finalize-epoch:{epoch}:{record['root'].hex()}")

    def claim(self, account: str, cumulative_amount: int, proof: Sequence[bytes]) -> Sent:
        """Claims for ``account`` (this account pays the gas) up to ``cumulative_amount``."""
        return self._send(
            "ContributionLedger", "claim", [account, cumulative_amount, list(proof)], f"claim:{account}:{cumulative_amount}"
        )

    def claimed(self, account: str) -> int:
        return int(self._read("ContributionLedger", "claimed", account))

    def epoch_record(self, epoch: int) -> dict[str, Any]:
        root, total, posted_at, disputed = self._read("ContributionLedger", "epochRecord", epoch)
        return {"root": bytes(root), "cumulative_total": int(total), "posted_at": int(posted_at), "disputed": bool(disputed)}

    def epoch_voters(self, epoch: int) -> list[str]:
        """Validators that posted ``epoch``'s current (root, total), revoked ones included."""
        return [str(a) for a in self._read("ContributionLedger", "voters", epoch)]

    def root_quorum(self) -> int:
        """Live validator votes a root needs to become final."""
        return int(self._read("ContributionLedger", "quorum"))

    def max_epoch_increase(self) -> int:
        """Most one epoch may raise the cumulative total by."""
        return int(self._read("ContributionLedger", "maxEpochIncrease"))

    def finalized(self) -> tuple[int, bytes, int]:
        epoch, root, total = self._read("ContributionLedger", "finalized")
        return int(epoch), bytes(root), int(total)

    def latest_epoch(self) -> int:
        return int(self._read("ContributionLedger", "latestEpoch"))

    def totals(self) -> tuple[int, int]:
        funded, claimed = self._read("ContributionLedger", "totals")
        return int(funded), int(claimed)

    # -- events -----------------------------------------------------------------------

    def events(self, contract: str, event: str, from_block: int = 0) -> list[dict[str, Any]]:
        """Decoded ``event`` logs of ``contract`` since ``from_block``, oldest first."""
        handle = getattr(self.contract(contract).events, event)
        logs = self.chain.call(f"{event} logs", lambda: handle.get_logs(from_block=from_block))
        return [{**dict(log["args"]), "blockNumber": log["blockNumber"], "transactionHash": log["transactionHash"]} for log in logs]
