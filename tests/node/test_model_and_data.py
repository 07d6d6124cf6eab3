"""The byte-level GPT and the demo corpus."""

import math

import pytest
import torch

from node.train.data import assigned_batch, demo_corpus, val_batches
from node.train.model import GPTConfig, build_model


def test_default_model_has_a_few_million_parameters_and_starts_near_ln256():
    model = build_model(GPTConfig(), seed=1)
    assert 2_000_000 <= model.num_params() <= 6_000_000
    x, y = torch.randint(0, 256, (2, 4, 64))
    _, loss = model(x, y)
    assert abs(float(loss) - math.log(256)) < 0.3


def test_same_seed_gives_identical_initial_weights():
    a, b, c = (build_model(GPTConfig(n_layer=1, n_embd=32), seed=s) for s in (7, 7, 8))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_config_rejects_heads_that_do_not_divide_width():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=100, n_head=3)


def test_corpus_holds_out_a_disjoint_validation_tail():
    corpus = demo_corpus()
    assert len(corpus.train) > 300_000 and len(corpus.val) > 20_000
    assert corpus.val[:2000] not in corpus.train  # the held-out split is not a copy of training text
    corpus.train.decode("utf-8")


def test_batches_are_next_byte_pairs_and_reproducible():
    corpus = demo_corpus()
    x1, y1 = assigned_batch(corpus, "run", 3, "peer", 5, 8, 64)
    x2, y2 = assigned_batch(corpus, "run", 3, "peer", 5, 8, 64)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == (8, 64) and torch.equal(x1[:, 1:], y1[:, :-1])
    batches = val_batches(corpus, 64, max_windows=40, batch_size=16)
    assert sum(len(b[0]) for b in batches) == 40
