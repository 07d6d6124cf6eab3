"""Snapshot disk use: each trainer's snapshot store stays under its cap through a whole run.

    .venv/bin/python bench/snapshot_disk.py                       # 3 trainers, 40 epochs, 2 MiB cap
    .venv/bin/python bench/snapshot_disk.py --epochs 10 --cap-mb 1

A process testnet (``node.testnet.network.Testnet``) of 3 trainers with receipts on and one validator
that fetches the snapshots over P2P (as a validator on another machine does), a tiny model
(n_layer 2, n_embd 64) on the CPU. Every trainer writes its epoch-start snapshots into a folder of its
own, bounded by ``--snapshot-cap-mb`` (small enough that pruning must happen: a few epochs' snapshots
exceed it). A thread samples each folder's size (every file in it, temporary ones too) every 0.5 s.

Prints one JSON object per trainer:
{"bench": "snapshot_disk", "peer": ..., "max_bytes": ..., "cap_bytes": ..., "ratio": max / cap,
 "epochs": ..., "snapshots_seen": ..., "snapshots_pruned": ..., "snapshot_bytes": ...,
 "baseline_bytes": epochs x snapshot_bytes (the folder unpruned), "samples": ...}
then one {"bench": "snapshot_disk_run", ...} line with the validator's receipts checked and rejected
(pruning must not starve it). Exits 1 when any trainer's folder went over its cap, or the run failed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.testnet import validation  # noqa: E402
from node.testnet.network import Testnet, TestnetConfig  # noqa: E402

RUN_ID = "bench-snapshot-disk"
SAMPLE_S = 0.5


@dataclass
class FolderTrace:
    """What one trainer's snapshot folder held over the run."""

    path: Path
    max_bytes: int = 0
    samples: int = 0
    seen: set[str] = field(default_factory=set)  # snapshot hashes ever present
    snapshot_bytes: int = 0  # the largest snapshot (.pt plus its .epoch file)
    epochs: set[int] = field(default_factory=set)

    def sample(self) -> None:
        total = 0
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            entries = []
        sizes: dict[str, int] = {}
        for e in entries:
            try:
                size = e.stat().st_size
            except FileNotFoundError:  # pruned between the listing and the stat
                continue
            total += size
            stem, _, ext = e.name.partition(".")
            if ext in ("pt", "epoch"):
                sizes[stem] = sizes.get(stem, 0) + size
            if ext == "epoch":
                try:
                    self.epochs.add(int(Path(e.path).read_text().strip()))
                except (FileNotFoundError, ValueError):
                    pass
        for e in entries:
            stem, _, ext = e.name.partition(".")
            if ext == "pt":
                self.seen.add(stem)
                self.snapshot_bytes = max(self.snapshot_bytes, sizes.get(stem, 0))
        self.max_bytes = max(self.max_bytes, total)
        self.samples += 1

    def held(self) -> set[str]:
        return {p.stem for p in self.path.glob("*.pt")} if self.path.is_dir() else set()


class OwnFolderTestnet(Testnet):
    """A testnet whose trainers each write snapshots into ``<run_dir>/peer<i>/snapshots`` (the stock one shares
    ``<run_dir>/snapshots`` between them, which its in-process validator reads)."""

    def snapshot_dir(self, index: int) -> Path:
        return self.cfg.run_dir / f"peer{index}" / "snapshots"

    def _args(self, index: int) -> list[str]:
        args = super()._args(index)
        for i, a in enumerate(args[:-1]):
            if a == "--snapshot-dir":
                args[i + 1] = str(self.snapshot_dir(index))
        return args


def _sampler(traces: list[FolderTrace], stop: threading.Event) -> None:
    while not stop.wait(SAMPLE_S):
        for t in traces:
            t.sample()


def run(args: argparse.Namespace, run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    cap_bytes = args.cap_mb << 20
    # The testnet builds its validator's ServiceConfig itself: fetch snapshots over P2P (there is no shared
    # folder to read), as a validator on another machine does.
    validation.ServiceConfig = functools.partial(validation.ServiceConfig, snapshots="network")  # type: ignore[misc]
    cfg = TestnetConfig(run_dir=run_dir, peers=args.peers, run_id=RUN_ID, contributors=0, epochs=args.epochs,
                        n_layer=2, n_embd=64, target_batch_size=64, batch_size=16, device="cpu", broker="",
                        validators=1, peer_wait_timeout=180.0,
                        extra_args=("--snapshot-cap-mb", str(args.cap_mb),
                                    "--snapshot-keep-epochs", str(args.keep_epochs)))
    net = OwnFolderTestnet(cfg)
    traces = [FolderTrace(net.snapshot_dir(i)) for i in range(args.peers)]
    stop = threading.Event()
    sampler = threading.Thread(target=_sampler, args=(traces, stop), daemon=True, name="sampler")
    finished = False
    try:
        net.start()
        sampler.start()
        finished = net.wait_finished(timeout=args.timeout)
    finally:
        stop.set()
        if sampler.is_alive():
            sampler.join(timeout=10)
        for t in traces:
            t.sample()  # the state the trainers left
        net.stop()
    summary = net.write_summary()
    out = net.validation_result
    lines = []
    for i, t in enumerate(traces):
        epochs = max(t.epochs) + 1 if t.epochs else 0
        baseline = epochs * t.snapshot_bytes
        lines.append({"bench": "snapshot_disk", "peer": f"peer{i}", "max_bytes": t.max_bytes, "cap_bytes": cap_bytes,
                      "ratio": round(t.max_bytes / cap_bytes, 3), "epochs": epochs,
                      "snapshots_seen": len(t.seen), "snapshots_pruned": len(t.seen - t.held()),
                      "snapshot_bytes": t.snapshot_bytes, "baseline_bytes": baseline,
                      "baseline_ratio": round(baseline / cap_bytes, 2), "samples": t.samples})
    run_line = {"bench": "snapshot_disk_run", "finished": finished, "failed_peers": summary["failed_peers"],
                "receipts": out.get("receipts"), "receipts_checked": out.get("receipts_checked"),
                "receipts_rejected": summary.get("receipts_rejected"), "validator_errors": out.get("validator_errors"),
                "wall_s": round(summary.get("wall_s") or 0.0, 1)}
    return lines, run_line


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peers", type=int, default=3)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--cap-mb", type=int, default=2, help="every trainer's --snapshot-cap-mb (MiB)")
    p.add_argument("--keep-epochs", type=int, default=0, help="--snapshot-keep-epochs (0: the cap alone prunes)")
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds the trainers may take")
    p.add_argument("--keep", type=Path, default=None, help="keep the run directory here (default: a temp dir)")
    args = p.parse_args()
    run_dir = args.keep or Path(tempfile.mkdtemp(prefix="bench-snapshot-disk-"))
    try:
        lines, run_line = run(args, run_dir)
    finally:
        if args.keep is None:
            shutil.rmtree(run_dir, ignore_errors=True)
    for line in (*lines, run_line):
        print(json.dumps(line), flush=True)
    over = [x["peer"] for x in lines if x["max_bytes"] > x["cap_bytes"]]
    if over:
        print(f"error: snapshot folders over their cap: {', '.join(over)}; see the store's prune order "
              "(node/work/snapshot_store.py)", file=sys.stderr)
        return 1
    if not run_line["finished"] or run_line["failed_peers"]:
        print(f"error: the run did not finish cleanly: {run_line}", file=sys.stderr)
        return 1
    if not all(x["snapshots_pruned"] > 0 for x in lines):
        print("error: no pruning happened: lower --cap-mb so that a few epochs' snapshots exceed it", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
