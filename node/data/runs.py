"""Per-run vetting state on disk, and vetting a stored shard against it.

Under the store root::

    runs/<run_id>/order.json               shard ids that passed, in vetting order
    runs/<run_id>/index/<shard_id>.npz     record hashes + MinHash signatures of their usable records
    runs/<run_id>/reports/<shard_id>.json  signed report of every shard vetted for the run (any verdict)

Only shards that pass enter the dedup index, so a rejected shard does not
block later honest copies of good records.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.data.decontam import EvalIndex
from node.data.dedup import record_hash, signatures, word_count
from node.data.probe import LossFn
from node.data.report import VettingReport
from node.data.store import ShardStore
from node.data.vetting import RunState, VettingConfig, decode_view, default_vetters, run_pipeline
from protocol.errors import ConfigError, ShardError
from protocol.types import ShardId

_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a valid run id (it names directories and DHT keys), else ConfigError."""
    if not _RUN_ID.match(run_id):
        raise ConfigError(f"run id {run_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return run_id


class RunIndex:
    def __init__(self, store: ShardStore, run_id: str) -> None:
        check_run_id(run_id)
        self.store = store
        self.run_id = run_id
        self.dir = store.root / "runs" / run_id
        for sub in ("index", "reports"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    def order(self) -> list[str]:
        path = self.dir / "order.json"
        return json.loads(path.read_text()) if path.exists() else []

    def state(self, before: str | None = None) -> RunState:
        """Dedup state of passed shards; if ``before`` is in the order, only the shards vetted before it."""
        order = self.order()
        if before in order:
            order = order[: order.index(before)]
        state = RunState(shard_ids=list(order))
        for sid in order:
            with np.load(self.dir / "index" / f"{sid}.npz") as data:
                state.hashes.update(bytes(row) for row in data["hashes"])
                state.signatures.extend(np.asarray(data["signatures"]))
        return state

    def report(self, shard_id: str) -> VettingReport | None:
        path = self.dir / "reports" / f"{shard_id}.json"
        return VettingReport.from_json(json.loads(path.read_text())) if path.exists() else None

    def reports(self) -> list[VettingReport]:
        return [r for p in sorted((self.dir / "reports").glob("*.json")) if (r := self.report(p.stem)) is not None]

    def record(self, report: VettingReport, records: Sequence[bytes], texts: Sequence[str | None], min_words: int, cfg: VettingConfig) -> None:
        """Persist ``report``; if it passed, add its usable records to the dedup index."""
        _atomic_write(self.dir / "reports" / f"{report.shard_id}.json", json.dumps(report.to_json(), indent=1).encode())
        if not report.passed or report.shard_id in self.order():
            return
        keep = [i for i, t in enumerate(texts) if i not in report.excluded and t is not None and word_count(t) >= min_words]
        hashes = np.array([list(record_hash(records[i])) for i in keep], dtype=np.uint8).reshape(-1, 32)
        sigs = signatures([texts[i] for i in keep], cfg.dedup)  # type: ignore[misc]
        rows = np.array([s.hashvalues for s in sigs], dtype=np.uint32).reshape(-1, cfg.dedup.num_perm)
        with open(self.dir / "index" / f".{report.shard_id}.npz", "wb") as f:
            np.savez(f, hashes=hashes, signatures=rows)
        os.replace(self.dir / "index" / f".{report.shard_id}.npz", self.dir / "index" / f"{report.shard_id}.npz")
        _atomic_write(self.dir / "order.json", json.dumps(self.order() + [report.shard_id]).encode())


@dataclass(frozen=True)
class VetInputs:
    """What vetting needs besides the shard: all passed in as values (no trainer import)."""

    eval_split: Sequence[str] = ()  # held-out evaluation paragraphs of the run (decontamination)
    loss_fn: LossFn | None = None  # the current model's loss per record, mean nats per byte
    reference: Sequence[bytes] = ()  # vetted reference records the probe compares against


def vet_shard(
    store: ShardStore,
    shard_id: ShardId,
    *,
    run_id: str,
    key: Ed25519PrivateKey,
    inputs: VetInputs = VetInputs(),
    cfg: VettingConfig = VettingConfig(),
    eval_index: EvalIndex | None = None,
) -> VettingReport:
    """Vet one stored shard for ``run_id``, sign and persist the report, update the run's index."""
    manifest = store.manifest(shard_id)
    verify = store.verify(shard_id)
    records: list[bytes] = []
    framing_error = None
    if verify.ok:
        try:
            records = list(store.iter_records(shard_id, verify=False))
        except ShardError as e:
            framing_error = str(e)
    view = decode_view(manifest, verify, records, framing_error)
    runs = RunIndex(store, run_id)
    state = runs.state(before=shard_id)
    if eval_index is None and inputs.eval_split:
        eval_index = EvalIndex(inputs.eval_split, cfg.decontam)
    vetters = default_vetters(cfg, state, eval_index, inputs.loss_fn, inputs.reference)
    report = run_pipeline(view, vetters, run_id, state, cfg).signed(key)
    runs.record(report, view.records, view.texts, cfg.dedup.min_words, cfg)
    return report
