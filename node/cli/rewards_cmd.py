"""``hivenet rewards``: what an account earned, and claiming it (anyone may relay the claim).

From the network (the machine needs only its keystore, the RPC URL, the deployment and a peer of the run):

    hivenet rewards show --run-id R --account 0x... --initial-peers ADDR --rpc-url URL --deployment deployment.json
    hivenet rewards claim --run-id R --keystore node.key --password-file pw --rpc-url URL --deployment deployment.json \\
        --initial-peers ADDR

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
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from node.cli.common import user_errors
from node.cli.keys_cmd import KeystoreOpt, PasswordFileOpt, unlock
from node.cli.ledger_cmd import DeploymentOpt, OutboxOpt, ledger_config
from protocol.errors import ConfigError

if TYPE_CHECKING:
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
FETCH_TIMEOUT_S = 120.0  # finding and downloading the tree; each peer has its own shorter limit


@app.command()
def show(
    rpc: RpcOpt,
    rewards: RewardsOpt = None,
    run_id: RunIdOpt = None,
    initial_peers: PeersOpt = None,
    address: Annotated[Optional[str], typer.Option(
        "--address", "--account", help="Account to show (default: the keystore's).")] = None,
    deployment: DeploymentOpt = Path("deployment.json"),
    keystore: KeystoreOpt = Path("node.key"),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the account's cumulative reward, what it claimed, and what it can claim now."""
    with user_errors():
        _one_source(rewards, run_id, initial_peers)
        if run_id is not None:
            info = _network_status(rpc, deployment, run_id, initial_peers or [], address, keystore)
        else:
            assert rewards is not None
            info = _status(rpc, deployment, rewards, address, keystore)
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
    deployment: DeploymentOpt = Path("deployment.json"),
    keystore: KeystoreOpt = Path("node.key"),
    password_file: PasswordFileOpt = None,
    outbox: OutboxOpt = None,
) -> None:
    """Claim up to the account's cumulative amount; the keystore's account pays the gas."""
    with user_errors():
        from node.ledger.client import LedgerClient
        from node.ledger.deployment import Deployment
        from node.ledger.rewards_file import EpochRewards

        _one_source(rewards, run_id, initial_peers)
        identity = unlock(keystore, password_file)
        target = account or identity.address
        dep = Deployment.load(deployment)
        if run_id is not None:
            # Everything is verified before the sending client (and its outbox file) exists.
            amount, proof, where = _network_claim(rpc, dep, run_id, initial_peers or [], target)
        else:
            assert rewards is not None
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


def _final_tree(rpc: str, deployment: Deployment, run_id: str, initial_peers: list[str],
                account: str | None) -> tuple[RewardsPublication, int, bytes, int]:
    """The latest finalized tree of ``run_id`` from the network, checked against the chain; with the final
    epoch, its root and what ``account`` claimed (0 without an account)."""
    from node.swarm.config import SwarmConfig
    from node.swarm.dht import start_dht
    from node.swarm.rewards_board import RewardsBoard, RewardsPeer
    from protocol.errors import LedgerError
    from protocol.rewards_publication import check_final

    reader = _reader(rpc, deployment)
    try:
        final_epoch, final_root, _ = reader.finalized()
        claimed = reader.claimed(account) if account is not None else 0
    finally:
        reader.close()
    if final_epoch == 0:
        raise LedgerError("no epoch of this ledger is final yet; wait for the challenge window after a settlement")
    # A client-mode DHT: it reads the announcements and opens streams, and stores nobody's records.
    dht = start_dht(SwarmConfig(run_id=run_id, initial_peers=tuple(initial_peers), extra_dht_options={"client_mode": True}))
    try:
        peer = RewardsPeer(RewardsBoard(dht, run_id), serve=False)
        try:
            publication = peer.fetch(final_epoch, lambda p: check_final(p, final_epoch, final_root, run_id),
                                     prefer_root=final_root, timeout=FETCH_TIMEOUT_S)
        finally:
            peer.close()
    finally:
        dht.shutdown()
    return publication, final_epoch, final_root, claimed


def _network_claim(rpc: str, deployment: Deployment, run_id: str, initial_peers: list[str],
                   account: str) -> tuple[int, list[bytes], str]:
    from protocol.rewards_publication import claim_proof

    publication, final_epoch, final_root, _ = _final_tree(rpc, deployment, run_id, initial_peers, None)
    checked = claim_proof(publication, account, final_epoch, final_root, run_id)
    return checked.amount, checked.proof, f"tree {publication.content_id[:16]}… of ledger epoch {final_epoch}"


def _network_status(rpc: str, deployment: Path, run_id: str, initial_peers: list[str], address: str | None,
                    keystore: Path) -> dict[str, object]:
    from node.identity import read_public
    from node.ledger.deployment import Deployment

    target = address or read_public(keystore)[0]
    dep = Deployment.load(deployment)
    publication, final_epoch, _, claimed = _final_tree(rpc, dep, run_id, initial_peers, target)
    cumulative = publication.tree.amounts.get(target.lower(), 0)
    return {
        "account": target,
        "run_id": run_id,
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
