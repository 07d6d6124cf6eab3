"""The deployment file: which chain, which contract addresses (JSON, written by ``ledger deploy``).

A claimer that knows only the run's ledger (from the run's manifest) builds one with ``Deployment.for_ledger``
(``node.ledger.run_ledger`` reads the token address from the chain): claims and reads need no registry.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from protocol.errors import DeploymentError

DEPLOYMENT_VERSION = 1


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    token: str
    node_registry: str
    shard_registry: str
    ledger: str
    deployer: str
    block: int
    compiler_version: str

    @classmethod
    def for_ledger(cls, chain_id: int, ledger: str, token: str) -> Deployment:
        """The ledger and its token only: enough to read epochs and claim; the registries, deployer, block and
        compiler are unknown (empty), so registry calls fail on it. Never saved as a deployment file."""
        return cls(chain_id=chain_id, token=token, node_registry="", shard_registry="", ledger=ledger, deployer="",
                   block=0, compiler_version="")

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"version": DEPLOYMENT_VERSION, **asdict(self)}, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise DeploymentError(f"no deployment file at {path}; run `hivenet ledger deploy` first") from None
        except (OSError, ValueError) as exc:
            raise DeploymentError(f"{path} is not a readable deployment file: {exc}") from exc
        if not isinstance(data, dict) or data.pop("version", None) != DEPLOYMENT_VERSION:
            raise DeploymentError(f"{path} is not a version-{DEPLOYMENT_VERSION} hivenet deployment file")
        try:
            return cls(**data)
        except TypeError as exc:
            raise DeploymentError(f"{path} has missing or unknown fields: {exc}") from exc
