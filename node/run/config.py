"""Configuration of where a node gets its run's manifest (the ``[run]`` keys)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from protocol.errors import ConfigError

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class RunConfig:
    # A signed manifest file (`hivenet run create`): the node takes the run's model, corpus, batch, schedule and
    # mode from it and refuses settings that contradict it. None (and no manifest_from_dht): today's flags rule.
    manifest: Path | None = None
    # Fetch the manifest of swarm.run_id from the DHT through swarm.initial_peers instead of a file.
    manifest_from_dht: bool = False
    # Accept only a manifest signed by this Ethereum address. "" accepts any valid one, as long as only one
    # creator serves a manifest for the run id (anyone can publish under any run id; the signature says who).
    manifest_creator: str = ""
    # Seconds to wait for a manifest record in the DHT before giving up: records take a moment to spread.
    manifest_timeout: float = 30.0

    @property
    def wants_manifest(self) -> bool:
        return self.manifest is not None or self.manifest_from_dht


def address_or_empty(value: str) -> str:
    """The address in lower case ("" stays ""); ConfigError when it is not a 0x-prefixed 20-byte address."""
    if value and not _ADDRESS.match(value):
        raise ConfigError(f"{value!r} is not an Ethereum address (0x and 40 hex digits)")
    return value.lower()

