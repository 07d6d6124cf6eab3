"""Benchmark: the reduce step of an all-reduce round with each aggregator, against the plain mean.

    .venv/bin/python bench/robust.py                       # 4 senders, 10M float32 elements, 3 repeats
    .venv/bin/python bench/robust.py --senders 8 --elements 1000000 --repeats 1

The work measured is what a reducer does in a round (node.swarm.hivemind_ext.robust_allreduce): for each part of its
partition (hivemind's default part of 2**19 bytes = 131072 float32 values), stack the senders' versions
and combine them. The partition set is 10M elements in total; every aggregator reduces the same parts,
in the same process, one torch thread (a peer's setting). ``mean`` is the baseline through the same path;
times are the median over repeats. Prints one JSON object per line:
{"bench": "robust", "aggregator": NAME, "seconds": ..., "mean_seconds": ..., "ratio": seconds / mean_seconds}
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from node.swarm.robust import AGGREGATORS, make_aggregator

PART = 2**19 // 4  # float32 values per all-reduce part (hivemind's DEFAULT_PART_SIZE_BYTES)


def _reduce_all(name: str, parts: list[torch.Tensor], weights: torch.Tensor) -> float:
    aggregator = make_aggregator(name)
    started = time.perf_counter()
    for stacked in parts:
        aggregator.aggregate(stacked, weights)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--elements", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    parts = []
    for start in range(0, args.elements, PART):
        size = min(PART, args.elements - start)
        parts.append(torch.randn(args.senders, size, generator=gen))
    weights = torch.full((args.senders,), 32.0)
    times = {name: [] for name in AGGREGATORS}
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits every aggregator alike
        for name in AGGREGATORS:
            times[name].append(_reduce_all(name, parts, weights))
    mean_s = statistics.median(times["mean"])
    for name in AGGREGATORS:
        seconds = statistics.median(times[name])
        print(json.dumps({"bench": "robust", "aggregator": name, "seconds": round(seconds, 4),
                          "mean_seconds": round(mean_s, 4), "ratio": round(seconds / mean_s, 3)}), flush=True)


if __name__ == "__main__":
    main()
