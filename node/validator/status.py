"""What a validator daemon reports on /status and MQTT: the node's document plus the validator's figures.

    curl -s http://127.0.0.1:8471/status | jq '{stage, epochs_settled, receipts_rejected, chain_reachable}'

``ValidatorState`` is a :class:`~node.telemetry.state.NodeState` (same lifecycle keys, same endpoint and
publisher); the daemon's main thread hands it plain dicts through the side-loop.
"""

from __future__ import annotations

import enum
from typing import Any

from node.telemetry.state import NodeState


class ValidatorStage(enum.Enum):
    """What the validator is doing inside the daemon's RUNNING stage (``stage`` in /status)."""

    STARTING = "starting"  # loading the model and corpus, opening the outbox
    JOINING = "joining"  # joining the run's DHT
    COLLECTING = "collecting"  # waiting for receipts of the next epoch to complete one
    CHECKING = "checking"  # recomputing an epoch's receipts and settling it
    STOPPED = "stopped"


# The validator's figures and their values before the first epoch is settled.
FIGURES: dict[str, Any] = {
    "mode": None, "address": None, "next_epoch": 0, "epochs_settled": 0, "last_settled_epoch": None,
    "last_ledger_epoch": None, "last_root": None, "receipts": 0, "receipts_checked": 0, "receipts_rejected": 0,
    "pending_posts": 0, "posted_not_final": 0, "disputes": 0, "chain_reachable": None, "chain_latest_epoch": None,
    "finalized_epoch": None,
}


class ValidatorState(NodeState):
    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.validator_stage = ValidatorStage.STARTING
        self.figures: dict[str, Any] = dict(FIGURES)

    def on_validator(self, stage: ValidatorStage, figures: dict[str, Any]) -> None:
        self.validator_stage = stage
        self.figures.update(figures)
        self._tell("status", self.status())

    def status(self) -> dict[str, Any]:
        doc = super().status()
        doc.update(self.figures)
        doc.update({"role": "validator", "stage": self.validator_stage.value, "epoch": self.figures["next_epoch"]})
        return doc
