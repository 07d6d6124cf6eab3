"""MQTT topics and JSON payloads of hivenet telemetry (schema version ``SCHEMA_VERSION``).

Topics, under ``hivenet/{run_id}/``:

- ``peers/{peer_id}/status``   retained; the peer's latest status (``status_payload``); an
  ``offline`` status is the connection's last will, so a crashed peer shows as gone.
- ``peers/{peer_id}/metrics``  every metrics record of the trainer (start, epoch, final, stop).
- ``epochs/{n}``               one record per peer when the swarm finishes epoch ``n``.
- ``events``                   lifecycle events of the node (started, stopping, stopped, failed).

Every payload is a JSON object with ``"v": SCHEMA_VERSION``; a reader ignores payloads of
another major version and tolerates unknown fields.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
ROOT = "hivenet"


def status_topic(run_id: str, peer_id: str) -> str:
    return f"{ROOT}/{run_id}/peers/{peer_id}/status"


def metrics_topic(run_id: str, peer_id: str) -> str:
    return f"{ROOT}/{run_id}/peers/{peer_id}/metrics"


def epoch_topic(run_id: str, epoch: int) -> str:
    return f"{ROOT}/{run_id}/epochs/{epoch}"


def events_topic(run_id: str) -> str:
    return f"{ROOT}/{run_id}/events"


def subscription(run_id: str | None) -> str:
    """The topic filter that a monitor subscribes to (one run, or every run with ``None``)."""
    return f"{ROOT}/{run_id or '+'}/#"


def _clean(value: Any) -> Any:
    """JSON has no NaN: not-yet-known numbers travel as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(_clean({"v": SCHEMA_VERSION, **payload}), separators=(",", ":")).encode()


@dataclass(frozen=True)
class Parsed:
    """One telemetry message, as a monitor reads it."""

    run_id: str
    kind: str  # status | metrics | epoch | events
    peer_id: str | None
    payload: dict[str, Any]


def parse(topic: str, raw: bytes) -> Parsed | None:
    """A telemetry message of a known shape, or None (other topics, bad JSON, other schema versions)."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != ROOT:
        return None
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict) or payload.get("v") != SCHEMA_VERSION:
        return None
    run_id, rest = parts[1], parts[2:]
    if len(rest) == 3 and rest[0] == "peers" and rest[2] in ("status", "metrics"):
        return Parsed(run_id, rest[2], rest[1], payload)
    if len(rest) == 2 and rest[0] == "epochs":
        return Parsed(run_id, "epoch", payload.get("peer"), payload)
    if rest == ["events"]:
        return Parsed(run_id, "events", payload.get("peer_id"), payload)
    return None
