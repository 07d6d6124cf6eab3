"""Typed metrics records: what a training peer reports, one frozen dataclass per event, and their one parser.

A peer writes one JSON object per line to its metrics file (``--metrics``) and hands the same records to
telemetry: ``start`` once, ``epoch`` after every collaborative epoch (sync) or outer round (DiLoCo),
``round`` after every DiLoCo round, ``final`` at the end of a run that was not stopped, ``stop`` last.
The testnet, the run report and the tests read them back with :func:`parse_record` /
:func:`read_records`, never by string keys.

    rec = EpochRecord(t=time.time(), peer="Qm...", epoch=3, new_epoch=4, ...)
    line = json.dumps(record_json(rec))       # the file format: {"event": "epoch", "t": ..., ...}
    assert parse_record(json.loads(line)) == rec

The JSON keys are the field names. Fields of one mode only (DiLoCo's accounting) are left out of the
JSON while unset, so a sync-mode record carries no DiLoCo keys.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar


class Event(StrEnum):
    START = "start"
    EPOCH = "epoch"
    ROUND = "round"
    FINAL = "final"
    STOP = "stop"


def _mode_only() -> Any:
    """A field of one mode: None when unset, and then absent from the JSON."""
    return field(default=None, metadata={"omit_if_none": True})


@dataclass(frozen=True, kw_only=True)
class Accounting:
    """What averaging cost a DiLoCo peer so far, and how busy it kept it."""

    bytes_sent: int | None = _mode_only()
    bytes_received: int | None = _mode_only()
    compute_s: float | None = _mode_only()
    wait_s: float | None = _mode_only()
    utilization: float | None = _mode_only()  # share of wall time spent computing rather than waiting
    rounds_applied: int | None = _mode_only()
    rounds_failed: int | None = _mode_only()


@dataclass(frozen=True, kw_only=True)
class StartRecord:
    event: ClassVar[Event] = Event.START
    t: float
    peer: str
    epoch: int  # the epoch (or round) this peer starts training at: > 0 after a resume
    val_loss: float
    resumed: bool
    device: str
    params: int
    shards: list[str]  # vetted shards the training text came from ([] for the raw demo corpus)
    train_bytes: int
    maddrs: list[str]
    model: str  # the model fingerprint: peers average only with peers of the same one
    mode: str | None = _mode_only()  # "diloco"; absent in sync mode
    inner_steps: int | None = _mode_only()
    compression: str | None = _mode_only()


@dataclass(frozen=True, kw_only=True)
class EpochRecord(Accounting):
    event: ClassVar[Event] = Event.EPOCH
    t: float
    peer: str
    epoch: int  # the epoch (round) that ended
    new_epoch: int  # the epoch this peer trains next
    local_steps: int
    samples: int
    loss: float  # mean training loss of the epoch's local steps
    val_loss: float | None  # held-out loss of the shared parameters, every eval_every epochs
    elapsed_s: float
    param_sketch: list[float]  # a short sketch of the shared parameters (peers compare them)
    # sync mode: the round that averaged this epoch's gradients (None when this peer took no part)
    group_size: int | None = None
    averaged: bool | None = None
    swarm_peers: int | None = None
    param_digest: str | None = None
    agreement: str | None = None
    disagreements: int | None = None
    round: str | None = None
    # DiLoCo
    outer_steps: int | None = _mode_only()
    shared_digest: str | None = _mode_only()


@dataclass(frozen=True, kw_only=True)
class RoundRecord:
    """A DiLoCo outer round landed (applied by every peer) or was skipped (by every peer)."""

    event: ClassVar[Event] = Event.ROUND
    t: float
    peer: str
    round: int
    applied: bool
    reason: str
    group_size: int
    outer_steps: int
    shared_digest: str | None = _mode_only()


@dataclass(frozen=True, kw_only=True)
class FinalRecord(Accounting):
    event: ClassVar[Event] = Event.FINAL
    t: float
    peer: str
    epoch: int
    val_loss: float


@dataclass(frozen=True, kw_only=True)
class StopRecord(Accounting):
    event: ClassVar[Event] = Event.STOP
    t: float
    peer: str
    epoch: int
    param_digest: str
    requested: bool  # stopped by a signal rather than at max_epochs


Record = StartRecord | EpochRecord | RoundRecord | FinalRecord | StopRecord
BY_EVENT: dict[str, type[Any]] = {c.event.value: c for c in (StartRecord, EpochRecord, RoundRecord, FinalRecord, StopRecord)}


def record_json(record: Record) -> dict[str, Any]:
    """The record as the metrics file and telemetry carry it."""
    out: dict[str, Any] = {"t": record.t, "event": record.event.value}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if value is None and f.metadata.get("omit_if_none"):
            continue
        out[f.name] = value
    return out


def parse_record(raw: object) -> Record | None:
    """The typed record of one decoded JSON line; None for an unknown event or a malformed record.

    Keys a newer writer added are ignored; a missing required key makes the record malformed.
    """
    if not isinstance(raw, dict):
        return None
    cls = BY_EVENT.get(str(raw.get("event")))
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in raw.items() if k in names})  # type: ignore[no-any-return]
    except TypeError:
        return None


def parse_lines(lines: list[bytes] | list[str]) -> list[Record]:
    out = []
    for line in lines:
        try:
            record = parse_record(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line still being written
        if record is not None:
            out.append(record)
    return out


def read_records(path: Path) -> list[Record]:
    """Every complete, well-formed record of a metrics file (none when it does not exist)."""
    return parse_lines(path.read_text().splitlines()) if path.exists() else []


class RecordTail:
    """Reads a growing metrics file incrementally: each call parses only the lines added since the last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[Record] = []
        self._offset = 0

    def read(self) -> list[Record]:
        if not self.path.exists():
            return self.records
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next call
        self._offset += len(complete)
        self.records.extend(parse_lines(complete.splitlines()))
        return self.records


def of_type(records: list[Record], cls: type[Any]) -> list[Any]:
    """The records of one event type, in order."""
    return [r for r in records if isinstance(r, cls)]
