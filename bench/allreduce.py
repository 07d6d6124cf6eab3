"""Benchmark: one hivemind averaging round against torch.distributed gloo all_reduce, same tensor, same peers.

    .venv/bin/python bench/allreduce.py                 # 2 and 4 peers, 1M and 10M float32 elements
    .venv/bin/python bench/allreduce.py --peers 2 --elements 1000000 --rounds 2

Each configuration starts fresh peer processes (spawned interpreters) for both
systems, in the same run. The hivemind time is the all-reduce phase of a round
(group already matched, all peers triggered together), the same phase gloo's
``all_reduce`` measures; ``hivenet_round_s`` adds the matchmaking before it.
Times are the median over rounds of the slowest peer. Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import statistics
import sys
import time

WAIT = 120.0  # seconds any barrier or round may take before the benchmark gives up


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hivemind_peer(rank: int, peers: int, elements: int, rounds: int, maddrs, barrier, results) -> None:  # type: ignore[no-untyped-def]
    # A spawned interpreter inherits the "spawn" start method; hivemind's averager forks its worker.
    mp.set_start_method("fork", force=True)
    import torch

    torch.set_num_threads(1)
    import hivemind
    from hivemind.averaging.control import AveragingStage

    if rank > 0:  # join through the first peer once it is listening
        deadline = time.monotonic() + WAIT
        while len(maddrs) == 0:
            if time.monotonic() > deadline:
                raise TimeoutError("the first peer never published its address")
            time.sleep(0.1)
    initial = [] if rank == 0 else [str(a) for a in maddrs]
    dht = hivemind.DHT(start=True, initial_peers=initial, host_maddrs=["/ip4/127.0.0.1/tcp/0"])
    if rank == 0:
        maddrs.extend([str(a) for a in dht.get_visible_maddrs()])
    tensor = torch.full((elements,), float(rank + 1))
    averager = hivemind.DecentralizedAverager(
        [tensor], dht, prefix="bench_allreduce", target_group_size=peers, min_group_size=peers,
        min_matchmaking_time=2.0, request_timeout=1.0, start=True,
    )
    barrier.wait(WAIT)
    times, round_times = [], []
    for _ in range(rounds + 1):  # the first round warms up connections and is not counted
        barrier.wait(WAIT)
        begin = time.perf_counter()
        control = averager.step(require_trigger=True, wait=False, timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while control.stage != AveragingStage.AWAITING_TRIGGER and not control.done():
            if time.monotonic() > deadline:
                raise TimeoutError("hivemind matchmaking did not finish")
            time.sleep(0.001)
        barrier.wait(WAIT)
        start = time.perf_counter()
        control.allow_allreduce()
        control.result(WAIT)
        end = time.perf_counter()
        times.append(end - start)
        round_times.append(end - begin)
    with averager.get_tensors() as (averaged,):
        expected = (peers + 1) / 2  # mean of 1..peers
        ok = abs(float(averaged[0]) - expected) < 1e-4 and abs(float(averaged[-1]) - expected) < 1e-4
    results.put((rank, times[1:], round_times[1:], ok))
    barrier.wait(WAIT)
    averager.shutdown()
    dht.shutdown()


def _gloo_peer(rank: int, peers: int, elements: int, rounds: int, port: int, results) -> None:  # type: ignore[no-untyped-def]
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=peers)
    tensor = torch.full((elements,), float(rank + 1))
    times = []
    for _ in range(rounds + 1):
        tensor.fill_(float(rank + 1))
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(tensor)
        tensor /= peers
        times.append(time.perf_counter() - start)
    ok = abs(float(tensor[0]) - (peers + 1) / 2) < 1e-4
    results.put((rank, times[1:], times[1:], ok))
    dist.destroy_process_group()


def _run(target, peers: int, args: tuple) -> tuple[float, float, bool]:  # type: ignore[no-untyped-def]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(rank, peers, *args, results), daemon=False) for rank in range(peers)]  # not daemonic: hivemind starts children
    for p in procs:
        p.start()
    collected = [results.get(timeout=WAIT * 4) for _ in procs]
    for p in procs:
        p.join(timeout=WAIT)
        if p.is_alive():
            p.kill()
    n_rounds = len(collected[0][1])
    slowest = [max(c[1][i] for c in collected) for i in range(n_rounds)]
    slowest_round = [max(c[2][i] for c in collected) for i in range(n_rounds)]
    return statistics.median(slowest), statistics.median(slowest_round), all(c[3] for c in collected)


def bench(peers: int, elements: int, rounds: int) -> dict[str, object]:
    manager = mp.get_context("spawn").Manager()
    maddrs, barrier = manager.list(), manager.Barrier(peers)
    hm_s, hm_round_s, hm_ok = _run(_hivemind_peer, peers, (elements, rounds, maddrs, barrier))
    manager.shutdown()
    gloo_s, _, gloo_ok = _run(_gloo_peer, peers, (elements, rounds, _free_port()))
    if not (hm_ok and gloo_ok):
        raise RuntimeError(f"a peer ended with a wrong average (hivemind ok={hm_ok}, gloo ok={gloo_ok})")
    return {"bench": "allreduce", "peers": peers, "elements": elements, "rounds": rounds,
            "hivenet_s": round(hm_s, 4), "hivenet_round_s": round(hm_round_s, 4), "gloo_s": round(gloo_s, 4),
            "ratio": round(hm_s / gloo_s, 2), "cpus": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--elements", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for peers in args.peers:
        for elements in args.elements:
            print(json.dumps(bench(peers, elements, args.rounds)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
