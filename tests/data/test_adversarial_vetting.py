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
from node.data.probe import ByteUnigramLoss
from tests.data.test_vetting import EVAL_PARAS, INPUTS, KEY, REFERENCE, _check, _prose

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


# -- junk and repetition ------------------------------------------------------------

B64 = "U29tZSBwYXlsb2FkIHRoYXQgaXMgbm90IGxhbmd1YWdlIGF0IGFsbCBidXQgaXQgbG9va3MgZmluZSB0byBhIHNjYW5uZXI="
JUNK = {
    "encoded_payload": lambda i: (B64[i % 7 :] + B64) * 3,
    "hex": lambda i: " ".join(f"{(i * 7919 + k) * 0x9E3779B97F4A7C15 % (1 << 128):032x}" for k in range(8)),
    "json_dump": lambda i: json.dumps({"id": i, "tags": ["a", "b"], "vals": [{"k": k, "v": str(k)} for k in range(8)]}),
    "zero_width": lambda i: ("spam" + ZWSP * 30 + " ") * 12,
}


@pytest.mark.parametrize("kind", sorted(JUNK))
def test_junk_at_a_fifth_of_a_shard_is_excluded_by_name(store, kind):
    clean = _prose(80)
    junk = [JUNK[kind](i).encode() for i in range(20)]
    report = _vet(store, clean + junk)
    assert report.passed
    reasons = [report.excluded.get(80 + i, "") for i in range(20)]
    assert all(reasons), reasons
    assert all(any(r in why for r in ("low quality", "disguised text", "repeats")) for why in reasons), reasons
    assert sum(i in report.excluded for i in range(80)) <= 8


def test_short_phrase_repeated_twenty_thousand_times_is_rejected():
    from node.data.quality import QualityConfig, assess

    q = assess(["buy cheap watches online"] * 20_000, QualityConfig())
    assert not q.passed and "repeated_record" in q.reasons[0]


def test_short_repeated_records_fail_vetting(store):
    report = _vet(store, _prose(10) + [b"buy cheap watches online"] * 2000)
    assert report.verdict is Status.FAIL


# -- clean text of other kinds keeps >= 90% of its records --------------------------------

GERMAN = [
    "Am Morgen gingen wir durch den Wald, der nach dem Regen der letzten Nacht noch feucht war. Die Vögel sangen, und "
    "zwischen den Bäumen lag ein leichter Nebel, den die Sonne langsam auflöste.",
    "Die Stadt hat beschlossen, die alte Brücke zu renovieren, weil sie für den wachsenden Verkehr nicht mehr sicher "
    "ist. Die Arbeiten sollen im Frühjahr beginnen und etwa zwei Jahre dauern.",
    "Meine Großmutter hat mir beigebracht, wie man Brot backt. Man braucht Geduld, denn der Teig muss ruhen, bevor er "
    "in den Ofen kommt, und das Ergebnis ist jede Mühe wert.",
    "Im Museum sahen wir Gemälde aus dem neunzehnten Jahrhundert. Besonders gefiel mir ein Bild, auf dem ein kleines "
    "Dorf am Ufer eines Sees im Winter zu sehen ist.",
]
FRENCH = [
    "Le matin, nous avons marché dans la forêt encore humide de la pluie de la nuit. Les oiseaux chantaient et une "
    "brume légère flottait entre les arbres, que le soleil dissipait lentement.",
    "La ville a décidé de rénover le vieux pont, car il n'est plus assez sûr pour la circulation qui augmente. Les "
    "travaux doivent commencer au printemps et durer environ deux ans.",
    "Ma grand-mère m'a appris à faire du pain. Il faut de la patience, car la pâte doit reposer avant d'aller au four, "
    "et le résultat vaut vraiment la peine.",
    "Au musée, nous avons vu des tableaux du dix-neuvième siècle. J'ai surtout aimé une toile qui montre un petit "
    "village au bord d'un lac en hiver.",
]
RUSSIAN = [
    "Утром мы гуляли по лесу, который ещё не высох после ночного дождя. Птицы пели, а между деревьями стоял лёгкий "
    "туман, который солнце медленно рассеивало.",
    "Город решил отремонтировать старый мост, потому что он больше не выдерживает растущего движения. Работы начнутся "
    "весной и продлятся около двух лет.",
    "Бабушка научила меня печь хлеб. Нужно терпение, ведь тесто должно отдохнуть, прежде чем попасть в печь, и "
    "результат стоит всех усилий.",
    "В музее мы видели картины девятнадцатого века. Больше всего мне понравилась картина, на которой изображена "
    "маленькая деревня на берегу озера зимой.",
]
CHINESE = [
    "早上我们在森林里散步，昨晚的雨让地面还很湿。鸟儿在歌唱，树木之间飘着一层薄雾，太阳慢慢地把它驱散了。",
    "市政府决定翻修那座老桥，因为它已经无法安全地承受日益增长的交通。工程将在春天开始，大约持续两年。",
    "奶奶教我怎样做面包。做面包需要耐心，因为面团在进烤箱之前必须先发酵，而最后的结果值得所有的努力。",
    "在博物馆里，我们看到了十九世纪的油画。我最喜欢的一幅画描绘了冬天湖边的一个小村庄。",
]
LICENCE = [
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated "
    "documentation files (the \"Software\"), to deal in the Software without restriction, including without "
    "limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the "
    "Software, and to permit persons to whom the Software is furnished to do so, subject to the following conditions:",
    "The above copyright notice and this permission notice shall be included in all copies or substantial portions of "
    "the Software.",
    "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED "
    "TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL "
    "THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY.",
]


def _source_code() -> list[str]:
    from pathlib import Path

    import node.data.ingest as module

    return [p for p in Path(module.__file__).read_text().split("\n\n") if p.strip()]


@pytest.mark.parametrize("records", [GERMAN, FRENCH, RUSSIAN, CHINESE, LICENCE, _source_code()],
                         ids=["de", "fr", "ru", "zh", "licence", "code"])
def test_clean_text_of_other_kinds_keeps_ninety_percent(records):
    from node.data.quality import QualityConfig, assess

    q = assess([canonical(r) for r in records], QualityConfig())
    kept = 1 - len(q.bad_records) / len(records)
    assert q.passed and kept >= 0.9, (q.reasons, q.bad_records)
    assert all(changed_fraction(r) <= 0.05 for r in records)


@pytest.mark.parametrize("records", [GERMAN, FRENCH, RUSSIAN, CHINESE], ids=["de", "fr", "ru", "zh"])
def test_clean_non_english_shard_passes_vetting(store, records):
    # The poisoning probe compares against the run's reference text, which for a multilingual run
    # holds its languages; against an English-only reference other scripts are sent for review.
    reference = [*REFERENCE, *(p.encode() for p in GERMAN + FRENCH + RUSSIAN + CHINESE)]
    inputs = VetInputs(eval_split=EVAL_PARAS, loss_fn=ByteUnigramLoss(reference), reference=reference)
    report = _vet(store, [r.encode() for r in records], inputs=inputs)
    # Every content check passes; the byte-unigram probe may still ask for review of CJK text, whose
    # bytes spread over far more values than any alphabetic reference (a limit of that probe).
    assert all(c.status is Status.PASS for c in report.checks if c.name != "poisoning_probe"), report.checks
    assert report.verdict is not Status.FAIL
    assert len(report.excluded) <= len(records) // 10


def _word_salad(seed: int) -> str:
    import random

    vocab = sorted({w.strip(".,;:()").lower() for p in _prose(60) for w in p.decode().split() if w.isalpha()})
    rng = random.Random(seed)
    return " ".join(rng.choice(vocab) for _ in range(60)) + "."


SEO = ("cheap watches, best watches online, buy watches, discount watches, luxury watches for men, watches sale, "
       "replica watches, swiss watches cheap, watch deals, best price watches, watches near me, watches online shop")


def test_word_salad_and_keyword_lists_are_excluded(store):
    from node.data.quality import QualityConfig, broken_rules, measure

    for text in [_word_salad(s) for s in range(5)] + [SEO]:
        rules = broken_rules(measure(text), QualityConfig())
        assert {"function_words", "stop_words"} & set(rules), (text, rules)
    report = _vet(store, _prose(40) + [_word_salad(s).encode() for s in range(8)] + [SEO.encode()])
    assert report.passed
    assert all("low quality" in report.excluded.get(i, "") for i in range(40, 49))


def test_a_lightly_respelled_copy_is_a_near_duplicate(store):
    original = _prose(1, 5)[0].decode()
    # One look-alike letter per sentence stays under the canonical-form limit but still changes the bytes.
    respelled = original.replace(". T", ". Т").replace("the ", "thе ", 2)
    assert respelled != original and changed_fraction(respelled) <= 0.05
    report = _vet(store, _prose(20) + [respelled.encode()])
    assert "repeats record 5" in report.excluded[20], report.excluded
