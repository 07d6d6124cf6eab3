"""What trainers and the testnet call: vetted shards of a run, and their usable records.

    store = ShardStore(StoreConfig(root))
    shards = prepare_vetted_shards(store, split_text(corpus.train, 3), run_id="demo", eval_text=corpus.val)
    pairs = [(s.shard_id, s.n_records) for s in shards]      # only shards that passed vetting
    data = ShardReader(store, shards[0])                      # data[i]: usable record i (bytes)

A shard that failed or awaits review is never returned, so it cannot be assigned.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.data.ingest import text_records
from node.data.probe import ByteUnigramLoss, LossFn
from node.data.report import VettingReport
from node.data.runs import RunIndex, VetInputs, vet_shard
from node.data.store import ShardStore
from node.data.vetting import VettingConfig
from protocol.errors import ShardRejected
from protocol.shards import RecordSchema
from protocol.types import ShardId


@dataclass(frozen=True)
class VettedShard:
    shard_id: ShardId
    n_records: int  # usable records (after exclusions): the size assignment draws from
    report_hash: bytes  # SHA-256 of the signed vetting report (what ShardRegistry attests)
    score: float  # overall vetting score, 0..1


def _vetted(report: VettingReport) -> VettedShard:
    if not report.passed:
        raise ShardRejected(f"shard {report.shard_id[:16]} did not pass vetting ({report.verdict.value})")
    return VettedShard(report.shard_id, report.n_usable, report.digest(), report.score)


def vetted_shards(store: ShardStore, run_id: str) -> list[VettedShard]:
    """Shards that passed vetting for ``run_id``, in vetting order, that are present in ``store``."""
    runs = RunIndex(store, run_id)
    out = []
    for sid in runs.order():
        report = runs.report(sid)
        if report is not None and report.passed and store.has(sid):
            out.append(_vetted(report))
    return out


def split_text(text: bytes, k: int) -> list[bytes]:
    """Cut UTF-8 text into ``k`` parts of similar size at paragraph boundaries (one per data contributor)."""
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    paras = text_records(text)
    total = sum(len(p) for p in paras)
    parts: list[list[bytes]] = [[] for _ in range(k)]
    seen = 0
    for p in paras:
        parts[min(k - 1, seen * k // max(total, 1))].append(p)
        seen += len(p)
    return [b"\n\n".join(part) for part in parts if part]


def prepare_vetted_shards(
    store: ShardStore,
    contributions: Sequence[bytes],
    *,
    run_id: str,
    eval_text: bytes,
    key: Ed25519PrivateKey | None = None,
    loss_fn: LossFn | None = None,
    reference: Sequence[bytes] | None = None,
    license: str = "PSF-2.0",
    cfg: VettingConfig = VettingConfig(),
) -> list[VettedShard]:
    """Pack each contribution (UTF-8 text) into a shard, vet it for the run, return those that passed.

    ``loss_fn`` is the current model's per-record loss; without one, a byte
    unigram model fit on ``reference`` (default: the evaluation paragraphs)
    stands in. Reports are signed with ``key`` (a fresh key if none).
    """
    key = key or Ed25519PrivateKey.generate()
    eval_paras = [p.decode("utf-8") for p in text_records(eval_text)]
    reference = list(reference) if reference is not None else [p.encode() for p in eval_paras]
    loss_fn = loss_fn or ByteUnigramLoss(reference)
    inputs = VetInputs(eval_split=eval_paras, loss_fn=loss_fn, reference=reference)
    out = []
    for text in contributions:
        manifest = store.add_records(text_records(text), schema=RecordSchema(kind="text"), license=license)
        report = vet_shard(store, manifest.id, run_id=run_id, key=key, inputs=inputs, cfg=cfg)
        if report.passed:
            out.append(_vetted(report))
    return out


class ShardReader(Sequence[bytes]):
    """The usable records of a vetted shard, random access; every chunk is verified when loaded."""

    def __init__(self, store: ShardStore, shard: VettedShard, run_id: str | None = None) -> None:
        excluded: set[int] = set()
        if run_id is not None:
            report = RunIndex(store, run_id).report(shard.shard_id)
            if report is None or not report.passed:
                raise ShardRejected(f"shard {shard.shard_id[:16]} has no passing report for run {run_id}")
            excluded = set(report.excluded)
        else:
            excluded = self._excluded_from_any_run(store, shard)
        self._records = [r for i, r in enumerate(store.iter_records(shard.shard_id)) if i not in excluded]
        if len(self._records) != shard.n_records:
            raise ShardRejected(f"shard {shard.shard_id[:16]}: {len(self._records)} usable records, expected {shard.n_records}")

    @staticmethod
    def _excluded_from_any_run(store: ShardStore, shard: VettedShard) -> set[int]:
        for run_dir in sorted((store.root / "runs").glob("*")):
            report = RunIndex(store, run_dir.name).report(shard.shard_id)
            if report is not None and report.digest() == shard.report_hash:
                return set(report.excluded)
        raise ShardRejected(f"no vetting report with hash {shard.report_hash.hex()[:16]} for shard {shard.shard_id[:16]}")

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, i):  # type: ignore[override]
        return self._records[i]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._records)


def training_bytes(store: ShardStore, shards: Sequence[VettedShard]) -> bytes:
    """All usable records of ``shards`` joined by blank lines: a byte stream for window-based trainers."""
    return b"\n\n".join(b"\n\n".join(ShardReader(store, s)) for s in shards)
