"""What the node is doing, as the side-loop knows it: the one source of /status, /metrics and MQTT.

``NodeState`` lives in the side-loop and is only touched from it; the training thread
reaches it through ``SideLoop.call`` (``loop.call_soon_threadsafe``), handing plain dicts.
"""

from __future__ import annotations

import enum
import socket
import time
from collections.abc import Callable
from typing import Any


class DaemonStage(enum.Enum):
    """Lifecycle of a node process, reported by /status, logs and telemetry."""

    STARTING = "starting"  # reading config, opening services, loading the model and checkpoint
    RUNNING = "running"  # the trainer runs (its own stage says joining / waiting / training)
    STOPPING = "stopping"  # graceful stop asked: checkpoint, flush, leave the DHT
    STOPPED = "stopped"  # clean exit
    FAILED = "failed"  # the start or the run failed; the reason is in ``error``


Listener = Callable[[str, dict[str, Any]], None]  # (kind: status|metrics|event, payload)


class NodeState:
    def __init__(self, run_id: str, peer_id: str = "") -> None:
        self.run_id = run_id
        self.peer_id = peer_id
        self.started_at = time.time()
        self.stage = DaemonStage.STARTING
        self.error: str | None = None
        self.host = socket.gethostname()
        self.trainer: dict[str, Any] = {"stage": "starting"}  # the latest PeerStatus, as plain values
        self.last_event: dict[str, Any] | None = None
        self.counters = {"epochs": 0, "metrics_records": 0}
        self.telemetry_connected = False
        self.receipts_accepted: int | None = None  # filled once receipts exist (validator feedback)
        self.tokens: float | None = None  # rewards earned so far, once the ledger reports them
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _tell(self, kind: str, payload: dict[str, Any]) -> None:
        for listener in self._listeners:
            listener(kind, payload)

    def set_stage(self, stage: DaemonStage, error: str | None = None) -> None:
        self.stage = stage
        if error is not None:
            self.error = error
        self._tell("event", {"event": stage.value, **({"error": error} if error else {})})
        self._tell("status", self.status())

    def on_trainer_status(self, status: dict[str, Any]) -> None:
        if status.get("peer_id") and not self.peer_id:
            self.peer_id = status["peer_id"]
        self.trainer = status
        self._tell("status", self.status())

    def on_metrics(self, record: dict[str, Any]) -> None:
        self.last_event = record
        self.counters["metrics_records"] += 1
        if record.get("event") == "epoch":
            self.counters["epochs"] += 1
        self._tell("metrics", record)

    def status(self) -> dict[str, Any]:
        """The /status document and the retained MQTT status payload (without the schema version)."""
        t = self.trainer
        return {
            "run_id": self.run_id,
            "peer_id": self.peer_id,
            "host": self.host,
            "daemon_stage": self.stage.value,
            "stage": t.get("stage", "starting"),
            "epoch": t.get("epoch", 0),
            "local_steps": t.get("local_steps", 0),
            "loss": t.get("loss"),
            "val_loss": t.get("val_loss"),
            "peers": t.get("peers", 0),
            "samples_per_s": t.get("samples_per_s", 0.0),
            "rounds": t.get("rounds", 0),
            "averaging_bytes_sent": t.get("bytes_sent", 0),
            "averaging_bytes_received": t.get("bytes_received", 0),
            "utilization": t.get("utilization"),
            "receipts_accepted": self.receipts_accepted,
            "tokens": self.tokens,
            "maddrs": t.get("maddrs", []),
            "telemetry_connected": self.telemetry_connected,
            "started_at": self.started_at,
            "uptime_s": round(time.time() - self.started_at, 3),
            "error": self.error,
            "t": time.time(),
        }
