"""One peer's training loop: join the swarm, train on assigned batches, average, checkpoint.

Data flow per local step: ``protocol.assignment`` picks the batch -> forward and
backward on the local model -> ``hivemind.Optimizer.step`` accumulates toward the
swarm's target batch -> at the epoch boundary the swarm averages gradients and
every peer applies the same update.

Run it through the CLI: ``hivenet node start --run-id demo --expected-peers 1``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from node.hooks import NO_HOOKS
from node.swarm import models
from node.swarm.agreement import sketch
from node.swarm.collab import CollaborativeOptimizer, make_optimizer, peers_in_swarm
from node.swarm.config import SwarmConfig
from node.swarm.dht import peer_id_of, start_dht, visible_maddrs
from node.train.checkpoint import load_checkpoint, save_checkpoint
from node.train.config import TrainConfig
from node.train.data import Corpus, assigned_batch, demo_corpus, val_batches, vetted_corpus
from node.train.model import GPT, build_model, describe_model, model_fingerprint
from node.train.optim import ClippedAdamW
from node.train.sketch import STOP_FLUSH_S, make_recorder
from protocol.errors import CheckpointError, ConfigError, PeersNotFound
from protocol.types import Epoch, PeerId, RunId

log = logging.getLogger(__name__)


@dataclass
class PeerStatus:
    """What the peer is doing, for progress displays; plain values only."""

    stage: str = "starting"  # starting | joining | waiting-for-peers | loading-state | training | stopping | stopped
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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA GPU; use --device auto or cpu")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def run_seed(run_id: str) -> int:
    """Initial-weights seed shared by every peer of a run."""
    return int.from_bytes(hashlib.sha256(b"hivenet/init/" + run_id.encode()).digest()[:8], "big") >> 1


def param_digest(model: torch.nn.Module) -> str:
    """SHA-256 over the parameters' bytes: equal digests mean bit-identical models."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


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


@torch.no_grad()
def evaluate(model: GPT, batches: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> float:
    """Mean held-out loss in nats per byte."""
    was_training = model.training
    model.eval()
    total = sum(float(model(x.to(device), y.to(device))[1]) for x, y in batches)  # type: ignore[arg-type]
    model.train(was_training)
    return total / len(batches)


class Trainer:
    """A training peer; ``run()`` blocks in the main thread until done or ``request_stop()``."""

    # node.testnet.attacks.Faults (attacks, straggling) on testnet peers only, set by `hivenet node start`
    # after it checked it runs inside a testnet (one trainer per process); None on a real node.
    faults: Any = None

    def __init__(
        self,
        swarm: SwarmConfig,
        train: TrainConfig,
        corpus: Corpus | None = None,
        on_status: Callable[[PeerStatus], None] = lambda s: None,
        on_event: Callable[[dict[str, Any]], None] = lambda e: None,
    ) -> None:
        self.swarm, self.cfg = swarm, train
        self.shard_ids: list[str] = []
        if corpus is None:
            corpus = demo_corpus()
            if train.shard_store is not None:  # the held-out split stays the run's; training text comes from vetted shards
                corpus, self.shard_ids = vetted_corpus(train.shard_store, swarm.run_id, corpus.val)
        self.corpus = corpus
        self.on_status = on_status
        self.on_event = on_event  # every metrics record (start, epoch, final, stop), e.g. for telemetry
        self.status = PeerStatus()
        self.device = resolve_device(train.device)
        self._stop_requested = False
        self.work: Any = None  # node.train.sketch.WorkRecorder when the peer signs receipts (train.keystore set)
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

    def request_stop(self) -> None:
        self._stop_requested = True

    def _emit(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.status, key, value)
        self.on_status(self.status)

    def _metric(self, event: str, **fields: Any) -> None:
        record = {"t": time.time(), "event": event, "peer": self.status.peer_id, **fields}
        self.on_event(record)
        if self.cfg.metrics_path is not None:
            with open(self.cfg.metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def run(self) -> None:
        torch.set_num_threads(self.cfg.threads)
        model = build_model(self.cfg.model, seed=run_seed(self.swarm.run_id))
        if self._resume is not None:  # before the optimizer copies the parameters into its averagers
            model.load_state_dict(self._resume["model"])
        model.to(self.device)
        self.fingerprint = model_fingerprint(self.cfg.model, model)
        val = val_batches(self.corpus, self.cfg.model.block_size, self.cfg.eval_windows)
        self._emit(stage="joining")
        dht = start_dht(self.swarm)
        opt: CollaborativeOptimizer | None = None
        try:
            peer = peer_id_of(dht)
            self._emit(peer_id=peer, maddrs=visible_maddrs(dht))
            self.work = make_recorder(dht, self.swarm.run_id, peer, self.cfg.batch_size, self.cfg.model.block_size,
                                      self.corpus, self.cfg.shard_store, self.cfg.keystore, self.cfg.password_file,
                                      self.cfg.snapshot_dir, self.cfg.checkpoint_path)
            log.info("peer %s listening on %s", peer, " ".join(self.status.maddrs))
            key = models.join(dht, self.swarm.run_id, self.fingerprint, describe_model(self.cfg.model))
            opt = self._make_optimizer(dht, model, key)
            if self._resume is not None:
                opt.load_state_dict(self._resume["optimizer"])
                log.info("resumed from %s at epoch %d", self.cfg.checkpoint_path, opt.local_epoch)
            self._metric("start", epoch=opt.local_epoch, val_loss=evaluate(model, val, self.device),
                         resumed=self._resume is not None, device=str(self.device), params=model.num_params(),
                         shards=self.shard_ids, train_bytes=len(self.corpus.train),
                         maddrs=self.status.maddrs, model=self.fingerprint)
            self._emit(stage="waiting-for-peers")
            models.wait_for_peers(dht, self.swarm.run_id, self.fingerprint, "start", self.swarm.expected_peers,
                                  self.swarm.peer_wait_timeout)
            self._train(dht, opt, model, val, peer)
        finally:
            self._emit(stage="stopping")
            try:
                if self.work is not None:  # while the DHT is up: pending receipts get a last try, the rest a spool file
                    self.work.flush(STOP_FLUSH_S)
            finally:
                if opt is not None:
                    opt.shutdown()
                dht.shutdown()
                self._emit(stage="stopped")

    def _make_optimizer(self, dht: Any, model: GPT, key: str) -> CollaborativeOptimizer:
        cfg = self.cfg

        def lr_at(epoch: int) -> float:
            return min(1.0, (epoch + 1) / max(1, cfg.warmup_epochs))

        return make_optimizer(
            dht,
            replace(self.swarm, run_id=key),  # the run's and the model's: peers of other models never meet in a round
            params=model.parameters(),
            optimizer=lambda params: ClippedAdamW(params, cfg.max_grad_norm, lr=cfg.lr, betas=(0.9, 0.95),
                                                  weight_decay=cfg.weight_decay),
            scheduler=lambda o: torch.optim.lr_scheduler.LambdaLR(o, lr_at),
            batch_size_per_step=cfg.batch_size,
            hooks=self.faults if self.faults is not None else NO_HOOKS,
        )

    def _local_step(self, opt: CollaborativeOptimizer, model: GPT, peer: PeerId, step: int) -> float:
        epoch, started = opt.local_epoch, time.monotonic()
        x, y = assigned_batch(self.corpus, RunId(self.swarm.run_id), Epoch(epoch), peer, step,
                              self.cfg.batch_size, self.cfg.model.block_size)
        if self.faults is not None:
            y = self.faults.corrupt_labels(y, 256)  # bytes are the classes
        _, loss = model(x.to(self.device), y.to(self.device))
        assert loss is not None
        loss.backward()
        if self.faults is not None:  # a straggler: its compute (not the swarm's rounds in opt.step) is slower
            self.faults.after_step(time.monotonic() - started)
        if self.work is not None:  # receipts: sketch this step's gradient (before the optimizer sees it)
            self.work.on_step(epoch, step, model)
        opt.step()
        opt.zero_grad()
        return loss.item()

    def _wait_until_tracker_sees_peers(self, opt: CollaborativeOptimizer, model: GPT, peer: PeerId) -> None:
        # The tracker publishes a peer only after it reported samples, so each peer takes one
        # local step, then waits until the tracker counts everyone; otherwise the first round is lonely.
        self._local_step(opt, model, peer, 0)
        if self._catch_up_if_behind(opt):
            return  # a late joiner or a restarted peer: the others are already training, no need to wait for them
        started = time.monotonic()
        next_note = started + 10.0
        while peers_in_swarm(opt) < self.swarm.expected_peers and not self._stop_requested:
            now = time.monotonic()
            if now > started + self.swarm.peer_wait_timeout:
                log.warning("the progress tracker sees %d of %d peers; training anyway", peers_in_swarm(opt), self.swarm.expected_peers)
                return
            if now > next_note:
                next_note = now + 10.0
                log.info("waiting for the progress tracker to see all peers: %d of %d (%s)", peers_in_swarm(opt),
                         self.swarm.expected_peers, opt.tracker.global_progress)
            time.sleep(0.2)

    def _catch_up_if_behind(self, opt: CollaborativeOptimizer, timeout: float = 30.0) -> bool:
        """True when this peer joins a swarm that is already training (a restart, a late join).

        Such a peer must not wait for the others at the start: a peer whose progress is behind (or
        reset by loading state) publishes none until it accumulates samples, so the tracker would never
        count it. It loads the swarm's state when the swarm is ahead (hivemind would do so only at a
        step taken after its tracker's first fetch) and trains on.
        """
        opt.tracker.fetched_global_progress_this_epoch.wait(timeout)
        if opt.tracker.global_epoch > opt.local_epoch:
            self._emit(stage="loading-state")
            log.info("the swarm is at epoch %d, this peer at %d: loading the current state from peers",
                     opt.tracker.global_epoch, opt.local_epoch)
            opt.load_state_from_peers()
            self._emit(stage="training", epoch=opt.local_epoch)
        return opt.local_epoch > 0

    def _train(self, dht: Any, opt: CollaborativeOptimizer, model: GPT, val: list, peer: PeerId) -> None:
        self._emit(stage="training", epoch=opt.local_epoch)
        self._wait_until_tracker_sees_peers(opt, model, peer)
        epoch, step, losses = opt.local_epoch, 1, []
        epoch_started, samples_done = time.monotonic(), 0
        while opt.local_epoch < self.cfg.max_epochs and not self._stop_requested:
            losses.append(self._local_step(opt, model, peer, step))
            step += 1
            samples_done += self.cfg.batch_size
            self._emit(local_steps=step, loss=losses[-1], peers=peers_in_swarm(opt))
            if opt.local_epoch != epoch:  # the swarm finished a collaborative epoch
                with opt.off_pace():  # receipt, evaluation, checkpoint: not this peer's step time
                    self._end_epoch(dht, opt, model, val, epoch, step, losses, samples_done, epoch_started)
                epoch, step, losses = opt.local_epoch, 0, []
                epoch_started, samples_done = time.monotonic(), 0
        opt.state_averager.step(wait_for_delayed_updates=True)
        if not self._stop_requested:
            self._finish(dht, opt, model, val)
        self._checkpoint(opt, model)
        self._metric("stop", epoch=opt.local_epoch, param_digest=param_digest(model), requested=self._stop_requested)

    def _end_epoch(self, dht: Any, opt: CollaborativeOptimizer, model: GPT, val: list, epoch: int, steps: int,
                   losses: list[float], samples: int, started: float) -> None:
        rnd = opt.last_round
        averaged_here = rnd is not None and rnd.epoch == epoch
        if self.work is not None:  # a receipt only when this peer's gradients made the swarm's update (or it is alone)
            self.work.on_epoch_end(epoch, counted=bool(averaged_here and rnd.averaged) or peers_in_swarm(opt) <= 1)
        new_epoch = opt.local_epoch
        evaluate_now = self.cfg.eval_every > 0 and new_epoch % self.cfg.eval_every == 0
        val_loss = evaluate(model, val, self.device) if evaluate_now else None
        if new_epoch % max(1, self.cfg.checkpoint_every) == 0:
            self._checkpoint(opt, model)
        models.keep_fresh(dht, self.swarm.run_id, self.fingerprint, describe_model(self.cfg.model))
        elapsed = time.monotonic() - started
        self._metric(
            "epoch", epoch=epoch, new_epoch=new_epoch, local_steps=steps, samples=samples,
            loss=sum(losses) / max(1, len(losses)), group_size=rnd.group_size if averaged_here else None,
            averaged=rnd.averaged if averaged_here else None, swarm_peers=peers_in_swarm(opt),
            val_loss=val_loss, param_digest=param_digest(model), elapsed_s=elapsed,
            agreement=rnd.agreement if averaged_here else None, disagreements=opt.disagreements,
            round=rnd.round_id if averaged_here else None,
            param_sketch=sketch(list(model.parameters()), chunks=4),
        )
        self._emit(epoch=new_epoch, rounds=self.status.rounds + int(averaged_here and rnd.averaged),
                   samples_per_s=samples / max(elapsed, 1e-9),
                   **({"val_loss": val_loss} if val_loss is not None else {}))

    def _finish(self, dht: Any, opt: CollaborativeOptimizer, model: GPT, val: list) -> None:
        self._metric("final", epoch=opt.local_epoch, val_loss=evaluate(model, val, self.device))
        try:
            models.wait_for_peers(dht, self.swarm.run_id, self.fingerprint, "end", self.swarm.expected_peers,
                                  self.cfg.end_barrier_timeout)
        except PeersNotFound as e:  # a peer that died at the end must not cost this peer its checkpoint
            log.warning("end barrier: %s", e)

    def _checkpoint(self, opt: CollaborativeOptimizer, model: GPT) -> None:
        if self.cfg.checkpoint_path is None:
            return
        save_checkpoint(self.cfg.checkpoint_path, {
            "format": 1, "run_id": self.swarm.run_id, "model_config": asdict(self.cfg.model),
            "model": model.state_dict(), "optimizer": opt.state_dict(),
        })
