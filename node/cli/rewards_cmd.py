"""``hivenet rewards``: what an account earned, and claiming it (anyone may relay the claim).

    hivenet rewards show --rpc URL --deployment deployment.json --rewards epoch-7.json --address 0x...
    hivenet rewards claim --rpc URL --deployment deployment.json --rewards epoch-7.json --keystore node.key
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from node.cli.common import user_errors
from node.cli.keys_cmd import KeystoreOpt, PasswordFileOpt, unlock
from node.cli.ledger_cmd import DeploymentOpt, OutboxOpt, RpcOpt, ledger_config

app = typer.Typer(no_args_is_help=True, help="Show and claim rewards.")

RewardsOpt = Annotated[Path, typer.Option("--rewards", help="Rewards file of the epoch (published by validators).")]


@app.command()
def show(
    rpc: RpcOpt,
    rewards: RewardsOpt,
    address: Annotated[Optional[str], typer.Option(help="Account to show (default: the keystore's).")] = None,
    deployment: DeploymentOpt = Path("deployment.json"),
    keystore: KeystoreOpt = Path("node.key"),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the account's cumulative reward, what it claimed, and what it can claim now."""
    with user_errors():
        info = _status(rpc, deployment, rewards, address, keystore)
        if as_json:
            typer.echo(json.dumps({k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in info.items()}))
        else:
            for key, value in info.items():
                typer.echo(f"{key:<18}{value}")


@app.command()
def claim(
    rpc: RpcOpt,
    rewards: RewardsOpt,
    account: Annotated[Optional[str], typer.Option("--for", help="Claim for this account (relay); default: own.")] = None,
    deployment: DeploymentOpt = Path("deployment.json"),
    keystore: KeystoreOpt = Path("node.key"),
    password_file: PasswordFileOpt = None,
    outbox: OutboxOpt = None,
) -> None:
    """Claim up to the cumulative amount in the rewards file; the keystore's account pays the gas."""
    with user_errors():
        from node.ledger.client import LedgerClient
        from node.ledger.deployment import Deployment
        from node.ledger.rewards_file import EpochRewards

        identity = unlock(keystore, password_file)
        epoch_rewards = EpochRewards.load(rewards)
        target = account or identity.address
        client = LedgerClient.open(ledger_config(rpc, outbox, keystore), identity.account, Deployment.load(deployment))
        amount = epoch_rewards.tree.amount(target)
        sent = client.claim(target, amount, epoch_rewards.tree.proof(target))
        balance = client.token_balance(target)
        client.close()
        typer.echo(f"claimed for {target} up to {amount} in tx {sent.tx_hash}; balance now {balance}")


def _status(rpc: str, deployment: Path, rewards: Path, address: str | None, keystore: Path) -> dict[str, object]:
    from eth_account import Account

    from node.identity import read_public
    from node.ledger.client import LedgerClient
    from node.ledger.config import LedgerConfig
    from node.ledger.deployment import Deployment
    from node.ledger.rewards_file import EpochRewards

    epoch_rewards = EpochRewards.load(rewards)
    target = address or read_public(keystore)[0]
    client = LedgerClient.open(LedgerConfig(rpc_url=rpc), Account.create(), Deployment.load(deployment))
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
