"""Vetting: clean prose passes; duplicates, junk, repetition and mashed keys are caught with reasons."""

from __future__ import annotations

import json
import random
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.data.decontam import EvalIndex
from node.data.dedup import jaccard, shingles
from node.data.ingest import text_records
from node.data.probe import ByteUnigramLoss
from node.data.report import Status, VettingReport
from node.data.runs import RunIndex, VetInputs, vet_shard
from node.data.store import ShardStore, StoreConfig
from node.data.vetted import ShardReader, prepare_vetted_shards, split_text, vetted_shards
from protocol.errors import ShardError
from protocol.shards import RecordSchema
from tests.data.conftest import docs_text

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
TRAIN, EVAL = docs_text()
EVAL_PARAS = [p.decode() for p in text_records(EVAL)]
REFERENCE = [p.encode() for p in EVAL_PARAS]
INPUTS = VetInputs(eval_split=EVAL_PARAS, loss_fn=ByteUnigramLoss(REFERENCE), reference=REFERENCE)


def _vet(store: ShardStore, records: list[bytes], run: str = "t", inputs: VetInputs = INPUTS) -> VettingReport:
    m = store.add_records(records, schema=RecordSchema(kind="text"), license="PSF-2.0")
    return vet_shard(store, m.id, run_id=run, key=KEY, inputs=inputs)


def _check(report: VettingReport, name: str):
    return next(c for c in report.checks if c.name == name)


def _distinct_prose() -> list[bytes]:
    """Long docs paragraphs, none a near copy of another (the docs repeat some paragraphs across topics)."""
    kept: list[tuple[bytes, set[bytes]]] = []
    for p in text_records(TRAIN):
        if len(re.findall(rb"[A-Za-z]+", p)) >= 40:
            sh = shingles(p.decode(), 3)
            if all(jaccard(sh, other) < 0.5 for _, other in kept):
                kept.append((p, sh))
        if len(kept) >= 120:
            break
    return [p for p, _ in kept]


DISTINCT = _distinct_prose()


def _prose(n: int, start: int = 0) -> list[bytes]:
    assert start + n <= len(DISTINCT)
    return DISTINCT[start : start + n]


def test_clean_prose_passes_with_a_signed_deterministic_report(store, tmp_path):
    records = text_records(TRAIN[:150_000])
    report = _vet(store, records)
    assert report.verdict is Status.PASS, [c.reasons for c in report.checks]
    assert report.signature_valid() and 0.5 < report.score <= 1
    assert {c.name: c.status for c in report.checks}["poisoning_probe"] is Status.PASS
    again = _vet(ShardStore(StoreConfig(tmp_path / "other", chunk_size=4096)), records)
    assert again.canonical() == report.canonical() and again.signature == report.signature
    stored = RunIndex(store, "t").report(report.shard_id)
    assert stored is not None and stored.digest() == report.digest()
    att = report.attestation()
    assert att.passed and att.report_hash == report.digest() and att.n_records == report.n_usable


def test_planted_exact_and_near_duplicates_are_caught(store):
    base = _prose(60)
    rng = random.Random(7)
    near = []
    for p in base[:10]:
        words = p.decode().split(" ")
        k = rng.choice([i for i, w in enumerate(words) if w.isalpha()])
        words[k] = words[k] + "s"  # one changed word
        near.append(" ".join(words).encode())
    for p, q in zip(base[:10], near):
        assert jaccard(shingles(p.decode(), 3), shingles(q.decode(), 3)) >= 0.8
    records = base + base[10:20] + near
    report = _vet(store, records)
    n = len(base)
    for k in range(10):
        assert report.excluded[n + k].startswith(f"repeats record {10 + k}")
        assert report.excluded[n + 10 + k].startswith(f"nearly repeats record {k}")
    assert all(i not in report.excluded for i in range(20))
    assert _check(report, "exact_duplicates").figures["duplicates"] == 10
    assert _check(report, "near_duplicates").figures["duplicates"] == 10


def test_duplicates_of_an_earlier_vetted_shard_are_caught(store):
    first = _vet(store, _prose(40))
    assert first.passed
    second = _vet(store, _prose(20, start=40) + _prose(5, start=0))
    assert sorted(i for i, why in second.excluded.items() if "shard vetted earlier" in why) == list(range(20, 25))
    assert second.prior_shards == (first.shard_id,)


def test_random_bytes_are_rejected(store):
    rng = random.Random(1)
    report = _vet(store, [bytes(rng.getrandbits(8) for _ in range(400)) for _ in range(50)])
    assert report.verdict is Status.FAIL
    assert _check(report, "format").status is Status.FAIL
    assert "50 of 50 records are malformed" in _check(report, "format").reasons[0]
    assert "not valid UTF-8" in " ".join(_check(report, "format").reasons)
    assert report.attestation().passed is False


def test_one_line_repeated_is_rejected(store):
    line = b"Buy cheap watches online today at the best price."
    as_records = _vet(store, [line] * 200)
    assert as_records.verdict is Status.FAIL
    assert "199 of 200 records (100%) are exact duplicates" in _check(as_records, "exact_duplicates").reasons[0]
    in_one = _vet(store, [b"\n".join([line] * 100)] * 1 + _prose(1))
    assert in_one.verdict is Status.FAIL
    assert "dup_lines" in _check(in_one, "quality").reasons[0]


def test_keyboard_mash_is_rejected(store):
    rng = random.Random(3)
    rows = "qwertyuiopasdfghjklzxcvbnm"
    mash = [
        " ".join("".join(rng.choice(rows) for _ in range(rng.randint(2, 9))) for _ in range(rng.randint(20, 60))).encode()
        for _ in range(80)
    ]
    report = _vet(store, mash)
    assert report.verdict is Status.FAIL
    reasons = " ".join(_check(report, "quality").reasons)
    assert "stop_words" in reasons and "does not read as natural language" in reasons


def test_after_vetting_training_records_do_not_overlap_the_eval_split(store):
    planted = [p for p in text_records(EVAL) if len(p.split()) >= 20][:15]
    records = _prose(50) + planted
    report = _vet(store, records)
    assert report.passed
    assert all(50 + k in report.excluded for k in range(len(planted)))
    assert _check(report, "decontamination").figures["contaminated"] >= 10
    index = EvalIndex(EVAL_PARAS)
    usable = [r for i, r in enumerate(records) if i not in report.excluded]
    assert [r for r in usable if index.overlap(r.decode())] == []
    # Independent measure: no 13-word sequence of any usable record occurs in the eval text.
    eval_words = " " + " ".join(re.findall(r"\w+", EVAL.decode().lower())) + " "
    for r in usable:
        w = re.findall(r"\w+", r.decode().lower())
        assert not any(" " + " ".join(w[i : i + 13]) + " " in eval_words for i in range(len(w) - 12))


def test_poisoning_probe_flags_an_outlier_loss_profile_for_review(store):
    shouted = [p.upper() for p in _prose(60)]  # passes the text heuristics, but the model finds it very unlike the reference
    report = _vet(store, shouted)
    probe = _check(report, "poisoning_probe")
    assert probe.status is Status.REVIEW and report.verdict is Status.REVIEW
    assert probe.figures["outside_band_frac"] > 0.25 and "review" in probe.reasons[0]
    assert not report.attestation().passed


def test_tampered_shard_fails_integrity_and_nothing_else_runs(store):
    m = store.add_records(_prose(40), schema=RecordSchema(kind="text"), license="PSF-2.0")
    path = store.shard_dir(m.shard_id) / "chunks" / "000002"
    data = bytearray(path.read_bytes())
    data[5] ^= 0x20
    path.write_bytes(bytes(data))
    report = vet_shard(store, m.id, run_id="t", key=KEY, inputs=INPUTS)
    assert report.verdict is Status.FAIL
    assert _check(report, "integrity").reasons[0] == "chunk 2 does not hash to the manifest"
    assert {c.status for c in report.checks[1:]} == {Status.SKIPPED}


def test_altered_report_is_detected(store):
    report = _vet(store, _prose(30))
    raw = report.to_json()
    assert VettingReport.from_json(raw).digest() == report.digest()
    forged = json.loads(json.dumps(raw))
    forged["verdict"] = "pass" if raw["verdict"] != "pass" else "fail"
    with pytest.raises(ShardError, match="altered"):
        VettingReport.from_json(forged)
    forged["report_hash"] = VettingReport.from_json({**raw, "signature": ""}).digest().hex()


def test_demo_contributions_are_vetted_and_only_passing_shards_are_returned(tmp_path):
    store = ShardStore(StoreConfig(tmp_path / "s", chunk_size=1 << 14))
    junk = b"\n\n".join([b"Buy cheap watches online today at the best price."] * 300)
    parts = split_text(TRAIN, 3)
    shards = prepare_vetted_shards(store, parts + [junk], run_id="demo", eval_text=EVAL, key=KEY)
    assert len(shards) == 3  # the junk contribution is not among them
    assert [s.shard_id for s in shards] == [s.shard_id for s in vetted_shards(store, "demo")]
    for s in shards:
        reader = ShardReader(store, s, run_id="demo")
        assert len(reader) == s.n_records > 100
        assert all(isinstance(r, bytes) and r for r in reader)
    reports = RunIndex(store, "demo").reports()
    assert sorted(r.verdict.value for r in reports) == ["fail", "pass", "pass", "pass"]
