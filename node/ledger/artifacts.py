"""Compiled contracts shipped as package data (written by ``contracts/build.js``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

CONTRACT_NAMES: tuple[str, ...] = (
    "RewardToken",
    "NodeRegistry",
    "ShardRegistry",
    "ContributionLedger",
    "NaiveContributionLog",
)


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    compiler_version: str


@cache
def load_artifact(name: str) -> Artifact:
    """The ABI and creation bytecode of contract ``name`` (one of :data:`CONTRACT_NAMES`)."""
    text = resources.files("node.ledger").joinpath("artifacts", f"{name}.json").read_text()
    data = json.loads(text)
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        compiler_version=data["compiler"]["version"],
    )
