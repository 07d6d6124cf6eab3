"""Property tests of the pure vetting rules: sampling, quality figures, shingles, decontamination."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from node.data.decontam import EvalIndex
from node.data.dedup import jaccard, shingles
from node.data.probe import ByteUnigramLoss, deterministic_sample
from node.data.quality import QualityConfig, broken_rules, measure

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10)


@given(st.integers(0, 300), st.integers(0, 300), st.binary(max_size=8))
def test_deterministic_sample_is_a_stable_subset(n, k, seed):
    sample = deterministic_sample(n, k, seed)
    assert sample == deterministic_sample(n, k, seed)
    assert len(sample) == min(n, k) and sample == sorted(set(sample))
    assert all(0 <= i < n for i in sample)


@given(st.lists(words, min_size=3, max_size=12).map(" ".join), st.integers(2, 30))
def test_a_repeated_line_scores_as_repetition(line, k):
    q = measure("\n".join([line] * k))
    assert q.dup_line_frac == (k - 1) / k
    assert "dup_lines" in broken_rules(q, QualityConfig()) or q.dup_line_frac <= QualityConfig().max_dup_line_frac


@given(st.lists(words, min_size=1, max_size=40).map(" ".join), st.lists(words, min_size=1, max_size=40).map(" ".join))
def test_jaccard_of_shingles_is_symmetric_and_one_on_itself(a, b):
    sa, sb = shingles(a, 3), shingles(b, 3)
    assert jaccard(sa, sb) == jaccard(sb, sa)
    assert jaccard(sa, sa) == 1.0 and 0.0 <= jaccard(sa, sb) <= 1.0


@given(st.lists(words, min_size=13, max_size=40), st.data(), st.lists(words, max_size=20), st.lists(words, max_size=20))
def test_any_13_word_window_of_the_eval_split_is_caught(eval_words, data, before, after):
    index = EvalIndex([" ".join(eval_words)])
    start = data.draw(st.integers(0, len(eval_words) - 13))
    text = " ".join(before + [w.upper() for w in eval_words[start : start + 13]] + after)
    assert index.overlap(text) is not None


@given(st.binary(min_size=1, max_size=200).filter(lambda d: len(set(d)) < 256))
def test_unigram_loss_is_lower_on_its_reference_than_on_unseen_bytes(data):
    loss = ByteUnigramLoss([data * 5])
    unseen = next(b for b in range(256) if b not in data)
    (own,) = loss([data])
    (other,) = loss([bytes([unseen]) * 3])
    assert 0 < own < other
