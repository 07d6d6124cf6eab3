"""A node's configuration: one TOML file, then ``HIVENET_*`` environment variables, then flags.

    hivenet init                          # writes hivenet.toml, every key commented
    HIVENET_TRAIN_BATCH_SIZE=8 hivenet node start --config hivenet.toml --max-epochs 5

Each key lives in a section (``[train] batch_size``); its environment variable is
``HIVENET_<SECTION>_<KEY>`` upper-cased (``HIVENET_TRAIN_BATCH_SIZE``) and its flag
``--<key>`` (``--batch-size``). Every value is checked before the node starts; an
error names the key and where the value came from (the file, the variable, the flag).
This module and the CLI are the only places that read files and ``os.environ`` for
configuration: components get frozen dataclasses.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.swarm.config import SwarmConfig
from node.telemetry.config import HttpConfig, TelemetryConfig, parse_broker_url, parse_host_port
from protocol.errors import ConfigError

if TYPE_CHECKING:
    from node.train.config import TrainConfig

ENV_PREFIX = "HIVENET_"
CONFIG_ENV = "HIVENET_CONFIG"  # path of the config file when --config is not given
DEFAULT_FILE = Path("hivenet.toml")


@dataclass(frozen=True)
class Key:
    """One configuration key: its type, default, bounds and the comment `hivenet init` writes."""

    section: str
    name: str
    kind: type  # int | float | str | bool | list (of str) | Path
    default: Any  # None only for optional paths and URLs ("not set")
    comment: str
    minimum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section}_{self.name}".upper()


KEYS: tuple[Key, ...] = (
    Key("swarm", "run_id", str, "demo", "Training run to join; peers of other runs never average with this one."),
    Key("swarm", "initial_peers", list, [], "Multiaddrs of running peers to join through; empty starts a new swarm."),
    Key("swarm", "listen", list, ["/ip4/127.0.0.1/tcp/0"], "Multiaddrs to listen on; use /ip4/0.0.0.0/tcp/PORT to accept peers from other machines."),
    Key("swarm", "identity", Path, None, "p2p identity key file, created if missing; keeps the peer id across restarts."),
    Key("swarm", "expected_peers", int, 1, "Wait until this many peers of the run are visible before training.", minimum=1),
    Key("swarm", "peer_wait_timeout", float, 120.0, "Seconds to wait for expected_peers.", minimum=0),
    Key("swarm", "target_batch_size", int, 128, "Samples the swarm accumulates per collaborative epoch.", minimum=1),
    Key("swarm", "matchmaking_time", float, 4.0, "Seconds to gather an averaging group (>= 3 or rounds are missed).", minimum=0),
    Key("swarm", "averaging_timeout", float, 30.0, "Seconds before an all-reduce round is abandoned.", minimum=0),
    Key("train", "batch_size", int, 16, "Samples per local step.", minimum=1),
    Key("train", "max_epochs", int, 60, "Stop after this many collaborative epochs.", minimum=0),
    Key("train", "lr", float, 1e-3, "Peak learning rate.", minimum=0),
    Key("train", "device", str, "auto", "auto | cpu | cuda", choices=("auto", "cpu", "cuda")),
    Key("train", "threads", int, 1, "torch CPU threads for this peer.", minimum=1),
    Key("train", "n_layer", int, 4, "Transformer blocks (every peer of a run must agree).", minimum=1),
    Key("train", "n_embd", int, 256, "Model width (every peer of a run must agree).", minimum=1),
    Key("train", "block_size", int, 128, "Context length in bytes.", minimum=1),
    Key("train", "eval_every", int, 10, "Evaluate held-out loss every N epochs (0: only at start and end).", minimum=0),
    Key("train", "mode", str, "sync", 'sync: average gradients every epoch | diloco: average the parameter change every inner_steps local steps.', choices=("sync", "diloco")),
    Key("train", "inner_steps", int, 125, "diloco: local steps per round (averaging traffic falls by about this factor).", minimum=1),
    Key("train", "outer_lr", float, 0.7, "diloco: outer SGD learning rate.", minimum=0),
    Key("train", "outer_momentum", float, 0.9, "diloco: outer Nesterov momentum, in [0, 1).", minimum=0),
    Key("train", "overlap", bool, True, "diloco: average a round while the next one computes."),
    Key("train", "compression", str, "none", "diloco: pseudo-gradients travel as none | float16 | uint8.", choices=("none", "float16", "uint8")),
    Key("train", "error_feedback", bool, False, "diloco: carry what compression dropped into the next round."),
    Key("train", "checkpoint", Path, None, "Checkpoint file; written every epoch and on stop, resumed from on start."),
    Key("train", "shard_store", Path, None, "Train on the shards vetted for the run in this store."),
    Key("train", "fresh", bool, False, "Ignore (never delete) an existing checkpoint."),
    Key("train", "metrics", Path, None, "Append JSON-lines metrics here."),
    Key("telemetry", "broker", str, "mqtt://127.0.0.1:1883", 'MQTT broker URL; "" turns telemetry off. Without a broker the node trains and says so once.'),
    Key("telemetry", "status_interval", float, 1.0, "Seconds between retained status updates.", minimum=0.05),
    Key("status", "listen", str, "127.0.0.1:8470", 'host:port of the /status and /metrics endpoint (port 0: any free one); "" turns it off.'),
    Key("status", "url_file", Path, None, "Write the endpoint's URL here (read by `hivenet status --file`)."),
    Key("receipts", "keystore", Path, None, "Sign work receipts with this keystore's Ethereum account (the reward address); unset: no receipts."),
    Key("receipts", "password_file", Path, None, "File holding the keystore password (first line)."),
    Key("receipts", "snapshot_dir", Path, None, "Write epoch-start parameters here (content-addressed) so validators can recompute receipts."),
    Key("ledger", "rpc_url", str, "", 'JSON-RPC URL of the chain; "" means the embedded chain (nothing to reach).'),
    Key("ledger", "deployment", Path, None, "Deployment file of the contracts (written by `hivenet ledger deploy`)."),
    Key("log", "level", str, "INFO", "DEBUG | INFO | WARNING | ERROR", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    Key("log", "file", Path, None, "Write logs here instead of stderr."),
    Key("log", "json", bool, False, "One JSON object per log line (for log shippers)."),
)
BY_DOTTED = {k.dotted: k for k in KEYS}
SECTIONS = tuple(dict.fromkeys(k.section for k in KEYS))


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"  # DEBUG | INFO | WARNING | ERROR
    file: Path | None = None  # None: stderr
    json: bool = False  # one JSON object per line, for log shippers


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs, validated; built only by :func:`load_config`."""

    swarm: SwarmConfig
    telemetry: TelemetryConfig
    http: HttpConfig
    log: LogConfig
    rpc_url: str | None  # None: the embedded chain
    deployment: Path | None  # contracts this node expects on the chain
    values: Mapping[str, Any]  # the merged raw values by dotted key (for doctor and --print-config)
    file: Path | None  # the config file read, if any

    def train(self) -> TrainConfig:
        """The trainer's config; built on demand because it imports torch (seconds), which the daemon
        does only after its status endpoint and telemetry are up. The values were checked already."""
        return _train_config(self.values)


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "table"}.get(type(value), type(value).__name__)
    return f"the {kind} {value!r}"


def _expected(key: Key) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "an array of strings", Path: "a path (string)"}[key.kind]


def coerce(key: Key, value: Any, where: str) -> Any:
    """``value`` as ``key``'s type, or ConfigError naming the key and ``where`` it came from."""
    bad = ConfigError(f"{where}: {key.dotted} must be {_expected(key)}, not {_describe(value)}")
    if key.kind is bool:
        if not isinstance(value, bool):
            raise bad
    elif key.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif key.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        value = float(value)
    elif key.kind is str:
        if not isinstance(value, str):
            raise bad
    elif key.kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad
        value = list(value)
    elif key.kind is Path:
        if isinstance(value, Path):
            pass
        elif isinstance(value, str) and value:
            value = Path(value).expanduser()
        else:
            raise bad
    if key.minimum is not None and value < key.minimum:
        raise ConfigError(f"{where}: {key.dotted} must be at least {key.minimum:g}, not {value!r}")
    if key.choices and value not in key.choices:
        raise ConfigError(f"{where}: {key.dotted} must be one of {', '.join(key.choices)}, not {value!r}")
    return value


def _unknown(name: str, known: list[str], where: str, what: str) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"{where}: unknown {what} {name}{hint}; known: {', '.join(known)}")


def read_file(path: Path) -> dict[str, Any]:
    """The file's values by dotted key, type-checked; ConfigError naming the file (and key) otherwise."""
    where = f"config file {path}"
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist; create it with `hivenet init --config {path}` or fix the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{where} is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where} is not valid TOML: {e}") from None
    values: dict[str, Any] = {}
    for section, table in data.items():
        if section not in SECTIONS:
            raise _unknown(f"[{section}]", [f"[{s}]" for s in SECTIONS], where, "section")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {section} must be a table ([{section}]), not {_describe(table)}")
        for name, value in table.items():
            key = BY_DOTTED.get(f"{section}.{name}")
            if key is None:
                raise _unknown(f"{section}.{name}", [k.dotted for k in KEYS if k.section == section], where, "key")
            values[key.dotted] = coerce(key, value, where)
    return values


def _parse_env_value(key: Key, raw: str) -> Any:
    """Environment values are strings: read them as the key's type (lists are comma-separated)."""
    if key.kind is bool:
        low = raw.strip().lower()
        return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(low, raw)
    if key.kind in (int, float):
        try:
            return int(raw) if key.kind is int else float(raw)
        except ValueError:
            return raw
    if key.kind is list:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """``HIVENET_<SECTION>_<KEY>`` values by dotted key; an unknown key of a known section is an error.

    Variables of other sections (``HIVENET_SHARD_STORE``, ``HIVENET_CONFIG``) belong to other commands.
    """
    by_env = {k.env: k for k in KEYS}
    values: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        key = by_env.get(name)
        where = f"environment variable {name}"
        if key is None:
            section = name[len(ENV_PREFIX):].split("_", 1)[0].lower()
            if section in SECTIONS:
                raise _unknown(name, [k.env for k in KEYS if k.section == section], "environment", "variable")
            continue
        if key.kind is Path and raw == "":
            continue  # an empty path variable means "not set"
        values[key.dotted] = coerce(key, _parse_env_value(key, raw), where)
    return values


def flag_name(dotted: str) -> str:
    return "--" + BY_DOTTED[dotted].name.replace("_", "-")


def merge(file_values: Mapping[str, Any], env_values: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults, then the file, then the environment, then flags (None means the flag was not given)."""
    merged = {k.dotted: k.default for k in KEYS}
    merged.update(file_values)
    merged.update(env_values)
    for dotted, value in flags.items():
        if value is None:
            continue
        key = BY_DOTTED[dotted]
        if key.kind is list and isinstance(value, tuple):
            value = list(value)
        merged[dotted] = coerce(key, value, f"flag {flag_name(dotted)}")
    return merged


def config_path(flag: Path | None, environ: Mapping[str, str]) -> Path | None:
    if flag is not None:
        return flag
    env = environ.get(CONFIG_ENV)
    return Path(env).expanduser() if env else None


def load_values(path: Path | None, environ: Mapping[str, str], flags: Mapping[str, Any]) -> dict[str, Any]:
    return merge(read_file(path) if path is not None else {}, read_env(environ), flags)


def build(values: Mapping[str, Any], file: Path | None = None) -> NodeConfig:
    """Frozen component configs from merged values; cross-key checks name their keys."""
    v = values
    where = f"config file {file}" if file else "configuration"
    broker = None
    if v["telemetry.broker"]:
        try:
            broker = parse_broker_url(v["telemetry.broker"])
        except ConfigError as e:
            raise ConfigError(f"{where}: telemetry.broker: {e}") from None
    listen = None
    if v["status.listen"]:
        try:
            listen = parse_host_port(v["status.listen"])
        except ConfigError as e:
            raise ConfigError(f"{where}: status.listen: {e}") from None
    swarm = SwarmConfig(
        run_id=v["swarm.run_id"], listen=tuple(v["swarm.listen"]), initial_peers=tuple(v["swarm.initial_peers"]),
        identity_path=v["swarm.identity"], expected_peers=v["swarm.expected_peers"],
        peer_wait_timeout=v["swarm.peer_wait_timeout"], target_batch_size=v["swarm.target_batch_size"],
        matchmaking_time=v["swarm.matchmaking_time"], averaging_timeout=v["swarm.averaging_timeout"],
    )
    return NodeConfig(
        swarm=swarm,
        telemetry=TelemetryConfig(run_id=v["swarm.run_id"], broker=broker, status_interval_s=v["telemetry.status_interval"]),
        http=HttpConfig(listen=listen, url_file=v["status.url_file"],
                        fallback_to_any_port=v["status.listen"] == BY_DOTTED["status.listen"].default),
        log=LogConfig(level=v["log.level"], file=v["log.file"], json=v["log.json"]),
        rpc_url=v["ledger.rpc_url"] or None, deployment=v["ledger.deployment"], values=dict(v), file=file,
    )


def _train_config(v: Mapping[str, Any]) -> TrainConfig:
    from node.train.config import TrainConfig
    from node.train.model import GPTConfig

    return TrainConfig(
        model=GPTConfig(n_layer=v["train.n_layer"], n_embd=v["train.n_embd"], block_size=v["train.block_size"]),
        batch_size=v["train.batch_size"], lr=v["train.lr"], max_epochs=v["train.max_epochs"], device=v["train.device"],
        threads=v["train.threads"], eval_every=v["train.eval_every"], checkpoint_path=v["train.checkpoint"],
        metrics_path=v["train.metrics"], fresh=v["train.fresh"], shard_store=v["train.shard_store"],
        keystore=v["receipts.keystore"], password_file=v["receipts.password_file"], snapshot_dir=v["receipts.snapshot_dir"],
        mode=v["train.mode"], inner_steps=v["train.inner_steps"], outer_lr=v["train.outer_lr"],
        outer_momentum=v["train.outer_momentum"], overlap=v["train.overlap"], compression=v["train.compression"],
        error_feedback=v["train.error_feedback"],
    )


def load_config(path: Path | None, environ: Mapping[str, str], flags: Mapping[str, Any]) -> NodeConfig:
    """Read, merge and validate; the only entry point the CLI needs."""
    return build(load_values(path, environ, flags), path)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def default_toml() -> str:
    """The file `hivenet init` writes: every key, its default and why; unset paths commented out."""
    lines = [
        "# hivenet node configuration. Precedence: this file < HIVENET_<SECTION>_<KEY> variables < flags.",
        "# Start a node with: hivenet node start --config <this file>",
    ]
    for section in SECTIONS:
        lines += ["", f"[{section}]"]
        for key in (k for k in KEYS if k.section == section):
            lines.append(f"# {key.comment}  (env {key.env}, flag {flag_name(key.dotted)})")
            if key.default is None:
                lines.append(f"# {key.name} = \"path/to/{key.name}\"  (unset by default)")
            else:
                lines.append(f"{key.name} = {_toml_value(key.default)}")
    return "\n".join(lines) + "\n"
