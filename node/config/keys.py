"""Every configuration key of a node, declared once.

A key has a section and a name (``[train] batch_size``), a type, a help text, bounds or choices, and
the place its value lands in the built :class:`~node.config.build.NodeConfig` (``into``). Everything
else is generated from these declarations: the file `hivenet init` writes (``template``), the
``HIVENET_<SECTION>_<KEY>`` variables and file parsing (``sources``), the flags of
``hivenet node start`` (``options``) and docs/configuration.md (``docs``).

Defaults are not declared here: a key reads its default from the component dataclass field it fills
(``SwarmConfig.matchmaking_time``), where the comment says why that value. The components are the lower
layer (tests, the testnet and benchmarks build them directly), so they keep their defaults; this layer
only adds how a user sets them. A key declares a default only where its field has none that can be read
without building something: the run id, the chain, and the model shape (``GPTConfig`` lives with torch,
which this module must not import).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.config.log import LogConfig
from node.ledger.config import LedgerConfig
from node.run.config import RunConfig, address_or_empty
from node.swarm.config import SwarmConfig
from node.telemetry.config import HttpConfig, TelemetryConfig, parse_broker_url, parse_host_port
from node.train.config import TrainConfig
from node.validator.config import MODES, ValidatorDaemonConfig

ENV_PREFIX = "HIVENET_"
CONFIG_ENV = "HIVENET_CONFIG"  # path of the config file when --config is not given
DEFAULT_FILE = Path("hivenet.toml")

# The component behind the first part of a key's ``into`` path; other first parts are fields of NodeConfig
# itself. ``train`` is built on demand by NodeConfig.train().
COMPONENTS: dict[str, type] = {
    "swarm": SwarmConfig, "telemetry": TelemetryConfig, "http": HttpConfig, "log": LogConfig, "train": TrainConfig,
    "run": RunConfig,
    "validator": ValidatorDaemonConfig,
}


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Form:
    """How a key's value (what a file, variable or flag holds) maps to the value of the field it fills."""

    decode: Callable[[Any], Any]  # key value -> field value; raises ConfigError on a malformed one
    encode: Callable[[Any], Any]  # field value -> key value (turns the field's default into the key's)
    example: str | None = None  # a valid value other than the default, for the docs and the tests


AS_TUPLE = Form(decode=tuple, encode=list)
BROKER_URL = Form(decode=lambda url: parse_broker_url(url) if url else None, encode=lambda b: b.url if b else "",
                  example="mqtt://broker.lan:1883")
HOST_PORT = Form(decode=lambda hp: parse_host_port(hp) if hp else None,
                 encode=lambda hp: f"{hp[0]}:{hp[1]}" if hp else "", example="0.0.0.0:8470")
ADDRESS_OR_EMPTY = Form(decode=address_or_empty, encode=lambda a: a,
                        example="0x00000000000000000000000000000000000000aa")
EMPTY_IS_NONE = Form(decode=lambda s: s or None, encode=lambda v: v or "", example="http://127.0.0.1:8545")


@dataclass(frozen=True)
class Key:
    """One configuration key; ``default`` is filled in from the field named by ``into`` unless given."""

    section: str
    name: str
    kind: type  # int | float | str | bool | list (of str) | Path
    help: str
    into: str  # where the value lands: "swarm.identity_path" is NodeConfig.swarm.identity_path
    default: Any = UNSET  # only for a field without a readable default; None: an optional path that is unset
    form: Form | None = None  # when the field holds something else than the key (a tuple, a parsed URL)
    minimum: float | None = None
    below: float | None = None  # exclusive upper bound
    choices: tuple[str, ...] = ()
    normalize: Callable[[str], str] | None = None  # applied to every source's value before the checks
    flag: str = ""  # "--<name>" unless the name alone would be ambiguous

    def __post_init__(self) -> None:
        if not self.flag:
            object.__setattr__(self, "flag", "--" + self.name.replace("_", "-"))
        field_default = _field_default(self.into)
        if self.default is UNSET:
            if field_default is UNSET:
                raise TypeError(f"{self.dotted}: {self.into} has no default of its own; declare one here")
            object.__setattr__(self, "default", self.form.encode(field_default) if self.form else field_default)
        elif field_default is not UNSET:
            raise TypeError(f"{self.dotted}: the default lives in the field {self.into}; do not repeat it here")

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section}_{self.name}".upper()

    @property
    def param(self) -> str:
        """The Python parameter name of the key's flag (unique across sections)."""
        return f"{self.section}_{self.name}"

    def decode(self, value: Any) -> Any:
        """The key's checked value as its field holds it."""
        return self.form.decode(value) if self.form else value


def _field_default(into: str) -> Any:
    """The default of the field at ``into``, or UNSET where it has none that can be read without building
    anything (a required field, a NodeConfig field, a nested config made by a function)."""
    head, *path = into.split(".")
    owner: Any = COMPONENTS.get(head)
    if owner is None:
        return UNSET
    for depth, name in enumerate(path):
        by_name = {f.name: f for f in dataclasses.fields(owner)}
        if name not in by_name:
            raise TypeError(f"{into}: {owner.__name__} has no field {name}")
        f = by_name[name]
        if depth < len(path) - 1:
            if not dataclasses.is_dataclass(f.default_factory):
                return UNSET
            owner = f.default_factory
        elif f.default is not dataclasses.MISSING:
            return f.default
        elif f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
    return UNSET


# Checked against node.swarm.robust.AGGREGATORS and node.swarm.codecs.COMPRESSIONS by the tests: those
# modules import torch and hivemind, which `hivenet init` and `--help` should not wait for.
AGGREGATORS = ("centered-clip", "trimmed-mean", "median", "mean")
COMPRESSIONS = ("none", "float16", "uint8")

KEYS: tuple[Key, ...] = (
    Key("swarm", "run_id", str, "Training run to join; peers of other runs never average with this one.",
        "swarm.run_id", default="demo"),
    Key("swarm", "initial_peers", list, "Multiaddrs of running peers to join through; empty starts a new swarm.",
        "swarm.initial_peers", form=AS_TUPLE),
    Key("swarm", "listen", list,
        "Multiaddrs to listen on; use /ip4/0.0.0.0/tcp/PORT to accept peers from other machines.",
        "swarm.listen", form=AS_TUPLE),
    Key("swarm", "identity", Path, "p2p identity key file, created if missing; keeps the peer id across restarts.",
        "swarm.identity_path"),
    Key("swarm", "expected_peers", int, "Wait until this many peers of the run are visible before training.",
        "swarm.expected_peers", minimum=1),
    Key("swarm", "peer_wait_timeout", float, "Seconds to wait for expected_peers.", "swarm.peer_wait_timeout", minimum=0),
    Key("swarm", "target_batch_size", int, "Samples the swarm accumulates per collaborative epoch.",
        "swarm.target_batch_size", minimum=1),
    Key("swarm", "matchmaking_time", float,
        "Seconds to gather an averaging group; below about 3 peers miss each other's rounds.",
        "swarm.matchmaking_time", minimum=0),
    Key("swarm", "averaging_timeout", float, "Seconds before an all-reduce round is abandoned.",
        "swarm.averaging_timeout", minimum=0),
    Key("swarm", "aggregator", str, "How gradients are combined; centered-clip is robust to a minority of attackers.",
        "swarm.aggregator", choices=AGGREGATORS),
    Key("swarm", "worker_momentum", float,
        "Send momentum b*m+(1-b)*g instead of the gradient (0: off); robust rules need it against subtle attacks.",
        "swarm.worker_momentum", minimum=0, below=1),
    Key("swarm", "min_group_size", int,
        "Smallest gradient-averaging group (3+ so robust rules have an honest majority to find).",
        "swarm.min_group_size", minimum=2),
    Key("train", "batch_size", int, "Samples per local step.", "train.batch_size", minimum=1),
    Key("train", "max_epochs", int, "Stop after this many collaborative epochs.", "train.max_epochs", minimum=0),
    Key("train", "lr", float, "Peak learning rate.", "train.lr", minimum=0),
    Key("train", "device", str, "Where to train; auto picks CUDA when torch sees a GPU.", "train.device",
        choices=("auto", "cpu", "cuda")),
    Key("train", "threads", int, "torch CPU threads for this peer.", "train.threads", minimum=1),
    Key("train", "n_layer", int, "Transformer blocks (every peer of a run must agree).", "train.model.n_layer",
        default=4, minimum=1),
    Key("train", "n_embd", int, "Model width (every peer of a run must agree).", "train.model.n_embd",
        default=256, minimum=1),
    Key("train", "block_size", int, "Context length in bytes.", "train.model.block_size", default=128, minimum=1),
    Key("train", "eval_every", int, "Evaluate held-out loss every N epochs (0: only at start and end).",
        "train.eval_every", minimum=0),
    Key("train", "mode", str,
        "sync: average gradients every epoch; diloco: average the parameter change every inner_steps local steps.",
        "train.mode", choices=("sync", "diloco")),
    Key("train", "inner_steps", int, "diloco: local steps per round (averaging traffic falls by about this factor).",
        "train.diloco.inner_steps", minimum=1),
    Key("train", "outer_lr", float, "diloco: outer SGD learning rate.", "train.diloco.outer_lr", minimum=0),
    Key("train", "outer_momentum", float, "diloco: outer Nesterov momentum.", "train.diloco.outer_momentum",
        minimum=0, below=1),
    Key("train", "overlap", bool, "diloco: average a round while the next one computes.", "train.diloco.overlap"),
    Key("train", "compression", str, "diloco: what pseudo-gradients travel as.", "train.diloco.compression",
        choices=COMPRESSIONS),
    Key("train", "error_feedback", bool, "diloco: carry what compression dropped into the next round.",
        "train.diloco.error_feedback"),
    Key("train", "checkpoint", Path, "Checkpoint file; written every few epochs and on stop, resumed from on start.",
        "train.checkpoint_path"),
    Key("train", "shard_store", Path, "Train on the shards vetted for the run in this store.", "train.shard_store"),
    Key("train", "fresh", bool, "Ignore (never delete) an existing checkpoint.", "train.fresh"),
    Key("train", "metrics", Path, "Append JSON-lines metrics here.", "train.metrics_path"),
    Key("telemetry", "broker", str,
        'MQTT broker URL; "" turns telemetry off. Without a broker the node trains and says so once.',
        "telemetry.broker", form=BROKER_URL),
    Key("telemetry", "status_interval", float, "Seconds between retained status updates.",
        "telemetry.status_interval_s", minimum=0.05),
    Key("status", "listen", str,
        'host:port of the /status and /metrics endpoint (port 0: any free one); "" turns it off.',
        "http.listen", form=HOST_PORT, flag="--status-listen"),
    Key("status", "url_file", Path, "Write the endpoint's URL here (read by `hivenet status --file`).",
        "http.url_file", flag="--status-url-file"),
    Key("receipts", "keystore", Path,
        "Sign work receipts with this keystore's Ethereum account (the reward address); unset: no receipts.",
        "train.keystore"),
    Key("receipts", "password_file", Path, "File holding the keystore password (first line).", "train.password_file"),
    Key("receipts", "snapshot_dir", Path,
        "Write epoch-start parameters here (content-addressed) so validators can recompute receipts.",
        "train.snapshot_dir"),
    Key("ledger", "rpc_url", str, 'JSON-RPC URL of the chain; "" means the embedded chain (nothing to reach).',
        "rpc_url", default=EMPTY_IS_NONE.encode(LedgerConfig.rpc_url), form=EMPTY_IS_NONE),
    Key("ledger", "deployment", Path, "Deployment file of the contracts (written by `hivenet ledger deploy`).",
        "deployment", default=None),
    Key("log", "level", str, "Log level (any case).", "log.level", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        normalize=str.upper, flag="--log-level"),
    Key("log", "file", Path, "Write logs here instead of stderr.", "log.file", flag="--log-file"),
    Key("log", "json", bool, "One JSON object per log line (for log shippers).", "log.json", flag="--log-json"),
    # The run manifest (node.run): where a node gets the settings every peer of its run shares.
    Key("run", "manifest", Path,
        "Signed run manifest file (`hivenet run create`): the run's model, corpus, batch, schedule and mode; "
        "settings that contradict it are refused.", "run.manifest"),
    Key("run", "manifest_from_dht", bool,
        "Fetch the manifest of --run-id from the DHT through --initial-peers (verified by hash and signature).",
        "run.manifest_from_dht"),
    Key("run", "manifest_creator", str,
        'Accept only a manifest signed by this Ethereum address ("": any, if only one creator serves the run).',
        "run.manifest_creator", form=ADDRESS_OR_EMPTY),
    Key("run", "manifest_timeout", float, "Seconds to wait for the run's manifest in the DHT.",
        "run.manifest_timeout", minimum=0),
    # Shards from the network (`hivenet shard serve` on the contributors' side).
    Key("train", "fetch_shards", bool,
        "Fetch the run's shards from the peers that offer them into shard_store, vet them here, serve them on, "
        "and train on those that pass.", "train.fetch_shards"),
    Key("train", "shard_cache_mb", int,
        "Cap in MB on the shards kept in shard_store when fetching; other runs' shards are evicted first.",
        "train.shard_cache_mb", minimum=1),
    # [validator]: read by `hivenet validator start` only; it shares the run, chain, model, status and log keys above.
    Key("validator", "home", Path, "The validator's directory: outbox, settled epochs, verdicts; a restart resumes from it.",
        "validator.home", flag="--validator-home"),
    Key("validator", "keystore", Path, "Keystore of the account that posts roots (needs VALIDATOR_ROLE and gas).",
        "validator.keystore", flag="--validator-keystore"),
    Key("validator", "password_file", Path, "File holding the validator keystore's password (first line).",
        "validator.password_file", flag="--validator-password-file"),
    Key("validator", "snapshot_dir", Path, "Read epoch-start parameter snapshots from here; unset: <home>/snapshots.",
        "validator.snapshot_dir", flag="--validator-snapshot-dir"),
    Key("validator", "mode", str, "settle: post each epoch's root; watch: dispute posted roots that differ from ours.",
        "validator.mode", choices=MODES, flag="--validator-mode"),
    Key("validator", "receipt_probability", float, "Share of receipts recomputed (the rest get the static checks).",
        "validator.receipt_probability", minimum=0, flag="--validator-receipt-probability"),
    Key("validator", "poll_interval", float, "Seconds between reads of the DHT's receipts and of the chain.",
        "validator.poll_interval_s", minimum=0.05, flag="--validator-poll-interval"),
    # Snapshot store and serving (node.work.snapshot_store, node.work.snapshot_service)
    Key("receipts", "snapshot_cap_mb", int,
        "Most MiB the snapshot store keeps; the oldest snapshots go first (0: no cap).", "train.snapshot_cap_mb",
        minimum=0),
    Key("receipts", "snapshot_keep_epochs", int,
        "Keep snapshots of this many latest epochs, as long as validators may recompute them (0: all).",
        "train.snapshot_keep_epochs", minimum=0),
    Key("receipts", "snapshot_serve", bool,
        "Serve the snapshots over P2P and announce them in the DHT, for validators on other machines.",
        "train.snapshot_serve"),
    # When the validator daemon counts an epoch's receipts complete without a later epoch (node.validator.service)
    Key("validator", "settle_quiet", float,
        "Settle an epoch once no new receipt of it came for this many seconds (the run's last one too); 0: never.",
        "validator.settle_quiet_s", minimum=0, flag="--validator-settle-quiet"),
)
BY_DOTTED: dict[str, Key] = {k.dotted: k for k in KEYS}
BY_ENV: dict[str, Key] = {k.env: k for k in KEYS}
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(k.section for k in KEYS))
