"""Adversarial shards: each evasion a hostile contributor tries is rejected or its records excluded, by name.

Checks read the canonical text of everything training reads, so disguised spellings,
other JSON fields and array byte rows meet the same checks as plain text, and vetting
without the run's held-out split fails instead of skipping decontamination.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from node.data.canonical import canonical, changed_fraction
from node.data.decontam import EvalIndex
from node.data.ingest import collect_inputs
from node.data.report import Status
from node.data.runs import VetInputs, vet_shard
from protocol.errors import ShardInputError
from protocol.shards import RecordSchema
from tests.data.test_vetting import EVAL_PARAS, INPUTS, KEY, _check, _prose

# An evaluation paragraph long enough for the 13-gram contamination check.
LEAK = next(p for p in EVAL_PARAS if len(p.split()) >= 30 and p.isascii())
INDEX = EvalIndex(EVAL_PARAS)
ZWSP, SHY = "\u200b", "\u00ad"


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _confusable(text: str) -> str:
    return text.translate(str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с"}))


def _zero_width_in_words(text: str) -> str:
    return " ".join(w[:2] + ZWSP + w[2:] if len(w) > 4 else w for w in text.split(" "))


def _soft_hyphens(text: str) -> str:
    return " ".join(w[:3] + SHY + w[3:] if len(w) > 6 else w for w in text.split(" "))


@pytest.mark.parametrize("disguise", [_fullwidth, _confusable, _zero_width_in_words, _soft_hyphens])
def test_disguised_eval_text_still_overlaps_the_split(disguise):
    disguised = disguise(LEAK)
    assert disguised != LEAK
    assert INDEX.overlap(disguised) is not None
    assert canonical(disguised).lower().split() == canonical(LEAK).lower().split()


def _vet(store, records, kind="text", inputs=INPUTS, schema=None):
    m = store.add_records(records, schema=schema or RecordSchema(kind=kind), license="CC0-1.0")
    return vet_shard(store, m.id, run_id="adv", key=KEY, inputs=inputs)


@pytest.mark.parametrize("disguise", [_fullwidth, _confusable, _zero_width_in_words, _soft_hyphens])
def test_disguised_contamination_in_a_shard_is_excluded_with_a_reason(store, disguise):
    records = _prose(20) + [disguise(LEAK).encode()]
    report = _vet(store, records)
    why = report.excluded.get(20, "")
    assert "overlaps evaluation" in why or "disguised text" in why, why
    assert all(i not in report.excluded for i in range(20))


def test_contamination_in_another_json_field_is_excluded(store):
    records = [json.dumps({"text": p.decode(), "id": i}).encode() for i, p in enumerate(_prose(20))]
    records.append(json.dumps({"text": "A short harmless caption about gardens.", "body": LEAK}).encode())
    records.append(json.dumps({"text": "Another caption.", "meta": {"notes": [LEAK]}}).encode())
    report = _vet(store, records, kind="json")
    assert "overlaps evaluation" in report.excluded[20]
    assert "overlaps evaluation" in report.excluded[21]


def test_spam_in_another_json_field_is_judged_as_training_reads_it(store):
    spam = "buy cheap pills now " * 200
    records = [json.dumps({"text": p.decode(), "extra": spam}).encode() for p in _prose(20)]
    report = _vet(store, records, kind="json")
    assert report.verdict is Status.FAIL
    assert _check(report, "quality").status is Status.FAIL


def test_eval_text_as_npy_byte_rows_is_excluded(store):
    width = len(LEAK.encode()) + 8
    rows = [p[:width].ljust(width) for p in _prose(20)] + [LEAK.encode().ljust(width)]
    arr = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), width)
    records = [bytes(r) for r in arr]
    report = _vet(store, records, schema=RecordSchema(kind="array", dtype="|u1", shape=(width,)))
    assert "overlaps evaluation" in report.excluded[20]


def test_float_arrays_are_judged_on_the_bytes_the_model_reads(store):
    rng = np.random.default_rng(0)
    arr = rng.standard_normal((50, 64)).astype("<f4")
    report = _vet(store, [bytes(r.tobytes()) for r in arr], schema=RecordSchema(kind="array", dtype="<f4", shape=(64,)))
    assert report.verdict is Status.FAIL


def test_vetting_without_the_held_out_split_fails(store):
    report = _vet(store, _prose(20), inputs=VetInputs())
    dec = _check(report, "decontamination")
    assert dec.status is Status.FAIL and "no held-out evaluation split" in dec.reasons[0]
    assert report.verdict is Status.FAIL and not report.passed


def test_zero_width_spam_records_are_excluded(store):
    spam = [(("click" + ZWSP * 40 + " ") * 20).encode() for _ in range(3)]
    report = _vet(store, _prose(20) + spam)
    assert all("disguised text" in report.excluded[i] for i in (20, 21, 22))


def test_symlink_out_of_the_input_is_refused(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (tmp_path / "secret.txt").write_text("token\n")
    (d / "x.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ShardInputError, match="symlink points outside"):
        collect_inputs([d])


CLEAN_OTHER_SCRIPTS = [
    "Der Fluss floss an der alten Mühle vorbei, und die Kinder schauten zu, wie das Wasser das Rad drehte.",
    "La rivière coulait près du vieux moulin ; les enfants regardaient l'eau faire tourner la roue.",
    "Река текла мимо старой мельницы, и дети смотрели, как вода вращает колесо. Как хорошо было летом.",
    "河水流过老磨坊，孩子们看着水推动轮子转动。（这是一个很长的夏天！）",
    "Το ποτάμι κυλούσε δίπλα στον παλιό μύλο και τα παιδιά κοίταζαν το νερό.",
]


@pytest.mark.parametrize("text", CLEAN_OTHER_SCRIPTS)
def test_clean_text_in_other_scripts_is_not_treated_as_disguised(text):
    assert changed_fraction(text) == 0.0
    assert INDEX.overlap(text) is None


def test_clean_prose_keeps_its_records(store):
    report = _vet(store, _prose(40))
    assert report.passed and len(report.excluded) <= 4
