"""Folding peers' metrics records (node.records) into a peer's latest view and the run summary."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from node.records import Accounting, EpochRecord, FinalRecord, Record, RoundRecord, StartRecord


@dataclass(frozen=True)
class PeerView:
    """The latest state of one peer, as its metrics tell it."""

    epoch: int | None
    loss: float | None
    val_loss: float | None
    group_size: int | None
    samples_per_s: float | None
    rounds: int


def peer_view(records: list[Record]) -> PeerView:
    epochs = [r for r in records if isinstance(r, EpochRecord)]
    vals = [v for r in records if (v := getattr(r, "val_loss", None)) is not None]
    last = epochs[-1] if epochs else None
    starts = [r for r in records if isinstance(r, StartRecord)]
    return PeerView(
        epoch=last.new_epoch if last else (starts[-1].epoch if starts else None),
        loss=last.loss if last else None,
        val_loss=vals[-1] if vals else None,
        group_size=last.group_size if last else None,
        samples_per_s=last.samples / last.elapsed_s if last and last.elapsed_s > 0 else None,
        rounds=sum(1 for r in epochs if r.averaged),
    )


def summarize(per_peer: dict[str, list[Record]], wall_s: float, train_s: float | None) -> dict[str, Any]:
    """The run summary (also written as summary.json).

    ``rounds`` counts collaborative epochs in which some peer really averaged
    gradients; ``peers_per_round`` is each such round's largest group.
    """
    starts = [r.val_loss for recs in per_peer.values() for r in recs if isinstance(r, StartRecord) and not r.resumed]
    finals = {p: r.val_loss for p, recs in per_peer.items() for r in recs if isinstance(r, FinalRecord)}
    groups: dict[int, int] = {}
    for recs in per_peer.values():
        for r in recs:
            if isinstance(r, EpochRecord) and r.averaged and r.group_size is not None:
                groups[r.epoch] = max(groups.get(r.epoch, 0), r.group_size)
            if isinstance(r, RoundRecord) and r.applied:  # DiLoCo mode: one record per applied outer round
                groups[r.round] = max(groups.get(r.round, 0), r.group_size)
    epochs_done = [r.new_epoch for recs in per_peer.values() for r in recs if isinstance(r, EpochRecord)]
    # What averaging cost each peer (DiLoCo mode counts it; sync mode leaves these out) and how busy it was.
    last = {p: next((r for r in reversed(recs) if isinstance(r, Accounting) and r.bytes_sent is not None), None)
            for p, recs in per_peer.items()}
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
        **({"averaging_bytes_sent_per_peer": {p: r.bytes_sent for p, r in accounted.items()},
            "averaging_bytes_received_per_peer": {p: r.bytes_received for p, r in accounted.items()},
            "utilization_per_peer": {p: r.utilization for p, r in accounted.items()}} if accounted else {}),
    }
