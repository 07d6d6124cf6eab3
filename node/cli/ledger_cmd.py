"""``hivenet ledger``: deploy the contracts and read their state.

    anvil &                                   # or any JSON-RPC node
    hivenet ledger deploy --rpc http://127.0.0.1:8545 --keystore node.key --password-file pw --dev-fund
    hivenet ledger status --rpc http://127.0.0.1:8545 --deployment deployment.json --json
    hivenet ledger fund --amount 100000 --rpc URL --keystore node.key --password-file pw      # the deployer
    hivenet ledger grant-validator --address 0x... --rpc URL --keystore node.key --password-file pw
    hivenet ledger faucet --to 0x... --to 0x... --eth 10 --rpc URL                           # anvil only
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from node.cli.common import user_errors
from node.cli.keys_cmd import KeystoreOpt, PasswordFileOpt, unlock

app = typer.Typer(no_args_is_help=True, help="Deploy the ledger contracts and show their state.")

RpcOpt = Annotated[str, typer.Option("--rpc", "--rpc-url", help="JSON-RPC URL of the chain (anvil, a testnet, a node).")]
DeploymentOpt = Annotated[Path, typer.Option("--deployment", help="Deployment file (written by `ledger deploy`).")]
OutboxOpt = Annotated[
    Optional[Path], typer.Option("--outbox", help="Transaction outbox (SQLite); default: <keystore>.outbox.sqlite.")
]


def ledger_config(rpc: str, outbox: Path | None, keystore: Path | None):  # type: ignore[no-untyped-def]
    from node.ledger.config import LedgerConfig

    if outbox is None and keystore is not None:
        outbox = keystore.with_name(keystore.name + ".outbox.sqlite")
    return LedgerConfig(rpc_url=rpc, outbox_path=outbox)


@app.command()
def deploy(
    rpc: RpcOpt,
    deployment: DeploymentOpt = Path("deployment.json"),
    keystore: KeystoreOpt = Path("node.key"),
    password_file: PasswordFileOpt = None,
    outbox: OutboxOpt = None,
    challenge_window: Annotated[int, typer.Option(help="Seconds a posted epoch root can be disputed.")] = 3600,
    root_quorum: Annotated[int, typer.Option(
        help="Validators that must post the same epoch root before it can be final; 1 only for one validator.")] = 1,
    max_epoch_increase: Annotated[int, typer.Option(
        help="Most one epoch may raise the cumulative reward total by (base units); default: only the pool bounds it.")
    ] = 2**128 - 1,
    dev_fund: Annotated[bool, typer.Option(help="Fund the deployer from the node's unlocked dev account (anvil).")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Deploy RewardToken, NodeRegistry, ShardRegistry and ContributionLedger; write the deployment file."""
    with user_errors():
        from node.ledger.chain import Chain
        from node.ledger.client import LedgerClient
        from node.ledger.config import DeployConfig
        from protocol.errors import DeploymentError

        if deployment.exists():
            raise DeploymentError(f"{deployment} exists; choose another --deployment or remove it")
        identity = unlock(keystore, password_file)
        config = ledger_config(rpc, outbox, keystore)
        chain = Chain.connect(config)
        if dev_fund:
            chain.faucet(identity.address, 10**20)
        client = LedgerClient.open(config, identity.account, chain=chain)
        result = client.deploy(DeployConfig(challenge_window_s=challenge_window, root_quorum=root_quorum,
                                            max_epoch_increase=max_epoch_increase))
        client.close()
        result.save(deployment)
        typer.echo(json.dumps(result.__dict__) if as_json else f"deployed on chain {result.chain_id}; wrote {deployment}")


@app.command()
def status(
    rpc: RpcOpt,
    deployment: DeploymentOpt = Path("deployment.json"),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show epochs, funding and claims of a deployment."""
    with user_errors():
        from eth_account import Account

        from node.ledger.client import LedgerClient
        from node.ledger.config import LedgerConfig
        from node.ledger.deployment import Deployment

        # Reads need no key: a throwaway account and an in-memory outbox.
        client = LedgerClient.open(LedgerConfig(rpc_url=rpc), Account.create(), Deployment.load(deployment))
        epoch, root, total = client.finalized()
        funded, claimed = client.totals()
        info = {
            "chain_id": client.chain.chain_id(),
            "block": client.chain.call("block", lambda: client.chain.w3.eth.block_number),
            "ledger": client.deployment.ledger if client.deployment else None,
            "latest_epoch": client.latest_epoch(),
            "final_epoch": epoch,
            "final_root": "0x" + root.hex(),
            "final_cumulative_total": str(total),
            "funded": str(funded),
            "claimed": str(claimed),
        }
        client.close()
        if as_json:
            typer.echo(json.dumps(info))
        else:
            for key, value in info.items():
                typer.echo(f"{key:<24}{value}")


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def open_client(rpc: str, deployment: Path, keystore: Path, password_file: Path | None, outbox: Path | None):  # type: ignore[no-untyped-def]
    """The keystore's client on the deployment (its outbox next to the keystore unless ``outbox``)."""
    from node.ledger.client import LedgerClient
    from node.ledger.deployment import Deployment

    loaded = Deployment.load(deployment)
    identity = unlock(keystore, password_file)
    return LedgerClient.open(ledger_config(rpc, outbox, keystore), identity.account, loaded)


@app.command()
def fund(
    rpc: RpcOpt,
    amount: Annotated[str, typer.Option("--amount", help="Whole reward tokens (decimals ok, 18 places) to mint and fund.")],
    deployment: DeploymentOpt = Path("deployment.json"),
    keystore: KeystoreOpt = Path("node.key"),
    password_file: PasswordFileOpt = None,
    outbox: OutboxOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mint reward tokens to the deployer's account and move them into the reward pool (the deployer's keystore)."""
    with user_errors():
        from node.ledger.operator import fund_pool, parse_amount

        wei = parse_amount(amount, "--amount")
        client = open_client(rpc, deployment, keystore, password_file, outbox)
        try:
            funded = fund_pool(client, wei)
        finally:
            client.close()
        info = {"funder": client.address, "amount": str(wei), "funded": str(funded)}
        typer.echo(json.dumps(info) if as_json else f"funded {amount} tokens; the pool's funded total is {funded} (base units)")


@app.command("grant-validator")
def grant_validator(
    rpc: RpcOpt,
    address: Annotated[list[str], typer.Option("--address", help="Account to make validator (repeatable).")],
    deployment: DeploymentOpt = Path("deployment.json"),
    keystore: KeystoreOpt = Path("node.key"),
    password_file: PasswordFileOpt = None,
    outbox: OutboxOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Grant VALIDATOR_ROLE on NodeRegistry, ShardRegistry and ContributionLedger (the admin's keystore)."""
    with user_errors():
        from node.ledger.operator import checked_address, grant_validators, is_validator

        accounts = [checked_address(a, "--address") for a in address]
        client = open_client(rpc, deployment, keystore, password_file, outbox)
        try:
            grant_validators(client, accounts)
            roles = {a: is_validator(client, a) for a in accounts}
        finally:
            client.close()
        if as_json:
            typer.echo(json.dumps({"validators": roles}))
        else:
            for account, held in roles.items():
                typer.echo(f"{account} holds VALIDATOR_ROLE on {', '.join(n for n, ok in held.items() if ok)}")


@app.command()
def faucet(
    rpc: RpcOpt,
    to: Annotated[list[str], typer.Option("--to", help="Account to send gas money to (repeatable).")],
    eth: Annotated[str, typer.Option("--eth", help="ETH per account (decimals ok).")] = "10",
    deployment: DeploymentOpt = Path("deployment.json"),
    as_json: JsonOpt = False,
) -> None:
    """Send ETH for gas from the chain's unlocked dev account (anvil only; no keystore needed).

    A deployment file, when one is there, must belong to this chain (a guard against the wrong --rpc)."""
    with user_errors():
        from node.ledger.chain import Chain
        from node.ledger.config import LedgerConfig
        from node.ledger.deployment import Deployment
        from node.ledger.operator import checked_address, dev_faucet, parse_amount
        from protocol.errors import DeploymentError

        accounts = [checked_address(a, "--to") for a in to]
        wei = parse_amount(eth, "--eth")
        chain = Chain.connect(LedgerConfig(rpc_url=rpc))
        if deployment.exists():
            expected, actual = Deployment.load(deployment).chain_id, chain.chain_id()
            if expected != actual:
                raise DeploymentError(f"{deployment} is for chain {expected}, but {rpc} is chain {actual}; fix --rpc")
        balances = dev_faucet(chain, accounts, wei)
        if as_json:
            typer.echo(json.dumps({"sent_wei": str(wei), "balances": {a: str(b) for a, b in balances.items()}}))
        else:
            for account, balance in balances.items():
                typer.echo(f"sent {eth} ETH to {account}; balance {balance} wei")
