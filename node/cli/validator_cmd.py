"""``hivenet validator``: run a validator, ask one what it is doing.

    hivenet validator start --run-id demo --initial-peers ADDR --rpc-url http://127.0.0.1:8545 \\
        --deployment deployment.json --validator-keystore v.key --validator-password-file v.pass \\
        --validator-snapshot-dir snapshots --validator-home validator
    hivenet validator status                     # the validator on 127.0.0.1:8471
    hivenet validator status --file validator/status.url --json

Settings merge like a node's (defaults < config file < HIVENET_<SECTION>_<KEY> < flags): the run, chain,
model, status and log keys are the node's own; ``[validator]`` holds the rest (docs/configuration.md).
docs/roles.md walks through running one by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from node.cli.common import graceful_signals, user_errors
from node.config.keys import KEYS
from node.config.options import key_options
from protocol.errors import HivenetError

if TYPE_CHECKING:
    from node.config import NodeConfig

app = typer.Typer(no_args_is_help=True, help="Run a validator: check receipts, settle epochs on the chain.")

# The node's keys a validator reads, and all of [validator].
SHARED_KEYS = (
    "swarm.run_id", "swarm.initial_peers", "swarm.listen", "swarm.identity", "swarm.target_batch_size",
    "train.n_layer", "train.n_embd", "train.block_size", "train.shard_store", "ledger.rpc_url", "ledger.deployment",
    "telemetry.broker", "telemetry.status_interval", "status.listen", "status.url_file",
    "log.level", "log.file", "log.json",
)
VALIDATOR_KEYS = SHARED_KEYS + tuple(k.dotted for k in KEYS if k.section == "validator")
DEFAULT_URL = "http://127.0.0.1:8471"


class ValidatorUnreachable(HivenetError, ConnectionError):
    """No validator answered at the status URL."""


@app.command()
@key_options(VALIDATOR_KEYS)
def start(
    flags: dict[str, Any],
    config: Annotated[Optional[Path], typer.Option(help="TOML config file (see `hivenet init`); default: $HIVENET_CONFIG.")] = None,
) -> None:
    """Run a validator in the foreground until Ctrl-C: collect receipts from the DHT, spot-check them, settle
    each epoch on the chain at --rpc-url (or watch and dispute), resume from --validator-home after a restart.

    The first SIGINT/SIGTERM stops gracefully (the epoch being checked finishes; exit 0); a second one forces.
    Every setting below is also a key of the config file and a HIVENET_<SECTION>_<KEY> variable.
    """
    with user_errors():
        from node.config import config_path, load_config

        cfg = load_config(config_path(config, os.environ), os.environ, flags)
        run_validator(cfg)


def run_validator(cfg: NodeConfig) -> None:
    """Check the chain access (nothing written on failure), then run the daemon with graceful signals."""
    from node.logfmt import setup_logging
    from node.validator.access import ChainSettings, open_chain_access
    from node.validator.daemon import DaemonSettings, ValidatorDaemon

    setup_logging(cfg.log.level, str(cfg.log.file) if cfg.log.file else None, cfg.log.json)
    v = cfg.validator
    access = open_chain_access(ChainSettings(cfg.rpc_url, cfg.deployment, v.keystore, v.password_file))
    daemon = ValidatorDaemon(DaemonSettings(v, cfg.swarm, cfg.telemetry, validator_http(cfg), cfg.train), access)
    with graceful_signals(daemon.request_stop):
        daemon.run()


def validator_http(cfg: NodeConfig) -> Any:
    """The node's endpoint settings, on the validator's own default port when the listen key was left alone."""
    import dataclasses

    from node.config.keys import BY_DOTTED
    from node.validator.config import DEFAULT_STATUS_PORT

    if cfg.values["status.listen"] != BY_DOTTED["status.listen"].default or cfg.http.listen is None:
        return cfg.http
    return dataclasses.replace(cfg.http, listen=(cfg.http.listen[0], DEFAULT_STATUS_PORT))


def fetch_validator_status(url: str, timeout: float = 3.0) -> dict[str, Any]:
    from node.cli.status_cmd import NodeUnreachable, fetch_status

    try:
        doc = fetch_status(url, timeout)
    except NodeUnreachable:
        raise ValidatorUnreachable(
            f"no validator answers at {url}; start one with `hivenet validator start`, or point --url/--file at its "
            "endpoint (it logs it at start: 'status endpoint on ...')") from None
    if doc.get("role") != "validator":
        raise ValidatorUnreachable(f"{url} is a node's endpoint, not a validator's; use `hivenet status` for it, "
                                   "or point --url/--file at the validator")
    return doc


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


STATUS_KEYS = ("run_id", "address", "mode", "daemon_stage", "stage", "next_epoch", "epochs_settled", "last_settled_epoch",
               "last_root", "receipts", "receipts_checked", "receipts_rejected", "pending_posts", "posted_not_final",
               "disputes", "chain_reachable", "chain_latest_epoch", "finalized_epoch", "telemetry_connected",
               "uptime_s", "error")


@app.command()
def status(
    url: Annotated[str, typer.Option(help="The validator's status endpoint.")] = DEFAULT_URL,
    file: Annotated[Optional[Path], typer.Option(help="Read the URL from this file (status.url_file of the validator).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the /status document as JSON.")] = False,
) -> None:
    """Show what a running validator is doing (stage, epochs settled, receipts checked and rejected, last root,
    chain reachable), from its /status endpoint."""
    with user_errors():
        if file is not None:
            from node.telemetry.http import read_url_file

            url = read_url_file(file)
        doc = fetch_validator_status(url)
    if as_json:
        typer.echo(json.dumps(doc))
        return
    for key in STATUS_KEYS:
        typer.echo(f"{key:20} {_fmt(doc.get(key))}")
