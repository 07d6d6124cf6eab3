"""The robustness suite at test size (the node's default pipeline against the suite's attacks), and the trimmed
mean's cap on how much it cuts."""

import logging

import pytest
import torch

from node.swarm.robust import MeanAggregator, TrimmedMeanAggregator, trim_count
from node.testnet.robust_suite import SuiteConfig, attacks, clean, default_aggregator, run


def test_trimmed_mean_of_seven_keeps_three_values_not_the_median(caplog):
    # 0.31 of 7 asks for 3 per side (a fraction no other test uses: the cap is logged once per fraction and size), which leaves only the median; the cap keeps 3 values averaged and says so
    rows = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0], [11.0], [12.0]])
    with caplog.at_level(logging.WARNING, logger="node.swarm.robust"):
        out = TrimmedMeanAggregator(trim_fraction=0.31).aggregate(rows, torch.ones(7))
    assert float(out) == (2.0 + 3.0 + 10.0) / 3
    assert "cutting 2" in caplog.text


def test_trim_count_takes_the_fraction_where_it_leaves_two_values():
    assert trim_count(0.3, 10) == 3  # keeps 4
    assert trim_count(0.3, 16) == 5  # keeps 6
    assert trim_count(0.45, 10) == 4  # capped from 5: keeps 2
    assert trim_count(0.3, 3) == 1  # three senders: the median is the only robust choice
    assert trim_count(0.0, 5) == 0


# The quick suite: softmax on label-skewed shards (each honest worker ~2 classes), 3 of 10 hostile, few steps.
QUICK = SuiteConfig(workers=10, byzantine=3, split="skewed", steps=60, momentum=0.9)  # the momentum the suite was measured with


@pytest.fixture(scope="module")
def quick_clean():
    torch.set_num_threads(1)
    return clean(QUICK)


@pytest.mark.parametrize("attack", ["alie-1.5", "min-max", "min-sum", "ipm-0.1"])
def test_default_pipeline_stays_near_clean_on_skewed_data(attack, quick_clean, one_thread):
    assert quick_clean > 0.85  # the task is learnable at all in this many steps
    accuracy = run(default_aggregator(), attacks()[attack], QUICK)
    assert accuracy >= quick_clean - 0.10, (attack, accuracy, quick_clean)


@pytest.mark.parametrize("attack", ["ipm-10", "inside-radius"])
def test_plain_mean_collapses_on_the_same_suite(attack, quick_clean, one_thread):
    assert run(MeanAggregator(), attacks()[attack], QUICK) < 0.5
