"""``hivenet rewards``: what an account earned, and claiming it (anyone may relay the claim).

From the network (the machine needs only its keystore, the RPC URL, the run id and a peer of the run):

    hivenet rewards show --run-id R --account 0x... --initial-peers ADDR --rpc-url URL
    hivenet rewards claim --run-id R --keystore node.key --password-file pw --rpc-url URL --initial-peers ADDR

The run's signed manifest is fetched from the DHT and verified as ``node start --manifest-from-dht`` does
(content id, signature, run id; ``--manifest-creator`` names the creator to trust when several claim the
run); its chain (chain id and ContributionLedger address) says where to claim, and the reward token is
the one that ledger names on chain. A manifest that names no chain, or an RPC of another chain, is
refused. With ``--deployment FILE`` the file says where instead; a manifest found that names another
ledger is refused, both addresses named.

The latest finalized epoch's rewards tree is fetched by content id from the validators that announce it in
the DHT, and checked before anything is sent: the bytes hash to the id, the leaves hash to the tree's root,
the proofs are the leaves', and the root is the one finalized on chain (``protocol.rewards_publication``).
A forged tree is refused with an ``error:`` line naming the mismatch, and no transaction is sent.

From a rewards file (written by a validator, ``node.validator.settlement.save``):

    hivenet rewards show --rpc URL --deployment deployment.json --rewards epoch-7.json --address 0x...
    hivenet rewards claim --rpc URL --deployment deployment.json --rewards epoch-7.json --keystore node.key
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from node.cli.common import user_errors
from node.cli.keys_cmd import KeystoreOpt, PasswordFileOpt, unlock
from node.cli.ledger_cmd import OutboxOpt, ledger_config
from protocol.errors import ConfigError

if TYPE_CHECKING:
    from node.swarm.dht import DHT

    from node.ledger.client import LedgerClient
    from node.ledger.deployment import Deployment
    from protocol.rewards_publication import RewardsPublication

app = typer.Typer(no_args_is_help=True, help="Show and claim rewards.")

RpcOpt = Annotated[str, typer.Option("--rpc", "--rpc-url", help="JSON-RPC URL of the chain (anvil, a testnet, a node).")]
RewardsOpt = Annotated[Optional[Path], typer.Option(
    "--rewards", "--rewards-file", help="Rewards file of the epoch (published by validators); or use --run-id.")]
RunIdOpt = Annotated[Optional[str], typer.Option(
    "--run-id", help="Fetch the run's latest finalized rewards tree from the network (with --initial-peers).")]
PeersOpt = Annotated[Optional[list[str]], typer.Option(
    "--initial-peers", metavar="MULTIADDR", help="Multiaddr of any running peer of the run (with --run-id). Repeatable.")]
DeploymentOpt = Annotated[Optional[Path], typer.Option(
    "--deployment", help="Deployment file (`hivenet ledger deploy`); default with --rewards: deployment.json; with "
    "--run-id: the ledger the run's manifest names.")]
CreatorOpt = Annotated[str, typer.Option(
    "--manifest-creator", "--run-creator", metavar="0xADDRESS",
    help="With --run-id: trust only the run manifest signed by this address (needed when several claim the run).")]
ManifestTimeoutOpt = Annotated[float, typer.Option(
    "--manifest-timeout", min=0, help="With --run-id: seconds to wait for the run's manifest in the DHT.")]
FETCH_TIMEOUT_S = 120.0  # finding and downloading the tree; each peer has its own shorter limit
MANIFEST_TIMEOUT_S = 30.0  # as `node start --manifest-from-dht`: a fresh record takes a moment to spread
# With --deployment the manifest only cross-checks the file: one short look, so that a run whose creator
# published no manifest costs a claim a few seconds, not the full wait.
CROSS_CHECK_S = 3.0
DEFAULT_DEPLOYMENT = Path("deployment.json")


@app.command()
def show(
    rpc: RpcOpt,
    rewards: RewardsOpt = None,
    run_id: RunIdOpt = None,
    initial_peers: PeersOpt = None,
    address: Annotated[Optional[str], typer.Option(
        "--address", "--account", help="Account to show (default: the keystore's).")] = None,
    deployment: DeploymentOpt = None,
    keystore: KeystoreOpt = Path("node.key"),
    as_json: Annotated[bool, typer.Option("--json")] = False,
    manifest_creator: CreatorOpt = "",
    manifest_timeout: ManifestTimeoutOpt = MANIFEST_TIMEOUT_S,
) -> None:
    """Show the account's cumulative reward, what it claimed, and what it can claim now."""
    with user_errors():
        _one_source(rewards, run_id, initial_peers)
        if run_id is not None:
            creator = _creator(manifest_creator)
            info = _network_status(_RunSource(rpc, run_id, initial_peers or [], deployment, creator, manifest_timeout),
                                   address, keystore)
        else:
            assert rewards is not None
            info = _status(rpc, deployment or DEFAULT_DEPLOYMENT, rewards, address, keystore)
        if as_json:
            typer.echo(json.dumps({k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in info.items()}))
        else:
            for key, value in info.items():
                typer.echo(f"{key:<18}{value}")


@app.command()
def claim(
    rpc: RpcOpt,
    rewards: RewardsOpt = None,
    run_id: RunIdOpt = None,
    initial_peers: PeersOpt = None,
    account: Annotated[Optional[str], typer.Option("--for", help="Claim for this account (relay); default: own.")] = None,
    deployment: DeploymentOpt = None,
    keystore: KeystoreOpt = Path("node.key"),
    password_file: PasswordFileOpt = None,
    outbox: OutboxOpt = None,
    manifest_creator: CreatorOpt = "",
    manifest_timeout: ManifestTimeoutOpt = MANIFEST_TIMEOUT_S,
) -> None:
    """Claim up to the account's cumulative amount; the keystore's account pays the gas."""
    with user_errors():
        from node.ledger.client import LedgerClient
        from node.ledger.deployment import Deployment
        from node.ledger.rewards_file import EpochRewards

        _one_source(rewards, run_id, initial_peers)
        creator = _creator(manifest_creator)
        identity = unlock(keystore, password_file)
        target = account or identity.address
        if run_id is not None:
            # Everything is verified before the sending client (and its outbox file) exists.
            source = _RunSource(rpc, run_id, initial_peers or [], deployment, creator, manifest_timeout)
            amount, proof, where, dep = _network_claim(source, target)
        else:
            assert rewards is not None
            dep = Deployment.load(deployment or DEFAULT_DEPLOYMENT)
            epoch_rewards = EpochRewards.load(rewards)
            amount, proof, where = epoch_rewards.tree.amount(target), epoch_rewards.tree.proof(target), str(rewards)
        client = LedgerClient.open(ledger_config(rpc, outbox, keystore), identity.account, dep)
        try:
            sent = client.claim(target, amount, proof)
            balance = client.token_balance(target)
        finally:
            client.close()
        typer.echo(f"claimed for {target} up to {amount} (from {where}) in tx {sent.tx_hash}; balance now {balance}")


def _one_source(rewards: Path | None, run_id: str | None, initial_peers: list[str] | None) -> None:
    if (rewards is None) == (run_id is None):
        raise ConfigError("give either --run-id (fetch the tree from the network) or --rewards FILE, not both or neither")
    if run_id is not None and not initial_peers:
        raise ConfigError("--run-id needs --initial-peers: the multiaddr of any running peer of the run")


def _reader(rpc: str, deployment: Deployment) -> LedgerClient:
    """A client that only reads the chain: a throwaway account and an in-memory outbox (nothing written)."""
    from eth_account import Account

    from node.ledger.client import LedgerClient
    from node.ledger.config import LedgerConfig

    return LedgerClient.open(LedgerConfig(rpc_url=rpc), Account.create(), deployment)


def _creator(value: str) -> str:
    from node.run.config import address_or_empty

    return address_or_empty(value)


@dataclass(frozen=True)
class _RunSource:
    """Where a run's rewards are: the chain's RPC, the run and a peer of it, and how to find its ledger."""

    rpc: str
    run_id: str
    initial_peers: list[str]
    deployment: Path | None  # None: the ledger the run's manifest names
    creator: str  # "" any single creator
    manifest_timeout: float


def _run_deployment(dht: DHT, source: _RunSource) -> Deployment:
    """The deployment to read and claim on: the file given, cross-checked with the run's manifest when one is
    found; else the chain and ledger of the run's verified manifest (nothing else is needed to claim)."""
    from node.ledger.chain import Chain
    from node.ledger.config import LedgerConfig
    from node.ledger.deployment import Deployment
    from node.ledger.run_ledger import ledger_deployment
    from node.run.resolve import RunNotServed, select_manifest
    from node.swarm.manifests import fetch_manifest_values
    from protocol.errors import DeploymentError
    from protocol.run_manifest import RunManifestError

    run_id = source.run_id
    if source.deployment is not None:
        dep = Deployment.load(source.deployment)
        try:
            signed = select_manifest(fetch_manifest_values(dht, run_id, min(CROSS_CHECK_S, source.manifest_timeout)),
                                     run_id, source.creator)
        except RunManifestError:  # none published, or none trusted: the file alone says where, as before
            return dep
        chain = signed.manifest.chain
        if chain is not None and (chain.ledger.lower() != dep.ledger.lower() or chain.chain_id != dep.chain_id):
            raise DeploymentError(
                f"{source.deployment} names ledger {dep.ledger} on chain {dep.chain_id}, but run {run_id}'s manifest "
                f"(signed by {signed.creator}) names ledger {chain.ledger} on chain {chain.chain_id}; pass the run's "
                "deployment file, or leave --deployment out to use the manifest's")
        return dep
    values = fetch_manifest_values(dht, run_id, source.manifest_timeout)
    if not values:
        raise RunNotServed(f"no peer served a manifest for run {run_id!r} within {source.manifest_timeout:g} s; check "
                           "the run id and --initial-peers, or pass --deployment")
    signed = select_manifest(values, run_id, source.creator)
    if signed.manifest.chain is None:
        raise ConfigError(f"run {run_id} names no ledger; pass --deployment")
    chain = signed.manifest.chain
    return ledger_deployment(Chain.connect(LedgerConfig(rpc_url=source.rpc)), chain.chain_id, chain.ledger,
                             named_by=f"run {run_id}'s manifest")


def _final_tree(source: _RunSource, account: str | None) -> tuple[RewardsPublication, int, bytes, int, Deployment]:
    """The latest finalized tree of the run from the network, checked against the chain; with the final
    epoch, its root, what ``account`` claimed (0 without an account) and the deployment it was read on."""
    from node.swarm.config import SwarmConfig
    from node.swarm.dht import start_dht
    from node.swarm.rewards_board import RewardsBoard, RewardsPeer
    from protocol.errors import LedgerError
    from protocol.rewards_publication import check_final

    run_id = source.run_id
    # A client-mode DHT: it reads the manifest and the announcements and opens streams, and stores nobody's records.
    dht = start_dht(SwarmConfig(run_id=run_id, initial_peers=tuple(source.initial_peers),
                                extra_dht_options={"client_mode": True}))
    try:
        deployment = _run_deployment(dht, source)
        reader = _reader(source.rpc, deployment)
        try:
            final_epoch, final_root, _ = reader.finalized()
            claimed = reader.claimed(account) if account is not None else 0
        finally:
            reader.close()
        if final_epoch == 0:
            raise LedgerError("no epoch of this ledger is final yet; wait for the challenge window after a settlement")
        peer = RewardsPeer(RewardsBoard(dht, run_id), serve=False)
        try:
            publication = peer.fetch(final_epoch, lambda p: check_final(p, final_epoch, final_root, run_id),
                                     prefer_root=final_root, timeout=FETCH_TIMEOUT_S)
        finally:
            peer.close()
    finally:
        dht.shutdown()
    return publication, final_epoch, final_root, claimed, deployment


def _network_claim(source: _RunSource, account: str) -> tuple[int, list[bytes], str, Deployment]:
    from protocol.rewards_publication import claim_proof

    publication, final_epoch, final_root, _, deployment = _final_tree(source, None)
    checked = claim_proof(publication, account, final_epoch, final_root, source.run_id)
    where = f"tree {publication.content_id[:16]}… of ledger epoch {final_epoch}"
    return checked.amount, checked.proof, where, deployment


def _network_status(source: _RunSource, address: str | None, keystore: Path) -> dict[str, object]:
    from node.identity import read_public

    target = address or read_public(keystore)[0]
    publication, final_epoch, _, claimed, deployment = _final_tree(source, target)
    cumulative = publication.tree.amounts.get(target.lower(), 0)
    return {
        "account": target,
        "run_id": source.run_id,
        "ledger": deployment.ledger,
        "rewards_epoch": publication.ledger_epoch,
        "final_epoch": final_epoch,
        "tree_id": publication.content_id,
        "cumulative": cumulative,
        "claimed": claimed,
        "claimable": max(0, cumulative - claimed),
    }


def _status(rpc: str, deployment: Path, rewards: Path, address: str | None, keystore: Path) -> dict[str, object]:
    from node.identity import read_public
    from node.ledger.deployment import Deployment
    from node.ledger.rewards_file import EpochRewards

    epoch_rewards = EpochRewards.load(rewards)
    target = address or read_public(keystore)[0]
    client = _reader(rpc, Deployment.load(deployment))
    final_epoch, final_root, _ = client.finalized()
    cumulative = epoch_rewards.tree.amounts.get(target.lower(), 0)
    claimed = client.claimed(target)
    is_final = final_root == epoch_rewards.tree.root
    client.close()
    return {
        "account": target,
        "rewards_epoch": epoch_rewards.epoch,
        "final_epoch": final_epoch,
        "file_is_final": is_final,
        "cumulative": cumulative,
        "claimed": claimed,
        "claimable": max(0, cumulative - claimed) if is_final else 0,
    }
