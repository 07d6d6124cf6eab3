"""The training loop and the outer step on a CUDA GPU (skipped where torch sees none; run on a GPU machine).

    python -m pytest tests/node/test_loop_cuda.py -q
"""

from __future__ import annotations

import json

import pytest
import torch

from node.swarm.config import SwarmConfig
from node.swarm.outer import OuterState, initial_state, outer_step
from node.train.checkpoint import load_checkpoint
from node.train.config import TrainConfig
from node.train.loop import Trainer
from tests.node.test_loop import TINY, LocalSync, corpus

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class DeviceCheckingSync(LocalSync):
    def prepare(self, model, resume, fingerprint, describe):  # type: ignore[no-untyped-def]
        assert all(p.is_cuda for p in model.parameters())  # the loop moved the model before averaging starts
        super().prepare(model, resume, fingerprint, describe)


def test_the_loop_trains_on_the_gpu_and_its_checkpoint_resumes_anywhere(tmp_path):
    def train(epochs: int) -> Trainer:
        t = Trainer(SwarmConfig(run_id="cuda"),
                    TrainConfig(model=TINY, batch_size=4, max_epochs=epochs, eval_every=1, eval_windows=4,
                                device="cuda", checkpoint_path=tmp_path / "c.pt", metrics_path=tmp_path / "m.jsonl"),
                    sync=DeviceCheckingSync(), corpus=corpus())
        t.run()
        return t

    assert train(3).device.type == "cuda"
    saved = load_checkpoint(tmp_path / "c.pt")
    assert all(t.device.type == "cpu" for t in saved["model"].values())  # readable on a machine without a GPU
    train(5)  # resumes on the GPU from the CPU-loaded checkpoint
    records = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    epochs = [r["epoch"] for r in records if r["event"] == "epoch"]
    assert epochs == [0, 1, 2, 3, 4]
    starts = [r["val_loss"] for r in records if r["event"] == "start"]
    finals = [r["val_loss"] for r in records if r["event"] == "final"]
    assert finals[-1] < starts[0]


def test_the_outer_step_on_the_gpu_equals_the_cpu_one_and_a_cpu_state_moves_to_the_gpu():
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(64, 32, generator=gen), torch.randn(32, generator=gen)]
    deltas = [[torch.randn_like(p) * 0.01 for p in params] for _ in range(3)]
    cpu, gpu = initial_state(params), initial_state([p.cuda() for p in params])
    for d in deltas:
        cpu = outer_step(cpu, d, 0.7, 0.9)
        gpu = outer_step(gpu, [x.cuda() for x in d], 0.7, 0.9)
    for a, b in zip(cpu.params, gpu.params):
        assert torch.allclose(a, b.cpu(), atol=1e-6)
    moved = OuterState(cpu.params, cpu.momentum, cpu.step).to("cuda")
    assert all(p.is_cuda for p in moved.params + moved.momentum) and moved.step == 3
    outer_step(moved, [x.cuda() for x in deltas[0]], 0.7, 0.9)  # mixed devices would raise here
