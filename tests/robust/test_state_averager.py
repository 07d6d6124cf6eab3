"""LoadSafeStateAverager: a background parameters' round that began before a load does not touch the loaded state."""

from contextlib import contextmanager
from unittest.mock import patch

import hivemind
import pytest
import torch

from node.swarm.hivemind_ext.state_averager import LoadSafeStateAverager

pytestmark = [pytest.mark.swarm]


@contextmanager
def _averager(prefix: str, lr: float, **kwargs):  # type: ignore[no-untyped-def]
    """A started averager over one parameter of 4 zeros, alone on its own DHT: (averager, parameter)."""
    dht = hivemind.DHT(start=True)
    param = torch.nn.Parameter(torch.zeros(4))
    averager = LoadSafeStateAverager(dht=dht, prefix=prefix, optimizer=lambda p: torch.optim.SGD(p, lr=lr),
                                     params=[param], start=True, **kwargs)
    try:
        yield averager, param
    finally:
        averager.shutdown()
        dht.shutdown()


def test_a_round_snapshotted_before_a_load_is_dropped_and_a_later_one_applies():
    with _averager("load-safe", lr=0.1, delta_rule_averaging=True) as (averager, param):
        def finish_round(snapshot: float, average: float) -> None:
            # what a background round leaves behind: its snapshot, the averaged tensors, the finished flag
            averager._old_tensors = tuple(torch.full_like(t, snapshot) for t in averager._local_tensors())
            with averager.get_tensors() as averaged:
                for t in averaged:
                    t.fill_(average)

        finish_round(snapshot=0.0, average=1.0)
        averager.load_state_from_peers(timeout=1.0)  # no peer to load from: the download fails, nothing changes
        averager._apply_averaging_results_()
        assert torch.allclose(param.detach(), torch.full((4,), 1.0))  # so the round's delta (+1) still applies

        finish_round(snapshot=1.0, average=2.0)
        with torch.no_grad():
            param.fill_(5.0)
        state = averager.get_current_state()[:2]  # a peer's state: parameters 5
        with patch.object(hivemind.DecentralizedAverager, "load_state_from_peers", return_value=state):
            averager.load_state_from_peers(timeout=1.0)
        averager._apply_averaging_results_()
        assert torch.equal(param.detach(), torch.full((4,), 5.0))  # the stale delta (+1) was dropped

        finish_round(snapshot=5.0, average=7.0)  # a round that began after the load
        averager._apply_averaging_results_()
        assert torch.allclose(param.detach(), torch.full((4,), 7.0))


def test_the_state_served_to_loaders_is_labelled_with_its_parameters_epoch():
    """hivemind raises the epoch before the optimizer step runs; a loader in between must not get the new epoch's
    number with the old epoch's parameters."""
    with _averager("load-safe-epoch", lr=1.0) as (averager, param):
        param.grad = torch.ones(4)
        averager.local_epoch += 1  # what hivemind's step(increment_epoch=True) does first
        metadata, tensors, _ = averager.get_current_state()
        assert metadata["epoch"] == 0 and torch.equal(tensors[0], torch.zeros(4))  # the old parameters, labelled so

        averager.local_epoch -= 1
        averager.step(increment_epoch=True, optimizer_step=True)  # the whole epoch change, optimizer step included
        metadata, tensors, _ = averager.get_current_state()
        assert metadata["epoch"] == 1 and torch.equal(tensors[0], torch.full((4,), -1.0))


def test_a_finished_background_round_is_applied_at_the_epoch_boundary_not_between_local_steps():
    """Parameters stay fixed through an epoch: the receipt's snapshot is what every gradient of the epoch saw."""
    with _averager("boundary", lr=1.0, delta_rule_averaging=True) as (averager, param):
        averager._old_tensors = tuple(torch.zeros_like(t) for t in averager._local_tensors())
        with averager.get_tensors() as averaged:
            for t in averaged:
                t.fill_(3.0)
        averager.finished_averaging_round.set()  # a background round ended: delta +3 waits to be applied

        averager.step(apply_delayed_updates=True)  # what hivemind's Optimizer.step does before each local step
        assert torch.equal(param.detach(), torch.zeros(4))  # mid-epoch: not yet
        assert averager.finished_averaging_round.is_set()

        param.grad = torch.ones(4)
        averager.step(increment_epoch=True, optimizer_step=True)  # the epoch change: delta, then the step
        assert torch.allclose(param.detach(), torch.full((4,), 2.0))  # 0 + 3 - 1 * 1
        assert not averager.finished_averaging_round.is_set()
