"""``hivenet validator``: run a validator, ask one what it is doing.

    hivenet validator start --run-id demo --initial-peers ADDR --rpc-url http://127.0.0.1:8545 \\
        --deployment deployment.json --validator-keystore v.key --validator-password-file v.pass \\
        --validator-snapshot-dir snapshots --validator-home validator
    hivenet validator start --run-id R --manifest-from-dht --fetch-shards --shard-store shards \\
        --initial-peers ADDR --rpc-url URL --deployment deployment.json --validator-keystore v.key ...
    hivenet validator status                     # the validator on 127.0.0.1:8471
    hivenet validator status --file validator/status.url --json

Settings merge like a node's (defaults < config file < HIVENET_<SECTION>_<KEY> < flags): the run, chain,
model, status and log keys are the node's own; ``[validator]`` holds the rest (docs/configuration.md).
docs/roles.md walks through running one by hand.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from node.cli.common import graceful_signals, user_errors
from node.config.keys import KEYS
from node.config.options import key_options
from protocol.errors import ConfigError, HivenetError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from node.config import NodeConfig
    from protocol.run_manifest import SignedRunManifest

app = typer.Typer(no_args_is_help=True, help="Run a validator: check receipts, settle epochs on the chain.")

# The node's keys a validator reads, and all of [validator].
SHARED_KEYS = (
    "swarm.run_id", "swarm.initial_peers", "swarm.listen", "swarm.identity", "swarm.target_batch_size",
    "train.n_layer", "train.n_embd", "train.block_size", "train.shard_store", "ledger.rpc_url", "ledger.deployment",
    "telemetry.broker", "telemetry.status_interval", "status.listen", "status.url_file",
    "log.level", "log.file", "log.json",
    # joining by the run's manifest, and its shards fetched from the network, as a trainer does
    "run.manifest", "run.manifest_from_dht", "run.manifest_creator", "run.manifest_timeout",
    "train.fetch_shards", "train.shard_cache_mb",
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
    cfg, manifest = join_validator_run(cfg, os.environ)
    v = cfg.validator
    access = open_chain_access(ChainSettings(cfg.rpc_url, cfg.deployment, v.keystore, v.password_file))
    daemon = ValidatorDaemon(DaemonSettings(v, cfg.swarm, cfg.telemetry, validator_http(cfg), cfg.train, manifest),
                             access)
    with graceful_signals(daemon.request_stop):
        daemon.run()


def join_validator_run(cfg: NodeConfig, environ: Mapping[str, str]) -> tuple[NodeConfig, SignedRunManifest | None]:
    """``cfg`` with the run manifest applied (as ``hivenet node start`` does) and the validator's spot-check
    probability taken from it; ConfigError when ``--validator-receipt-probability`` says otherwise."""
    from node.cli.node_cmd import explicit_settings, join_run

    explicit = explicit_settings(cfg, environ)
    cfg, signed = join_run(cfg, environ)
    if signed is None:
        return cfg, None
    chain = signed.manifest.chain
    if chain is not None and cfg.deployment is not None and cfg.deployment.exists():
        from node.ledger.deployment import Deployment

        d = Deployment.load(cfg.deployment)
        if (d.chain_id, d.ledger.lower()) != (chain.chain_id, chain.ledger):
            raise ConfigError(f"the manifest of run {signed.manifest.run_id!r} names ledger {chain.ledger} on chain "
                              f"{chain.chain_id}, {cfg.deployment} has {d.ledger.lower()} on chain {d.chain_id}; use "
                              "the run's deployment file")
    want = signed.manifest.receipt_probability
    have = cfg.validator.receipt_probability
    if "validator.receipt_probability" in explicit and have != want:
        raise ConfigError(f"{explicit['validator.receipt_probability']} sets validator.receipt_probability = {have!r}, "
                          f"the manifest of run {signed.manifest.run_id!r} {want!r}; drop it (the manifest sets it)")
    return dataclasses.replace(cfg, validator=dataclasses.replace(cfg.validator, receipt_probability=want)), signed


def validator_http(cfg: NodeConfig) -> Any:
    """The node's endpoint settings, on the validator's own default port when the listen key was left alone."""
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
