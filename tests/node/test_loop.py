"""The one training loop, driven by a synchronizer that needs no network: records, hooks, receipts, stop."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from node.hooks import Hooks
from node.swarm.config import SwarmConfig
from node.train.checkpoint import load_checkpoint, save_checkpoint
from node.train.config import TrainConfig
from node.train.data import Corpus
from node.train.loop import Trainer
from node.train.model import GPT, GPTConfig
from node.train.synchronizer import EpochEnd, Joined, SyncContext, Synchronizer
from protocol.errors import ConfigError

TINY = GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=16)
STEPS_PER_EPOCH = 3


def corpus() -> Corpus:
    text = b"the quick brown fox jumps over the lazy dog. " * 40
    return Corpus(train=text, val=text[:400])


class LocalSync(Synchronizer):
    """Plain SGD on one peer; an epoch ends every STEPS_PER_EPOCH steps; counts what the loop asked of it."""

    mode = "local"

    def __init__(self, stop_after: int | None = None, trainer: list[Trainer] | None = None) -> None:
        self.current = 0
        self.opt: torch.optim.Optimizer | None = None
        self.calls: list[tuple[str, Any]] = []
        self.stop_after, self.trainer = stop_after, trainer
        self.steps = 0

    def check_resume(self, saved: dict[str, Any]) -> None:
        if "local" not in saved:
            raise ConfigError("not a local checkpoint")

    def open(self, ctx: SyncContext) -> Joined:
        self.calls.append(("open", None))
        return Joined(None, "peerA", ["/ip4/127.0.0.1/tcp/1"])

    def prepare(self, model, resume, fingerprint, describe) -> None:  # type: ignore[no-untyped-def]
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1)
        if resume is not None:
            self.current = resume["local"]["epoch"]
        self.calls.append(("prepare", resume is not None))

    @property
    def epoch(self) -> int:
        return self.current

    def wait_for_peers(self) -> None:
        self.calls.append(("wait_for_peers", None))

    def step(self, model, step, compute_s):  # type: ignore[no-untyped-def]
        assert self.opt is not None and compute_s >= 0
        self.steps += 1
        if self.stop_after is not None and self.steps == self.stop_after and self.trainer:
            self.trainer[0].request_stop()
        self.opt.step()
        self.opt.zero_grad()
        if step + 1 < STEPS_PER_EPOCH:
            return None
        self.current += 1
        return EpochEnd(epoch=self.current - 1, new_epoch=self.current, counted=self.current % 2 == 1,
                        rounds=self.current, fields={"disagreements": self.current})

    def checkpoint_state(self) -> dict[str, Any]:
        return {"local": {"epoch": self.current}}

    def finish(self, model, stopped) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(("finish", stopped))

    def final_fields(self) -> dict[str, Any]:
        return {"rounds_failed": 1}

    def end_barrier(self, timeout: float) -> None:
        self.calls.append(("end_barrier", timeout))

    def close(self) -> None:
        self.calls.append(("close", None))


class Recorder:
    def __init__(self) -> None:
        self.steps: list[tuple[int, int]] = []
        self.ends: list[tuple[int, bool]] = []
        self.flushed = False

    def on_step(self, epoch: int, step: int, model: torch.nn.Module) -> None:
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)  # after backward
        self.steps.append((epoch, step))

    def on_epoch_end(self, epoch: int, counted: bool = True) -> None:
        self.ends.append((epoch, counted))

    def flush(self, budget_s: float) -> int:
        self.flushed = True
        return 0


class CountingHooks(Hooks):
    def __init__(self) -> None:
        self.labels = 0
        self.after = 0

    def transform_labels(self, y, num_classes):  # type: ignore[no-untyped-def]
        self.labels += 1
        assert num_classes == 256
        return y

    def after_local_step(self, compute_s: float) -> None:
        self.after += 1


def trainer(tmp_path, sync: Synchronizer, epochs: int = 3, **kw: Any) -> Trainer:
    train = TrainConfig(model=TINY, batch_size=2, max_epochs=epochs, eval_every=2, eval_windows=4, device="cpu",
                        checkpoint_path=tmp_path / "c.pt", metrics_path=tmp_path / "m.jsonl", checkpoint_every=1,
                        end_barrier_timeout=7.0, **kw)
    return Trainer(SwarmConfig(run_id="loop"), train, sync=sync, corpus=corpus())


def records(tmp_path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]


def test_loop_trains_every_epoch_records_it_and_checkpoints(tmp_path):
    sync, recorder, hooks = LocalSync(), Recorder(), CountingHooks()
    t = Trainer(SwarmConfig(run_id="loop"),
                TrainConfig(model=TINY, batch_size=2, max_epochs=3, eval_every=2, eval_windows=4, device="cpu",
                            checkpoint_path=tmp_path / "c.pt", metrics_path=tmp_path / "m.jsonl",
                            checkpoint_every=1, end_barrier_timeout=7.0),
                sync=sync, corpus=corpus(), receipts=lambda joined, c, shards: recorder, hooks=hooks)
    t.run()

    events = [r["event"] for r in records(tmp_path)]
    assert events == ["start", "epoch", "epoch", "epoch", "final", "stop"]
    epochs = [r for r in records(tmp_path) if r["event"] == "epoch"]
    assert [(r["epoch"], r["new_epoch"], r["local_steps"], r["disagreements"]) for r in epochs] == \
        [(0, 1, 3, 1), (1, 2, 3, 2), (2, 3, 3, 3)]
    assert [r["val_loss"] is not None for r in epochs] == [False, True, False]  # eval_every=2: after epoch 2 only
    final = records(tmp_path)[-2]
    assert final["rounds_failed"] == 1 and final["val_loss"] < records(tmp_path)[0]["val_loss"]  # it learned
    # every step went through the hooks and the recorder, in order, and each epoch asked for its receipt
    assert hooks.labels == hooks.after == 9
    assert recorder.steps == [(e, s) for e in range(3) for s in range(3)]
    assert recorder.ends == [(0, True), (1, False), (2, True)] and recorder.flushed
    assert ("end_barrier", 7.0) in sync.calls and sync.calls[-1] == ("close", None)
    assert t.status.stage == "stopped" and t.status.epoch == 3 and t.status.rounds == 3
    saved = load_checkpoint(tmp_path / "c.pt")
    assert saved["local"] == {"epoch": 3} and saved["run_id"] == "loop"


def test_resume_continues_from_the_checkpointed_epoch(tmp_path):
    trainer(tmp_path, LocalSync(), epochs=2).run()
    sync = LocalSync()
    trainer(tmp_path, sync, epochs=3).run()
    epochs = [r for r in records(tmp_path) if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1, 2]  # the second run trained epoch 2 only
    assert ("prepare", True) in sync.calls


def test_a_checkpoint_of_another_mode_is_refused_before_joining(tmp_path):

    save_checkpoint(tmp_path / "c.pt", {"format": 1, "run_id": "loop", "model": GPT(TINY).state_dict(),
                                        "optimizer": {}})
    sync = LocalSync()
    with pytest.raises(ConfigError, match="not a local checkpoint"):
        trainer(tmp_path, sync)
    assert sync.calls == []


def test_a_stop_mid_epoch_checkpoints_and_writes_no_final_record(tmp_path):
    holder: list[Trainer] = []
    sync = LocalSync(stop_after=4, trainer=holder)
    t = trainer(tmp_path, sync, epochs=5)
    holder.append(t)
    t.run()
    recs = records(tmp_path)
    assert [r["event"] for r in recs] == ["start", "epoch", "stop"]
    assert recs[-1]["requested"] is True and recs[-1]["epoch"] == 1 and recs[-1]["rounds_failed"] == 1
    assert ("finish", True) in sync.calls and not any(c[0] == "end_barrier" for c in sync.calls)
    assert sync.steps == 4  # the step that saw the stop was the last
