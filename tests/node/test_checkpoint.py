"""Checkpoints round-trip, and a corrupt one is refused and left untouched."""

import pytest
import torch

from node.swarm.config import SwarmConfig
from node.train.checkpoint import load_checkpoint, save_checkpoint
from node.train.config import TrainConfig
from node.train.loop import Trainer
from protocol.errors import CheckpointError


def test_round_trip(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"run_id": "r", "w": torch.arange(5.0)})
    state = load_checkpoint(path)
    assert state["run_id"] == "r" and torch.equal(state["w"], torch.arange(5.0))
    assert load_checkpoint(tmp_path / "missing.pt") is None


@pytest.mark.parametrize("damage", ["flip_payload_byte", "truncate", "garbage_header"])
def test_corrupt_checkpoint_is_refused_and_not_overwritten(tmp_path, damage):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"run_id": "r", "w": torch.ones(100)})
    data = bytearray(path.read_bytes())
    if damage == "flip_payload_byte":
        data[-50] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[:5] = b"XXXXX"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="will not overwrite"):
        load_checkpoint(path)
    # The trainer refuses to start on it, before touching the network or the file.
    with pytest.raises(CheckpointError):
        Trainer(SwarmConfig(run_id="r"), TrainConfig(checkpoint_path=path))
    assert path.read_bytes() == bytes(data)


def test_checkpoint_of_another_run_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"run_id": "other", "model": {}, "optimizer": {}})
    with pytest.raises(CheckpointError, match="belongs to run 'other'"):
        Trainer(SwarmConfig(run_id="mine"), TrainConfig(checkpoint_path=path))


def test_checkpoint_of_another_model_is_refused_before_joining(tmp_path):
    from node.train.model import GPTConfig, build_model

    small, path = GPTConfig(n_layer=1, n_embd=32), tmp_path / "c.pt"
    saved = build_model(small, seed=1).state_dict()
    del saved["blocks.0.attn.q_norm.weight"], saved["blocks.0.attn.q_norm.bias"]  # as written before QK-norm
    save_checkpoint(path, {"run_id": "r", "model": saved, "optimizer": {}})
    with pytest.raises(CheckpointError, match=r"another model .*blocks\.0\.attn\.q_norm\.bias"):
        Trainer(SwarmConfig(run_id="r"), TrainConfig(model=small, checkpoint_path=path))
    wider = build_model(GPTConfig(n_layer=1, n_embd=64), seed=1).state_dict()
    save_checkpoint(path, {"run_id": "r", "model": wider, "optimizer": {}})
    with pytest.raises(CheckpointError, match="another model"):
        Trainer(SwarmConfig(run_id="r"), TrainConfig(model=small, checkpoint_path=path))
    save_checkpoint(path, {"run_id": "r", "model": [1, 2], "optimizer": {}})  # not a state dict at all
    with pytest.raises(CheckpointError, match="another model"):
        Trainer(SwarmConfig(run_id="r"), TrainConfig(model=small, checkpoint_path=path))
    # the same model resumes
    save_checkpoint(path, {"run_id": "r", "model": build_model(small, seed=1).state_dict(), "optimizer": {}})
    assert Trainer(SwarmConfig(run_id="r"), TrainConfig(model=small, checkpoint_path=path))._resume is not None
