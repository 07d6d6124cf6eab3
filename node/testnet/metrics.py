"""Reading peers' JSON-lines metrics and folding them into a run summary."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every complete record in a peer's metrics file (a line still being written is skipped)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class MetricsTail:
    """Reads a growing JSON-lines file incrementally: each call parses only the lines added since the last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        self._offset = 0

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return self.records
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next call
        self._offset += len(complete)
        for line in complete.splitlines():
            try:
                self.records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return self.records


@dataclass(frozen=True)
class PeerView:
    """The latest state of one peer, as its metrics tell it."""

    epoch: int | None
    loss: float | None
    val_loss: float | None
    group_size: int | None
    samples_per_s: float | None
    rounds: int


def peer_view(records: list[dict[str, Any]]) -> PeerView:
    epochs = [r for r in records if r["event"] == "epoch"]
    vals = [r["val_loss"] for r in records if r.get("val_loss") is not None]
    last = epochs[-1] if epochs else None
    starts = [r for r in records if r["event"] == "start"]
    return PeerView(
        epoch=last["new_epoch"] if last else (starts[-1]["epoch"] if starts else None),
        loss=last["loss"] if last else None,
        val_loss=vals[-1] if vals else None,
        group_size=last["group_size"] if last else None,
        samples_per_s=last["samples"] / last["elapsed_s"] if last and last["elapsed_s"] > 0 else None,
        rounds=sum(1 for r in epochs if r.get("averaged")),
    )


def summarize(per_peer: dict[str, list[dict[str, Any]]], wall_s: float, train_s: float | None) -> dict[str, Any]:
    """The run summary (also written as summary.json).

    ``rounds`` counts collaborative epochs in which some peer really averaged
    gradients; ``peers_per_round`` is each such round's largest group.
    """
    starts = [r["val_loss"] for recs in per_peer.values() for r in recs if r["event"] == "start" and not r.get("resumed")]
    finals = {p: r["val_loss"] for p, recs in per_peer.items() for r in recs if r["event"] == "final"}
    groups: dict[int, int] = {}
    for recs in per_peer.values():
        for r in recs:
            if r["event"] == "epoch" and r.get("averaged"):
                groups[r["epoch"]] = max(groups.get(r["epoch"], 0), r["group_size"])
            if r["event"] == "round" and r.get("applied"):  # DiLoCo mode: one record per applied outer round
                groups[r["round"]] = max(groups.get(r["round"], 0), r["group_size"])
    epochs_done = [r["new_epoch"] for recs in per_peer.values() for r in recs if r["event"] == "epoch"]
    # What averaging cost each peer (DiLoCo mode counts it; sync mode leaves these out) and how busy it was.
    last = {p: next((r for r in reversed(recs) if "bytes_sent" in r), None) for p, recs in per_peer.items()}
    accounted = {p: r for p, r in last.items() if r is not None}
    return {
        "val_loss_start": statistics.mean(starts) if starts else None,
        "val_loss_end": statistics.mean(finals.values()) if finals else None,
        "val_loss_end_per_peer": finals,
        "rounds": len(groups),
        "peers_per_round": [groups[e] for e in sorted(groups)],
        "epochs": max(epochs_done, default=0),
        "wall_s": round(wall_s, 2),
        "train_s": round(train_s, 2) if train_s is not None else None,
        "loss_unit": "nats per byte",
        **({"averaging_bytes_sent_per_peer": {p: r["bytes_sent"] for p, r in accounted.items()},
            "averaging_bytes_received_per_peer": {p: r["bytes_received"] for p, r in accounted.items()},
            "utilization_per_peer": {p: r["utilization"] for p, r in accounted.items()}} if accounted else {}),
    }
