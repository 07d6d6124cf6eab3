"""Shared pieces of the multi-process swarm tests: a tiny model so rounds, not compute, dominate."""

from __future__ import annotations

import torch

from node.testnet.network import TestnetConfig
from node.train.checkpoint import load_checkpoint

# 2 layers x 64 wide: a local step takes milliseconds, so a test spends its time in real averaging rounds.
TINY = dict(n_layer=2, n_embd=64, batch_size=8, target_batch_size=96, device="cpu", peer_wait_timeout=90.0)


def tiny_testnet(run_dir, **overrides) -> TestnetConfig:  # type: ignore[no-untyped-def]
    return TestnetConfig(run_dir=run_dir, **{**TINY, **overrides})


def epoch_records(metrics: dict, peer: str) -> list[dict]:
    return [r for r in metrics[peer] if r["event"] == "epoch"]


def max_param_difference(paths) -> float:  # type: ignore[no-untyped-def]
    """Largest absolute difference between any parameter of the checkpoints at ``paths``."""
    models = [load_checkpoint(p)["model"] for p in paths]
    worst = 0.0
    for name, ref in models[0].items():
        for other in models[1:]:
            worst = max(worst, float((ref - other[name]).abs().max()))
    return worst


def mean_abs_param(path) -> float:  # type: ignore[no-untyped-def]
    state = load_checkpoint(path)["model"]
    return float(torch.cat([t.flatten() for t in state.values()]).abs().mean())
