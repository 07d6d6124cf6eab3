"""One peer's training loop, the same in every mode: join, train on assigned batches, synchronize, record.

Data flow per local step: ``protocol.assignment`` picks the batch of (run, epoch, peer, step) ->
forward and backward on the local model -> the receipt recorder sketches the gradient -> the
``Synchronizer`` (``node.train.synchronizer``) turns the step into the swarm's progress: gradient
accumulation and averaging (sync mode) or inner steps and outer rounds (DiLoCo). When it reports that
an epoch ended, the loop signs the epoch's receipt, evaluates, checkpoints and writes the record.

Run it through the CLI: ``hivenet node start --run-id demo --expected-peers 1``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import torch

from node.hooks import NO_HOOKS, Hooks
from node.records import EpochRecord, FinalRecord, Record, StartRecord, StopRecord, record_json
from node.swarm.agreement import sketch
from node.swarm.config import SwarmConfig
from node.train.checkpoint import load_checkpoint, save_checkpoint
from node.train.config import TrainConfig
from node.train.data import Corpus, assigned_batch, demo_corpus, val_batches, vetted_corpus
from node.train.evaluation import evaluate, param_digest
from node.train.model import GPT, build_model, describe_model, model_fingerprint, run_seed
from node.train.synchronizer import EpochEnd, Joined, SyncContext, Synchronizer
from protocol.errors import CheckpointError, ConfigError, PeersNotFound
from protocol.types import Epoch, PeerId, RunId

log = logging.getLogger(__name__)

STOP_FLUSH_S = 2.0  # on a stop, how long unpublished receipts may still try the DHT (SIGTERM-to-exit stays < 10 s)


class Stage(StrEnum):
    STARTING = "starting"
    JOINING = "joining"
    WAITING_FOR_PEERS = "waiting-for-peers"
    LOADING_STATE = "loading-state"
    TRAINING = "training"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass
class PeerStatus:
    """What the peer is doing, for progress displays; plain values only."""

    stage: str = Stage.STARTING
    peer_id: str = ""
    maddrs: list[str] = field(default_factory=list)
    epoch: int = 0
    local_steps: int = 0
    loss: float = math.nan
    val_loss: float = math.nan
    peers: int = 0
    samples_per_s: float = 0.0
    rounds: int = 0
    bytes_sent: int = 0  # averaging traffic of this peer so far (DiLoCo mode counts it)
    bytes_received: int = 0
    utilization: float | None = None  # share of training wall time spent computing rather than waiting (DiLoCo)


class WorkRecorder(Protocol):
    """Receipts of this peer's work (``node.work``): fed every step, asked to sign at every epoch's end."""

    def on_step(self, epoch: int, step: int, model: torch.nn.Module) -> None: ...
    def on_epoch_end(self, epoch: int, counted: bool = True) -> Any: ...
    def flush(self, budget_s: float) -> int: ...


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA GPU; use --device auto or cpu")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def _check_same_model(saved: Any, train: TrainConfig) -> None:
    """A checkpoint of another model (other sizes, or written before a change of the architecture such as
    QK-norm) cannot be resumed: say so before joining the swarm, not with torch's list of missing keys."""
    expected = {k: tuple(v.shape) for k, v in GPT(train.model).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in saved.items() if isinstance(v, torch.Tensor)} if isinstance(saved, dict) else {}
    if got != expected:
        differ = sorted(set(expected) ^ set(got)) or sorted(k for k in expected if expected[k] != got[k])
        raise CheckpointError(
            f"checkpoint {train.checkpoint_path} holds another model than this node builds "
            f"({len(differ)} tensor(s) differ, e.g. {', '.join(differ[:3])}); use another --checkpoint path or --fresh"
        )


class Trainer:
    """A training peer; ``run()`` blocks in the main thread until done or ``request_stop()``.

    ``sync`` decides how the peers combine their work (``node.sync.make_synchronizer``); ``receipts``, when
    given, builds the work recorder once the peer is on the DHT (``node.work``); ``hooks`` are the
    testnet's and tests' injection points (``node.hooks``), no-ops on a real node.
    """

    def __init__(
        self,
        swarm: SwarmConfig,
        train: TrainConfig,
        sync: Synchronizer | None = None,
        corpus: Corpus | None = None,
        receipts: Callable[[Joined, Corpus, list[str]], WorkRecorder | None] | None = None,
        hooks: Hooks = NO_HOOKS,
        on_status: Callable[[PeerStatus], None] = lambda s: None,
        on_event: Callable[[Record], None] = lambda e: None,
    ) -> None:
        self.swarm, self.cfg, self.sync, self.hooks = swarm, train, sync, hooks
        self.shard_ids: list[str] = []
        if corpus is None:
            corpus = demo_corpus()
            if train.shard_store is not None:  # the held-out split stays the run's; training text comes from vetted shards
                corpus, self.shard_ids = vetted_corpus(train.shard_store, swarm.run_id, corpus.val)
        self.corpus = corpus
        self.receipts = receipts
        self.on_status = on_status
        self.on_event = on_event  # every metrics record (start, epoch, round, final, stop), e.g. for telemetry
        self.status = PeerStatus()
        self.device = resolve_device(train.device)
        self._stop_requested = False
        self.work: WorkRecorder | None = None  # set in run() when the peer signs receipts
        self.fingerprint = ""  # this peer's model (node.train.model.model_fingerprint), once built
        # Fail before joining the swarm: a corrupt checkpoint must stop the start, not be overwritten.
        self._resume = None if train.fresh or train.checkpoint_path is None else load_checkpoint(train.checkpoint_path)
        if self._resume is not None and self._resume.get("run_id") != swarm.run_id:
            raise CheckpointError(
                f"checkpoint {train.checkpoint_path} belongs to run {self._resume.get('run_id')!r}, "
                f"not {swarm.run_id!r}; use another --checkpoint path or --fresh"
            )
        if self._resume is not None:
            _check_same_model(self._resume.get("model"), train)
            if sync is not None:
                sync.check_resume(self._resume)

    def request_stop(self) -> None:
        self._stop_requested = True

    def _emit(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.status, key, value)
        self.on_status(self.status)

    def _record(self, kind: type[Record], **fields: Any) -> None:
        """One metrics record (node.records) to the observers and the metrics file."""
        record = kind(t=time.time(), peer=self.status.peer_id, **fields)
        self.on_event(record)
        if self.cfg.metrics_path is not None:
            with open(self.cfg.metrics_path, "a") as f:
                f.write(json.dumps(record_json(record)) + "\n")

    # -- start and stop ---------------------------------------------------------------------

    def run(self) -> None:
        sync = self.sync
        if sync is None:
            raise ConfigError("a Trainer needs a synchronizer to run (node.sync.make_synchronizer)")
        torch.set_num_threads(self.cfg.threads)
        model = build_model(self.cfg.model, seed=run_seed(self.swarm.run_id))
        if self._resume is not None:  # before the synchronizer copies the parameters into its averagers
            model.load_state_dict(self._resume["model"])
        model.to(self.device)
        self.fingerprint = model_fingerprint(self.cfg.model, model)
        val = val_batches(self.corpus, self.cfg.model.block_size, self.cfg.eval_windows)
        self._emit(stage=Stage.JOINING)
        ctx = SyncContext(emit=self._emit, record=self._record, stopping=lambda: self._stop_requested)
        try:
            joined = sync.open(ctx)
            self._emit(peer_id=joined.peer_id, maddrs=joined.maddrs)
            if self.receipts is not None:
                self.work = self.receipts(joined, self.corpus, self.shard_ids)
            log.info("peer %s listening on %s", joined.peer_id, " ".join(joined.maddrs))
            sync.prepare(model, self._resume, self.fingerprint, describe_model(self.cfg.model))
            self._record(StartRecord, epoch=sync.epoch, val_loss=evaluate(model, val, self.device),
                         resumed=self._resume is not None, device=str(self.device), params=model.num_params(),
                         shards=self.shard_ids, train_bytes=len(self.corpus.train),
                         maddrs=self.status.maddrs, model=self.fingerprint, **sync.start_fields())
            self._emit(stage=Stage.WAITING_FOR_PEERS)
            sync.wait_for_peers()
            self._train(model, val, PeerId(joined.peer_id))
        finally:
            self._emit(stage=Stage.STOPPING)
            try:
                if self.work is not None:  # while the DHT is up: pending receipts get a last try, the rest a spool file
                    self.work.flush(STOP_FLUSH_S)
            finally:
                sync.close()
                self._emit(stage=Stage.STOPPED)

    # -- the loop -------------------------------------------------------------------------------

    def _local_step(self, model: GPT, peer: PeerId, epoch: int, step: int) -> tuple[float, float]:
        """Forward and backward on the batch assigned to (run, epoch, peer, step); the receipt sketches it.
        Returns the loss and the seconds the forward and backward took."""
        started = time.monotonic()
        x, y = assigned_batch(self.corpus, RunId(self.swarm.run_id), Epoch(epoch), peer, step,
                              self.cfg.batch_size, self.cfg.model.block_size)
        y = self.hooks.transform_labels(y, 256)  # bytes are the classes
        _, loss = model(x.to(self.device), y.to(self.device))
        assert loss is not None
        loss.backward()
        compute_s = time.monotonic() - started
        self.hooks.after_local_step(compute_s)
        if self.work is not None:  # receipts: sketch this step's gradient (before the optimizer sees it)
            self.work.on_step(epoch, step, model)
        return loss.item(), compute_s

    def _train(self, model: GPT, val: list, peer: PeerId) -> None:
        sync = self.sync
        assert sync is not None
        self._emit(stage=Stage.TRAINING, epoch=sync.epoch)

        def first_step() -> None:
            _, compute_s = self._local_step(model, peer, sync.epoch, 0)
            sync.step(model, 0, compute_s)

        step = sync.warm_up(first_step)
        epoch, losses, samples = sync.epoch, [], 0
        started = time.monotonic()
        while sync.epoch < self.cfg.max_epochs and not self._stop_requested:
            loss, compute_s = self._local_step(model, peer, epoch, step)
            losses.append(loss)
            end = sync.step(model, step, compute_s)
            step += 1
            samples += self.cfg.batch_size
            self._emit(local_steps=step, loss=losses[-1], **sync.live_status())
            if end is not None:
                with sync.off_pace():  # receipt, evaluation, checkpoint: not this peer's step time
                    self._end_epoch(model, val, end, step, losses, samples, started)
                epoch, step, losses, samples = sync.epoch, 0, [], 0
                started = time.monotonic()
        stopped = self._stop_requested
        sync.finish(model, stopped)
        if not stopped:
            with sync.shared_view(model):
                val_loss = evaluate(model, val, self.device)
            self._record(FinalRecord, epoch=sync.epoch, val_loss=val_loss, **sync.final_fields())
            try:
                sync.end_barrier(self.cfg.end_barrier_timeout)
            except PeersNotFound as e:  # a peer that died at the end must not cost this peer its checkpoint
                log.warning("end barrier: %s", e)
        self._checkpoint(model)
        self._record(StopRecord, epoch=sync.epoch, param_digest=param_digest(model.parameters()), requested=stopped,
                     **sync.final_fields())

    def _end_epoch(self, model: GPT, val: list, end: EpochEnd, steps: int, losses: list[float], samples: int,
                   started: float) -> None:
        sync = self.sync
        assert sync is not None
        if self.work is not None:  # a receipt only when this peer's work made the swarm's update
            self.work.on_epoch_end(end.epoch, counted=end.counted)
        val_loss = None
        if self.cfg.eval_every > 0 and end.new_epoch % self.cfg.eval_every == 0:
            with sync.shared_view(model):
                val_loss = evaluate(model, val, self.device)
        if end.new_epoch % max(1, self.cfg.checkpoint_every) == 0:
            self._checkpoint(model)
        elapsed = time.monotonic() - started
        self._record(
            EpochRecord, epoch=end.epoch, new_epoch=end.new_epoch, local_steps=steps, samples=samples,
            loss=sum(losses) / max(1, len(losses)), val_loss=val_loss, elapsed_s=elapsed,
            param_sketch=sketch(sync.shared_tensors(model), chunks=4), **end.fields,
        )
        self._emit(epoch=end.new_epoch, rounds=end.rounds, samples_per_s=samples / max(elapsed, 1e-9), **end.status,
                   **({"val_loss": val_loss} if val_loss is not None else {}))

    def _checkpoint(self, model: GPT) -> None:
        if self.cfg.checkpoint_path is None or self.sync is None:
            return
        save_checkpoint(self.cfg.checkpoint_path, {
            "format": 1, "run_id": self.swarm.run_id, "model_config": asdict(self.cfg.model),
            "model": model.state_dict(), **self.sync.checkpoint_state(),
        })
