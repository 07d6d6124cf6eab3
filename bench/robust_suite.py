"""Benchmark: robust aggregators against omniscient attacks on the digits task (node.testnet.robust_suite).

    .venv/bin/python bench/robust_suite.py                  # softmax, iid + skewed, 3 of 10 and 7 of 16
    .venv/bin/python bench/robust_suite.py --model mlp --steps 150
    .venv/bin/python bench/robust_suite.py --quick          # a few attacks, few steps (the test's size)

Prints one JSON object per (aggregator, attack, split, hostile count), with the clean figure of the same run
(the plain mean over the honest workers alone): {"bench": "robust_suite", "aggregator", "attack", "split",
"workers", "byzantine", "accuracy", "clean_accuracy", "default"} (accuracies in percent; ``default`` marks the
node's default pipeline, the aggregator built from ``node.swarm.config.SwarmConfig(run_id="robust-suite")``'s defaults).
"""

from __future__ import annotations

import argparse
import json

import torch

from node.swarm.config import SwarmConfig
from node.swarm.robust import Aggregator, CenteredClipAggregator, MeanAggregator, MedianAggregator, \
    TrimmedMeanAggregator
from node.testnet.robust_suite import SuiteConfig, attacks, clean, default_aggregator, run

QUICK_ATTACKS = ("ipm-10", "inside-radius", "min-sum", "alie-1.5")


def aggregators() -> dict[str, Aggregator]:
    return {
        "default": default_aggregator(),
        "mean": MeanAggregator(),
        "median": MedianAggregator(),
        "trimmed-mean": TrimmedMeanAggregator(),
        "centered-clip+nnm": CenteredClipAggregator(mix_share=0.3),
        "centered-clip+bucket2": CenteredClipAggregator(bucket=2),
    }


def suite(model: str, steps: int, quick: bool, only: list[str] | None = None,
          momentum: float | None = None) -> list[dict]:
    rows = []
    chosen = aggregators()
    if only:
        chosen = {k: v for k, v in chosen.items() if k in only}
    settings = [("iid", 10, 3), ("skewed", 10, 3), ("iid", 16, 7)] if not quick else [("skewed", 10, 3)]
    if momentum is None:  # the node's default: the default pipeline includes what honest workers send
        momentum = SwarmConfig(run_id="robust-suite").worker_momentum
    for split, workers, bad in settings:
        cfg = SuiteConfig(workers=workers, byzantine=bad, split=split, model=model, steps=steps, momentum=momentum)
        clean_acc = clean(cfg)
        for name, agg in chosen.items():
            for attack_name, attack in attacks().items():
                if quick and attack_name not in QUICK_ATTACKS:
                    continue
                row = {"bench": "robust_suite", "aggregator": name,
                       "attack": attack_name, "split": split, "workers": workers, "byzantine": bad,
                       "accuracy": round(100 * run(agg, attack, cfg), 1), "clean_accuracy": round(100 * clean_acc, 1),
                       "default": name == "default", "model": model}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("softmax", "mlp"), default="softmax")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--aggregators", nargs="*", help="only these (default, mean, median, ...)")
    parser.add_argument("--momentum", type=float, help="honest workers' momentum (default: the node's)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    suite(args.model, 40 if args.quick and args.steps == 150 else args.steps, args.quick, args.aggregators, args.momentum)


if __name__ == "__main__":
    main()
