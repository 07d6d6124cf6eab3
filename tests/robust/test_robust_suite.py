"""The robustness suite at test size, and the trimmed mean's cap on how much it cuts."""

import logging

import torch

from node.swarm.robust import TrimmedMeanAggregator, trim_count


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
