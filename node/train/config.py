"""Configuration of a peer's training."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from node.train.model import GPTConfig


def _default_model() -> GPTConfig:
    # Imported on use: node.config reads this module's defaults for `hivenet init`, `--help` and every
    # config load, which must not pay for importing torch (seconds).
    from node.train.model import GPTConfig

    return GPTConfig()


@dataclass(frozen=True)
class DilocoConfig:
    """Settings that only DiLoCo mode reads (``train.mode = "diloco"``); sync mode ignores them."""

    inner_steps: int = 125  # local steps per round; averaging traffic falls by about this factor
    inner_warmup_steps: int = 20  # linear warm-up of the inner lr, then constant
    outer_lr: float = 0.7  # outer SGD learning rate (DiLoCo's value)
    outer_momentum: float = 0.9  # outer Nesterov momentum (DiLoCo's value)
    overlap: bool = True  # average a round while the next round's inner steps run (applied when it lands)
    compression: str = "none"  # what the pseudo-gradients travel as: none | float16 | uint8
    error_feedback: bool = False  # add back what compression dropped from this peer's last pseudo-gradient


@dataclass(frozen=True)
class TrainConfig:
    model: GPTConfig = field(default_factory=_default_model)  # every peer of a run must use the same model config
    batch_size: int = 16  # samples per local step; peers may differ, the swarm's target batch is what counts
    # AdamW learning rate after warm-up (also DiLoCo's inner lr), for the default model. In sync mode each
    # collaborative epoch is one step: at 4e-3 (the default before) one step could spike the held-out loss, and
    # the demo's run at 2e-3 spiked too (train loss 3.4 -> 6.8 at epoch 6, 2.91 after 20 epochs, against
    # 2.38-2.56 at 1e-3 in 4 runs). Smaller models take more: the tests' 2-layer, 64-wide one trains at 2e-3.
    lr: float = 1e-3
    warmup_epochs: int = 3  # collaborative epochs of linear warm-up; the scheduler follows the global epoch
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # sync mode: clip the averaged gradients' total norm to this (0: off; node.train.optim)
    max_epochs: int = 60  # stop after this many collaborative epochs (optimizer steps of the swarm)
    device: str = "auto"  # auto | cpu | cuda; auto picks CUDA when torch sees a GPU
    threads: int = 1  # torch CPU threads; N local peers on few cores must not oversubscribe them
    eval_every: int = 10  # evaluate held-out loss every this many epochs (0: only at the start and end)
    eval_windows: int = 64  # held-out windows per evaluation: enough for a stable estimate, cheap on a CPU
    checkpoint_path: Path | None = None  # written every checkpoint_every epochs and on stop; resumed from on start
    checkpoint_every: int = 5  # epochs between checkpoints: each writes the model and optimizer state (~40 MB) with fsync
    metrics_path: Path | None = None  # JSON lines, one per event (start, epoch, stop), for the testnet and tests
    shard_store: Path | None = None  # train on the shards vetted for the run in this store (default: the raw demo corpus)
    # Fetch the run's shards from the peers that offer them (node.data.replicate) into shard_store (default
    # ~/.hivenet/shards), vet them here, serve them on, then train on those that passed. Off: the store as it is.
    fetch_shards: bool = False
    shard_cache_mb: int = 1024  # cap on the fetched shards' bytes in the store; others are evicted, never the run's
    fresh: bool = False  # ignore (never delete) an existing checkpoint
    end_barrier_timeout: float = 60.0  # at the end, wait this long for the others to finish their last round
    keystore: Path | None = None  # sign work receipts with this keystore's Ethereum account (None: no receipts)
    password_file: Path | None = None  # file holding the keystore password (first line)
    snapshot_dir: Path | None = None  # epoch-start parameters for validators, content-addressed (see node.work.snapshots)
    # The snapshot store's bounds (node.work.snapshot_store): validators recompute an epoch until it is settled
    # (and watchers until its challenge ends), so keep that many epochs; the cap bounds the disk whatever the
    # model size. 0 keeps everything, as a store without bounds did.
    snapshot_cap_mb: int = 0
    snapshot_keep_epochs: int = 0
    snapshot_serve: bool = True  # serve the snapshots over P2P and announce them in the DHT (validators elsewhere fetch them)
    # How peers combine their work: "sync" averages gradients every collaborative epoch (hivemind.Optimizer);
    # "diloco" takes diloco.inner_steps local AdamW steps, then averages the parameter change (node.sync.diloco).
    mode: str = "sync"
    diloco: DilocoConfig = field(default_factory=DilocoConfig)  # read only in diloco mode
