"""Text quality heuristics in the spirit of Gopher (Rae et al. 2021) and C4 (Raffel et al. 2020).

Pure functions of text: per-record figures and the rules a record breaks, plus
shard-level figures. Thresholds live in ``QualityConfig``; defaults are looser
than Gopher's web-scale ones because records here are paragraphs of
technical prose with code, not whole web pages.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with", "is", "a", "in", "it", "for", "as"})
# Function words of other languages written with spaces, so that good German, French, Spanish,
# Italian, Portuguese, Dutch or Russian prose is not judged by English alone.
OTHER_STOP_WORDS = frozenset({
    "der", "die", "das", "und", "ist", "nicht", "mit", "den", "ein", "eine", "zu", "von", "auf", "sich", "dem", "des",
    "le", "la", "les", "et", "est", "un", "une", "des", "du", "que", "qui", "dans", "pour", "pas", "sur", "au",
    "el", "los", "las", "y", "es", "en", "por", "con", "una", "del", "se", "il", "di", "che", "non", "per",
    "o", "os", "e", "um", "uma", "não", "het", "een", "van", "niet", "op", "ik",
    "и", "в", "не", "на", "что", "с", "как", "по", "это", "он", "она", "к", "из", "но", "а", "то", "я", "за",
    "у", "о", "от", "для", "до", "же", "бы", "так", "его", "её", "их", "мы", "вы", "они", "был", "была", "было",
    "который", "которая", "которой", "которые", "ещё", "уже", "когда", "чем", "мне", "меня", "всех", "все",
})
ALL_STOP_WORDS = STOP_WORDS | OTHER_STOP_WORDS
_WORD = re.compile(r"\S+")
_LETTER = re.compile(r"[^\W\d_]")
_TERMINAL = (".", "!", "?", ":", ";", '"', "'", ")", "”", "。", "！", "？", "」", "』", "）", "»", "›")
# Scripts written without spaces between words: word-count rules do not apply to them.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")
_BULLET = ("*", "-", "•", "●", "▪", "‣", "–", "·")
# Encoded payloads: base64 or hex runs long enough that no natural word looks like them.
_ENCODED = re.compile(r"(?:[A-Za-z0-9+/]{40,}={0,2})|(?:\b(?:0x)?[0-9a-fA-F]{24,}\b)")
_JSONISH = frozenset('{}[]":,')
# Lines of source code: indented, a keyword or comment first, or ending in a bracket, colon or semicolon.
_CODE_LINE = re.compile(r"^(?:\s{2,}|\t|(?:import|from|def|class|return|if|for|while|#|//|/\*|\*|@)\b)|[(){}\[\];:,=]\s*$")


@dataclass(frozen=True)
class QualityConfig:
    max_symbol_ratio: float = 0.1  # Gopher: '#' and ellipses per word; markdown/menu spam scores high
    min_mean_word_len: float = 2.0  # Gopher uses 3..10 for web text; code tokens ("x", "=") pull the mean down
    max_mean_word_len: float = 15.0  # above this, tokens are URLs, base64 or mashed keys, not words
    min_alpha_word_frac: float = 0.5  # Gopher 0.8; documentation code blocks have many pure-symbol tokens
    stop_word_min_words: int = 20  # the stop-word rule applies only to records at least this long
    min_stop_words: int = 2  # Gopher: real English text contains at least two common function words
    # Function words are a sixth or more of prose in the languages of ALL_STOP_WORDS; word salad drawn
    # uniformly from a vocabulary and keyword lists mostly fall at 0-7%.
    min_stop_word_frac: float = 0.08
    max_dup_line_frac: float = 0.3  # Gopher: fraction of a record's lines that repeat an earlier line
    dup_ngram: int = 5  # word n-gram size for the repeated n-gram rule
    max_dup_ngram_char_frac: float = 0.3  # characters covered by repeated n-grams (Gopher uses 0.15 for 5-grams)
    max_bad_record_frac: float = 0.4  # a shard fails if more of its records break a rule
    min_shard_stop_word_frac: float = 0.03  # with STOP_WORDS: far below prose and documentation, above mashed keys
    min_punct_end_frac: float = 0.2  # C4: good text ends lines with terminal punctuation
    max_bullet_line_frac: float = 0.9  # Gopher: records that are nearly all bullet points are menus or lists
    max_ellipsis_line_frac: float = 0.3  # Gopher: lines ending in an ellipsis are truncated snippets
    max_encoded_frac: float = 0.3  # share of characters in base64/hex runs: payloads, not language
    max_json_char_frac: float = 0.25  # share of JSON syntax characters in a record opening with { or [: a dump
    min_repeat_record_words: int = 1  # identical records (canonical, case-folded) repeat whatever their length


@dataclass(frozen=True)
class RecordQuality:
    n_words: int
    symbol_ratio: float
    mean_word_len: float
    alpha_word_frac: float
    stop_words: int  # occurrences of stop words
    distinct_stop_words: int
    dup_line_frac: float
    dup_ngram_char_frac: float
    ends_with_punct: bool
    unspaced: bool = False  # mostly CJK/Thai: word-based rules do not apply
    code: bool = False  # most lines look like source code: prose rules (stop words, '#', word length) do not apply
    bullet_line_frac: float = 0.0
    ellipsis_line_frac: float = 0.0
    encoded_frac: float = 0.0
    json_char_frac: float = 0.0


def measure(text: str, dup_ngram: int = 5) -> RecordQuality:
    words = _WORD.findall(text)
    n = len(words)
    lowered = [w.lower().strip(".,;:!?()[]\"'") for w in words]
    stops = [w for w in lowered if w in ALL_STOP_WORDS]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    letters = sum(1 for c in text if c.isalpha())
    unspaced = len(_UNSPACED.findall(text)) > 0.3 * max(letters, 1)
    compact = "".join(text.split())
    opens_as_json = text.lstrip()[:1] in ("{", "[")
    seen: set[str] = set()
    dup_lines = 0
    for ln in lines:
        dup_lines += ln in seen
        seen.add(ln)
    return RecordQuality(
        n_words=n,
        symbol_ratio=(text.count("#") + text.count("...") + text.count("…")) / max(n, 1),
        mean_word_len=sum(map(len, words)) / max(n, 1),
        alpha_word_frac=sum(1 for w in words if _LETTER.search(w)) / max(n, 1),
        stop_words=len(stops),
        distinct_stop_words=len(set(stops)),
        dup_line_frac=dup_lines / max(len(lines), 1),
        dup_ngram_char_frac=_dup_ngram_char_frac(lowered, dup_ngram),
        ends_with_punct=text.rstrip().endswith(_TERMINAL),
        unspaced=unspaced,
        code=len(lines) >= 2 and sum(1 for ln in text.splitlines() if ln.strip() and _CODE_LINE.search(ln)) >= 0.5 * len(lines),
        bullet_line_frac=sum(1 for ln in lines if ln.startswith(_BULLET)) / max(len(lines), 1),
        ellipsis_line_frac=sum(1 for ln in lines if ln.endswith(("...", "…"))) / max(len(lines), 1),
        encoded_frac=sum(len(m) for m in _ENCODED.findall(compact if len(words) < 2 else text)) / max(len(compact), 1),
        json_char_frac=(sum(1 for c in compact if c in _JSONISH) / max(len(compact), 1)) if opens_as_json else 0.0,
    )


def _dup_ngram_char_frac(words: Sequence[str], n: int) -> float:
    """Fraction of characters (in words) covered by word n-grams that occur more than once."""
    if len(words) < n:
        return 0.0
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = [False] * len(words)
    for i, g in enumerate(grams):
        if counts[g] > 1:
            for k in range(i, i + n):
                covered[k] = True
    total = sum(map(len, words))
    return sum(len(w) for w, c in zip(words, covered) if c) / max(total, 1)


def broken_rules(q: RecordQuality, cfg: QualityConfig) -> list[str]:
    """The names of the rules a record breaks (empty: it passes)."""
    out = []
    if q.n_words == 0:
        return ["empty"]
    prose = not q.unspaced and not q.code
    if q.symbol_ratio > cfg.max_symbol_ratio and not q.code:
        out.append("symbol_ratio")
    if prose and not cfg.min_mean_word_len <= q.mean_word_len <= cfg.max_mean_word_len:
        out.append("mean_word_len")
    if q.alpha_word_frac < cfg.min_alpha_word_frac:
        out.append("alpha_word_frac")
    if prose and q.n_words >= cfg.stop_word_min_words and q.distinct_stop_words < cfg.min_stop_words:
        out.append("stop_words")
    elif prose and q.n_words >= cfg.stop_word_min_words and q.stop_words < cfg.min_stop_word_frac * q.n_words:
        out.append("function_words")
    if q.bullet_line_frac > cfg.max_bullet_line_frac:
        out.append("bullet_lines")
    if q.ellipsis_line_frac > cfg.max_ellipsis_line_frac:
        out.append("ellipsis_lines")
    if q.encoded_frac > cfg.max_encoded_frac:
        out.append("encoded_payload")
    if q.json_char_frac > cfg.max_json_char_frac:
        out.append("json_dump")
    if q.dup_line_frac > cfg.max_dup_line_frac:
        out.append("dup_lines")
    if q.dup_ngram_char_frac > cfg.max_dup_ngram_char_frac:
        out.append("dup_ngrams")
    return out


@dataclass(frozen=True)
class ShardQuality:
    bad_records: dict[int, list[str]]  # record index -> rules broken
    figures: dict[str, float]
    reasons: list[str]  # shard-level failures, human readable

    @property
    def passed(self) -> bool:
        return not self.reasons


def assess(texts: Sequence[str], cfg: QualityConfig) -> ShardQuality:
    """Judge every record and the shard as a whole."""
    bad: dict[int, list[str]] = {}
    words = stops = punct = 0
    rule_counts: Counter[str] = Counter()
    seen: set[int] = set()
    for i, text in enumerate(texts):
        q = measure(text, cfg.dup_ngram)
        if not q.unspaced:  # stop words are counted in languages written with spaces only
            words += q.n_words
            stops += q.stop_words
        punct += q.ends_with_punct
        rules = broken_rules(q, cfg)
        # A short phrase repeated as thousands of records slips past the per-record rules and
        # the length-gated dedup; any record identical to an earlier one counts against the shard.
        key = hash(" ".join(text.lower().split()))
        if key in seen and q.n_words >= cfg.min_repeat_record_words:
            rules.append("repeated_record")
        seen.add(key)
        if rules:
            bad[i] = rules
            rule_counts.update(rules)
    n = max(len(texts), 1)
    figures = {
        "records": float(len(texts)),
        "bad_record_frac": len(bad) / n,
        "stop_word_frac": stops / max(words, 1),
        "punct_end_frac": punct / n,
    }
    figures.update({f"broke_{rule}": float(c) for rule, c in sorted(rule_counts.items())})
    reasons = []
    if figures["bad_record_frac"] > cfg.max_bad_record_frac:
        top = ", ".join(f"{r} ({c})" for r, c in rule_counts.most_common(3))
        reasons.append(
            f"{len(bad)} of {len(texts)} records ({figures['bad_record_frac']:.0%}) break quality rules "
            f"(limit {cfg.max_bad_record_frac:.0%}); most common: {top}"
        )
    if words and figures["stop_word_frac"] < cfg.min_shard_stop_word_frac:
        reasons.append(
            f"stop words are {figures['stop_word_frac']:.1%} of words (minimum {cfg.min_shard_stop_word_frac:.0%}): "
            "this does not read as natural language"
        )
    if figures["punct_end_frac"] < cfg.min_punct_end_frac:
        reasons.append(
            f"only {figures['punct_end_frac']:.0%} of records end with punctuation (minimum {cfg.min_punct_end_frac:.0%})"
        )
    return ShardQuality(bad, figures, reasons)
