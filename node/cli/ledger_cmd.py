"""``hivenet ledger``: deploy the contracts and read their state.

    anvil &                                   # or any JSON-RPC node
    hivenet ledger deploy --rpc http://127.0.0.1:8545 --keystore node.key --password-file pw --dev-fund
    hivenet ledger status --rpc http://127.0.0.1:8545 --deployment deployment.json --json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from node.cli.common import user_errors
from node.cli.keys_cmd import KeystoreOpt, PasswordFileOpt, unlock

app = typer.Typer(no_args_is_help=True, help="Deploy the ledger contracts and show their state.")

RpcOpt = Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the chain (anvil, a testnet, a node).")]
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
        result = client.deploy(DeployConfig(challenge_window_s=challenge_window))
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
