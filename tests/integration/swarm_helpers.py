"""Shared pieces of the multi-process swarm tests: a tiny model so rounds, not compute, dominate."""

from __future__ import annotations

import asyncio

import torch

from node.records import EpochRecord
from node.testnet.network import TestnetConfig
from node.train.checkpoint import load_checkpoint

# 2 layers x 64 wide: a local step takes milliseconds, so a test spends its time in real averaging rounds.
# lr 2e-3, not the node's 1e-3 (tuned for the default model): the tests' runs of 4-16 epochs must learn; at
# 4e-3 (the node's default before) one step could spike the loss (e.g. 3.6 -> 5.1 after 4 epochs of 3 peers).
TINY = dict(n_layer=2, n_embd=64, batch_size=8, target_batch_size=96, device="cpu", peer_wait_timeout=90.0, lr=2e-3)


async def connected_p2ps(n: int) -> list:  # type: ignore[type-arg]
    """``n`` hivemind P2P daemons on loopback, each connected to every other.

    Runner-level all-reduce tests open streams between every pair. Started with the first daemon as their only
    initial peer, some pairs were not connected (each saw 2 of 3 others here), so such a stream depended on
    the daemons finding each other first; one CI run's 4-peer all-reduce hung for 60 s, every runner waiting
    for parts. Each daemon here dials all the earlier ones.
    """
    from hivemind.p2p import P2P

    p2ps, maddrs = [], []  # type: ignore[var-annotated]
    for _ in range(n):
        p2p = await P2P.create(initial_peers=list(maddrs))
        maddrs += await p2p.get_visible_maddrs()
        p2ps.append(p2p)
    # A daemon dials its initial peers in the background: until the dial lands, an earlier daemon knows no
    # address of the later one, and a stream it opens to it fails (hivemind then keeps that partition's
    # local values), so wait until every pair is connected.
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        known = [{info.peer_id for info in await p2p.list_peers()} for p2p in p2ps]
        missing = [(i, j) for i, p in enumerate(p2ps) for j, q in enumerate(p2ps) if i != j and q.peer_id not in known[i]]
        if not missing:
            return p2ps
        if asyncio.get_running_loop().time() > deadline:
            await asyncio.gather(*[p.shutdown() for p in p2ps])
            raise TimeoutError(f"p2p daemons not connected after 30 s: pairs {missing}")
        await asyncio.sleep(0.05)


def tiny_testnet(run_dir, **overrides) -> TestnetConfig:  # type: ignore[no-untyped-def]
    return TestnetConfig(run_dir=run_dir, **{**TINY, **overrides})


def epoch_records(metrics: dict, peer: str) -> list[EpochRecord]:
    return [r for r in metrics[peer] if isinstance(r, EpochRecord)]


def round_outcomes(rounds: list[EpochRecord]) -> list[tuple]:
    """A short view of a peer's rounds for assertion messages: (epoch, averaged, group size, agreement)."""
    return [(r.epoch, r.averaged, r.group_size, r.agreement) for r in rounds]


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
