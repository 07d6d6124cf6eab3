"""Merged values -> the frozen component configs a node runs with.

Each key's ``into`` path says which field of which component it fills, so building is one loop over the
declarations; only values derived from other keys are named here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.config.keys import BY_DOTTED, KEYS
from node.config.log import LogConfig
from node.config.sources import load_values
from node.run.config import RunConfig
from node.swarm.config import SwarmConfig
from node.telemetry.config import HttpConfig, TelemetryConfig
from node.validator.config import ValidatorDaemonConfig

if TYPE_CHECKING:
    from node.train.config import TrainConfig


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs, validated; built only by :func:`build` (through :func:`load_config`)."""

    swarm: SwarmConfig
    telemetry: TelemetryConfig
    http: HttpConfig
    log: LogConfig
    run: RunConfig  # where the run's manifest comes from (node.run)
    validator: ValidatorDaemonConfig  # read by `hivenet validator start` only
    rpc_url: str | None  # None: the embedded chain
    deployment: Path | None  # contracts this node expects on the chain
    values: Mapping[str, Any]  # the merged raw values by dotted key (for doctor and --print-config)
    file: Path | None  # the config file read, if any

    def train(self) -> TrainConfig:
        """The trainer's config; built on demand because it imports torch (seconds), which the daemon
        does only after its status endpoint and telemetry are up. The values were checked already."""
        from node.train.config import TrainConfig

        return assemble(TrainConfig, fields_of(self.values, "train"))


def fields_of(values: Mapping[str, Any], head: str) -> dict[str, Any]:
    """The decoded values of the keys whose ``into`` starts with ``head``, by the rest of that path."""
    return {key.into.split(".", 1)[1]: key.decode(values[key.dotted])
            for key in KEYS if key.into.split(".", 1)[0] == head and "." in key.into}


def assemble(cls: type, values: Mapping[str, Any]) -> Any:
    """``cls(**values)``, where a dotted name ("model.n_layer") fills a field of a nested config that
    starts from its field's default (one level deep)."""
    flat = {name: v for name, v in values.items() if "." not in name}
    nested: dict[str, dict[str, Any]] = {}
    for name, v in values.items():
        if "." in name:
            outer, inner = name.split(".", 1)
            nested.setdefault(outer, {})[inner] = v
    factories = {f.name: f.default_factory for f in dataclasses.fields(cls)}
    for outer, inner_values in nested.items():
        flat[outer] = dataclasses.replace(factories[outer](), **inner_values)  # type: ignore[misc]
    return cls(**flat)


def build(values: Mapping[str, Any], file: Path | None = None) -> NodeConfig:
    """Frozen component configs from merged, checked values."""
    own = {key.into: key.decode(values[key.dotted]) for key in KEYS if "." not in key.into}
    return NodeConfig(
        swarm=assemble(SwarmConfig, fields_of(values, "swarm")),
        telemetry=assemble(TelemetryConfig, {**fields_of(values, "telemetry"), "run_id": values["swarm.run_id"]}),
        # Falling back to any free port is for the default only: a port the user chose is never swapped.
        http=assemble(HttpConfig, {**fields_of(values, "http"), "fallback_to_any_port":
                                   values["status.listen"] == BY_DOTTED["status.listen"].default}),
        log=assemble(LogConfig, fields_of(values, "log")),
        run=assemble(RunConfig, fields_of(values, "run")),
        validator=assemble(ValidatorDaemonConfig, fields_of(values, "validator")),
        **own, values=dict(values), file=file,
    )


def load_config(path: Path | None, environ: Mapping[str, str], flags: Mapping[str, Any]) -> NodeConfig:
    """Read, merge and validate; the only entry point the CLI needs (``flags`` by dotted key, None: not given)."""
    return build(load_values(path, environ, flags), path)
