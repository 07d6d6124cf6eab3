"""Acceptance 1: 3 of 10 simulated workers attack; CenteredClip keeps clean accuracy, the plain mean collapses."""

import pytest

from node.swarm.robust import CenteredClipAggregator, MeanAggregator, TrimmedMeanAggregator
from node.testnet.attacks import ATTACKS, make_attack
from tests.robust.digits_sim import simulate

# Attacks built to wreck an average (large or arbitrary vectors). The others (label flip, IPM with eps=0.1,
# stale gradients) are built to slip past robust rules and barely move a plain mean at 3 of 10: for them the
# test asserts only that the robust rule holds.
MEAN_BREAKING = ("sign-flip", "gaussian", "constant")


@pytest.fixture(scope="module")
def clean_accuracy():
    return simulate(MeanAggregator())


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_centered_clip_stays_within_3_points_of_clean(attack, clean_accuracy, one_thread):
    accuracy = simulate(CenteredClipAggregator(), make_attack(attack))
    assert clean_accuracy > 0.9  # the task is learnable at all
    assert accuracy >= clean_accuracy - 0.03, (attack, accuracy, clean_accuracy)


@pytest.mark.parametrize("attack", MEAN_BREAKING)
def test_plain_mean_collapses_under_the_same_attack(attack, one_thread):
    assert simulate(MeanAggregator(), make_attack(attack)) < 0.5


@pytest.mark.parametrize("attack", MEAN_BREAKING)
def test_trimmed_mean_also_resists(attack, clean_accuracy, one_thread):
    assert simulate(TrimmedMeanAggregator(), make_attack(attack)) >= clean_accuracy - 0.05
