"""The robust reducer inside hivemind's real all-reduce protocol: 4 runners over 4 p2p daemons.

Runner level (one event loop, one p2pd per peer), as hivemind's own all-reduce tests do; the full
optimizer runs only in separate processes (tests/robust/test_swarm_robust.py).
"""

import asyncio

import pytest
import torch
from hivemind.averaging.allreduce import AveragingMode

from node.swarm.robust import CenteredClipAggregator, MeanAggregator, make_aggregator
from node.swarm.hivemind_ext.robust_allreduce import RobustAllReduceRunner
from node.swarm.momentum import WorkerMomentum, chain
from tests.integration.swarm_helpers import connected_p2ps
from tests.waiting import wait_until_async


async def _allreduce(tensors_by_peer, aggregator, weights=None, part_size_bytes=2**12, with_failures=False):
    p2ps = await connected_p2ps(len(tensors_by_peer))
    try:
        peers = [p.peer_id for p in p2ps]
        runners = []
        for i, p2p in enumerate(p2ps):
            runner = RobustAllReduceRunner(
                aggregator=aggregator, p2p=p2p, servicer_type=RobustAllReduceRunner, prefix=None, group_id=b"g",
                tensors=[t.clone() for t in tensors_by_peer[i]], weight=None if weights is None else weights[i],
                ordered_peer_ids=peers, peer_fractions=(1.0,) * len(p2ps), modes=[AveragingMode.NODE] * len(p2ps),
                part_size_bytes=part_size_bytes,
            )
            await runner.add_p2p_handlers(p2p)
            runners.append(runner)

        async def run(runner):
            index = 0
            async for delta in runner:
                runner.tensor_part_container.local_tensors[index].add_(delta)
                index += 1

        await asyncio.wait_for(asyncio.gather(*map(run, runners)), timeout=60)
        results = [[t.clone() for t in r.tensor_part_container.local_tensors] for r in runners]
        if with_failures:
            return results, [{peers.index(p) for p in r.unreachable} for r in runners]
        return results
    finally:
        await asyncio.gather(*[p.shutdown() for p in p2ps])


def _peers(seed=0, n=4):
    gen = torch.Generator().manual_seed(seed)
    base = [torch.randn(3000, generator=gen), torch.randn(40, 25, generator=gen)]
    return [[b + 0.1 * torch.randn(b.shape, generator=gen) for b in base] for _ in range(n)]


@pytest.mark.parametrize("name", ["median", "trimmed-mean", "mean"])
@pytest.mark.swarm
def test_every_peer_receives_the_aggregate_of_all_senders(name):
    tensors = _peers()
    results = asyncio.run(_allreduce(tensors, make_aggregator(name)))
    agg = make_aggregator(name)
    expected = [agg.aggregate(torch.stack([p[k] for p in tensors]), torch.ones(4)) for k in range(2)]
    for result in results:  # coordinate-wise rules: aggregating part by part equals aggregating whole tensors
        for got, want in zip(result, expected):
            assert float((got - want).abs().max()) <= 1e-5


@pytest.mark.swarm
def test_a_sign_flipping_sender_ruins_the_mean_but_not_centered_clip():
    tensors = _peers(seed=1)
    tensors[3] = [-1000 * t for t in tensors[3]]
    flat = [torch.cat([t.flatten() for t in peer]) for peer in tensors]
    honest_mean = torch.stack(flat[:3]).mean(0)
    # 4000 values over 4 reducers: each reducer's partition is 1000 values, one part of at most 1024
    partitions = [slice(k * 1000, (k + 1) * 1000) for k in range(4)]
    aggregator = CenteredClipAggregator()
    expected = [aggregator.aggregate(torch.stack([f[s] for f in flat]), torch.tensor([8.0, 8.0, 8.0, 1e9]))
                for s in partitions]

    robust, unreachable = asyncio.run(_allreduce(tensors, aggregator, weights=[8.0, 8.0, 8.0, 1e9], with_failures=True))
    plain = asyncio.run(_allreduce(tensors, MeanAggregator(), weights=[8.0, 8.0, 8.0, 1e9]))
    reduced = 0
    for peer in range(3):  # every honest peer holds the reducer's robust result for each partition, except
        # where its exchange with that reducer failed on the wire: there hivemind keeps its own values, and
        # the runner says so
        got = torch.cat([t.flatten() for t in robust[peer]])
        for k, s in enumerate(partitions):
            want = flat[peer][s] if k in unreachable[peer] else expected[k]
            assert float((got[s] - want).abs().max()) <= 1e-5, (peer, k, unreachable)
            if k not in unreachable[peer]:
                reduced += 1
                assert float((got[s] - honest_mean[s]).norm() / 1000**0.5) < 0.1  # RMS error; honest spread 0.1
    assert reduced >= 10  # of 12 (peer, partition) pairs: the wire failing more often is a bug of its own
    plain_flat = torch.cat([t.flatten() for t in plain[0]])
    assert float((plain_flat - honest_mean).norm() / 4000**0.5) > 100  # the attacker's weight was clamped to 1/4,
    # and -1000x is still ruinous


def test_worker_momentum_sends_the_running_average_of_gradients():
    momentum = chain(None, WorkerMomentum(0.5))
    assert momentum is not None
    first = momentum([torch.tensor([2.0])])
    second = momentum([torch.tensor([4.0])])
    assert float(first[0]) == 2.0 and float(second[0]) == 3.0
    assert chain(None, None) is None


def test_a_round_group_crosses_the_process_boundary_with_its_id():
    # The averager runs in its own process: the step's result reaches the optimizer pickled.
    import pickle

    from node.swarm.hivemind_ext.robust_allreduce import RoundGroup

    group = pickle.loads(pickle.dumps(RoundGroup({"a": 1, "b": None}, b"\x01\x02")))
    assert dict(group) == {"a": 1, "b": None} and group.group_id == b"\x01\x02"


def test_a_sender_cancelled_while_it_waits_does_not_break_the_part_for_the_others():
    # A dying sender's stream handler is cancelled while it awaits the part's result; in hivemind's reducer
    # that cancelled the future every other waiter shared, and the round hung until its timeout.
    from node.swarm.hivemind_ext.robust_allreduce import RobustTensorPartReducer

    async def main():
        reducer = RobustTensorPartReducer([torch.Size([3])], num_senders=3, aggregator=MeanAggregator())
        dying = asyncio.create_task(reducer.accumulate_part(0, 0, torch.full((3,), 1.0)))
        waiting = asyncio.create_task(reducer.accumulate_part(1, 0, torch.full((3,), 3.0)))
        assert await wait_until_async(lambda: reducer.current_part_accumulated_from == 2, 5)  # both are waiting
        dying.cancel()
        assert await wait_until_async(dying.done, 5)
        last = asyncio.create_task(reducer.accumulate_part(2, 0, torch.full((3,), 5.0)))
        return await asyncio.wait_for(asyncio.gather(waiting, last), timeout=5)

    for result in asyncio.run(main()):
        assert torch.allclose(result, torch.full((3,), 3.0))
