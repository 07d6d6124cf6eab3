"""Communication efficiency: hivenet's DiLoCo mode against DDP (torch.distributed, gloo), same run.

    .venv/bin/python bench/efficiency.py                       # 2 and 4 peers
    .venv/bin/python bench/efficiency.py --peers 2 --rounds 4 --inner-steps 50   # quicker, smaller

Both sides train the same model from the same initialization, with the same
per-peer batch, the same inner learning-rate schedule and the same sample
budget (peers x batch x rounds x inner_steps), on the demo corpus, and are
scored on the same held-out windows:

- **DDP**: N spawned processes, gloo on loopback, gradients all-reduced every
  step (DistributedDataParallel); its bytes per peer are counted by a DDP comm
  hook from the buckets it really reduces, times the ring all-reduce's
  2 (N-1)/N for what one peer sends, and as much received.
- **hivenet**: ``hivenet node start --mode diloco`` peers of a local testnet
  (real DHT, real hivemind all-reduce over p2pd): every peer takes
  ``inner_steps`` AdamW steps, then the swarm averages pseudo-gradients and
  applies the outer Nesterov step. Bytes are what each peer's averager sent
  and received (serialized all-reduce messages, counted by the node), and
  utilization is the share of each peer's training wall time spent in inner
  steps (the lowest peer's is reported).

Prints one JSON object per configuration (modes ``diloco`` = float32 and
``diloco-uint8`` = 8-bit pseudo-gradients):
{"bench": "efficiency", "peers": N, "mode": ..., "ddp_val_loss": ..., "hivenet_val_loss": ...,
 "ddp_bytes_per_peer": ..., "hivenet_bytes_per_peer": ..., "bytes_ratio": ddp / hivenet, "utilization": ...}
plus ``val_loss_gap`` (hivenet / ddp - 1) and, for 8-bit, ``bytes_vs_float32`` and ``val_loss_vs_float32``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RUN_ID = "bench-efficiency"
WAIT_S = 1800.0


@dataclass(frozen=True)
class Setup:
    peers: int
    rounds: int
    inner_steps: int
    batch_size: int
    lr: float
    n_layer: int
    n_embd: int
    block_size: int
    warmup_steps: int = 20

    @property
    def total_steps(self) -> int:
        return self.rounds * self.inner_steps


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- DDP baseline ----------------------------------------------------------------------------------


def _ddp_worker(rank: int, setup: Setup, port: int, out_dir: str) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from node.train.data import assigned_batch, demo_corpus, val_batches
    from node.sync.diloco import inner_lr_factor
    from node.train.evaluation import evaluate
    from node.train.model import GPTConfig, build_model, run_seed
    from protocol.types import Epoch, PeerId, RunId

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=setup.peers)
    model_cfg = GPTConfig(n_layer=setup.n_layer, n_embd=setup.n_embd, block_size=setup.block_size)
    model = build_model(model_cfg, seed=run_seed(RUN_ID))
    ddp = DistributedDataParallel(model)
    reduced_bytes = [0]

    def counting_allreduce(state: object, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        buffer = bucket.buffer()
        reduced_bytes[0] += buffer.numel() * buffer.element_size()
        return dist.all_reduce(buffer.div_(setup.peers), async_op=True).get_future().then(lambda f: f.value()[0])

    # DDP checks the hook's annotations as objects (this module's annotations are strings)
    counting_allreduce.__annotations__ = {"state": object, "bucket": dist.GradBucket,
                                          "return": torch.futures.Future[torch.Tensor]}
    ddp.register_comm_hook(None, counting_allreduce)
    opt = torch.optim.AdamW(ddp.parameters(), lr=setup.lr, betas=(0.9, 0.95), weight_decay=0.01)
    corpus = demo_corpus()
    peer = PeerId(f"ddp-{rank}")
    dist.barrier()
    started = time.monotonic()
    for step in range(setup.total_steps):
        for group in opt.param_groups:
            group["lr"] = setup.lr * inner_lr_factor(step, setup.warmup_steps)
        x, y = assigned_batch(corpus, RunId(RUN_ID), Epoch(step // setup.inner_steps), peer, step % setup.inner_steps,
                              setup.batch_size, model_cfg.block_size)
        _, loss = ddp(x, y)
        loss.backward()  # the all-reduce runs inside backward
        opt.step()
        opt.zero_grad(set_to_none=True)
    wall = time.monotonic() - started
    result = {"rank": rank, "reduced_bytes": reduced_bytes[0], "wall_s": wall}
    if rank == 0:
        result["val_loss"] = evaluate(model, val_batches(corpus, model_cfg.block_size, 64), torch.device("cpu"))
    Path(out_dir, f"ddp-{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def run_ddp(setup: Setup) -> dict[str, Any]:
    import torch.multiprocessing as tmp

    with tempfile.TemporaryDirectory() as out:
        tmp.start_processes(_ddp_worker, args=(setup, _free_port(), out), nprocs=setup.peers, start_method="spawn")
        results = [json.loads(Path(out, f"ddp-{r}.json").read_text()) for r in range(setup.peers)]
    ring = 2 * (setup.peers - 1) / setup.peers  # of the reduced buffer, one peer sends this much and receives as much
    per_peer = max(r["reduced_bytes"] for r in results) * ring * 2
    return {"val_loss": results[0]["val_loss"], "bytes_per_peer": per_peer, "wall_s": max(r["wall_s"] for r in results)}


# -- hivenet DiLoCo ------------------------------------------------------------------------------------


def run_hivenet(setup: Setup, compression: str, run_dir: Path, identities: Path | None) -> dict[str, Any]:
    from node.testnet.network import Testnet, TestnetConfig

    if identities is not None:  # the same peer ids as the other mode's run: the same batches (protocol.assignment)
        for index in range(setup.peers):
            (run_dir / f"peer{index}").mkdir(parents=True, exist_ok=True)
            shutil.copy(identities / f"peer{index}" / "identity.key", run_dir / f"peer{index}" / "identity.key")

    cfg = TestnetConfig(
        run_dir=run_dir, run_id=RUN_ID, peers=setup.peers, epochs=setup.rounds, batch_size=setup.batch_size,
        n_layer=setup.n_layer, n_embd=setup.n_embd, device="cpu", contributors=0, peer_wait_timeout=180.0,
        extra_args=("--mode", "diloco", "--inner-steps", str(setup.inner_steps), "--lr", str(setup.lr),
                    "--compression", compression, "--eval-every", "0", "--block-size", str(setup.block_size), "--matchmaking-time", "5",
                    "--averaging-timeout", "20"),
    )
    with Testnet(cfg) as net:
        if not net.wait_finished(WAIT_S):
            raise TimeoutError(f"hivenet peers did not finish in {WAIT_S} s (see {run_dir})")
        failed = net.failed_peers()
        if failed:
            raise RuntimeError(f"peers failed: {failed}; {net.failure_reason(failed[0])}")
        metrics = net.metrics()
    from node.records import FinalRecord, RoundRecord

    finals = [next(r for r in recs if isinstance(r, FinalRecord)) for recs in metrics.values()]
    rounds = [r for recs in metrics.values() for r in recs if isinstance(r, RoundRecord)]
    digests: dict[int, set[str | None]] = {r.round: set() for r in rounds if r.applied}
    for r in rounds:
        if r.applied:
            digests[r.round].add(r.shared_digest)
    return {
        "val_loss": max(f.val_loss for f in finals),
        "bytes_per_peer": max(f.bytes_sent + f.bytes_received for f in finals),
        "utilization": min(f.utilization for f in finals),
        "rounds_applied": min(f.rounds_applied for f in finals),
        "shared_params_identical": all(len(d) == 1 for d in digests.values()),
    }


def bench(setup: Setup, compressions: list[str], keep: Path | None) -> list[dict[str, Any]]:
    ddp = run_ddp(setup)
    base = {"bench": "efficiency", "peers": setup.peers, "inner_steps": setup.inner_steps, "rounds": setup.rounds,
            "samples_per_peer": setup.total_steps * setup.batch_size}
    rows, float32 = [], None
    with tempfile.TemporaryDirectory() as tmp:
        first_run: Path | None = None
        for compression in compressions:
            mode = "diloco" if compression == "none" else f"diloco-{compression}"
            run_dir = (keep or Path(tmp)) / f"{setup.peers}-{mode}"
            hive = run_hivenet(setup, compression, run_dir, first_run)
            first_run = first_run or run_dir
            row = {**base, "mode": mode, "ddp_val_loss": round(ddp["val_loss"], 4),
                   "hivenet_val_loss": round(hive["val_loss"], 4),
                   "ddp_bytes_per_peer": int(ddp["bytes_per_peer"]), "hivenet_bytes_per_peer": int(hive["bytes_per_peer"]),
                   "bytes_ratio": round(ddp["bytes_per_peer"] / hive["bytes_per_peer"], 1),
                   "utilization": hive["utilization"],
                   "val_loss_gap": round(hive["val_loss"] / ddp["val_loss"] - 1, 4),
                   "rounds_applied": hive["rounds_applied"], "shared_params_identical": hive["shared_params_identical"]}
            if compression == "none":
                float32 = hive
            elif float32 is not None:
                row["bytes_vs_float32"] = round(float32["bytes_per_peer"] / hive["bytes_per_peer"], 2)
                row["val_loss_vs_float32"] = round(hive["val_loss"] / float32["val_loss"] - 1, 4)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--inner-steps", type=int, default=125)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--compressions", nargs="+", default=["none", "uint8"], choices=["none", "float16", "uint8"],
                        help="one hivenet run per entry, all with the same peer ids (so the same batches)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the testnet run directories here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for peers in args.peers:
        bench(Setup(peers=peers, rounds=args.rounds, inner_steps=args.inner_steps, batch_size=args.batch_size,
                    lr=args.lr, n_layer=args.n_layer, n_embd=args.n_embd, block_size=args.block_size), args.compressions, args.keep)


if __name__ == "__main__":
    main()
