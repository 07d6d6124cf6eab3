"""Testnet faults reach a peer as ``Hooks`` (node.testnet.attacks.Faults); a real node's hooks do nothing.

    .venv/bin/python -m pytest tests/swarm/test_fault_hooks.py -q
"""

import torch

from node.hooks import NO_HOOKS
from node.swarm.momentum import WorkerMomentum, chain
from node.testnet.attacks import Faults, make_attack


def test_default_hooks_send_gradients_unchanged_and_without_delay():
    assert NO_HOOKS.gradient_transform() is None
    assert NO_HOOKS.stream_spacing_s() == 0.0
    assert chain(None, NO_HOOKS.gradient_transform()) is None


def test_an_attack_transforms_what_is_sent_after_worker_momentum():
    faults = Faults(attack=make_attack("sign-flip"))
    send = chain(WorkerMomentum(0.5), faults.gradient_transform())
    assert send is not None
    assert send([torch.tensor([2.0])])[0].item() == -2000.0  # momentum starts at the first gradient, then x -1000
    assert Faults(attack=make_attack("label-flip")).gradient_transform() is None  # labels only: gradients as they are


def test_label_flip_reaches_the_labels_and_slowdown_is_off_by_default():
    faults = Faults(attack=make_attack("label-flip"))
    assert faults.transform_labels(torch.tensor([0, 255]), 256).tolist() == [255, 0]
    assert Faults().transform_labels(torch.tensor([3]), 256).tolist() == [3]


def test_round_records_are_written_as_pt_files_named_as_the_optimizer_names_them(tmp_path):
    faults = Faults(round_dump_dir=tmp_path / "rounds")
    faults.on_round("round-00003-1700000000.250", {"epoch": 3, "result": [torch.ones(2)]})
    [written] = (tmp_path / "rounds").iterdir()
    assert written.name == "round-00003-1700000000.250.pt"
    assert float(written.stem.split("-")[-1]) == 1700000000.25
    assert torch.load(written, weights_only=False)["epoch"] == 3


def test_sending_is_marked_only_with_a_send_delay_and_a_dump_directory(tmp_path):
    Faults(round_dump_dir=tmp_path / "a").on_send_start()
    delayed = Faults(send_delay=0.5, round_dump_dir=tmp_path / "b")
    delayed.on_send_start()
    assert not (tmp_path / "a").exists()
    assert [p.name.split("-")[0] for p in (tmp_path / "b").iterdir()] == ["sending"]
    assert delayed.stream_spacing_s() == 0.5
