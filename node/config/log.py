"""Frozen configuration of a node's logging (applied by ``node.logfmt.setup_logging``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"  # DEBUG | INFO | WARNING | ERROR
    file: Path | None = None  # None: stderr
    json: bool = False  # one JSON object per line, for log shippers
