"""Properties of the aggregation rules (Hypothesis) and their resistance to outliers of any size."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from node.swarm.robust import (
    AGGREGATORS,
    CenteredClipAggregator,
    centered_clip,
    clamp_weights,
    coordinate_median,
    make_aggregator,
    mean,
    trimmed_mean,
)
from protocol.errors import ConfigError

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def stacks(draw, min_rows=1, max_rows=9):
    n = draw(st.integers(min_rows, max_rows))
    d = draw(st.integers(1, 6))
    values = draw(st.lists(finite, min_size=n * d, max_size=n * d))
    return torch.tensor(values, dtype=torch.float64).view(n, d)


ALL = [make_aggregator(name) for name in AGGREGATORS]


def _close(a, b, scale):
    return float((a - b).abs().max()) <= 1e-6 * (1.0 + scale)


@settings(max_examples=60, deadline=None)
@given(stacks(), st.randoms(use_true_random=False))
def test_every_aggregator_ignores_the_order_of_senders(x, rnd):
    perm = list(range(x.shape[0]))
    rnd.shuffle(perm)
    for agg in ALL:
        w = torch.ones(x.shape[0])
        assert _close(agg.aggregate(x, w), agg.aggregate(x[perm], w), float(x.abs().max())), agg.name


@settings(max_examples=60, deadline=None)
@given(stacks(), st.floats(-100, 100), st.floats(0.01, 100))
def test_every_aggregator_commutes_with_shift_and_positive_scale(x, shift, scale):
    w = torch.ones(x.shape[0])
    for agg in ALL:
        moved = agg.aggregate(x * scale + shift, w)
        expected = agg.aggregate(x, w) * scale + shift
        assert _close(moved, expected, float((x * scale + shift).abs().max())), agg.name


@settings(max_examples=60, deadline=None)
@given(stacks(), st.integers(1, 5))
def test_unanimous_senders_give_their_common_value(x, copies):
    row = x[:1].repeat(copies, 1)
    for agg in ALL:
        assert _close(agg.aggregate(row, torch.ones(copies)), x[0], float(x[0].abs().max())), agg.name


@settings(max_examples=60, deadline=None)
@given(stacks(min_rows=3))
def test_coordinate_rules_stay_inside_the_senders_range(x):
    lo, hi = x.min(dim=0).values, x.max(dim=0).values
    for out in (coordinate_median(x), trimmed_mean(x, (x.shape[0] - 1) // 2), mean(x)):
        assert bool(((out >= lo - 1e-9) & (out <= hi + 1e-9)).all())


@settings(max_examples=80, deadline=None)
@given(stacks(min_rows=3, max_rows=9), st.floats(1e3, 1e9), st.integers(0, 2**31 - 1))
def test_a_minority_of_huge_outliers_cannot_drag_robust_rules_away(honest, magnitude, seed):
    """f < n/2 outliers of any magnitude: the robust results stay within a bound set by the honest rows alone."""
    n_honest = honest.shape[0]
    f = (n_honest - 1) // 2  # outliers stay a strict minority of the n_honest + f senders
    gen = torch.Generator().manual_seed(seed)
    outliers = torch.randn(f, honest.shape[1], generator=gen, dtype=torch.float64) * magnitude
    x = torch.cat([outliers, honest])
    box = honest.max(dim=0).values - honest.min(dim=0).values
    diameter = float(box.norm())
    honest_mean = honest.mean(dim=0)
    iterations = 3
    # Median start lies in the honest box; tau <= the largest honest distance to it (<= diameter); each
    # iteration moves the center by at most tau: (1 + iterations) * diameter, whatever the magnitude.
    cc = centered_clip(x, iterations=iterations)
    assert float((cc - honest_mean).norm()) <= (1 + iterations) * diameter + 1e-6 * (1 + float(honest.abs().max()))
    for out in (coordinate_median(x), trimmed_mean(x, f)):
        assert float((out - honest_mean).norm()) <= diameter + 1e-6 * (1 + float(honest.abs().max()))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e12, allow_nan=False), min_size=1, max_size=12))
def test_clamped_weights_sum_to_one_and_none_exceeds_one_over_n(weights):
    shares = clamp_weights(torch.tensor(weights, dtype=torch.float64))
    contributing = sum(w > 0 for w in weights) or len(weights)
    assert abs(float(shares.sum()) - 1.0) <= 1e-6
    assert float(shares.max()) <= 1.0 / contributing + 1e-6
    assert all(float(s) == 0.0 for s, w in zip(shares, weights) if w <= 0 and any(v > 0 for v in weights))


def test_a_peer_claiming_a_huge_weight_gets_no_more_say_than_anyone():
    honest = torch.zeros(3, 4)
    liar = torch.full((1, 4), 8.0)
    out = make_aggregator("mean").aggregate(torch.cat([liar, honest]), torch.tensor([1e9, 32.0, 32.0, 32.0]))
    assert torch.allclose(out, torch.full((4,), 2.0))  # 8 / 4: one vote of four, not ~8


def test_zero_weight_senders_are_left_out():
    x = torch.tensor([[100.0], [1.0], [3.0]])
    for name in AGGREGATORS:
        assert float(make_aggregator(name).aggregate(x, torch.tensor([0.0, 1.0, 1.0]))[0]) == pytest.approx(2.0)


def test_centered_clip_with_fixed_tau_bounds_each_senders_pull():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1e6, 0.0]])
    out = CenteredClipAggregator(tau=1.0, iterations=1, reject_beyond=None).aggregate(x, torch.ones(3))
    assert float(out[0]) == pytest.approx(1.0 / 3)  # clipped to radius 1, one vote of three


def test_centered_clip_leaves_out_a_sender_far_beyond_the_others_and_keeps_a_near_one():
    honest = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    far = torch.tensor([[-1000.0, -1000.0]])
    told = []
    out = centered_clip(torch.cat([honest, far]), on_reject=lambda *a: told.append(a))
    # the honest senders' mean, up to the start (the median of all four) and 3 iterations: the far one had no say
    assert float((out - honest.mean(dim=0)).norm()) < 0.02
    assert len(told) == 1 and told[0][0].tolist() == [False, False, False, True] and float(told[0][1][3]) > 1000
    clipped_only = centered_clip(torch.cat([honest, far]), reject_beyond=None)
    assert float((clipped_only - honest.mean(dim=0)).norm()) > 0.1  # clipping alone still lets it pull
    near = torch.tensor([[3.0, 3.0]])  # a few median distances away, within the default 10: clipped, not left out
    told.clear()
    with_near = centered_clip(torch.cat([honest, near]), on_reject=lambda *a: told.append(a))
    assert told == [] and not torch.allclose(with_near, centered_clip(honest), atol=1e-3)
    assert torch.allclose(with_near, centered_clip(torch.cat([honest, near]), reject_beyond=None))
    # with a threshold of 1.5 median distances the near one (2.8 away) is left out as well
    assert torch.allclose(centered_clip(torch.cat([honest, near]), reject_beyond=1.5), centered_clip(honest), atol=0.02)


def test_unknown_names_and_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="unknown aggregator"):
        make_aggregator("krum")
    with pytest.raises(ConfigError):
        make_aggregator("centered-clip", tau=-1.0)
    with pytest.raises(ConfigError):
        make_aggregator("trimmed-mean", trim_fraction=0.5)
    with pytest.raises(ValueError):
        trimmed_mean(torch.zeros(4, 2), 2)
