"""The ``hivenet`` command: a typer app made of one sub-app per command group.

Run ``hivenet --help`` for the groups; each lives in its own module here.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="hivenet",
    help="Decentralized training: peers train one model together and are paid for verified work and data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_groups() -> None:
    # Imported here, not at module top, so `hivenet --help` stays fast and a
    # group's heavy imports (torch, hivemind, web3) load only when it runs.
    from node.cli import node_cmd, testnet_cmd

    app.add_typer(node_cmd.app, name="node")
    app.add_typer(testnet_cmd.app, name="testnet")
    from node.cli import shard_cmd

    app.add_typer(shard_cmd.app, name="shard")
    from node.cli import keys_cmd, ledger_cmd, rewards_cmd

    app.add_typer(keys_cmd.app, name="keys")
    app.add_typer(ledger_cmd.app, name="ledger")
    app.add_typer(rewards_cmd.app, name="rewards")
    from node.cli import run_cmd

    app.add_typer(run_cmd.app, name="run")
    from node.cli import validator_cmd

    app.add_typer(validator_cmd.app, name="validator")
    from node.cli import doctor_cmd, init_cmd, monitor_cmd, status_cmd

    app.command(name="init")(init_cmd.init)
    app.command(name="status")(status_cmd.status)
    app.command(name="monitor")(monitor_cmd.monitor)
    app.command(name="doctor")(doctor_cmd.doctor)


def main() -> None:
    _register_groups()
    app()
