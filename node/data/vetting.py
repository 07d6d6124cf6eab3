"""Shard vetting: a pipeline of small ``Vetter`` policies producing a signed ``VettingReport``.

Order: integrity -> format -> exact duplicates -> near duplicates -> quality ->
decontamination -> poisoning probe. Integrity or format failing stops the
pipeline (the content cannot be trusted or read). Later checks *exclude*
records (duplicates, low quality, overlap with the evaluation split); the
shard stays immutable and trainers skip the excluded records. Failures are
data (``CheckResult``), never exceptions.

Run: ``hivenet shard vet <id> --run demo --eval eval.txt``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from node.data.ingest import parse_json_record
from node.data.canonical import canonical, changed_fraction, json_strings
from node.data.decontam import DecontamConfig, EvalIndex
from node.data.dedup import DedupConfig, exact_duplicates, near_duplicates, word_count
from node.data.probe import LossFn, ProbeConfig, deterministic_sample, probe
from node.data.quality import QualityConfig, assess
from node.data.report import CheckResult, Status, VettingReport
from node.data.store import VerifyResult
from protocol.shards import ShardManifest


@dataclass(frozen=True)
class VettingConfig:
    quality: QualityConfig = field(default_factory=QualityConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    min_record_bytes: int = 1  # empty records carry nothing to learn
    max_record_bytes: int = 1 << 20  # matches the packer's default; a crafted shard may exceed it
    max_excluded_frac: float = 0.6  # a shard that loses more records than this to exclusions fails overall
    # Share of a record's characters that canonicalization may change: ordinary text in any script
    # changes none (fullwidth CJK punctuation is not counted); disguised text changes far more.
    max_canonical_change: float = 0.05

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ShardView:
    """What vetters look at: the manifest, the verification result and the decoded records."""

    manifest: ShardManifest
    verify: VerifyResult
    records: Sequence[bytes]  # empty when integrity failed
    texts: Sequence[str | None]  # decoded text per record (None: not text, or undecodable)
    framing_error: str | None = None  # the record stream itself is broken (truncated, oversized length)


@dataclass
class RunState:
    """Earlier vetted shards of the run, as far as deduplication needs them."""

    shard_ids: list[str] = field(default_factory=list)
    hashes: set[bytes] = field(default_factory=set)
    signatures: list[np.ndarray] = field(default_factory=list)


class Vetter(ABC):
    """One check. ``excluded`` holds records earlier checks removed; do not judge them again."""

    name: str

    @abstractmethod
    def check(self, shard: ShardView, excluded: Mapping[int, str]) -> CheckResult: ...


class Integrity(Vetter):
    name = "integrity"

    def check(self, shard: ShardView, excluded: Mapping[int, str]) -> CheckResult:
        v = shard.verify
        figures = {"chunks": v.n_chunks, "bad_chunks": len(v.bad_chunks), "root_ok": float(v.root_ok)}
        if v.ok:
            return CheckResult(self.name, Status.PASS, figures)
        reasons = [f"chunk {i} does not hash to the manifest" for i in v.bad_chunks[:10]]
        if not v.root_ok:
            reasons.append("the manifest's chunk hashes do not give the shard id")
        return CheckResult(self.name, Status.FAIL, figures, tuple(reasons))


class Format(Vetter):
    name = "format"

    def __init__(self, cfg: VettingConfig) -> None:
        self.cfg = cfg

    def check(self, shard: ShardView, excluded: Mapping[int, str]) -> CheckResult:
        schema = shard.manifest.record_schema
        if shard.framing_error:
            return CheckResult(self.name, Status.FAIL, {"records": 0}, (shard.framing_error,))
        problems: dict[int, str] = {}
        for i, rec in enumerate(shard.records):
            if not self.cfg.min_record_bytes <= len(rec) <= self.cfg.max_record_bytes:
                problems[i] = f"size {len(rec)} outside {self.cfg.min_record_bytes}..{self.cfg.max_record_bytes} bytes"
            elif schema.kind == "array":
                want = int(np.prod(schema.shape)) * np.dtype(schema.dtype).itemsize  # type: ignore[arg-type]
                if len(rec) != want:
                    problems[i] = f"{len(rec)} bytes, expected {want} for {schema.dtype} {list(schema.shape or ())}"
            elif shard.texts[i] is None:
                problems[i] = "not valid UTF-8"
            elif schema.kind == "json" and not _is_json_object(shard.texts[i]):  # type: ignore[arg-type]
                problems[i] = "not a JSON object"
        figures = {"records": len(shard.records), "invalid": len(problems)}
        if not problems:
            return CheckResult(self.name, Status.PASS, figures)
        first = list(problems.items())[:3]
        reasons = [f"{len(problems)} of {len(shard.records)} records are malformed"] + [f"record {i}: {p}" for i, p in first]
        return CheckResult(self.name, Status.FAIL, figures, tuple(reasons))


def _is_json_object(text: str) -> bool:
    try:
        parse_json_record(text)
    except ValueError:  # malformed, not an object, or nested deep enough to crash a parser
        return False
    return True


def _eligible(shard: ShardView, excluded: Mapping[int, str], min_words: int) -> list[int]:
    return [i for i, t in enumerate(shard.texts) if i not in excluded and t is not None and word_count(t) >= min_words]


def _dup_result(name: str, found: dict[int, str], n: int, limit: float) -> CheckResult:
    frac = len(found) / max(n, 1)
    figures = {"duplicates": len(found), "duplicate_frac": frac}
    if frac > limit:
        example = next(iter(found.items()))
        reason = f"{len(found)} of {n} records ({frac:.0%}) are {name.replace('_', ' ')} (limit {limit:.0%}); e.g. record {example[0]} {example[1]}"
        return CheckResult(name, Status.FAIL, figures, (reason,), found)
    return CheckResult(name, Status.PASS, figures, (), found)


class ExactDuplicates(Vetter):
    name = "exact_duplicates"

    def __init__(self, cfg: DedupConfig, run: RunState) -> None:
        self.cfg, self.run = cfg, run

    def check(self, shard: ShardView, excluded: Mapping[int, str]) -> CheckResult:
        eligible = _eligible(shard, excluded, self.cfg.min_words)
        found = exact_duplicates(shard.records, eligible, self.run.hashes)
        return _dup_result(self.name, found, len(shard.records), self.cfg.max_dup_frac)


class NearDuplicates(Vetter):
    name = "near_duplicates"

    def __init__(self, cfg: DedupConfig, run: RunState) -> None:
        self.cfg, self.run = cfg, run

    def check(self, shard: ShardView, excluded: Mapping[int, str]) -> CheckResult:
        eligible = _eligible(shard, excluded, self.cfg.min_words)
        found = near_duplicates(shard.texts, eligible, self.run.signatures, self.cfg)  # type: ignore[arg-type]
        return _dup_result(self.name, found, len(shard.records), self.cfg.max_dup_frac)


class Quality(Vetter):
    name = "quality"

    def __init__(self, cfg: QualityConfig) -> None:
        self.cfg = cfg

    def check(self, shard: ShardView, excluded: Mapping[int, str]) -> CheckResult:
        idx = [i for i, t in enumerate(shard.texts) if t is not None and i not in excluded]
        if not idx:
            return CheckResult(self.name, Status.SKIPPED, {"records": 0}, ("no text records to judge",))
        texts = [_text_of(shard.texts[i], shard.manifest.record_schema.kind) for i in idx]  # type: ignore[arg-type]
        q = assess(texts, self.cfg)
        bad = {idx[k]: "low quality: " + ", ".join(rules) for k, rules in q.bad_records.items()}
        return CheckResult(self.name, Status.PASS if q.passed else Status.FAIL, q.figures, tuple(q.reasons), bad)


def _text_of(text: str, kind: str) -> str:
    """The canonical text of a record as training reads it: for JSON, every value, not only ``text``."""
    if kind != "json":
        return canonical(text)
    try:
        value = parse_json_record(text)
    except ValueError:
        return ""
    return canonical("\n".join(json_strings(value, keys=False)))


def _check_texts(text: str, kind: str) -> list[str]:
    """Everything of a record that reaches training, for checks that must not miss any piece of it."""
    if kind != "json":
        return [text]
    try:
        value = parse_json_record(text)
    except ValueError:
        return []
    return ["\n".join(json_strings(value, keys=False)), *json_strings(value, keys=True)]


class CanonicalForm(Vetter):
    """Excludes records that only read as clean after canonicalization (disguised text, format spam)."""

    name = "canonical_form"

    def __init__(self, cfg: VettingConfig) -> None:
        self.cfg = cfg

    def check(self, shard: ShardView, excluded: Mapping[int, str]) -> CheckResult:
        found: dict[int, str] = {}
        limit = self.cfg.max_canonical_change
        for i, t in enumerate(shard.texts):
            if t is None or i in excluded:
                continue
            frac = changed_fraction(t)
            if frac > limit:
                found[i] = (
                    f"disguised text: {frac:.0%} of its characters are format characters, "
                    f"compatibility forms or look-alike letters (limit {limit:.0%})"
                )
        return CheckResult(self.name, Status.PASS, {"disguised": len(found)}, (), found)


class Decontamination(Vetter):
    name = "decontamination"

    def __init__(self, index: EvalIndex | None) -> None:
        self.index = index

    def check(self, shard: ShardView, excluded: Mapping[int, str]) -> CheckResult:
        # No opt-out: a shard vetted without the run's held-out split could carry that split into
        # training, so a missing or empty split is a failure, never a skipped (scored as passed) check.
        if self.index is None or len(self.index) == 0:
            return CheckResult(
                self.name, Status.FAIL, {"eval_ngrams": 0},
                ("no held-out evaluation split given: decontamination cannot run (pass the run's split, e.g. --eval)",),
            )
        found = {}
        kind = shard.manifest.record_schema.kind
        for i, t in enumerate(shard.texts):
            if t is None or i in excluded:
                continue
            for piece in _check_texts(t, kind):
                if why := self.index.overlap(piece):
                    found[i] = f"overlaps evaluation: {why}"
                    break
        return CheckResult(self.name, Status.PASS, {"contaminated": len(found), "eval_ngrams": len(self.index)}, (), found)


class PoisoningProbe(Vetter):
    name = "poisoning_probe"

    def __init__(self, loss_fn: LossFn | None, reference: Sequence[bytes], cfg: ProbeConfig) -> None:
        self.loss_fn, self.reference, self.cfg = loss_fn, reference, cfg

    def check(self, shard: ShardView, excluded: Mapping[int, str]) -> CheckResult:
        if self.loss_fn is None:
            return CheckResult(self.name, Status.SKIPPED, {}, ("no model loss given",))
        kept = [i for i in range(len(shard.records)) if i not in excluded]
        seed = bytes.fromhex(shard.manifest.shard_id)
        sample = [shard.records[kept[k]] for k in deterministic_sample(len(kept), self.cfg.sample, seed)]
        ref_idx = deterministic_sample(len(self.reference), self.cfg.reference_sample, b"reference")
        result = probe(sample, [self.reference[k] for k in ref_idx], self.loss_fn, self.cfg)
        if result.flagged:
            return CheckResult(self.name, Status.REVIEW, result.figures, (result.reason or "",))
        if result.figures.get("reference", 0) < 10 or not sample:
            return CheckResult(self.name, Status.SKIPPED, result.figures, ("too little reference data or no records left",))
        return CheckResult(self.name, Status.PASS, result.figures)


def decode_view(
    manifest: ShardManifest, verify: VerifyResult, records: Sequence[bytes], framing_error: str | None = None
) -> ShardView:
    texts: list[str | None] = []
    for rec in records:
        try:
            if manifest.record_schema.kind == "array":
                # A byte-level trainer reads a row's raw bytes, so those bytes are what is checked.
                texts.append(rec.decode("utf-8", errors="replace"))
            else:
                texts.append(rec.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(None)
    return ShardView(manifest, verify, records, texts, framing_error)


_SCORE = {Status.PASS: 1.0, Status.SKIPPED: 1.0, Status.REVIEW: 0.5, Status.FAIL: 0.0}


def run_pipeline(shard: ShardView, vetters: Sequence[Vetter], run_id: str, run: RunState, cfg: VettingConfig) -> VettingReport:
    """Run ``vetters`` in order and fold their results into an (unsigned) report."""
    results: list[CheckResult] = []
    excluded: dict[int, str] = {}
    stop = False
    for vetter in vetters:
        if stop:
            results.append(CheckResult(vetter.name, Status.SKIPPED, {}, ("an earlier check failed",)))
            continue
        result = vetter.check(shard, excluded)
        results.append(result)
        for i, why in (result.excluded or {}).items():
            excluded.setdefault(i, why)
        stop = result.status is Status.FAIL and vetter.name in ("integrity", "format")
    n = len(shard.records)
    frac = len(excluded) / max(n, 1)
    if frac > cfg.max_excluded_frac and not stop:
        results.append(
            CheckResult(
                "overall", Status.FAIL, {"excluded_frac": frac},
                (f"{len(excluded)} of {n} records ({frac:.0%}) were excluded (limit {cfg.max_excluded_frac:.0%})",),
            )
        )
    statuses = {r.status for r in results}
    verdict = Status.FAIL if Status.FAIL in statuses else Status.REVIEW if Status.REVIEW in statuses else Status.PASS
    score = (1 - frac) * float(np.prod([_SCORE[r.status] for r in results]))
    return VettingReport(
        shard_id=shard.manifest.id,
        run_id=run_id,
        checks=tuple(results),
        excluded=excluded,
        n_records=n,
        verdict=verdict,
        score=score if n else 0.0,
        prior_shards=tuple(run.shard_ids),
        config_hash=cfg.digest(),
    )


def default_vetters(
    cfg: VettingConfig,
    run: RunState,
    eval_index: EvalIndex | None = None,
    loss_fn: LossFn | None = None,
    reference: Sequence[bytes] = (),
) -> list[Vetter]:
    return [
        Integrity(),
        Format(cfg),
        CanonicalForm(cfg),
        ExactDuplicates(cfg.dedup, run),
        NearDuplicates(cfg.dedup, run),
        Quality(cfg.quality),
        Decontamination(eval_index),
        PoisoningProbe(loss_fn, reference, cfg.probe),
    ]
