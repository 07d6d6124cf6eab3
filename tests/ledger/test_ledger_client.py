"""LedgerClient against both backends: settlement, claims, registries, named reverts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eth_utils import keccak

from node.identity import NodeIdentity
from node.ledger import contract_errors as ce
from node.ledger.client import VALIDATOR_ROLE, LedgerClient
from node.ledger.deployment import Deployment
from protocol.errors import DeploymentError, OutboxConflict
from protocol.rewards_tree import RewardsTree

from .conftest import WINDOW

E18 = 10**18
MINTER_ROLE = keccak(text="MINTER_ROLE")


def _settle(admin: LedgerClient, epoch: int, tree: RewardsTree) -> None:
    admin.post_epoch(epoch, tree.root, tree.total)
    admin.chain.advance_time(WINDOW + 1)
    admin.finalize_epoch(epoch)


def test_deploy_attaches_and_rejects_foreign_chain(admin: LedgerClient, new_client: Callable[..., LedgerClient]) -> None:
    deployment = admin.deployment
    assert deployment is not None and deployment.chain_id == admin.chain.chain_id()
    other = new_client(deployment)
    assert other.latest_epoch() == 0
    assert other.contract("ContributionLedger").functions.hasRole(VALIDATOR_ROLE, admin.address).call()
    foreign = Deployment(**{**deployment.__dict__, "chain_id": deployment.chain_id + 1})
    with pytest.raises(DeploymentError, match="chain"):
        other.attach(foreign)


def test_the_ledger_creates_the_token_and_alone_settles_its_claims(admin: LedgerClient) -> None:
    deployment = admin.deployment
    assert deployment is not None
    token = admin.contract("RewardToken")
    assert token.functions.ledger().call() == deployment.ledger
    assert token.functions.hasRole(MINTER_ROLE, admin.address).call()

    with pytest.raises(ce.RewardTokenUnauthorizedLedger) as info:
        admin._send("RewardToken", "settleClaim", [admin.address, 1], "settle-claim:not-the-ledger")

    assert info.value.fields == {"caller": admin.address}


def test_settlement_and_relayed_claims_pay_differences(
    admin: LedgerClient, new_client: Callable[..., LedgerClient]
) -> None:
    relayer = new_client(admin.deployment)
    alice, bob = new_client().address, new_client().address
    admin.mint(admin.address, 100 * E18)
    admin.fund(50 * E18)
    first = RewardsTree.build({alice: 10 * E18, bob: 5 * E18})
    _settle(admin, 1, first)

    relayer.claim(alice, 10 * E18, first.proof(alice))
    second = RewardsTree.build({alice: 25 * E18, bob: 5 * E18})
    _settle(admin, 2, second)
    relayer.claim(alice, 25 * E18, second.proof(alice))

    assert admin.token_balance(alice) == 25 * E18
    assert admin.token_balance(relayer.address) == 0
    assert admin.claimed(alice) == 25 * E18
    assert admin.totals() == (50 * E18, 25 * E18)
    assert admin.finalized() == (2, second.root, 30 * E18)
    payouts = [(e["account"], e["payout"], e["relayer"]) for e in admin.events("ContributionLedger", "RewardClaimed")]
    assert payouts == [(alice, 10 * E18, relayer.address), (alice, 15 * E18, relayer.address)]


def test_wrong_proof_reverts_with_named_error_and_stays_in_outbox(admin: LedgerClient) -> None:
    alice, bob = "0x" + "a1" * 20, "0x" + "b2" * 20
    admin.mint(admin.address, 10 * E18)
    admin.fund(10 * E18)
    tree = RewardsTree.build({alice: 3 * E18, bob: 4 * E18})
    _settle(admin, 1, tree)

    with pytest.raises(ce.ContributionLedgerInvalidProof) as info:
        admin.claim(alice, 4 * E18, tree.proof(alice))

    assert info.value.fields["cumulativeAmount"] == 4 * E18
    assert info.value.fields["account"].lower() == alice
    row = admin.outbox.get(f"claim:{alice}:{4 * E18}")
    assert row is not None and row.status == "rejected" and row.error == "ContributionLedgerInvalidProof"
    assert admin.token_balance(alice) == 0


def test_epoch_rules_raise_named_errors(admin: LedgerClient, new_client: Callable[..., LedgerClient]) -> None:
    tree = RewardsTree.build({"0x" + "a1" * 20: 7})
    admin.post_epoch(1, tree.root, tree.total)
    with pytest.raises(ce.ContributionLedgerChallengeWindowOpen) as info:
        admin.finalize_epoch(1)
    assert info.value.fields["epoch"] == 1
    with pytest.raises(ce.ContributionLedgerConflictingRoot) as conflict:
        admin.post_epoch(1, b"\x01" * 32, 9)
    assert conflict.value.fields["root"] == tree.root
    with pytest.raises(ce.ContributionLedgerEpochSkipped) as skipped:
        admin.post_epoch(3, tree.root, tree.total)
    assert skipped.value.fields == {"epoch": 3, "latestEpoch": 1}
    outsider = new_client(admin.deployment)
    with pytest.raises(ce.AccessControlUnauthorizedAccount) as denied:
        outsider.post_epoch(2, tree.root, tree.total)
    assert denied.value.fields == {"account": outsider.address, "neededRole": VALIDATOR_ROLE}

    admin.dispute_epoch(1, b"\x09" * 32)
    admin.chain.advance_time(WINDOW + 1)
    with pytest.raises(ce.ContributionLedgerEpochDisputed):
        admin.finalize_epoch(1)
    assert admin.epoch_record(1)["disputed"] is True


def test_claim_never_exceeds_funding(admin: LedgerClient) -> None:
    alice = "0x" + "a1" * 20
    admin.mint(admin.address, 10 * E18)
    admin.fund(2 * E18)
    tree = RewardsTree.build({alice: 3 * E18})
    admin.post_epoch(1, tree.root, tree.total)
    admin.chain.advance_time(WINDOW + 1)
    # A root whose total is above the pool never becomes final, so no claim can outrun the funding.
    with pytest.raises(ce.ContributionLedgerTotalExceedsFunding) as info:
        admin.finalize_epoch(1)
    assert info.value.fields == {"cumulativeTotal": 3 * E18, "funded": 2 * E18}
    with pytest.raises(ce.ContributionLedgerNoFinalRoot):
        admin.claim(alice, 3 * E18, tree.proof(alice))
    admin.fund(1 * E18)
    admin.finalize_epoch(1)
    admin.claim(alice, 3 * E18, tree.proof(alice))
    assert admin.token_balance(alice) == 3 * E18


def test_node_stakes_binds_unbonds_and_is_slashed(
    admin: LedgerClient, new_client: Callable[..., LedgerClient]
) -> None:
    node = new_client(admin.deployment)
    identity = NodeIdentity.generate()
    admin.mint(node.address, 1_000)
    with pytest.raises(ce.NodeRegistryInsufficientStake):
        node.request_binding(identity)
    node.stake(400)
    node.request_binding(identity)

    (event,) = admin.events("NodeRegistry", "BindingRequested")
    assert admin.verify_binding_request(event)
    forged = {**event, "signature": NodeIdentity.generate().sign_p2p(bytes(event["digest"]))}
    assert not admin.verify_binding_request(forged)
    admin.confirm_binding(node.address)
    info = admin.node_info(node.address)
    assert info["bound"] and info["peer_key"] == identity.peer_public_key

    admin.slash(node.address, 1000, b"\x01" * 32)
    assert admin.node_info(node.address)["stake"] == 360
    assert admin.token_balance(admin.address) == 40
    node.request_unbond(60)
    with pytest.raises(ce.NodeRegistryUnbondingLocked):
        node.withdraw()
    node.chain.advance_time(WINDOW + 1)
    node.withdraw()
    assert node.token_balance(node.address) == 600 + 60
    assert node.node_info(node.address)["stake"] == 300


def test_shard_registration_is_gasless_and_replay_proof(
    admin: LedgerClient, new_client: Callable[..., LedgerClient]
) -> None:
    owner = new_client(admin.deployment)
    root = b"\x5a" * 32
    deadline = owner.chain.timestamp() + 3600
    signature = owner.sign_shard_registration(root, "CC-BY-4.0", deadline)
    admin.register_shard_by_sig(root, owner.address, "CC-BY-4.0", deadline, signature)
    shard = admin.shard(root)
    assert shard["owner"] == owner.address and shard["license"] == "CC-BY-4.0"

    other_root = b"\x5b" * 32
    with pytest.raises(ce.ShardRegistryInvalidSigner) as info:
        admin.register_shard_by_sig(other_root, owner.address, "CC-BY-4.0", deadline, signature)
    assert info.value.fields["owner"] == owner.address

    attested = admin.attest_shard(root, True, 9_000, b"\x01" * 32)
    assert admin.attest_shard(root, True, 9_000, b"\x01" * 32) == attested  # idempotent: not sent twice
    assert admin.shard(root)["passes"] == 1
    admin.vote_revoke_shard(root, b"\x02" * 32)
    assert admin.shard(root)["revoked"] is True
    with pytest.raises(ce.ShardRegistryShardRevoked):
        owner.revoke_shard(root)


def test_same_key_sends_once_and_conflicting_reuse_is_refused(admin: LedgerClient) -> None:
    eth = admin.chain.w3.eth
    nonce_before = eth.get_transaction_count(admin.address)
    first = admin.mint(admin.address, 5, key="mint-once")
    again = admin.mint(admin.address, 5, key="mint-once")
    assert again.tx_hash == first.tx_hash
    assert eth.get_transaction_count(admin.address) == nonce_before + 1
    assert admin.token_balance(admin.address) == 5
    with pytest.raises(OutboxConflict):
        admin.mint(admin.address, 6, key="mint-once")
